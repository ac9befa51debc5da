"""Pair extraction: hand-derived pairs from the real v1 files, and the Spark and pyarrow engines agreeing."""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.local.s3map import hadoop_uri
from pipeline.samplelake.writer import GenerationOptions, GenerationReport
from scripts.entity import base_entity
from scripts.ocsf.schemas import Source, spark_schema
from scripts.pairs import arrow_engine, spark_engine
from scripts.pairs.mapping import (
    BYTES_OUT,
    IP_REGEX,
    QUERY_NAME,
    Algorithm,
    EntityRole,
    PairMapping,
    mapping,
    port_class,
)
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
    # example1/2 carry TCP flags 2 (SYN) from the ENI's side, 56858 -> 39938: the workload opened them, on an
    # unclassified port.
    ("role", Source.VPC_FLOW): (
        [("123456789012/i-000000000000000000#client:other", "172.31.2.52")] * 2,
        {"rejected": 1, "unknown_direction": 1},
    ),
    ("role", Source.ROUTE53): ([], {"missing_entity": 2, "rejected": 2}),
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
    files = [hadoop_uri(p) for p in sorted((REAL_V1 / FOLDERS[source]).glob("*.parquet"))]
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


def _generated(root: Path, source: Source) -> list[Path]:
    return sorted(p for p in (root / "s3").rglob("*.parquet") if f"/aws/{source.value}/" in p.as_posix())


@pytest.mark.spark
@pytest.mark.parametrize("lake_name", ["lake_v1", "lake_v2"])
@pytest.mark.parametrize("algorithm", [Algorithm.OPEN, Algorithm.BUILTIN])
def test_spark_and_arrow_engines_agree(
    spark: SparkSession, lake_name: str, algorithm: Algorithm, request: pytest.FixtureRequest
) -> None:
    options, _ = request.getfixturevalue(lake_name)
    version = options.source_version
    for mapping_name in ("role", "peer", "blog"):
        for source in Source:
            files = _generated(options.root, source)
            rule = mapping(mapping_name).rule(source)
            arrow_result = arrow_engine.extract(
                pa.concat_tables([pq.read_table(f) for f in files]), source, version, rule, algorithm
            )
            frame = spark.read.schema(spark_schema(source, version)).parquet(*[hadoop_uri(f) for f in files])
            rows = spark_engine.extract(frame, source, version, rule, algorithm).collect()
            columns = ("entity", "ip", "time", BYTES_OUT, QUERY_NAME)
            spark_pairs = sorted(tuple(r[c] for c in columns) for r in rows if r["reason"] is None)
            arrow_pairs = sorted(zip(*(arrow_result.pairs[c].to_pylist() for c in columns), strict=True))
            assert spark_pairs == arrow_pairs
            assert len(arrow_pairs) > 0
            if source == Source.VPC_FLOW and mapping_name != "blog":  # requests carry bytes, answers none
                assert 0 < sum(p[3] > 0 for p in arrow_pairs) < len(arrow_pairs)
            if source == Source.ROUTE53 and mapping_name != "blog":  # every answer says what was asked
                assert all(p[4] and not p[4].endswith(".") and p[4] == p[4].lower() for p in arrow_pairs)
            assert Counter(r["reason"] for r in rows if r["reason"] is not None) == arrow_result.drops
            assert len(rows) == arrow_result.candidates
            if algorithm == Algorithm.BUILTIN and mapping_name == "peer" and source == Source.VPC_FLOW:
                assert arrow_result.drops["ipv6_unsupported_by_builtin"] > 0


# (direction, protocol, tcp_flags, src_port, dst_port) -> the role of the ENI's workload
FLOW_ROLES = [
    (("Outbound", 6, 3, 40000, 443), "client:web"),  # SYN+FIN from us: we opened it
    (("Inbound", 6, 19, 443, 40000), "client:web"),  # the SYN-ACK reply to it, logged in the other direction
    (("Inbound", 6, 3, 50000, 22), "server:admin"),  # someone opened SSH to us
    (("Outbound", 6, 19, 22, 50000), "server:admin"),  # our reply
    (("Outbound", 17, 0, 45000, 123), "client:ntp"),  # UDP: no flags, the lower port is the service
    (("Inbound", 17, None, 53, 40000), "client:dns"),  # a DNS answer to our query
    (("Inbound", 6, 16, 51000, 5432), "server:db"),  # ACK only (began in an earlier window): by ports
    (("Outbound", 1, None, 0, 0), "client:other"),  # we pinged: ICMP has no ports, the record's sender opened it
    (("Inbound", 1, None, 0, 0), "server:other"),  # someone pinged us
    (("Inbound", 1, None, None, None), "server:other"),  # ICMP without ports in the record
    (("Inbound", 50, None, 0, 0), "server:other"),  # ESP from a VPN peer
]


