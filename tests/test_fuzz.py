"""Random and adversarial input, for a bounded number of examples: the server always answers, parse_batch never
raises and accounts for every record, pair extraction never raises and counts every candidate it drops."""

from __future__ import annotations

import json
import socket
import string
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts.ipinsights.serve import InferenceServer, start_server
from scripts.monitor.events import parse_batch
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, arrow_schema
from scripts.pairs.arrow_engine import extract
from scripts.pairs.mapping import Algorithm, mapping
from tests.conftest import train_tiny_model

# Fixed seeds: the same examples in every CI run, so a failure reproduces; raise max_examples to explore more.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANSWERED = {200, 400, 404, 406, 408, 411, 413, 415}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
notification_like = st.fixed_dictionaries(
    {},
    optional={
        "Records": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "s3": st.fixed_dictionaries(
                        {},
                        optional={
                            "bucket": st.dictionaries(st.just("name"), json_values | st.text(min_size=1)),
                            "object": st.dictionaries(st.just("key"), json_values | st.text(min_size=1)),
                        },
                    )
                },
            )
            | json_values,
            max_size=3,
        ),
        "detail": json_values,
        "Message": st.text(max_size=50) | json_values.map(json.dumps),
        "Event": st.just("s3:TestEvent") | st.text(max_size=10),
    },
)
bodies = (
    st.text(max_size=200)
    | json_values.map(json.dumps)
    | notification_like.map(json.dumps)
    | notification_like
    | st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
)
records = st.fixed_dictionaries({"body": bodies}, optional={"messageId": st.text(max_size=10) | st.integers()})


@FUZZ
@given(st.lists(records | json_values, max_size=6))
def test_parse_batch_answers_every_record_and_never_raises(batch: list[Any]) -> None:
    messages = parse_batch({"Records": batch})
    assert len(messages) == len(batch)
    for message in messages:
        assert sum(x is not None and x != [] for x in (message.objects, message.error, message.ignored)) == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceServer]:
    running, _ = start_server(train_tiny_model(tmp_path_factory.mktemp("fuzz-model"), epochs=1), "127.0.0.1", 0)
    yield running
    running.shutdown()
    running.server_close()


def _exchange(server: InferenceServer, request: bytes) -> bytes:
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=15) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


csv_rows = st.lists(
    st.tuples(st.text(max_size=30), st.sampled_from(["10.0.0.1", "::1", "300.1.1.1", "", "x", "1.2.3.4"])),
    max_size=20,
).map(lambda rows: "\n".join(f"{e},{ip}" for e, ip in rows).encode())
request_bodies = st.binary(max_size=300) | csv_rows | json_values.map(lambda v: json.dumps(v).encode())
content_types = st.sampled_from(
    ["text/csv", "application/json", "application/jsonlines", "text/plain", "", "text/csv; charset=utf-8"]
)
accepts = st.sampled_from(["", "application/json", "application/jsonlines", "*/*", "text/html", "a, */*", ";;,"])
lengths = st.sampled_from(["exact", "missing", "negative", "text", "short"])


@FUZZ
@given(request_bodies, content_types, accepts, lengths, st.sampled_from(["/invocations", "/endpoints/x/invocations"]))
def test_the_server_answers_every_request(
    server: InferenceServer, body: bytes, content_type: str, accept: str, length: str, path: str
) -> None:
    header = {
        "exact": f"Content-Length: {len(body)}\r\n",
        "missing": "",
        "negative": "Content-Length: -5\r\n",
        "text": "Content-Length: abc\r\n",
        "short": f"Content-Length: {len(body) + 10}\r\n",
    }[length]
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nAccept: {accept}\r\n{header}\r\n"
    ).encode() + body
    answer = _exchange(server, request)
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    status = int(answer.split(b" ", 2)[1])
    assert status in ANSWERED, answer[:300]


addresses = st.one_of(
    st.none(),
    st.sampled_from(["-", "", "10.0.0.1", "52.94.1.2", "2001:db8::1", "::", "999.1.1.1", "1.2.3", "fe80::1%eth0"]),
    st.ip_addresses().map(str),
    st.text(alphabet=string.printable, max_size=15),
)
ports = st.one_of(st.none(), st.integers(-1, 70000))
identifiers = st.one_of(st.none(), st.sampled_from(["-", "", "i-0abc", "eni-123"]), st.text(max_size=8))


def _flow(version: int) -> st.SearchStrategy[dict[str, Any]]:
    account = (
        {"account_uid": st.one_of(st.none(), st.just("012345678901"))}
        if version == 1
        else {"account": st.fixed_dictionaries({"uid": st.one_of(st.none(), st.just("012345678901"))})}
    )
    endpoint = st.fixed_dictionaries(
        {"ip": addresses, "port": ports, "instance_uid": identifiers, "interface_uid": identifiers}
    )
    return st.fixed_dictionaries(
        {
            "time": st.integers(0, 2**41),
            "cloud": st.fixed_dictionaries({"region": st.just("us-east-1"), **account}),
            "src_endpoint": endpoint,
            "dst_endpoint": endpoint,
            "connection_info": st.fixed_dictionaries(
                {
                    "direction": st.sampled_from([None, "Inbound", "Outbound", "Unknown", ""]),
                    "tcp_flags": st.one_of(st.none(), st.integers(0, 511)),
                    "protocol_num": st.one_of(st.none(), st.sampled_from([6, 17, 1])),
                }
            ),
        },
        optional={
            "disposition": st.sampled_from(["Allowed", "Blocked", None]),
            "action": st.sampled_from(["Allowed", "Denied", None]),
        },
    )


@FUZZ
@given(st.sampled_from(sorted(SOURCE_VERSIONS)), st.data())
def test_pair_extraction_counts_every_candidate(version: int, data: st.DataObject) -> None:
    rows = data.draw(st.lists(_flow(version), max_size=25))
    schema = arrow_schema(Source.VPC_FLOW, version)
    table = pa.Table.from_pylist([_fit(row, schema) for row in rows], schema=schema)
    for mapping_name in ("role", "peer", "blog"):
        for algorithm in Algorithm:
            result = extract(table, Source.VPC_FLOW, version, mapping(mapping_name).rule(Source.VPC_FLOW), algorithm)
            assert result.rows == len(rows)
            assert result.pairs.num_rows + sum(result.drops.values()) == result.candidates


def _fit(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """Only the fields the declared schema has (v1 has disposition, v2 action)."""
    return {k: v for k, v in row.items() if k in schema.names}
