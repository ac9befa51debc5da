"""The monitoring Lambda: real SQS bodies, findings written once, partial batch failures, the real fixtures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from pipeline.cli.monitor_cmd import sqs_event
from scripts.detect.artifact import detector_bytes
from scripts.detect.detector import Detector
from scripts.detect.history import History
from scripts.detect.memory import Memory, Pairs
from scripts.detect.names import KnownNames
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.detect.shards import write_shards
from scripts.handoff.artifacts import DETECTOR_INDEX_FILE, ArtifactLayout, endpoint_config_name
from scripts.handoff.manifest import RunManifest
from scripts.ipinsights.serve import InferenceServer, start_server
from scripts.monitor import handler as monitor
from scripts.monitor.endpoint_client import MAX_ATTEMPTS, backoff_seconds, batches, score
from scripts.monitor.events import ObjectRef, parse_batch
from scripts.monitor.findings import Finding, asff
from scripts.monitor.flagging import FleetContext, Knowledge, findings_of
from scripts.monitor.report import ObjectReport, metrics_line
from scripts.monitor.settings import MonitorConfigError, Settings
from tests.cfn import TEMPLATE, load_template, role_statements, roles
from tests.conftest import FIXTURES, train_tiny_model

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "blog-fixtures"
LAKE_BUCKET = "aws-security-data-lake-us-east-1-" + "a" * 30
REAL_KEY = "aws/VPC_FLOW/1.0/region=us-east-1/accountId=123456789012/eventDay=20220412/" + "b" * 32 + ".gz.parquet"


def test_the_published_fixtures_parse() -> None:
    notification = json.loads((FIXTURES / "blog-fixtures" / "test-securitylake-sqs-message.json").read_text())
    messages = parse_batch(notification)
    assert [m.objects for m in messages] == [
        [
            ObjectRef(
                "aws-security-data-lake-us-east-1-iiwhzfdilkd1tp1kcbh8mmk4shsvyy",
                "aws/VPC_FLOW/1.0/region=us-east-1/accountId=645411899653/eventDay=20230726/"
                "02c4c95860435b9afa86fb93f7fa776a.gz.parquet",
            )
        ]
    ]
    generic = json.loads((FIXTURES / "blog-fixtures" / "test-lambda-message.json").read_text())
    [message] = parse_batch(generic)
    assert message.message_id == "19dd0b57-b21e-4ac1-bd88-01bbb068cb78"
    assert message.error is not None and "an object with keys ['Message'], not an S3 notification" in message.error


def test_string_bodies_and_eventbridge_events() -> None:
    event = {
        "Records": [
            {
                "messageId": "a",
                "body": json.dumps({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k%3D1+x"}}}]}),
            },
            {
                "messageId": "b",
                "body": json.dumps(
                    {"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {"key": "k2"}}}
                ),
            },
            {"messageId": "c", "body": "{not json"},
        ]
    }
    a, b, c = parse_batch(event)
    assert a.objects == [ObjectRef("b", "k=1 x")] and b.objects == [ObjectRef("b", "k2")]
    assert c.error is not None and c.error.startswith("body is not JSON")


def test_hostile_and_odd_records_never_fail_the_batch() -> None:
    """One record nested 1,000 deep, records that are not objects, a string Records: each is its own outcome."""
    deep = "[" * 1000 + "]" * 1000
    event = {
        "Records": [
            {"messageId": "deep", "body": deep},
            "a string record",
            {"messageId": "test", "body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})},
            {"messageId": "empty", "body": json.dumps({"Records": []})},
            {"messageId": "shape", "body": json.dumps({"hello": 1})},
            {"messageId": "list", "body": "[1, 2]"},
            {"messageId": "ok", "body": json.dumps({"detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}})},
        ]
    }
    deep_message, string_record, test_event, empty, shape, listed, ok = parse_batch(event)
    assert deep_message.error == "body is JSON nested too deeply to be a notification"
    assert string_record.error == "record is a JSON str, not an SQS record"
    assert test_event.ignored is not None and test_event.error is None and "test event" in test_event.ignored
    assert empty.ignored == "notification with no records"
    assert shape.error is not None and "keys ['hello'], not an S3 notification" in shape.error
    assert listed.error is not None and "a JSON list" in listed.error
    assert ok.objects == [ObjectRef("b", "k")]
    assert parse_batch({"Records": "x"}) == [] and parse_batch([]) == []  # not an SQS batch: nothing to answer


def test_entities_with_commas_and_quotes_reach_the_endpoint_intact() -> None:
    from scripts.ipinsights.scoring import parse_request

    pairs = [("acct/i-1#client:web", "10.0.0.1"), ("a,b", "10.0.0.2"), ('say "hi"', "10.0.0.3"), ("x\ny", "::1")]
    [body] = batches(pairs)
    entities, ips = parse_request(body, "text/csv")
    assert list(zip(entities, ips, strict=True)) == pairs


def test_batches_stay_under_the_payload_limit() -> None:
    pairs = [(f"123456789012/i-{n:017x}", f"10.0.{n // 256 % 256}.{n % 256}") for n in range(3000)]
    bodies = batches(pairs, limit=10_000)
    assert all(len(b) <= 10_000 for b in bodies) and sum(b.count(b"\n") for b in bodies) == 3000


def test_batches_hold_at_most_the_rows_per_request() -> None:
    pairs = [(f"e{n}", "10.0.0.1") for n in range(7)]
    assert [body.count(b"\n") for body in batches(pairs, rows=3)] == [3, 3, 1]


class _Concurrent:
    """An endpoint that takes 50 ms per request, answers each row with its number, and counts requests in flight."""

    def __init__(self) -> None:
        import threading

        self.lock, self.in_flight, self.most, self.calls = threading.Lock(), 0, 0, 0

    def invoke_endpoint(self, **call: Any) -> dict[str, Any]:
        import time

        with self.lock:
            self.in_flight += 1
            self.most, self.calls = max(self.most, self.in_flight), self.calls + 1
        time.sleep(0.05)
        with self.lock:
            self.in_flight -= 1
        rows = call["Body"].decode().splitlines()
        answer = "".join(json.dumps({"dot_product": float(row.split(",")[0][1:])}) + "\n" for row in rows)
        return {"Body": io.BytesIO(answer.encode())}


@pytest.mark.parametrize(("concurrency", "most"), [(1, 1), (3, 3), (64, 4)])
def test_an_objects_requests_are_in_flight_together_and_its_scores_stay_in_order(concurrency: int, most: int) -> None:
    """35,000 pairs are 4 requests of at most 10,000 rows: up to `concurrency` of them at once, never more than
    there are, the scores in the pairs' order."""
    client = _Concurrent()
    pairs = [(f"e{n}", "10.0.0.1") for n in range(35_000)]
    assert score(client, "e", pairs, concurrency=concurrency) == [float(n) for n in range(35_000)]
    assert (client.calls, client.most) == (4, most)


@pytest.mark.parametrize("value", ["0", "65", "two", "-1"])
def test_a_scoring_concurrency_out_of_range_is_named_with_the_fix(value: str) -> None:
    environment = {"ENDPOINT_NAME": "e", "ARTIFACT_URI": "s3://a/p", "SECLAKE_SCORING_CONCURRENCY": value}
    with pytest.raises(MonitorConfigError, match=f"SECLAKE_SCORING_CONCURRENCY='{value}': set it to the requests"):
        Settings.from_environment(environment)
    environment["SECLAKE_SCORING_CONCURRENCY"] = "8"
    assert Settings.from_environment(environment).scoring_concurrency == 8


class _ThrottledError(Exception):
    def __init__(self, code: str = "ThrottlingException", status: int = 400) -> None:
        super().__init__("slow down")
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


class _Body:
    def read(self) -> bytes:
        return b'{"dot_product": 1.5}\n'