def test_flow_roles_follow_flags_then_ports_then_direction() -> None:
    rows = [spec for spec, _ in FLOW_ROLES]
    table = pa.table(
        {
            "connection_info": pa.array(
                [{"direction": d, "protocol_num": p, "tcp_flags": f} for d, p, f, _, _ in rows],
                pa.struct([("direction", pa.string()), ("protocol_num", pa.int32()), ("tcp_flags", pa.int32())]),
            ),
            "src_endpoint": pa.array([{"port": s} for _, _, _, s, _ in rows], pa.struct([("port", pa.int32())])),
            "dst_endpoint": pa.array([{"port": d} for _, _, _, _, d in rows], pa.struct([("port", pa.int32())])),
        }
    )
    assert arrow_engine.flow_roles(table, EntityRole.SERVICE).tolist() == [role for _, role in FLOW_ROLES]
    assert arrow_engine.flow_roles(table, EntityRole.INITIATOR).tolist() == [r.split(":")[0] for _, r in FLOW_ROLES]


@pytest.mark.spark
def test_spark_flow_roles_match_arrow(spark: SparkSession) -> None:
    rows = [((d, p, f), (s,), (t,)) for (d, p, f, s, t), _ in FLOW_ROLES]
    schema = (
        "connection_info struct<direction:string,protocol_num:int,tcp_flags:int>, "
        "src_endpoint struct<port:int>, dst_endpoint struct<port:int>"
    )
    frame = spark.createDataFrame(rows, schema=schema)
    roles = [r["role"] for r in frame.select(spark_engine.flow_role(frame, EntityRole.SERVICE).alias("role")).collect()]
    assert roles == [role for _, role in FLOW_ROLES]


def test_base_entity_and_port_classes() -> None:
    assert base_entity("123456789012/i-0abc#client:web") == "123456789012/i-0abc"
    assert base_entity("123456789012/eni-0abc") == "123456789012/eni-0abc"
    assert [port_class(p) for p in (443, 3389, 445, 5432, 53, 4444, None)] == [
        "web",
        "admin",
        "smb_rpc",
        "db",
        "dns",
        "other",
        "other",
    ]


def _flows(rows: list[tuple[str, int, int | None, int, int]]) -> pa.Table:
    """(direction, protocol, tcp flags, source port, destination port) as OCSF flow rows."""
    return pa.Table.from_pylist(
        [
            {
                "connection_info": {"direction": direction, "protocol_num": protocol, "tcp_flags": flags},
                "src_endpoint": {"port": src},
                "dst_endpoint": {"port": dst},
            }
            for direction, protocol, flags, src, dst in rows
        ]
    )


def test_tcp_flags_decide_who_opened_the_connection_and_ports_decide_only_without_them() -> None:
    """Each row is outbound (the logging side is the source) and its ports point the other way than its flags."""
    tcp, udp, syn, syn_ack = 6, 17, 2, 18
    rows = [
        ("Outbound", tcp, syn, 443, 50_000),  # a SYN from 443: the source opened it, whatever the ports say
        ("Outbound", tcp, syn_ack, 50_000, 443),  # the SYN-ACK's source answered: it is the server
        ("Outbound", udp, syn, 443, 50_000),  # flags mean nothing outside TCP: the lower port is the service
        ("Outbound", tcp, None, 50_000, 443),  # no flags recorded: the ports decide
        ("Inbound", tcp, syn, 50_000, 445),  # inbound: the logging side is the destination, which was opened
    ]
    assert arrow_engine.flow_roles(_flows(rows), EntityRole.INITIATOR).tolist() == [
        "client",
        "server",
        "server",
        "client",
        "server",
    ]
    # the service's port class, the class names longer than `other` included
    with_service = arrow_engine.flow_roles(_flows(rows), EntityRole.SERVICE).tolist()
    assert with_service == ["client:other", "server:other", "server:web", "client:web", f"server:{port_class(445)}"]
    assert port_class(445) == "smb_rpc"


