"""The monitoring handler on realistic objects: row groups, repeated pairs, endpoint batches, sources, failures."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.server
import io
import json
import socket
import sqlite3
import threading
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import botocore.endpoint
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli.monitor_cmd import sqs_event
from pipeline.samplelake.arrowbuild import assemble, constant
from pipeline.samplelake.records import WorldArrays, flow_table
from pipeline.samplelake.traffic import Connections
from scripts.ipinsights.scoring import Scorer, Scores
from scripts.ipinsights.serve import start_server
from scripts.monitor import endpoint_client
from scripts.monitor import handler as monitor
from scripts.ocsf.layout import object_key
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, arrow_schema
from tests import test_monitor as base
from tests.test_monitor import ENDPOINT, LAKE_BUCKET, REAL_KEY, deploy, manifest, new_container

# the fixtures of tests/test_monitor.py: a tiny trained model, and moto's AWS with the model served on 127.0.0.1
model_dir = base.model_dir
environment = base.environment

Pair = tuple[str, str]
ACCOUNT = "123456789012"
REGION = "us-east-1"
DAY = "20261128"
DAY_START_MS = int(dt.datetime(2026, 11, 28, tzinfo=dt.UTC).timestamp() * 1000)
HOUR_MS = 3_600_000
TCP, UDP = 6, 17


@dataclass(frozen=True)
class Workload:
    """A local workload: an instance's ENI, or an ENI with no instance (Security Lake writes "-" for it)."""

    interface: str
    ip: str
    instance: str | None = None


@dataclass(frozen=True)
class Flow:
    """One connection a workload saw: the generator writes a request record and, unless rejected, a reply."""

    workload: int
    remote: str
    local_port: int
    remote_port: int
    opened_by_workload: bool = True
    rejected: bool = False
    protocol: int = TCP
    time_ms: int = DAY_START_MS


def flow_object(version: int, account: str, workloads: Sequence[Workload], flows: Sequence[Flow]) -> pa.Table:
    """VPC flow rows of `flows`, written by the sample-lake generator for source version 1 or 2."""
    remotes = sorted({f.remote for f in flows})
    count = len(workloads)
    string = pa.string()
    arrays = WorldArrays(
        ip_text=pa.array(remotes, string),
        ip_is_v6=np.array([":" in r for r in remotes]),
        local_ip=pa.array([w.ip for w in workloads], string),
        interface_uid=pa.array([w.interface for w in workloads], string),
        instance_uid=pa.array([w.instance or "-" for w in workloads], string),
        vpc_uid=constant("vpc-0a1b2c3d4e5f60789", string, count),
        subnet_uid=constant("subnet-0a1b2c3d4e5f60789", string, count),
        account=constant(account, string, count),
        region=constant(REGION, string, count),
        zone=constant("use1-az1", string, count),
        svc_name=pa.array(["-"], string),
        has_instance=np.array([w.instance is not None for w in workloads]),
        service_name=pa.array([], string),
        service_cname=pa.array([], string),
        service_v4=[],
        service_v4_first_day=[],
        service_v6=[],
    )
    size = len(flows)
    connections = Connections(
        time_ms=np.array([f.time_ms for f in flows], np.int64),
        workload=np.array([f.workload for f in flows], np.int32),
        remote_ip=np.array([remotes.index(f.remote) for f in flows], np.int32),
        local_port=np.array([f.local_port for f in flows], np.int32),
        remote_port=np.array([f.remote_port for f in flows], np.int32),
        initiator_local=np.array([f.opened_by_workload for f in flows]),
        protocol=np.array([f.protocol for f in flows], np.int32),
        packets=np.full(size, 10, np.int64),
        bytes=np.full(size, 1500, np.int64),
        rejected=np.array([f.rejected for f in flows]),
        service=np.full(size, -1, np.int32),
    )
    return flow_table(arrays, connections, version, np.random.default_rng(7), 0.0)


@dataclass(frozen=True)
class Query:
    """One Route 53 resolver query: the querying instance (None: the resolver's own endpoint) and its answers (type,
    rdata); None: NXDOMAIN, no answer section."""

    instance: str | None
    hostname: str
    answers: list[tuple[str, str]] | None
    time_ms: int = DAY_START_MS


