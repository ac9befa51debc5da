"""Random and adversarial input, for a bounded number of examples: the server always answers (chunked bodies too),
parse_batch never raises and accounts for every record, pair extraction never raises and counts every candidate it
drops, the handler places or counts every row's time, and every config value from the environment loads or is named."""

from __future__ import annotations

import json
import socket
import string
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.config import ENV_NESTING, ENV_PREFIX, ConfigError, load_config
from scripts.handoff.artifacts import ArtifactLayout, endpoint_config_name
from scripts.handoff.manifest import RunManifest
from scripts.ipinsights.serve import InferenceServer, start_server
from scripts.monitor.events import ObjectRef, parse_batch
from scripts.monitor.handler import process_object
from scripts.monitor.report import UNPLACEABLE_TIME, placeable
from scripts.monitor.resources import MonitorResources, folder_resources
from scripts.monitor.settings import Settings
from scripts.ocsf.layout import object_key
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, arrow_schema
from scripts.pairs.arrow_engine import extract
from scripts.pairs.mapping import Algorithm, mapping
from tests.conftest import FIXTURES, train_tiny_model

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


hex_sizes = st.integers(0, 2**20).map(lambda n: f"{n:x}")
size_lines = st.one_of(
    hex_sizes,
    st.sampled_from(["-1", "+2", "0x3", " 5", "ffffffffffffffff", "1" * 40, "", "5;ext=1", "5 ; x", "G"]),
    st.text(alphabet=string.printable, max_size=12),
)
chunks = st.lists(st.tuples(st.one_of(st.just("exact"), size_lines), st.binary(max_size=64)), max_size=5)


@FUZZ
@given(chunks, st.sampled_from(["terminated", "with trailers", "unterminated"]))
@example([("5 ; name=value", b"x,1.2"), ("ffffffff", b"")], "terminated")  # an extension after whitespace: valid
@example([("exact", b"x,1.2.3.4")], "unterminated")
def test_the_server_answers_every_chunked_body(
    server: InferenceServer, parts: list[tuple[str, bytes]], ending: str
) -> None:
    """Chunk sizes that are hexadecimal, negative, signed, huge, with extensions or none at all, data shorter or
    longer than announced, a missing last chunk: always an answer, never a read to the end of the stream."""
    body = b"".join(
        (f"{len(data):x}" if size == "exact" else size).encode(errors="replace") + b"\r\n" + data + b"\r\n"
        for size, data in parts
    )
    body += {"terminated": b"0\r\n\r\n", "with trailers": b"0\r\nX-T: 1\r\n\r\n", "unterminated": b""}[ending]
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + body
    )
    answer = _exchange(server, request)
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    status = int(answer.split(b" ", 2)[1])
    assert status in ANSWERED, answer[:300]
    expected = _chunked_verdict(parts, ending)
    assert expected is None or status in expected, (expected, answer[:300])


def _chunked_verdict(parts: list[tuple[str, bytes]], ending: str) -> set[int] | None:
    """What the first wrong chunk must get (RFC 9112: a chunk size is hex digits, then an optional extension): 400
    for a size that is not, 413 past the payload limit, 400 for a body that ends without its last chunk; None where
    the body parses and the answer depends on its rows (or an announced size leaves the stream out of step)."""
    total = 0
    for size, data in parts:
        line = f"{len(data):x}" if size == "exact" else size
        if "\r" in line or "\n" in line:
            return None
        digits = line.split(";")[0].strip()
        if not digits or any(c not in string.hexdigits for c in digits):
            return {400}
        if len(digits) > 16:
            return {400, 413}
        total += int(digits, 16)
        if total > 6_000_000:
            return {413}
        if int(digits, 16) == 0 or int(digits, 16) != len(data):
            return None
    return {400} if ending == "unterminated" else None


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


MONITORED_DAY = "20220412"
ENDPOINT = "fuzz"


