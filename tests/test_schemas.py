"""Security Lake schemas as code match the reference declarations and the real files."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scripts.ocsf.schemas import Source, arrow_mismatches, arrow_schema, detect_version, spark_schema, table_type
from tests.conftest import FIXTURES, REAL_V1

TABLES = [
    (Source.VPC_FLOW, 1, "vpc_flow_1_0"),
    (Source.VPC_FLOW, 2, "vpc_flow_2_0"),
    (Source.ROUTE53, 1, "route53_1_0"),
    (Source.ROUTE53, 2, "route53_2_0"),
]


@pytest.mark.parametrize(("source", "version", "name"), TABLES)
def test_spark_schema_equals_reference_struct_type(source: Source, version: int, name: str) -> None:
    reference = json.loads((FIXTURES / "schemas" / f"{name}.spark.json").read_text())
    assert spark_schema(source, version).jsonValue() == {"type": "struct", **reference}


@pytest.mark.parametrize(("source", "folder"), [(Source.VPC_FLOW, "VPC_FLOW"), (Source.ROUTE53, "ROUTE53")])
def test_real_v1_samples_match_v1_schema_and_not_v2(source: Source, folder: str) -> None:
    files = sorted((REAL_V1 / folder).glob("*.parquet"))
    assert len(files) == 4
    for path in files:
        schema = pq.read_schema(path)
        assert arrow_mismatches(schema, source, 1) == []
        assert arrow_mismatches(schema, source, 2) != []
        assert detect_version(schema, source) == 1


def test_v1_and_v2_differ_where_facts_say() -> None:
    v1 = table_type(Source.VPC_FLOW, 1)
    v2 = table_type(Source.VPC_FLOW, 2)
    assert "account_uid" in v1.field("cloud").type.names()  # type: ignore[union-attr]
    assert "account" in v2.field("cloud").type.names()  # type: ignore[union-attr]
    assert {"time_dt", "action", "observables", "accountid", "asl_version"} <= set(v2.names()) - set(v1.names())
    assert {"disposition_id", "start_time", "end_time"} <= set(v1.names()) - set(v2.names())


def test_mismatch_names_the_column_and_both_types() -> None:
    schema = arrow_schema(Source.VPC_FLOW, 1)
    index = schema.get_field_index("time")
    changed = schema.set(index, pa.field("time", pa.string()))
    assert arrow_mismatches(changed, Source.VPC_FLOW, 1) == [".time: expected bigint, found string"]


def test_unknown_schema_is_an_error_saying_what_differs() -> None:
    schema = pa.schema([("time", pa.int64()), ("something_else", pa.string())])
    with pytest.raises(ValueError, match=r"does not match any known VPC_FLOW source version \(version 1: "):
        detect_version(schema, Source.VPC_FLOW)