def route53_object(version: int, account: str, queries: Sequence[Query]) -> pa.Table:
    """Route 53 rows of `queries` in the source version's schema (the generator's assembly of nested columns)."""
    schema = arrow_schema(Source.ROUTE53, version)
    size = len(queries)
    string = pa.string()
    answers = [
        None if q.answers is None else [{"type": t, "rdata": r, "class": "IN"} for t, r in q.answers] for q in queries
    ]
    columns = {
        "metadata.version": constant(SOURCE_VERSIONS[version].ocsf_version, string, size),
        "metadata.product.name": constant("Route 53", string, size),
        "class_uid": constant(4003, pa.int32(), size),
        "time": pa.array([q.time_ms for q in queries], pa.int64()),
        "cloud.region": constant(REGION, string, size),
        "cloud.account_uid" if version == 1 else "cloud.account.uid": constant(account, string, size),
        "src_endpoint.instance_uid": pa.array([q.instance for q in queries], string),
        "src_endpoint.ip": constant("10.0.0.53", string, size),
        "query.hostname": pa.array([q.hostname for q in queries], string),
        "answers": pa.array(answers, schema.field("answers").type),
        "connection_info.direction": constant("Unknown", string, size),
    }
    return assemble(schema, columns, size)


def upload(s3: Any, table: pa.Table, source: Source, version: int, account: str, name: str, group_rows: int = 0) -> str:
    """Put `table` in the lake where Security Lake would; its key."""
    key = object_key(source, version, REGION, account, DAY, f"{name}.gz.parquet")
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="gzip", row_group_size=group_rows or None)
    s3.put_object(Bucket=LAKE_BUCKET, Key=key, Body=buffer.getvalue())
    return key


def _findings(s3: Any) -> list[dict[str, Any]]:
    """Every finding written, read in memory (tests/test_monitor.py's helper goes through fixed /tmp names, which
    its own tests, run beside these, use too)."""
    rows: list[dict[str, Any]] = []
    for item in s3.list_objects_v2(Bucket="findings").get("Contents", []):
        body = s3.get_object(Bucket="findings", Key=item["Key"])["Body"].read()
        rows += [{**row, "unmapped": dict(row["unmapped"])} for row in pq.read_table(io.BytesIO(body)).to_pylist()]
    return rows


def found(s3: Any) -> list[tuple[str, str, str]]:
    """(source object, entity, ip) of every finding written, sorted."""
    return sorted(
        (f["unmapped"]["source_object"], f["observables"][0]["value"], f["observables"][1]["value"])
        for f in _findings(s3)
    )


def metrics(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "seclake.metrics"]


@dataclass
class Served:
    """What the local endpoint was asked and answered, one entry per invocation."""

    url: str
    requests: list[list[Pair]] = field(default_factory=list)
    answers: list[list[float]] = field(default_factory=list)

    def scores(self) -> dict[Pair, float]:
        """Every pair the endpoint scored and the dot_product it answered; a pair asked twice fails."""
        asked = [p for request in self.requests for p in request]
        assert len(asked) == len(set(asked)), "a pair was scored more than once"
        return dict(zip(asked, [s for answer in self.answers for s in answer], strict=True))