class _FailingFirst:
    """An endpoint that raises `errors` one call at a time, then answers."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors, self.calls = errors, 0

    def invoke_endpoint(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"Body": _Body()}


def test_throttling_is_retried_with_exponential_jittered_backoff() -> None:
    client = _FailingFirst([_ThrottledError(), _ThrottledError(status=429), _ThrottledError("ServiceUnavailable")])
    waits: list[float] = []
    draws = iter([0.0, 0.5, 0.999])
    assert score(client, "e", [("x", "1.2.3.4")], sleep=waits.append, draw=lambda: next(draws)) == [1.5]
    assert client.calls == 4
    # 0.4 s, 0.8 s, 1.6 s, each between half and all of it by the draw
    assert waits == pytest.approx([0.2, 0.8 * 0.75, 1.6 * 0.9995])
    assert backoff_seconds(12, 0.999) == pytest.approx(20 * 0.9995)  # capped at 20 s


def test_an_error_that_is_not_throttling_fails_at_once_and_retries_stop_after_six_attempts() -> None:
    waits: list[float] = []
    refused = _FailingFirst([_ThrottledError("ValidationError")])
    with pytest.raises(_ThrottledError):
        score(refused, "e", [("x", "1.2.3.4")], sleep=waits.append)
    assert refused.calls == 1 and waits == []
    busy = _FailingFirst([_ThrottledError() for _ in range(MAX_ATTEMPTS)])
    with pytest.raises(_ThrottledError):
        score(busy, "e", [("x", "1.2.3.4")], sleep=waits.append, draw=lambda: 0.0)
    assert busy.calls == MAX_ATTEMPTS and len(waits) == MAX_ATTEMPTS - 1


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_model(tmp_path_factory.mktemp("monitor-model"))


ENDPOINT = "seclake-ipinsights"
ARTIFACTS_BUCKET, ARTIFACTS_PREFIX = "artifacts", "a"


def deploy(execution: str, manifest: RunManifest | None = None, evaluation: dict[str, Any] | None = None) -> None:
    """What a pipeline execution leaves for the monitor: its manifest (or, for a run made before manifests, only its
    evaluation.json) under the artifacts, and the endpoint serving its config (moto's SageMaker)."""
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    layout = ArtifactLayout(f"s3://{ARTIFACTS_BUCKET}/{ARTIFACTS_PREFIX}")
    if manifest is not None:
        key = layout.manifest(execution).removeprefix(f"s3://{ARTIFACTS_BUCKET}/")
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=manifest.dumps().encode())
    if evaluation is not None:
        key = layout.evaluation(execution).removeprefix(f"s3://{ARTIFACTS_BUCKET}/")
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=json.dumps(evaluation).encode())
    config = endpoint_config_name(ENDPOINT, execution)
    model = f"model-{execution}"
    sagemaker.create_model(
        ModelName=model,
        PrimaryContainer={"Image": "382416733822.dkr.ecr.us-east-1.amazonaws.com/ipinsights:1"},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/SeclakeIpInsightsPipelineRole",
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    _serve(sagemaker, config)


def _serve(sagemaker: Any, config: str) -> None:
    """The endpoint now serves `config` (moto has no UpdateEndpoint: the endpoint is made again under its name)."""
    if ENDPOINT in [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]:
        sagemaker.delete_endpoint(EndpointName=ENDPOINT)
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


def manifest(threshold: float | None = 1000.0, detector_uri: str | None = None, mapping: str = "role") -> RunManifest:
    return RunManifest(threshold=threshold, detector_uri=detector_uri, mapping=mapping, algorithm="builtin")


def new_container() -> None:
    """The next invocation builds its resources from the environment again, as a cold Lambda container does."""
    monitor._RESOURCES.clear()


@pytest.fixture
def environment(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server: InferenceServer
    server, _ = start_server(model_dir, "127.0.0.1", 0, ENDPOINT)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ENDPOINT_NAME": ENDPOINT,
        "ARTIFACT_URI": f"s3://{ARTIFACTS_BUCKET}/{ARTIFACTS_PREFIX}",
        "FINDINGS_URI": "s3://findings/ext/seclake-ipinsights/1.0/",  # as CreateCustomLogSource returns it
        "SECURITY_HUB": "true",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url,
    }.items():
        monkeypatch.setenv(name, value)
    new_container()
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (LAKE_BUCKET, "findings", ARTIFACTS_BUCKET):
            s3.create_bucket(Bucket=bucket)
        real = FIXTURES / "security-lake-v1" / "VPC_FLOW"
        table = pq.read_table(real / "example1.gz.parquet")
        local = Path(str(model_dir)).parent / "object.parquet"
        pq.write_table(table, local, compression="gzip")
        s3.upload_file(str(local), LAKE_BUCKET, REAL_KEY)
        s3.put_object(Bucket=LAKE_BUCKET, Key=REAL_KEY.replace("b" * 32, "c" * 32), Body=b"not parquet")
        deploy("v7", manifest())
        yield s3
    new_container()
    server.shutdown()
    server.server_close()


def _findings(s3: Any) -> list[dict[str, Any]]:
    rows = []
    for item in s3.list_objects_v2(Bucket="findings").get("Contents", []):
        local = Path("/tmp") / item["Key"].replace("/", "_")
        s3.download_file("findings", item["Key"], str(local))
        rows += [{**row, "unmapped": dict(row["unmapped"])} for row in pq.read_table(local).to_pylist()]
        local.unlink()
    return rows


def test_batch_with_good_bad_and_redelivered_messages(environment: Any) -> None:
    s3 = environment
    event = sqs_event([(LAKE_BUCKET, REAL_KEY)])
    event["Records"].append({"messageId": "malformed", "body": "{}"})
    broken = sqs_event([(LAKE_BUCKET, REAL_KEY.replace("b" * 32, "c" * 32))], start=7)["Records"][0]
    event["Records"].append(broken)
    response = monitor.handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "malformed"}, {"itemIdentifier": "local-00000007"}]}
    findings = _findings(s3)
    # example1: an outbound flow (SYN from the ENI's side) from i-000000000000000000 to 172.31.2.52 on port 39938;
    # every score is below the threshold 1000
    assert [(f["observables"][0]["value"], f["observables"][1]["value"]) for f in findings] == [
        ("123456789012/i-000000000000000000#client:other", "172.31.2.52")
    ]
    finding = findings[0]
    assert finding["class_uid"] == 2004 and finding["metadata"]["version"] == "1.1.0"
    assert finding["unmapped"]["model_version"] == "v7"
    key = s3.list_objects_v2(Bucket="findings")["Contents"][0]["Key"]
    assert key.startswith("ext/seclake-ipinsights/1.0/region=us-east-1/accountId=123456789012/eventDay=20220412/")
    again = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None)
    assert again == {"batchItemFailures": []}
    assert len(_findings(s3)) == 1  # redelivered: same file, same uid, no duplicate
    hub = boto3.client("securityhub").get_findings()["Findings"]
    assert [f["Id"] for f in hub] == [finding["finding_info"]["uid"]]


def _put_detector(
    s3: Any, bucket: str, key: str, rows: list[tuple[str, str, int]], with_model: bool, names: KnownNames | None = None
) -> str:
    """A detector fitted on rows (entity, ip, first seen) and the `names` its accounts asked for, saved where the
    FitDetector step would put it."""
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    last_day = max(r[2] for r in rows) // DAY_MS * DAY_MS

    def constant(entities: Sequence[str], ips: Sequence[str]) -> np.ndarray:
        return np.full(len(entities), 50.0)  # the held-out day scored high: any real score is lower

    detector = Detector.fit(pairs, constant if with_model else None, last_day, DetectorSettings(), None, None, names)
    s3.put_object(Bucket=bucket, Key=key, Body=detector_bytes(detector, {"test": True}))
    return f"s3://{bucket}/{key}"


def _week_of_one_service(entity: str) -> list[tuple[str, str, int]]:
    """A week of the workload reaching one AWS service's /22, new addresses every day, a week before the object."""
    start = 1_649_030_400_000
    return [
        (entity, f"52.94.{(day * 140 + index) // 256 % 4}.{(day * 140 + index) % 256}", start + day * DAY_MS + index)
        for day in range(7)
        for index in range(140)
    ]