@pytest.fixture(scope="module")
def monitored(server: InferenceServer, tmp_path_factory: pytest.TempPathFactory) -> MonitorResources:
    """The monitor's logic over a folder laid out as S3, scoring on the fuzz server, flagging every pair."""
    root = tmp_path_factory.mktemp("fuzz-lake")
    artifacts = "s3://artifacts/a"
    manifest = root / ArtifactLayout(artifacts).manifest("run").removeprefix("s3://")
    manifest.parent.mkdir(parents=True)
    manifest.write_text(RunManifest(threshold=1e9, detector_uri=None, mapping="role", algorithm="builtin").dumps())
    settings = Settings(endpoint=ENDPOINT, artifact_uri=artifacts)
    return folder_resources(settings, root, server.url, lambda: endpoint_config_name(ENDPOINT, "run"))


extreme_times = st.sampled_from([0, -1, -(2**63), 2**63 - 1, 253_402_300_800_000, 253_402_300_799_999])
row_times = st.one_of(
    st.none(), extreme_times, st.integers(-(2**63), 2**63 - 1), st.integers(1_649_700_000_000, 1_649_800_000_000)
)


@FUZZ
@given(st.lists(row_times, min_size=1, max_size=8))
def test_the_handler_places_or_counts_every_rows_time(monitored: MonitorResources, times: list[int | None]) -> None:
    """One pair on many rows whose times are null, INT64's extremes, before 1970, after 9999 or ordinary: the object
    is judged, every row it cannot place is counted, and the finding lives on the object's day with the earliest
    placeable time."""
    real = pq.read_table(FIXTURES / "security-lake-v1" / "VPC_FLOW" / "example1.gz.parquet").slice(0, 1)
    table = pa.concat_tables([real] * len(times))
    table = table.set_column(table.schema.get_field_index("time"), "time", pa.array(times, pa.int64()))
    key = object_key(Source.VPC_FLOW, 1, "us-east-1", "123456789012", MONITORED_DAY, "f" * 32 + ".gz.parquet")
    assert monitored.objects.root is not None
    path = monitored.objects.root / "lake" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    report = process_object(ObjectRef("lake", key), monitored, monitored.deployment.current())
    placed = [t for t in times if t is not None and placeable(t)]
    assert report.rows == len(times)
    assert report.drops.get(UNPLACEABLE_TIME, 0) == len(times) - len(placed)
    assert report.pairs == (1 if placed else 0)
    expected = [(MONITORED_DAY, min(placed))] if placed else []
    assert [(f.event_day, f.event_time_ms) for f in report.findings] == expected


def _config_keys() -> list[tuple[str, ...]]:
    """Every leaf key of the typed configuration, as the path an environment variable names."""

    def leaves(value: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        if isinstance(value, dict):
            return [leaf for key, child in value.items() for leaf in leaves(child, (*path, key))]
        return [path]

    return [path for path in leaves(load_config(environ={}).model_dump(), ()) if len(path) == 2]


config_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["[1", "{a: 1", "null", "~", "-1", "0", "1e400", "nan", "true", "111122223333", "000123456701"]),
    st.sampled_from(["１２３４５６７８９０１２", "us-east1", "s3://b/p'x", "'; DROP TABLE x; --", "[/x]", "a: b: c"]),
)


@FUZZ
@given(st.sampled_from(_config_keys()), config_values)
@example(("pipeline", "spark_instance_count"), "[1")  # broken YAML for a number
def test_every_config_value_from_the_environment_loads_or_is_named(key: tuple[str, ...], value: str) -> None:
    """Any text in any SECLAKE_<SECTION>__<KEY>: the configuration loads, or a ConfigError names the variable."""
    variable = ENV_PREFIX + ENV_NESTING.join(part.upper() for part in key)
    try:
        load_config(environ={variable: value})
    except ConfigError as error:
        assert variable in str(error), str(error)
