"""The DDL parser reads every Security Lake table declaration and reports syntax errors with their position."""

from __future__ import annotations

import pytest

from scripts.ocsf.ddl import Array, DdlSyntaxError, Map, Primitive, Struct, parse_columns, render
from tests.conftest import FIXTURES


@pytest.mark.parametrize("table", ["vpc_flow_1_0", "vpc_flow_2_0", "route53_1_0", "route53_2_0"])
def test_reference_ddl_round_trips(table: str) -> None:
    text = (FIXTURES / "schemas" / f"{table}.ddl").read_text().strip()
    parsed = parse_columns(text)
    assert ",".join(f"{f.name}:{render(f.type)}" for f in parsed.fields) == text


def test_nested_types_are_parsed() -> None:
    parsed = parse_columns("a:struct<b:array<string>,c:map<string,bigint>>,t:timestamp")
    inner = parsed.field("a").type
    assert isinstance(inner, Struct)
    assert inner.field("b").type == Array(Primitive("string"))
    assert inner.field("c").type == Map(Primitive("string"), Primitive("bigint"))
    assert parsed.field("t").type == Primitive("timestamp")


def test_unknown_type_names_position_and_allowed_types() -> None:
    with pytest.raises(DdlSyntaxError, match=r"character 2: expected a type \(string, int, bigint, timestamp"):
        parse_columns("a:float")


def test_missing_field_is_named() -> None:
    with pytest.raises(KeyError, match="no field 'zz'"):
        parse_columns("a:int").field("zz")