def test_findings_say_why_from_the_detector(environment: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = environment
    rows = [
        ("123456789012/i-000000000000000000#client:other", "172.31.9.9", 1_649_000_000_000),
        ("123456789012/i-000000000000000000#client:other", "52.94.0.10", 1_649_100_000_000),
    ]
    uri = _put_detector(s3, ARTIFACTS_BUCKET, "a/runs/r1/detector/detector.npz", rows, with_model=False)
    deploy("r1", manifest(detector_uri=uri))
    monkeypatch.setenv("SECLAKE_DETECTOR", "off")  # the model's threshold flags; the detector's memory explains
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    finding = _findings(s3)[0]
    # 172.31.2.52 against the known 172.31.9.9: 172.31.0000 0010 vs 172.31.0000 1001, 20 bits in common
    description = finding["finding_info"]["desc"]
    assert "172.31.2.52 shares only /20 with the 2 addresses i-000000000000000000 talked to as client of other" in (
        description
    )
    assert "nearest is 172.31.9.9 (network 172.31.0.0/20, first seen 2022-04-03)" in description
    unmapped = dict(finding["unmapped"])
    assert unmapped["shared_prefix_bits"] == "20" and unmapped["nearest_network"] == "172.31.0.0/20"
    assert unmapped["model_version"] == "r1"


def test_the_detector_flags_by_novelty_and_model_together(environment: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = environment
    rows = _week_of_one_service("123456789012/i-000000000000000000#client:other")
    uri = _put_detector(s3, ARTIFACTS_BUCKET, "a/runs/r2/detector/detector.npz", rows, with_model=True)
    deploy("r2", manifest(threshold=-1000.0, detector_uri=uri))  # the model's threshold alone would flag nothing
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    finding = _findings(s3)[0]
    # 172.31.2.52 shares 0 bits with 52.94.x.x: nothing this workload ever did came near it
    assert "detector surprisal" in finding["finding_info"]["desc"]
    assert "172.31.2.52 shares only /0" in finding["finding_info"]["desc"]
    unmapped = dict(finding["unmapped"])
    assert float(unmapped["surprisal"]) >= np.log(1e4)
    assert float(unmapped["novelty_surprisal"]) > 0
    assert float(unmapped["model_surprisal"]) > 0  # the model part came from the artifact's calibration
    monkeypatch.setenv("SECLAKE_DETECTOR_FPR", "1e-30")  # an override of the fitted rate: nothing is that rare
    new_container()
    s3.delete_object(Bucket="findings", Key=s3.list_objects_v2(Bucket="findings")["Contents"][0]["Key"])
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)], start=5), None) == {"batchItemFailures": []}
    assert _findings(s3) == []


def test_a_dns_tunnel_in_a_route53_object_is_one_high_finding(environment: Any) -> None:
    """A Route 53 object (the real sample's row, allowed, its instance's queries repeated): 80 queries for hex names
    under a domain the account never asked for, a third answered by an Amazon address, the rest TXT; and 80 long
    names under a domain it asks for. The handler writes one High finding for the tunnel, with the domain as an
    observable, and no finding for the known domain's queries."""
    s3 = environment
    template = pq.read_table(FIXTURES / "security-lake-v1" / "ROUTE53" / "example3.json.gz.parquet").to_pylist()[0]
    day_ms = 1_649_721_600_000  # 2022-04-12

    def row(index: int, name: str, answer: dict[str, str]) -> dict[str, Any]:
        query = {**template["query"], "hostname": name, "type": answer["type"]}
        allowed = {"disposition": "No Action", "disposition_id": 16, "unmapped": []}  # the sample was a firewall block
        answers = [{**answer, "class": "IN"}]
        return {**template, **allowed, "time": day_ms + 1000 * index, "query": query, "answers": answers}

    rows = [
        row(i, f"{i:040x}.t.x7q2.info.", {"type": "A", "rdata": "52.219.200.7"} if i % 3 == 0 else {"type": "TXT"})
        for i in range(80)
    ]
    rows += [row(i, f"{i:040x}.av.sophosxl.net.", {"type": "A", "rdata": "52.94.0.1"}) for i in range(80)]
    key = REAL_KEY.replace("VPC_FLOW", "ROUTE53").replace("123456789012", "111122223333")
    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist(
            rows, schema=pq.read_schema(FIXTURES / "security-lake-v1" / "ROUTE53" / "example3.json.gz.parquet")
        ),
        buffer,
    )
    s3.put_object(Bucket=LAKE_BUCKET, Key=key, Body=buffer.getvalue())
    entity = "111122223333/i-0d15cd0d3example#client:resolved"
    history = [(entity, "52.94.0.1", day_ms - 3 * DAY_MS + k) for k in range(10)]
    names = KnownNames.of_rows(["111122223333"], ["www.sophosxl.net"], [day_ms - 6 * DAY_MS])
    uri = _put_detector(s3, ARTIFACTS_BUCKET, "a/runs/r9/detector/detector.npz", history, False, names)
    deploy("r9", manifest(threshold=-1000.0, detector_uri=uri))
    assert monitor.handler(sqs_event([(LAKE_BUCKET, key)]), None) == {"batchItemFailures": []}
    findings = _findings(s3)
    assert [(f["observables"][0]["value"], f["observables"][1]["value"], f["severity"]) for f in findings] == [
        (entity, "52.219.200.7", "High")
    ]
    tunnel = findings[0]
    assert tunnel["finding_info"]["title"] == "One workload asked DNS for many new names under one domain"
    assert tunnel["observables"][2] == {"name": "tunnel_domain", "type": "Hostname", "type_id": 1, "value": "x7q2.info"}
    assert tunnel["unmapped"]["tunnel_names"] == "80" and tunnel["unmapped"]["tunnel_addresses"] == "52.219.200.7"
    assert tunnel["time"] == day_ms


