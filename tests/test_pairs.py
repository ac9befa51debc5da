"""Pair extraction: hand-derived pairs from the real v1 files, and the Spark and pyarrow engines agreeing."""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.samplelake.writer import GenerationOptions, GenerationReport
from scripts.ocsf.schemas import Source, spark_schema
from scripts.pairs import arrow_engine, spark_engine
from scripts.pairs.mapping import IP_REGEX, Algorithm, mapping
from tests.conftest import REAL_V1

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Lake = tuple[GenerationOptions, GenerationReport]
FOLDERS = {Source.VPC_FLOW: "VPC_FLOW", Source.ROUTE53: "ROUTE53"}

# Derived by hand from the eight real rows (see tests/fixtures/security-lake-v1):
# VPC_FLOW example0 Inbound Blocked, example1/2 Outbound Allowed from i-000000000000000000 (ip 1.2.3.4) to
# 172.31.2.52, example3 NODATA ("-"); ROUTE53 examples 0-2 have no instance, example3 is i-0d15cd0d3example
# (ip 4.5.64.102, Blocked, PTR answer).
EXPECTED = {
    ("peer", Source.VPC_FLOW): (
        [("123456789012/i-000000000000000000", "172.31.2.52")] * 2,
        {"rejected": 1, "unknown_direction": 1},
    ),
    ("peer", Source.ROUTE53): ([], {"missing_entity": 2, "rejected": 2}),
    ("blog", Source.VPC_FLOW): ([("i-000000000000000000", "1.2.3.4")] * 2, {"missing_entity": 2}),
    ("blog", Source.ROUTE53): ([("i-0d15cd0d3example", "4.5.64.102")], {"missing_entity": 3}),
}


def _real_table(source: Source) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((REAL_V1 / FOLDERS[source]).glob("*.parquet"))])


@pytest.mark.parametrize(("mapping_name", "source"), list(EXPECTED))
def test_arrow_engine_on_real_v1_rows(mapping_name: str, source: Source) -> None:
    result = arrow_engine.extract(_real_table(source), source, 1, mapping(mapping_name).rule(source))
    pairs, drops = EXPECTED[(mapping_name, source)]
    assert sorted(zip(result.pairs["entity"].to_pylist(), result.pairs["ip"].to_pylist(), strict=True)) == pairs
    assert dict(result.drops) == drops
    assert sum(result.drops.values()) == result.candidates - result.pairs.num_rows


@pytest.mark.spark
@pytest.mark.parametrize(("mapping_name", "source"), list(EXPECTED))
def test_spark_engine_on_real_v1_rows(spark: SparkSession, mapping_name: str, source: Source) -> None:
    files = [str(p) for p in sorted((REAL_V1 / FOLDERS[source]).glob("*.parquet"))]
    frame = spark.read.schema(spark_schema(source, 1)).parquet(*files)
    rows = spark_engine.extract(frame, source, 1, mapping(mapping_name).rule(source)).collect()
    pairs, drops = EXPECTED[(mapping_name, source)]
    assert sorted((r["entity"], r["ip"]) for r in rows if r["reason"] is None) == pairs
    assert dict(Counter(r["reason"] for r in rows if r["reason"] is not None)) == drops


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4",
        "255.255.255.255",
        "0.0.0.0",
        "256.1.1.1",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.4.5",
        "::",
        "::1",
        "2001:db8::1",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "fe80::1%eth0",
        "::ffff:192.0.2.1",
        "2001:db8::g",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "64:ff9b::192.0.2.33",
        "-",
        "",
        "unknown",
        "10.0.1.256",
    ],
)
def test_ip_regex_agrees_with_python(text: str) -> None:
    import re

    try:
        ipaddress.ip_address(text)
        valid = "%" not in text
    except ValueError:
        valid = False
    assert bool(re.fullmatch(IP_REGEX, text)) == valid


def _generated(root: Path, source: Source) -> list[str]:
    return sorted(str(p) for p in (root / "s3").rglob("*.parquet") if f"/aws/{source.value}/" in p.as_posix())


@pytest.mark.spark
@pytest.mark.parametrize("lake_name", ["lake_v1", "lake_v2"])
@pytest.mark.parametrize("algorithm", [Algorithm.OPEN, Algorithm.BUILTIN])
def test_spark_and_arrow_engines_agree(
    spark: SparkSession, lake_name: str, algorithm: Algorithm, request: pytest.FixtureRequest
) -> None:
    options, _ = request.getfixturevalue(lake_name)
    version = options.source_version
    for mapping_name in ("peer", "blog"):
        for source in Source:
            files = _generated(options.root, source)
            rule = mapping(mapping_name).rule(source)
            arrow_result = arrow_engine.extract(
                pa.concat_tables([pq.read_table(f) for f in files]), source, version, rule, algorithm
            )
            frame = spark.read.schema(spark_schema(source, version)).parquet(*files)
            rows = spark_engine.extract(frame, source, version, rule, algorithm).collect()
            spark_pairs = sorted((r["entity"], r["ip"], r["time"]) for r in rows if r["reason"] is None)
            arrow_pairs = sorted(
                zip(*(arrow_result.pairs[c].to_pylist() for c in ("entity", "ip", "time")), strict=True)
            )
            assert spark_pairs == arrow_pairs
            assert len(arrow_pairs) > 0
            assert Counter(r["reason"] for r in rows if r["reason"] is not None) == arrow_result.drops
            assert len(rows) == arrow_result.candidates
            if algorithm == Algorithm.BUILTIN and mapping_name == "peer" and source == Source.VPC_FLOW:
                assert arrow_result.drops["ipv6_unsupported_by_builtin"] > 0