@pytest.fixture
def served(environment: Any, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The model served on 127.0.0.1 as the endpoint, with every request it scores recorded."""
    server, _ = start_server(model_dir, "127.0.0.1", 0, ENDPOINT)
    record = Served(server.url)
    real = server.scorer.score

    lock = threading.Lock()  # requests arrive on several connections at once: each is recorded with its answer

    def score(entities: Sequence[str], ips: Sequence[str], verbose: bool = False) -> Scores:
        scores = real(entities, ips, verbose)
        with lock:
            record.requests.append(list(zip(entities, ips, strict=True)))
            record.answers.append([float(v) for v in scores.dot_product.tolist()])
        return scores

    monkeypatch.setattr(server.scorer, "score", score)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
    new_container()
    yield record
    server.shutdown()
    server.server_close()


WORKLOADS = [
    Workload("eni-0a1b2c3d4e5f60001", "10.0.0.11", "i-0a1b2c3d4e5f60001"),
    Workload("eni-0a1b2c3d4e5f60002", "10.0.0.12", "i-0a1b2c3d4e5f60002"),
    Workload("eni-0a1b2c3d4e5f60003", "10.0.0.13"),  # an ENI without an instance: the ENI is the entity
]
# Each hour's connections and the pair each gives (None: rejected, no pair), roles as the `role` mapping names them
HOURLY: list[tuple[Flow, Pair | None]] = [
    (Flow(0, "52.94.10.1", 41000, 443), (f"{ACCOUNT}/i-0a1b2c3d4e5f60001#client:web", "52.94.10.1")),
    (Flow(0, "52.94.10.2", 41001, 443), (f"{ACCOUNT}/i-0a1b2c3d4e5f60001#client:web", "52.94.10.2")),
    (Flow(0, "10.0.5.20", 41002, 5432), (f"{ACCOUNT}/i-0a1b2c3d4e5f60001#client:db", "10.0.5.20")),
    (Flow(1, "52.94.10.1", 41003, 443), (f"{ACCOUNT}/i-0a1b2c3d4e5f60002#client:web", "52.94.10.1")),
    (
        Flow(1, "198.51.100.23", 22, 50000, opened_by_workload=False),
        (f"{ACCOUNT}/i-0a1b2c3d4e5f60002#server:admin", "198.51.100.23"),
    ),
    (Flow(1, "10.0.5.21", 41004, 6379), (f"{ACCOUNT}/i-0a1b2c3d4e5f60002#client:db", "10.0.5.21")),
    (
        Flow(2, "10.0.0.11", 8080, 52000, opened_by_workload=False),
        (f"{ACCOUNT}/eni-0a1b2c3d4e5f60003#server:web", "10.0.0.11"),
    ),
    (Flow(2, "52.94.10.3", 41005, 123, protocol=UDP), (f"{ACCOUNT}/eni-0a1b2c3d4e5f60003#client:ntp", "52.94.10.3")),
    (Flow(2, "203.0.113.50", 3389, 55000, opened_by_workload=False, rejected=True), None),
]
HOURS = 12
GROUP_ROWS = 25


@pytest.mark.parametrize("batch_rows", [monitor.BATCH_ROWS, GROUP_ROWS], ids=["one-batch", "batch-per-row-group"])
def test_a_pair_repeated_across_row_groups_is_scored_once_and_found_once(
    environment: Any,
    served: Served,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    batch_rows: int,
) -> None:
    """Twelve hours of the same connections, written in row groups of 25: every distinct pair goes to the endpoint
    once, in one request; each pair under the threshold is one finding, first seen at its earliest row (in a later
    row group: the hours are written newest first). Read as the handler does (one batch of 65,536 rows) and one
    batch per row group (what an object over 65,536 rows is)."""
    s3 = environment
    monkeypatch.setattr(monitor, "BATCH_ROWS", batch_rows)
    flows = [
        replace(flow, time_ms=DAY_START_MS + (HOURS - hour) * HOUR_MS + index * 1000)
        for hour in range(HOURS)
        for index, (flow, _) in enumerate(HOURLY)
    ]
    table = flow_object(2, ACCOUNT, WORKLOADS, flows)
    key = upload(s3, table, Source.VPC_FLOW, 2, ACCOUNT, "a" * 32, group_rows=GROUP_ROWS)
    assert pq.ParquetFile(io.BytesIO(s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read())).num_row_groups >= 3
    pairs = sorted(p for _, p in HOURLY if p is not None)
    first_seen = {p: DAY_START_MS + HOUR_MS + index * 1000 for index, (_, p) in enumerate(HOURLY) if p is not None}
    local = Scorer.from_model_dir(model_dir).score([e for e, _ in pairs], [ip for _, ip in pairs]).dot_product
    middle = np.sort(local)[len(pairs) // 2 - 1 : len(pairs) // 2 + 1]
    threshold = float(middle.mean())  # between two scores: half the pairs are under it
    deploy("m1", manifest(threshold=threshold))
    with caplog.at_level("INFO", logger="seclake.metrics"):
        assert monitor.handler(sqs_event([(LAKE_BUCKET, key)]), None) == {"batchItemFailures": []}
    assert served.requests == [pairs]  # one invocation, each distinct pair once, in order
    flagged = sorted(p for p, s in served.scores().items() if s < threshold)
    assert len(flagged) == len(pairs) // 2
    findings = _findings(s3)
    assert sorted((f["observables"][0]["value"], f["observables"][1]["value"]) for f in findings) == flagged
    for finding in findings:
        pair = (finding["observables"][0]["value"], finding["observables"][1]["value"])
        assert finding["time"] == first_seen[pair]
        assert float(finding["unmapped"]["dot_product"]) == served.scores()[pair]
    [line] = metrics(caplog)
    rejected = HOURS * sum(1 for _, p in HOURLY if p is None)
    assert (line["Rows"], line["Pairs"], line["Findings"]) == (table.num_rows, len(pairs), len(flagged))
    assert table.num_rows == 2 * HOURS * len(pairs) + rejected and line["Dropped_rejected"] == rejected


def test_an_object_whose_pairs_exceed_the_payload_limit_is_scored_in_several_requests_in_line(
    environment: Any, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 pairs of equal length under a payload limit of 7 of them: 15 invocations (14 of 7, then 2), concurrent,
    that together carry the pairs in order, and every finding carries the score the endpoint answered for its own
    pair."""
    s3 = environment
    workloads = [Workload(f"eni-0a1b2c3d4e5f6000{n}", f"10.0.0.{10 + n}", f"i-0a1b2c3d4e5f6000{n}") for n in range(4)]
    remotes = [f"10.0.1.{100 + k}" for k in range(25)]
    flows = [Flow(w, ip, 40000 + k, 443) for w in range(len(workloads)) for k, ip in enumerate(remotes)]
    key = upload(s3, flow_object(2, ACCOUNT, workloads, flows), Source.VPC_FLOW, 2, ACCOUNT, "b" * 32)
    pairs = sorted((f"{ACCOUNT}/{w.instance}#client:web", ip) for w in workloads for ip in remotes)
    line = len(f"{pairs[0][0]},{pairs[0][1]}\n")
    assert {len(f"{e},{ip}\n") for e, ip in pairs} == {line}
    # score() calls batches() with its default limit, bound when the module loaded: patching PAYLOAD_LIMIT_BYTES
    # would change nothing
    monkeypatch.setattr(endpoint_client, "batches", functools.partial(endpoint_client.batches, limit=7 * line))
    assert monitor.handler(sqs_event([(LAKE_BUCKET, key)]), None) == {"batchItemFailures": []}
    # several requests are in flight at once (SECLAKE_SCORING_CONCURRENCY), so they arrive in any order: each
    # carries a run of the pairs in line, and the runs make up the pairs
    requests = sorted(served.requests, key=lambda request: request[0])
    assert [len(r) for r in requests] == [7] * 14 + [2]
    assert [p for request in requests for p in request] == pairs
    answered = served.scores()
    assert len(set(answered.values())) == len(pairs)  # scores differ pair by pair: a shifted score would show
    written = {(f["observables"][0]["value"], f["observables"][1]["value"]): f for f in _findings(s3)}
    assert sorted(written) == pairs  # threshold 1000: every pair is a finding
    assert {p: float(f["unmapped"]["dot_product"]) for p, f in written.items()} == answered


def test_every_source_and_version_in_one_batch_gives_the_pairs_of_its_rows(
    environment: Any, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A real version-1 flow object, generated version-1 and version-2 flow objects and version-1 and version-2
    Route 53 objects, one SQS message each: none fails, and each object's findings are exactly its rows' pairs."""
    s3 = environment
    v1 = [
        Workload("eni-01111111111111111", "10.1.0.5", "i-01111111111111111"),
        Workload("eni-0111111111111111a", "10.1.0.6"),
    ]
    v1_flows = [
        Flow(0, "10.1.9.9", 41000, 443),
        Flow(1, "198.51.100.7", 22, 50123, opened_by_workload=False),
        Flow(0, "203.0.113.5", 41001, 3389, rejected=True),
    ]
    v2 = [Workload("eni-02222222222222222", "10.2.0.5", "i-02222222222222222")]
    v2_flows = [
        Flow(0, "10.2.7.7", 40000, 5432),
        Flow(0, "52.94.20.1", 40001, 123, protocol=UDP),
        Flow(0, "203.0.113.9", 443, 51000, opened_by_workload=False, rejected=True),
        Flow(0, "2001:db8::7", 40002, 443),  # the built-in algorithm takes IPv4 only
    ]
    queries = [
        Query("i-03333333333333333", "example.com.", [("CNAME", "example.edgekey.net."), ("A", "93.184.216.34")]),
        Query("i-03333333333333333", "s3.amazonaws.com.", [("A", "52.217.1.1"), ("A", "52.217.1.2")]),
        Query("i-03333333333333333", "ipv6.example.com.", [("AAAA", "2606:2800:220:1::1")]),
        Query("i-03333333333333333", "typo.corp.internal.", None),  # NXDOMAIN
        Query(None, "forwarded.example.com.", [("A", "192.0.2.1")]),  # from the resolver endpoint: no instance
    ]
    keys = {
        "real-v1-flow": REAL_KEY,
        "v1-flow": upload(
            s3, flow_object(1, "111111111111", v1, v1_flows), Source.VPC_FLOW, 1, "111111111111", "1" * 32
        ),
        "v2-flow": upload(
            s3, flow_object(2, "222222222222", v2, v2_flows), Source.VPC_FLOW, 2, "222222222222", "2" * 32
        ),
        "v1-route53": upload(
            s3, route53_object(1, "333333333333", queries), Source.ROUTE53, 1, "333333333333", "3" * 32
        ),
        "v2-route53": upload(
            s3, route53_object(2, "444444444444", queries), Source.ROUTE53, 2, "444444444444", "4" * 32
        ),
    }
    resolved = ["93.184.216.34", "52.217.1.1", "52.217.1.2"]
    expected = {
        "real-v1-flow": [("123456789012/i-000000000000000000#client:other", "172.31.2.52")],
        "v1-flow": [
            ("111111111111/eni-0111111111111111a#server:admin", "198.51.100.7"),
            ("111111111111/i-01111111111111111#client:web", "10.1.9.9"),
        ],
        "v2-flow": [
            ("222222222222/i-02222222222222222#client:db", "10.2.7.7"),
            ("222222222222/i-02222222222222222#client:ntp", "52.94.20.1"),
        ],
        "v1-route53": [("333333333333/i-03333333333333333#client:resolved", ip) for ip in resolved],
        "v2-route53": [("444444444444/i-03333333333333333#client:resolved", ip) for ip in resolved],
    }
    with caplog.at_level("INFO", logger="seclake.metrics"):
        response = monitor.handler(sqs_event([(LAKE_BUCKET, key) for key in keys.values()]), None)
    assert response == {"batchItemFailures": []}
    assert found(s3) == sorted(
        (f"s3://{LAKE_BUCKET}/{keys[name]}", e, ip) for name, ps in expected.items() for e, ip in ps
    )
    assert [(line["object"], line["Pairs"]) for line in metrics(caplog)] == [
        (keys[name], len(expected[name])) for name in keys
    ]
    assert sorted(served.scores()) == sorted(p for ps in expected.values() for p in ps)


def _claims(state: Path) -> list[tuple[str, str]]:
    """(finding uid, owner object) of every claim in the SQLite state table."""
    with contextlib.closing(sqlite3.connect(state)) as db:
        return sorted(db.execute("SELECT uid, owner FROM findings").fetchall())


@contextlib.contextmanager
def _failing_endpoint() -> Iterator[tuple[str, list[int]]]:
    """A SageMaker-like endpoint that answers every invocation HTTP 500 InternalFailure; its URL and hit count."""
    hits: list[int] = []

    class Failing(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hits.append(1)
            body = json.dumps({"message": "An internal error occurred"}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-ErrorType", "InternalFailure")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_down_or_failing_fails_the_message_and_claims_nothing_until_it_recovers(
    environment: Any, served: Served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nothing listening, then HTTP 500 InternalFailure on every try: the message is returned for retry, no finding
    is written and the state table holds no claim; redelivered once the endpoint serves again, the object is scored
    and its findings are written and claimed by it. Retries back off without really sleeping (the test's sleeps)."""
    s3 = environment
    state = tmp_path / "state.sqlite"
    monkeypatch.setenv("SECLAKE_STATE_DB", str(state))
    botocore_waits: list[float] = []
    handler_waits: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=botocore_waits.append))
    # the handler calls score() with its default sleep, time.sleep as bound when the module loaded
    monkeypatch.setattr(monitor, "score", functools.partial(endpoint_client.score, sleep=handler_waits.append))
    flows = [Flow(0, "52.94.10.1", 41000, 443), Flow(1, "10.0.5.21", 41004, 6379), Flow(0, "52.94.10.1", 41009, 443)]
    key = upload(s3, flow_object(2, ACCOUNT, WORKLOADS, flows), Source.VPC_FLOW, 2, ACCOUNT, "c" * 32)
    event = sqs_event([(LAKE_BUCKET, key)], start=3)
    failed = {"batchItemFailures": [{"itemIdentifier": "local-00000003"}]}

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{closed.getsockname()[1]}")
        new_container()
        assert monitor.handler(event, None) == failed
    finally:
        closed.close()
    assert _findings(s3) == [] and _claims(state) == []

    with _failing_endpoint() as (url, hits):
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
        new_container()
        botocore_waits.clear()
        assert monitor.handler(event, None) == failed
    assert len(handler_waits) == endpoint_client.MAX_ATTEMPTS - 1  # InternalFailure is retried, then given up
    assert len(hits) == endpoint_client.MAX_ATTEMPTS + len(botocore_waits)  # each try and each of botocore's retries
    assert _findings(s3) == [] and _claims(state) == [] and served.requests == []

    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", served.url)
    new_container()
    assert monitor.handler(event, None) == {"batchItemFailures": []}
    findings = _findings(s3)
    assert sorted((f["observables"][0]["value"], f["observables"][1]["value"]) for f in findings) == [
        (f"{ACCOUNT}/i-0a1b2c3d4e5f60001#client:web", "52.94.10.1"),
        (f"{ACCOUNT}/i-0a1b2c3d4e5f60002#client:db", "10.0.5.21"),
    ]
    assert _claims(state) == sorted((f["finding_info"]["uid"], f"s3://{LAKE_BUCKET}/{key}") for f in findings)