def test_the_handler_raises_a_threat_listed_pair_the_model_finds_ordinary_and_a_trusted_list_silences_it(
    environment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real sample's one pair scores above the model's threshold (-1000): no finding. With the intel team's
    list naming its address, the function writes one High finding saying so, counted in the object's metrics; with
    the address also on a trusted list, none (GuardDuty's order). A list the settings name that is missing fails
    the message, naming where to put it."""
    s3 = environment
    deploy("v8", manifest(threshold=-1000.0))
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key="a/lists/threat/intel.txt", Body=b"# intel\n172.31.2.0/24\n")
    monkeypatch.setenv("THREAT_LISTS", "intel")
    new_container()
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    [finding] = _findings(s3)
    assert (finding["severity"], finding["observables"][1]["value"]) == ("High", "172.31.2.52")
    assert finding["unmapped"]["threat_list"] == "intel"
    assert finding["finding_info"]["desc"] == (
        "i-000000000000000000 talked to 172.31.2.52: 172.31.2.52 is on the threat list intel. The pair is not new: "
        "the list decides, not the detector."
    )
    for item in s3.list_objects_v2(Bucket="findings")["Contents"]:
        s3.delete_object(Bucket="findings", Key=item["Key"])
    monkeypatch.setenv("TRUSTED_LISTS", "scanners")
    new_container()
    failed = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)], start=3), None)
    assert failed == {"batchItemFailures": [{"itemIdentifier": "local-00000003"}]}  # scanners is not uploaded
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key="a/lists/trusted/scanners.txt", Body=b"172.31.2.52\n")
    new_container()
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)], start=4), None) == {"batchItemFailures": []}
    assert _findings(s3) == []


def test_a_suppression_rule_stops_a_finding_until_it_expires(environment: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function reads its rules table: while the analyst's rule is live, the sample's finding is written
    Suppressed with the rule named, counted, and not imported into Security Hub; once it has expired, the object
    redelivered writes it New and imports it."""
    from scripts.monitor.rule_store import DynamoRules
    from scripts.monitor.suppression import SuppressionRule

    s3 = environment
    client = boto3.client("dynamodb")
    client.create_table(
        TableName="rules",
        KeySchema=[{"AttributeName": "rule_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "rule_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("SECLAKE_SUPPRESSION_TABLE", "rules")
    rules = DynamoRules("rules", client)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    rule = SuppressionRule("scanner", {"ip": "172.31.0.0/16", "role": "client:*"}, "our scanner", "alice", now_ms)
    rules.put(dataclasses.replace(rule, expires_ms=now_ms + 3_600_000))
    new_container()
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    [finding] = _findings(s3)
    assert (finding["status"], finding["status_id"]) == ("Suppressed", 3)
    assert finding["unmapped"]["suppression_rule"] == "scanner"
    assert boto3.client("securityhub").get_findings()["Findings"] == []
    rules.put(dataclasses.replace(rule, expires_ms=now_ms - 1))  # expired
    new_container()
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)], start=2), None) == {"batchItemFailures": []}
    [finding] = _findings(s3)  # the same file, rewritten by the redelivery
    assert (finding["status"], "suppression_rule" in finding["unmapped"]) == ("New", False)
    assert len(boto3.client("securityhub").get_findings()["Findings"]) == 1


def test_a_container_loads_the_detector_shard_of_each_objects_account_alone(
    environment: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run fitted on two accounts leaves an index and a shard each: the object of 123456789012 loads that shard
    (its findings explained from that account's history), never the other account's; a shard the index names but
    S3 lacks fails the message naming both."""
    s3 = environment
    rows = [
        ("123456789012/i-000000000000000000#client:other", "172.31.9.9", 1_649_000_000_000),
        ("123456789012/i-000000000000000000#client:other", "52.94.0.10", 1_649_100_000_000),
        ("210987654321/i-0ffffffffffffffff#client:other", "172.31.2.50", 1_649_000_000_000),
    ]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    detector = Detector.fit(pairs, None, 1_649_030_400_000, DetectorSettings())
    index = write_shards(detector, tmp_path, {"test": True}, workers=1)
    prefix = "a/runs/r7/detector"
    for path in sorted(tmp_path.rglob("*.*")):
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=f"{prefix}/{path.relative_to(tmp_path)}", Body=path.read_bytes())
    deploy("r7", manifest(detector_uri=f"s3://{ARTIFACTS_BUCKET}/{prefix}/{DETECTOR_INDEX_FILE}"))
    monkeypatch.setenv("SECLAKE_DETECTOR", "off")  # the model's threshold flags; the shard's memory explains
    new_container()
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    knowledge = monitor._RESOURCES[0].deployment.current().knowledge
    assert knowledge is not None and knowledge.loaded == [index.file_of("123456789012")] and knowledge.loads == 1
    description = _findings(s3)[0]["finding_info"]["desc"]
    assert "nearest is 172.31.9.9" in description  # the account's own history, not 210987654321's 172.31.2.50
    s3.delete_object(Bucket=ARTIFACTS_BUCKET, Key=f"{prefix}/{index.file_of('123456789012')}")
    new_container()
    with caplog.at_level("ERROR", logger="seclake.monitor"):
        response = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)], start=3), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "local-00000003"}]}
    assert f"cannot read the detector s3://{ARTIFACTS_BUCKET}/{prefix}/shards/123456789012.npz" in caplog.text
    assert f"the detector index s3://{ARTIFACTS_BUCKET}/{prefix}/detector.json names it" in caplog.text


def test_shards_are_held_most_recently_used_first() -> None:
    """An SQS batch mixes accounts: the few last used stay loaded, the least recently used goes first."""
    from scripts.handoff.detector_index import ShardIndex
    from scripts.monitor.shard_cache import ShardedKnowledge

    shards = {name: {"file": f"shards/{name}.npz"} for name in ("organisation", "a", "b", "c")}
    read: list[str] = []

    def load(name: str) -> Knowledge:
        read.append(name)
        return Knowledge(Memory(History([], [], []), History([], [], []), np.zeros(0)), None)

    cache = ShardedKnowledge(load, ShardIndex("account", shards, {}), held=2)
    for account in ("a", "b", "a", "c", "a", "b", "new"):
        cache.of(account)
    assert read == ["shards/a.npz", "shards/b.npz", "shards/c.npz", "shards/b.npz", "shards/organisation.npz"]
    assert cache.loaded == ["shards/b.npz", "shards/organisation.npz"] and cache.loads == 5


def test_a_recorded_detector_that_cannot_be_read_fails_every_message_with_its_uri(
    environment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No silent fallback: a detector the deployed run's manifest names, missing or broken, fails the messages (the
    queue keeps them, the errors alarm fires) instead of flagging by the model's threshold alone."""
    s3 = environment
    deploy("r4", manifest(detector_uri="s3://artifacts/a/runs/r4/detector/detector.npz"))  # never written
    with caplog.at_level("ERROR", logger="seclake.monitor"):
        response = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "local-00000000"}]}
    assert "cannot read the detector s3://artifacts/a/runs/r4/detector/detector.npz" in caplog.text
    assert "the deployed run's manifest names it" in caplog.text
    assert _findings(s3) == []
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key="a/runs/r5/detector/detector.npz", Body=b"not a detector")
    deploy("r5", manifest(detector_uri="s3://artifacts/a/runs/r5/detector/detector.npz"))
    caplog.clear()
    with caplog.at_level("ERROR", logger="seclake.monitor"):
        response = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)], start=3), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "local-00000003"}]}
    assert "cannot read the detector s3://artifacts/a/runs/r5/detector/detector.npz" in caplog.text


def test_misfiled_and_foreign_objects_fail_with_what_they_look_like(
    environment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A Route 53 file under VPC_FLOW, a v1 file under 2.0, an unrelated parquet: never acknowledged with 0 findings."""
    s3 = environment
    route53 = pq.read_table(FIXTURES / "security-lake-v1" / "ROUTE53" / "example0.json.gz.parquet")
    vpc_v1 = pq.read_table(FIXTURES / "security-lake-v1" / "VPC_FLOW" / "example1.gz.parquet")
    foreign = pa.table({"time": [1], "something": ["else"]})
    keys = {
        "route53-under-vpc": (route53, REAL_KEY.replace("b" * 32, "1" * 32)),
        "v1-under-2.0": (vpc_v1, REAL_KEY.replace("/1.0/", "/2.0/").replace("b" * 32, "2" * 32)),
        "foreign": (foreign, REAL_KEY.replace("b" * 32, "3" * 32)),
    }
    for table, key in keys.values():
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        s3.put_object(Bucket=LAKE_BUCKET, Key=key, Body=buffer.getvalue())
    event = sqs_event([(LAKE_BUCKET, key) for _, key in keys.values()])
    with caplog.at_level("ERROR", logger="seclake.monitor"):
        response = monitor.handler(event, None)
    assert len(response["batchItemFailures"]) == 3
    assert "filed under VPC_FLOW/1.0 but its columns differ" in caplog.text
    assert "it looks like ROUTE53/1.0" in caplog.text
    assert "filed under VPC_FLOW/2.0" in caplog.text and "it looks like VPC_FLOW/1.0" in caplog.text
    assert "missing column" in caplog.text
    assert _findings(s3) == []


def test_findings_default_to_the_objects_bucket_and_each_object_is_a_metric(
    environment: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s3 = environment
    monkeypatch.delenv("FINDINGS_URI")
    with caplog.at_level("INFO", logger="seclake.metrics"):
        assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    written = [o["Key"] for o in s3.list_objects_v2(Bucket=LAKE_BUCKET)["Contents"] if o["Key"].startswith("ext/")]
    assert len(written) == 1 and written[0].startswith("ext/seclake-ipinsights/region=us-east-1/")
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "seclake.metrics"]
    assert (line["Rows"], line["Pairs"], line["Findings"], line["object"]) == (1, 1, 1, REAL_KEY)


def test_drops_are_embedded_metrics() -> None:
    report = ObjectReport("k", rows=10, pairs=4, drops={"rejected": 5, "malformed_ip": 1}, trusted=2, threat_listed=1)
    line = json.loads(metrics_line(report, "e"))
    names = [m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == [
        "Rows",
        "Pairs",
        "Findings",
        "RepeatedFindings",
        "SecurityHubRefused",
        "TrustedListed",
        "ThreatListed",
        "Suppressed",
        "Dropped_malformed_ip",
        "Dropped_rejected",
    ]
    assert (line["Dropped_rejected"], line["Dropped_malformed_ip"], line["Endpoint"]) == (5, 1, "e")
    assert (line["TrustedListed"], line["ThreatListed"]) == (2, 1)
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Endpoint"]]


def test_one_finding_per_pair_and_day_however_many_objects_carry_it(
    environment: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same pair in two objects of one day gives one finding; redelivering either changes nothing."""
    s3 = environment
    monkeypatch.setenv("SECLAKE_STATE_DB", str(tmp_path / "state.sqlite"))
    new_container()
    second = REAL_KEY.replace("b" * 32, "e" * 32)
    s3.copy_object(Bucket=LAKE_BUCKET, Key=second, CopySource={"Bucket": LAKE_BUCKET, "Key": REAL_KEY})
    with caplog.at_level("INFO", logger="seclake.metrics"):
        for keys in ([REAL_KEY, second], [second], [REAL_KEY]):
            assert monitor.handler(sqs_event([(LAKE_BUCKET, k) for k in keys]), None) == {"batchItemFailures": []}
    findings = _findings(s3)
    assert len(findings) == 1 and findings[0]["metadata"]["product"]["feature"]["name"]
    written = s3.list_objects_v2(Bucket="findings")["Contents"]
    assert len(written) == 1
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "seclake.metrics"]
    assert [(line["object"][-40:-32], line["Findings"], line["RepeatedFindings"]) for line in lines] == [
        ("bbbbbbbb", 1, 0),
        ("eeeeeeee", 0, 1),
        ("eeeeeeee", 0, 1),
        ("bbbbbbbb", 1, 0),
    ]