# The bytes each mapping's entity sent on the real rows it keeps: the two Outbound records of 50 bytes are the
# workload's own (blog's entity is the record's source, whatever the direction); a Route 53 answer carries none.
SENT_ON_REAL_ROWS = {
    ("role", Source.VPC_FLOW): [50, 50],
    ("peer", Source.VPC_FLOW): [50, 50],
    ("blog", Source.VPC_FLOW): [50, 50],
    ("blog", Source.ROUTE53): [0],
}


@pytest.mark.parametrize(("mapping_name", "source"), list(SENT_ON_REAL_ROWS))
def test_each_pair_carries_the_bytes_its_entity_sent_on_the_real_rows(mapping_name: str, source: Source) -> None:
    result = arrow_engine.extract(_real_table(source), source, 1, mapping(mapping_name).rule(source))
    assert result.pairs[BYTES_OUT].to_pylist() == SENT_ON_REAL_ROWS[(mapping_name, source)]


def test_only_the_records_the_entity_sent_count_as_its_bytes() -> None:
    """One connection the workload opened, logged both ways on its ENI: the Outbound request's 1,000 bytes are
    what it sent, the Inbound reply's 3,000 what it received; a record with no bytes counts 0."""
    table = pa.Table.from_pylist(
        [
            {
                "connection_info": {"direction": direction, "protocol_num": 6, "tcp_flags": flags},
                "src_endpoint": {"port": src, "ip": src_ip, "instance_uid": "i-1" if local_src else None},
                "dst_endpoint": {"port": dst, "ip": dst_ip, "instance_uid": None if local_src else "i-1"},
                "cloud": {"account_uid": "123456789012"},
                "traffic": {"bytes": sent},
                "time": 1,
            }
            for direction, flags, src, dst, src_ip, dst_ip, local_src, sent in [
                ("Outbound", 2, 50_000, 443, "10.0.0.5", "52.216.1.1", True, 1_000),
                ("Inbound", 18, 443, 50_000, "52.216.1.1", "10.0.0.5", False, 3_000),
                ("Outbound", 3, 50_001, 443, "10.0.0.5", "52.216.1.1", True, None),
            ]
        ]
    )
    result = arrow_engine.extract(table, Source.VPC_FLOW, 1, mapping("role").rule(Source.VPC_FLOW))
    assert result.pairs["entity"].to_pylist() == ["123456789012/i-1#client:web"] * 3
    assert result.pairs[BYTES_OUT].to_pylist() == [1_000, 0, 0]


def test_each_answer_carries_the_name_asked_for_and_a_flow_none() -> None:
    """Both A answers of one query carry its name, lower case without the final dot; the CNAME is no pair."""
    table = pa.Table.from_pylist(
        [
            {
                "src_endpoint": {"instance_uid": "i-1", "ip": "10.0.0.5"},
                "cloud": {"account_uid": "123456789012"},
                "query": {"hostname": "Deb.Debian.ORG."},
                "answers": [
                    {"type": "CNAME", "rdata": "debian.map.fastly.net.", "class": "IN"},
                    {"type": "A", "rdata": "151.101.2.132", "class": "IN"},
                    {"type": "A", "rdata": "151.101.66.132", "class": "IN"},
                ],
                "time": 1,
            }
        ]
    )
    dns = arrow_engine.extract(table, Source.ROUTE53, 1, mapping("role").rule(Source.ROUTE53)).pairs
    assert dns["ip"].to_pylist() == ["151.101.2.132", "151.101.66.132"]
    assert dns[QUERY_NAME].to_pylist() == ["deb.debian.org", "deb.debian.org"]
    flows = arrow_engine.extract(
        _real_table(Source.VPC_FLOW), Source.VPC_FLOW, 1, mapping("role").rule(Source.VPC_FLOW)
    )
    assert flows.pairs[QUERY_NAME].to_pylist() == [None, None]


def test_an_unknown_mapping_or_source_is_named_with_what_exists() -> None:
    with pytest.raises(ValueError) as unknown:
        mapping("roles")
    assert str(unknown.value) == "unknown pair mapping 'roles'; allowed: blog, peer, role"
    flows_only = PairMapping("flows", "flow logs only", (mapping("role").rule(Source.VPC_FLOW),))
    with pytest.raises(KeyError) as missing:
        flows_only.rule(Source.ROUTE53)
    assert missing.value.args == ("mapping 'flows' has no rule for ROUTE53; it covers ['VPC_FLOW']",)