def _ledger(kind: str, tmp_path: Path) -> Any:
    """The state table as the settings choose it: a SQLite file, or a DynamoDB table (inside mock_aws)."""
    from scripts.monitor.ledger import DynamoLedger, SqliteLedger

    if kind == "sqlite":
        return SqliteLedger(tmp_path / "state.sqlite")
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoLedger("state", client)


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_the_ledger_keeps_the_first_object_and_lets_findings_expire(kind: str, tmp_path: Path) -> None:
    from scripts.monitor.ledger import TTL_SECONDS

    with mock_aws():
        book = _ledger(kind, tmp_path)
        assert book.claim("object-a", ["u1"], now=1000.0) == {"u1"}
        assert book.claim("object-b", ["u1"], now=1001.0) == set()
        assert book.claim("object-a", ["u1"], now=1002.0) == {"u1"}  # a redelivery keeps its own finding
        assert book.claim("object-b", ["u2", "u1", "u2"], now=1003.0) == {"u2"}  # one call: the free one only
        assert book.claim("object-b", ["u1"], now=1002.0 + TTL_SECONDS + 1) == {"u1"}  # expired: a new finding
        ip, other = "203.0.113.9", "198.51.100.7"
        assert book.meet("20261128", {ip: ["a/i-1", "a/i-2"], other: ["a/i-1"]}, now=1000.0) == {ip: 2, other: 1}
        assert book.meet("20261128", {ip: ["a/i-2", "a/i-3"]}, now=1001.0) == {ip: 3}  # across objects
        assert book.meet("20261128", {ip: ["a/i-2", "a/i-3"]}, now=1002.0) == {ip: 3}  # a redelivery adds none
        assert book.meet("20261129", {ip: ["a/i-1"]}, now=1003.0) == {ip: 1}  # another day counts anew


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_the_ledger_remembers_the_name_an_address_was_answered_for_that_day(kind: str, tmp_path: Path) -> None:
    """A Route 53 object records the names new to their account its answers gave; a flow object of the same day
    reads them back (more than one batch read), not another day's, not after they expire; a later answer wins."""
    from scripts.monitor.ledger import TTL_SECONDS

    with mock_aws():
        book = _ledger(kind, tmp_path)
        book.resolve("20261128", {"a|203.0.113.9": "x7.example.net", "b|203.0.113.9": "y.example.org"}, now=1000.0)
        book.resolve("20261128", {"a|203.0.113.9": "z.example.net"}, now=1001.0)
        book.resolve("20261129", {"a|198.51.100.7": "w.example.net"}, now=1001.0)
        many = [f"a|10.0.{n // 250}.{n % 250}" for n in range(150)]
        found = book.resolved("20261128", ["a|203.0.113.9", "b|203.0.113.9", "a|198.51.100.7", *many], now=1002.0)
        assert found == {"a|203.0.113.9": "z.example.net", "b|203.0.113.9": "y.example.org"}
        assert book.resolved("20261128", ["a|203.0.113.9"], now=1001.0 + TTL_SECONDS + 1) == {}


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_which_findings_an_object_claimed_before_is_read_without_claiming(kind: str, tmp_path: Path) -> None:
    """A redelivered object asks which of its findings it raised the first time: its own live claims only; asking
    claims nothing, and another object's or an expired claim is not its."""
    from scripts.monitor.ledger import TTL_SECONDS

    with mock_aws():
        book = _ledger(kind, tmp_path)
        assert book.claim("object-a", ["u1", "u2"], now=1000.0) == {"u1", "u2"}
        assert book.claim("object-b", ["u3"], now=1000.0) == {"u3"}
        many = [f"u{n:04d}" for n in range(150)]  # more than one batch read
        assert book.owned("object-a", ["u1", "u3", "u9", *many], now=1001.0) == {"u1"}
        assert book.owned("object-a", ["u1"], now=1000.0 + TTL_SECONDS + 1) == set()
        assert book.claim("object-c", ["u9"], now=1002.0) == {"u9"}  # asking about u9 did not claim it


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_an_objects_claims_are_batched_and_a_refused_one_leaves_the_rest_claimed(kind: str, tmp_path: Path) -> None:
    """Hundreds of claims in one call (DynamoDB: several transactions of 100), some of them already another object's:
    those are refused, every other one is this object's."""
    with mock_aws():
        book = _ledger(kind, tmp_path)
        theirs = [f"u{n:04d}" for n in range(0, 350, 7)]
        assert book.claim("object-a", theirs, now=1000.0) == set(theirs)
        mine = [f"u{n:04d}" for n in range(350)]
        requests: list[str] = []
        if kind == "dynamodb":
            book.client.meta.events.register("before-call.dynamodb", lambda model, **_: requests.append(model.name))
        assert book.claim("object-b", mine, now=1001.0) == set(mine) - set(theirs)
        if kind == "dynamodb":  # four transactions of up to 100, each cancelled once by the refused ones, then sent
            assert requests == ["TransactWriteItems"] * 8
        book.release("object-b", mine)  # gives up its own, not object-a's
        assert book.claim("object-c", mine, now=1002.0) == set(mine) - set(theirs)
        many = {f"203.0.{n // 250}.{n % 250}": [f"a/i-{n % 3}", "a/i-9"] for n in range(260)}
        assert book.meet("20261128", many, now=1000.0) == dict.fromkeys(many, 2)


def test_an_address_the_fleet_meets_across_objects_is_one_grouped_finding(tmp_path: Path) -> None:
    """Three workloads in one object and three in the next meet the same new address: no object alone reaches the
    fleet-change rule's five, the day does (another account's four in between count for theirs). The second object
    reports one finding for the account, whose severity says the fleet never came near that network; its pairs are
    not findings one by one."""
    from scripts.monitor.ledger import SqliteLedger

    rows = [
        (f"123456789012/i-{n:03d}#client:web", f"52.94.{n}.{k}", 1_649_030_400_000 + day * DAY_MS + k)
        for n in range(6)
        for day in range(7)
        for k in range(30)
    ]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    detector = Detector.fit(pairs, None, 1_649_030_400_000 + 6 * DAY_MS, DetectorSettings(use_model=False))
    known = Knowledge(detector.memory, detector)
    book = SqliteLedger(tmp_path / "state.sqlite")
    fleet = FleetContext("20220412", "123456789012", book)

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", 1_649_721_600_000, "123456789012", "r")

    def object_with(workloads: range) -> list[Any]:
        pairs = [(f"123456789012/i-{n:03d}#client:web", "185.220.101.7") for n in workloads]
        return findings_of(pairs, [0.0] * len(pairs), make, known, 0.0, fleet)

    first = object_with(range(3))
    assert [f.entity for f in first] == [f"123456789012/i-{n:03d}#client:web" for n in range(3)]  # three alerts
    # another account's object meets the same address the same day: its workloads count for their own account only
    other = [(f"210987654321/i-{n:03d}#client:web", "185.220.101.7") for n in range(4)]
    theirs = findings_of(other, [0.0] * 4, make, known, 0.0, FleetContext("20220412", "210987654321", book))
    assert [f.entity for f in theirs] == [entity for entity, _ in other]  # four alerts: no fleet of 3 + 4
    second = object_with(range(3, 6))
    assert [(f.entity, f.ip, f.severity) for f in second] == [("123456789012/*", "185.220.101.7", "High")]
    assert second[0].evidence["fleet_workloads"] == "6"
    assert "6 workloads met 185.220.101.7 for the first time" in second[0].why
    assert "command-and-control" in second[0].why
    moved = [(f"123456789012/i-{n:03d}#client:web", "52.94.200.7") for n in range(6)]
    dots = [0.4, -0.3, 0.2, 0.1, 0.0, 0.3]
    [service] = findings_of(moved, dots, make, known, 1.0, fleet)
    # new to every workload (each knew only its own 52.94.<n>.0/24), but the fleet already reached 52.94.0.0/16
    assert (service.entity, service.ip, service.severity) == ("123456789012/*", "52.94.200.7", "Low")
    assert service.evidence == {
        "fleet_workloads": "6",
        "workloads": ",".join(f"i-{n:03d}" for n in range(6)),
        "fleet_entities": ",".join(entity for entity, _ in moved),  # the pairs an analyst's verdict on it covers
        "fleet_knew_network": "true",
        "network_owner": "",  # the detector was fitted without a network table
        "fleet_knew_owner": "false",
    }
    assert service.why.startswith("6 workloads met 52.94.200.7 for the first time on 20220412 (i-000, i-001, ")
    assert "already reached its network 52.94.0.0/16: likely a service moving" in service.why
    assert service.score == -0.3  # the lowest of its pairs' scores, the most anomalous to the model
    assert service.surprisal_threshold == detector.threshold
    assert isinstance(service.surprisal, float) and service.surprisal > 0


def test_the_detector_the_manifest_records_is_used_after_a_cache_hit(environment: Any) -> None:
    """A rerun whose steps were cache hits has its detector under an earlier execution: the manifest says where it
    is, and the monitor reads that one, not runs/<this run>/detector/."""
    s3 = environment
    rows = _week_of_one_service("123456789012/i-000000000000000000#client:other")
    uri = _put_detector(s3, ARTIFACTS_BUCKET, "a/runs/r1/detector/detector.npz", rows, with_model=False)
    deploy("r2", manifest(threshold=-1000.0, detector_uri=uri))  # runs/r2/detector/ does not exist
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    finding = _findings(s3)[0]
    assert "detector surprisal" in finding["finding_info"]["desc"]
    assert "172.31.2.52 shares only /0" in finding["finding_info"]["desc"]
    assert finding["unmapped"]["model_version"] == "r2"


def test_pairs_are_extracted_with_the_deployed_runs_own_mapping(environment: Any) -> None:
    """A model trained on `peer` pairs scores `peer` pairs (entities without a role)."""
    s3 = environment
    deploy("r3", manifest(mapping="peer"))
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    assert [f["observables"][0]["value"] for f in _findings(s3)] == ["123456789012/i-000000000000000000"]


def test_a_warm_container_notices_a_redeployed_endpoint(environment: Any) -> None:
    """The endpoint's current config is looked up per batch: after a redeploy, the same container scores with the
    new run's threshold, detector and model version; nothing of yesterday's run is kept."""
    s3 = environment
    assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    assert [f["unmapped"]["model_version"] for f in _findings(s3)] == ["v7"]
    deploy("v8", manifest(threshold=-1000.0))  # the new run's threshold flags nothing
    second = REAL_KEY.replace("b" * 32, "d" * 32)
    s3.copy_object(Bucket=LAKE_BUCKET, Key=second, CopySource={"Bucket": LAKE_BUCKET, "Key": REAL_KEY})
    assert monitor.handler(sqs_event([(LAKE_BUCKET, second)], start=1), None) == {"batchItemFailures": []}
    assert [f["unmapped"]["model_version"] for f in _findings(s3)] == ["v7"]  # the new object raised none
    deploy("v9", manifest(threshold=1000.0))
    third = REAL_KEY.replace("b" * 32, "f" * 32)
    s3.copy_object(Bucket=LAKE_BUCKET, Key=third, CopySource={"Bucket": LAKE_BUCKET, "Key": REAL_KEY})
    assert monitor.handler(sqs_event([(LAKE_BUCKET, third)], start=2), None) == {"batchItemFailures": []}
    assert sorted(f["unmapped"]["model_version"] for f in _findings(s3)) == ["v7", "v9"]


def test_a_run_made_before_manifests_is_read_from_its_evaluation(
    environment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint deployed by an earlier version of the pipeline has evaluation.json and no manifest.json: its
    threshold, pair rules and detector location are read from there, with a warning that says so."""
    s3 = environment
    evaluation = {
        "seclake": {"threshold": {"dot_product": 1000.0}, "training_data": {"mapping": "peer", "algorithm": "builtin"}}
    }
    deploy("old", evaluation=evaluation)
    with caplog.at_level("WARNING", logger="seclake.monitor"):
        assert monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None) == {"batchItemFailures": []}
    assert [f["observables"][0]["value"] for f in _findings(s3)] == ["123456789012/i-000000000000000000"]
    assert "runs/old/evaluation/evaluation.json: a run made before manifest.json" in caplog.text
    assert "cannot read the detector s3://artifacts/a/runs/old/detector/detector.npz" in caplog.text


def test_an_endpoint_the_pipeline_did_not_deploy_fails_every_message_with_why(
    environment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sagemaker = boto3.client("sagemaker")
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "model-v7",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sagemaker.create_endpoint_config(EndpointConfigName="hand-made", ProductionVariants=[variant])
    _serve(sagemaker, "hand-made")
    with caplog.at_level("ERROR", logger="seclake.monitor"):
        response = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "local-00000000"}]}
    assert "serves config 'hand-made', which the pipeline did not make" in caplog.text


def test_a_degenerate_run_is_named_rather_than_scored(environment: Any, caplog: pytest.LogCaptureFixture) -> None:
    deploy("bad", manifest(threshold=None))
    with caplog.at_level("ERROR", logger="seclake.monitor"):
        response = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "local-00000000"}]}
    assert "the deployed run bad has no model threshold" in caplog.text


def test_missing_endpoint_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENDPOINT_NAME", raising=False)
    with pytest.raises(MonitorConfigError, match="ENDPOINT_NAME is not set"):
        monitor.handler({"Records": []}, None)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SECLAKE_DETECTOR_FPR", "2", "must be between 0 and 1"),
        ("SECLAKE_DETECTOR_FPR", "often", "is not a number"),
        ("SECLAKE_THRESHOLD", "low", "SECLAKE_THRESHOLD='low' is not a number"),
        ("ARTIFACT_URI", "artifacts/a", "ARTIFACT_URI='artifacts/a': set it to the pipeline's artifact location"),
        ("SECLAKE_DETECTOR", "maybe", "allowed: on, off"),
    ],
)
def test_every_setting_is_checked_once_with_its_name(variable: str, value: str, message: str) -> None:
    environment = {"ENDPOINT_NAME": "e", "ARTIFACT_URI": "s3://artifacts/a", variable: value}
    with pytest.raises(MonitorConfigError, match=message):
        Settings.from_environment(environment)


def test_fixture_copies_are_the_reference(tmp_path: Path) -> None:
    if not REFERENCE.exists():
        pytest.skip("shared/reference is not beside this checkout")
    for name in ("test-securitylake-sqs-message.json", "test-lambda-message.json"):
        assert json.loads((FIXTURES / "blog-fixtures" / name).read_text()) == json.loads((REFERENCE / name).read_text())


def test_template_is_cfn_lint_clean_and_least_privilege() -> None:
    import subprocess
    import sys

    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    lint = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    template = load_template()
    assert roles(template) == ["DeployOnApprovalRole", "MonitorRole", "VerdictsRole"]
    for statement in [s for role in roles(template) for s in role_statements(template, role)]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
        assert statement["Resource"] != "*", statement
    mapping = template["Resources"]["SubscriberQueueMapping"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_monitor_zip_runs_without_torch_or_spark(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    from pipeline.monitor_package import monitor_zip

    archive = tmp_path / "monitor.zip"
    archive.write_bytes(monitor_zip())
    names = zipfile.ZipFile(archive).namelist()
    assert "scripts/monitor/handler.py" in names and not any("ipinsights" in n or "preprocess" in n for n in names)
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['pyspark'] = None; "
        f"sys.path.insert(0, {str(archive)!r}); import scripts.monitor.handler as h; print(h.handler.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PATH": "", "PYTHONPATH": ""},
    )
    assert result.stdout.strip() == "handler", result.stderr


def test_the_fleet_counts_are_one_transaction_and_one_batch_read_of_valid_requests() -> None:
    """The exact DynamoDB requests (the Stubber checks them against the service model) and how the answer is read:
    an object's first meetings are one TransactWriteItems of set ADDs, their sizes one consistent BatchGetItem."""
    from botocore.stub import Stubber

    from scripts.monitor.ledger import TTL_SECONDS, DynamoLedger

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    keys = {"203.0.113.9": "fleet#20261128#203.0.113.9", "198.51.100.7": "fleet#20261128#198.51.100.7"}
    with Stubber(client) as stubber:
        stubber.add_response(
            "transact_write_items",
            {},
            {
                "TransactItems": [
                    {
                        "Update": {
                            "TableName": "state",
                            "Key": {"pk": {"S": keys[ip]}},
                            "UpdateExpression": "ADD workloads :workloads SET expires_at = :expires",
                            "ExpressionAttributeValues": {
                                ":workloads": {"SS": workloads},
                                ":expires": {"N": str(1000 + TTL_SECONDS)},
                            },
                        }
                    }
                    for ip, workloads in (("198.51.100.7", ["c/i-7"]), ("203.0.113.9", ["a/i-1", "a/i-2"]))
                ]
            },
        )
        stubber.add_response(
            "batch_get_item",
            {
                "Responses": {
                    "state": [
                        {"pk": {"S": keys["203.0.113.9"]}, "workloads": {"SS": ["a/i-1", "a/i-2", "b/i-9"]}},
                        {"pk": {"S": keys["198.51.100.7"]}, "workloads": {"SS": ["c/i-7"]}},
                    ]
                }
            },
            {
                "RequestItems": {
                    "state": {
                        "Keys": [{"pk": {"S": keys["198.51.100.7"]}}, {"pk": {"S": keys["203.0.113.9"]}}],
                        "ProjectionExpression": "pk, workloads",
                        "ConsistentRead": True,
                    }
                }
            },
        )
        met = {"203.0.113.9": ["a/i-2", "a/i-1", "a/i-2"], "198.51.100.7": ["c/i-7"], "192.0.2.1": []}
        counts = DynamoLedger("state", client).meet("20261128", met, 1000.0)
        assert counts == {"203.0.113.9": 3, "198.51.100.7": 1, "192.0.2.1": 0}
        assert DynamoLedger("state", client).meet("20261128", {}, 1000.0) == {}  # no call at all
        stubber.assert_no_pending_responses()


def test_a_claim_refused_inside_a_transaction_is_read_from_its_cancellation_reasons() -> None:
    """DynamoDB cancels a whole transaction when one condition fails: the refused claim is the one whose reason is
    ConditionalCheckFailed, and the others are sent again, alone."""
    from botocore.stub import Stubber

    from scripts.monitor.ledger import DynamoLedger

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sent: list[list[str]] = []
    client.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems",
        lambda params, **_: sent.append([item["Put"]["Item"]["pk"]["S"] for item in params["TransactItems"]]),
    )
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "transact_write_items",
            "TransactionCanceledException",
            "Transaction cancelled",
            response_meta={},
            modeled_fields={
                "CancellationReasons": [{"Code": "None"}, {"Code": "ConditionalCheckFailed"}, {"Code": "None"}]
            },
        )
        stubber.add_response("transact_write_items", {})
        assert DynamoLedger("state", client).claim("object-a", ["u3", "u1", "u2"], 1000.0) == {"u1", "u3"}
        stubber.assert_no_pending_responses()
    assert sent == [["finding#u1", "finding#u2", "finding#u3"], ["finding#u1", "finding#u3"]]


SECURITY_LAKE_QUEUE_VISIBILITY_SECONDS = 300  # the subscriber queue Security Lake creates


def _template() -> dict[str, Any]:
    return load_template()


def test_alarms_can_publish_to_the_topic() -> None:
    """CloudWatch alarms cannot publish to a topic under the AWS-managed alias/aws/sns key: the topic's key is the
    template's own, whose policy lets CloudWatch use it, and the function may encrypt its summaries with it."""
    resources = _template()["Resources"]
    assert resources["FindingsTopic"]["Properties"]["KmsMasterKeyId"] == "!Ref TopicKey"
    statements = resources["TopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    [cloudwatch] = [s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    [encrypt] = [s for s in role_statements(_template()) if s["Sid"] == "EncryptForTheTopic"]
    assert encrypt["Resource"] == "!GetAtt TopicKey.Arn"
    for alarm in ("ErrorsAlarm", "DeadLetterAlarm"):
        assert resources[alarm]["Properties"]["AlarmActions"] == ["!Ref FindingsTopic"]


def test_a_message_is_never_redelivered_while_the_function_still_holds_it() -> None:
    """SQS asks for the queue's visibility timeout to be at least six times the function's timeout (plus the batching
    window): the default timeout fits the queue Security Lake creates."""
    template = _template()
    timeout = template["Parameters"]["FunctionTimeoutSeconds"]["Default"]
    assert template["Resources"]["MonitorFunction"]["Properties"]["Timeout"] == "!Ref FunctionTimeoutSeconds"
    window = template["Resources"]["SubscriberQueueMapping"]["Properties"]["MaximumBatchingWindowInSeconds"]
    assert 6 * timeout + window <= SECURITY_LAKE_QUEUE_VISIBILITY_SECONDS


def test_security_hub_findings_are_the_calling_accounts_and_its_refusals_are_counted_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the account's default product, every finding's AwsAccountId must be the calling account (the workload's
    account goes in ProductFields); refusals come back in the response, and a Security Hub that is not enabled raises:
    both are logged and counted, and neither fails the message (the findings are in the lake)."""
    from botocore.stub import ANY, Stubber

    from scripts.monitor.resources import Notifier

    client = boto3.client("securityhub", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    finding = Finding("123456789012/i-1#client:web", "203.0.113.9", -3.0, 1.0, "v7", "s3://l/o", 0, "123456789012", "r")
    notifier = Notifier(security_hub=client, account_id=lambda: "444455556666")
    with Stubber(client) as stub, caplog.at_level("ERROR", logger="seclake.monitor"):
        stub.add_response(
            "batch_import_findings",
            {
                "FailedCount": 1,
                "SuccessCount": 0,
                "FailedFindings": [{"Id": "x", "ErrorCode": "E", "ErrorMessage": "m"}],
            },
            {"Findings": ANY},
        )
        stub.add_client_error("batch_import_findings", "InvalidAccessException", "Security Hub is not enabled")
        assert notifier.notify([finding]) == 1
        sent = stub._queue
        assert notifier.notify([finding]) == 1
        assert not sent
    assert "Security Hub refused 1 findings: E: m" in caplog.text
    assert "enable Security Hub in this account and region, or set SECURITY_HUB=false" in caplog.text
    [document] = asff([finding], "444455556666", "eu-west-1", dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    assert document["AwsAccountId"] == "444455556666"
    assert document["ProductArn"] == "arn:aws:securityhub:eu-west-1:444455556666:product/444455556666/default"
    assert document["ProductFields"]["workload_account"] == "123456789012"


def test_one_incidents_findings_name_each_other_in_security_hub() -> None:
    """A workload's findings of one day share an incident uid (two roles, two objects: one incident); each names the
    others as RelatedFindings, which the service model accepts; another workload's finding, or the next day's, is
    another incident."""
    from botocore.stub import Stubber

    def finding(entity: str, ip: str, day: str) -> Finding:
        return Finding(entity, ip, 0.1, 0.5, "v1", f"s3://lake/{ip}", 0, "123456789012", "us-east-1", event_day=day)

    findings = [
        finding("123456789012/i-5#client:admin", "10.0.0.1", "20261206"),
        finding("123456789012/i-5#client:db", "10.0.0.2", "20261206"),
        finding("123456789012/i-5#client:db", "10.0.0.3", "20261206"),
        finding("123456789012/i-6#client:db", "10.0.0.3", "20261206"),
        finding("123456789012/i-5#client:db", "10.0.0.4", "20261207"),
    ]
    assert len({f.incident_uid for f in findings}) == 3
    documents = asff(findings, "444455556666", "us-east-1", dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    related = [sorted(r["Id"] for r in d.get("RelatedFindings", [])) for d in documents]
    uids = [f.uid for f in findings]
    assert related == [sorted(uids[1:3]), sorted([uids[0], uids[2]]), sorted(uids[:2]), [], []]
    assert documents[0]["ProductFields"]["incident_uid"] == findings[0].incident_uid
    client = boto3.client("securityhub", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": 5}, {"Findings": documents})
        client.batch_import_findings(Findings=documents)  # the service model validates the documents


def test_customer_managed_keys_are_granted_through_s3_and_sqs_only() -> None:
    """A lake bucket or subscriber queue under a customer-managed key cannot be read without kms:Decrypt: the template
    grants the keys it is given, used through S3 or SQS only, and adds nothing when none is given."""
    template = load_template()
    assert template["Parameters"]["KmsKeyArns"]["Default"] == ""
    statements = template["Resources"]["MonitorRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    [conditional] = [s["Fn::If"] for s in statements if "Fn::If" in s and s["Fn::If"][0] == "HasKmsKeys"]
    condition, grant, otherwise = conditional
    assert template["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", "!Ref KmsKeyArns"]}, ""]}]
    }
    assert (grant["Action"], grant["Resource"], otherwise) == ("kms:Decrypt", "!Ref KmsKeyArns", "!Ref AWS::NoValue")
    assert grant["Condition"]["StringLike"]["kms:ViaService"] == ["s3.*.amazonaws.com", "sqs.*.amazonaws.com"]


@pytest.mark.parametrize(
    ("bucket", "key"),
    [("..", "x"), ("b", "../x"), ("b", "../../etc/passwd"), ("b", "/etc/passwd"), ("b/../c", "k"), ("", "k")],
)
def test_the_local_object_store_never_resolves_outside_its_folder(tmp_path: Path, bucket: str, key: str) -> None:
    from scripts.monitor.store import ObjectKeyError, ObjectStore

    store = ObjectStore(root=tmp_path / "s3")
    (tmp_path / "x").write_text("outside")
    with pytest.raises(ObjectKeyError, match="resolves outside the local store"):
        store.get_text(f"s3://{bucket}/{key}")
    with pytest.raises(ObjectKeyError):
        store.put(bucket, key, b"written")
    with pytest.raises(ObjectKeyError):
        store.download(bucket, key)
    assert (tmp_path / "x").read_text() == "outside"
    store.put("b", "a/../k", b"inside")  # a key that stays inside is fine: S3 keys may hold such parts
    assert store.get_text("s3://b/k") == "inside"


def test_rows_without_a_placeable_time_are_counted_and_a_finding_lives_on_its_objects_day(
    environment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A null time or INT64's minimum cannot be placed: those rows are dropped and counted, the rest of the object is
    scored. Rows whose clock says 1970 or 2100 are the same pair on the object's day: one finding, under the object's
    eventDay partition, with one id."""
    s3 = environment
    real = pq.read_table(FIXTURES / "security-lake-v1" / "VPC_FLOW" / "example1.gz.parquet")
    rows = pa.concat_tables([real] * 5)
    times = pa.array([1_649_721_732_000, 0, 4_102_444_800_000, None, -(2**63)], pa.int64())
    table = rows.set_column(rows.schema.get_field_index("time"), pa.field("time", pa.int64()), times)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    key = REAL_KEY.replace("b" * 32, "9" * 32)
    s3.put_object(Bucket=LAKE_BUCKET, Key=key, Body=buffer.getvalue())
    with caplog.at_level("INFO", logger="seclake.metrics"):
        assert monitor.handler(sqs_event([(LAKE_BUCKET, key)]), None) == {"batchItemFailures": []}
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "seclake.metrics"]
    assert (line["Rows"], line["Pairs"], line["Dropped_unplaceable_time"]) == (5, 1, 2)
    [finding] = _findings(s3)
    [written] = [o["Key"] for o in s3.list_objects_v2(Bucket="findings")["Contents"]]
    assert "/eventDay=20220412/" in written
    assert finding["finding_info"]["uid"] and finding["time"] == 0  # first seen: the earliest placeable row


def test_a_finding_whose_write_failed_is_not_lost_to_the_next_object(
    environment: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The state table takes a finding's ownership with the write, not before it: when the findings location refuses
    the write, the message fails and its claims are given up, so the next object with the same pair writes it."""
    s3 = environment
    monkeypatch.setenv("SECLAKE_STATE_DB", str(tmp_path / "state.sqlite"))
    monkeypatch.setenv("FINDINGS_URI", "s3://no-such-findings-bucket/ext/seclake-ipinsights/1.0/")
    new_container()
    response = monitor.handler(sqs_event([(LAKE_BUCKET, REAL_KEY)]), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "local-00000000"}]}
    monkeypatch.setenv("FINDINGS_URI", "s3://findings/ext/seclake-ipinsights/1.0/")
    new_container()
    second = REAL_KEY.replace("b" * 32, "e" * 32)
    s3.copy_object(Bucket=LAKE_BUCKET, Key=second, CopySource={"Bucket": LAKE_BUCKET, "Key": REAL_KEY})
    assert monitor.handler(sqs_event([(LAKE_BUCKET, second)], start=1), None) == {"batchItemFailures": []}
    assert len(_findings(s3)) == 1


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_a_release_gives_up_only_the_objects_own_claim(kind: str, tmp_path: Path) -> None:
    with mock_aws():
        book = _ledger(kind, tmp_path)
        assert book.claim("object-a", ["u1"], now=1000.0) == {"u1"}
        book.release("object-b", ["u1"])  # not its claim: nothing changes
        assert book.claim("object-b", ["u1"], now=1001.0) == set()
        book.release("object-a", ["u1"])
        assert book.claim("object-b", ["u1"], now=1002.0) == {"u1"}
