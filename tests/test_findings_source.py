"""Findings as a Security Lake custom source: the registration request, the record, where and as whom the monitor
writes, and the findings themselves against OCSF 1.1.0's Detection Finding."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.stub import Stubber
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import ConfigError, load_config
from pipeline.findings_source import create_custom_source, create_request, load_record, save_record
from scripts.monitor.findings import Finding, ocsf_rows, parquet_bytes
from scripts.monitor.handler import write_findings
from scripts.monitor.report import ObjectReport
from scripts.monitor.resources import assumed_role_store
from scripts.monitor.settings import Settings
from scripts.monitor.store import ObjectStore

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "ocsf" / "detection_finding_1_1_0.schema.json").read_text())
LOCATION = "s3://aws-security-data-lake-us-east-1-abcdefghijklmnopqrstuvwxyz0123/ext/seclake-ipinsights/1.0/"
PROVIDER_ROLE = "arn:aws:iam::123456789012:role/AmazonSecurityLake-Provider-seclake-ipinsights-us-east-1"


def _pair() -> Finding:
    return Finding(
        "123456789012/i-0abc#client:web",
        "203.0.113.9",
        -7.5,
        -3.0,
        "exec-1",
        "s3://lake/aws/VPC_FLOW/2.0/x.parquet",
        1_795_651_200_000,
        "123456789012",
        "us-east-1",
        why="never met 203.0.0.0/8",
        evidence={"nearest_network": "198.51.100.0/24", "shared_prefix_bits": "6"},
        surprisal=12.5,
        surprisal_threshold=9.2,
    )


def _fleet() -> Finding:
    return Finding(
        "123456789012/*",
        "198.18.0.1",
        -1.0,
        -3.0,
        "exec-1",
        "s3://lake/aws/VPC_FLOW/2.0/y.parquet",
        1_795_651_200_000,
        "123456789012",
        "us-east-1",
        why="3 workloads met 198.18.0.1 for the first time on 20261126; the account never reached 198.18.0.0/15.",
        evidence={"workloads": "i-1,i-2,eni-3"},
        surprisal=4.1,
        surprisal_threshold=9.2,
        severity="High",
    )


def _read_back(body: bytes) -> list[dict[str, Any]]:
    """The rows as a reader of the parquet gets them: the map back to an object, absent members dropped."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    rows = pq.read_table(io.BytesIO(body)).to_pylist()
    return [clean({**row, "unmapped": dict(row["unmapped"])}) for row in rows]


def test_findings_are_ocsf_1_1_0_detection_findings_before_and_after_parquet() -> None:
    validator = Draft202012Validator(SCHEMA)
    rows = ocsf_rows([_pair(), _fleet()], now_ms=1_795_700_000_000)
    for row in rows + _read_back(parquet_bytes(rows)):
        problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(row)]
        assert problems == [], problems
    assert _read_back(parquet_bytes(rows)) == rows


def test_the_validation_can_fail() -> None:
    validator = Draft202012Validator(SCHEMA)
    [row] = ocsf_rows([_pair()], now_ms=0)
    wrong = {**row, "type_uid": 200101, "finding_info": {**row["finding_info"], "uid": ""}, "extra": 1}
    messages = [e.message for e in validator.iter_errors(wrong)]
    assert any("200101" in m for m in messages)
    assert any("should be non-empty" in m or "is too short" in m for m in messages)
    assert any("'extra' was unexpected" in m for m in messages)


def test_every_findings_object_has_the_same_parquet_schema() -> None:
    """One Glue crawler reads every object: a file of fleet findings and one of pair findings agree, column for
    column."""
    pair = pq.read_schema(io.BytesIO(parquet_bytes(ocsf_rows([_pair()], 0))))
    fleet = pq.read_schema(io.BytesIO(parquet_bytes(ocsf_rows([_fleet()], 0))))
    assert pair.equals(fleet)
    unmapped = pair.field("unmapped").type
    assert (str(unmapped.key_type), str(unmapped.item_type)) == ("string", "string")


def test_the_exact_create_custom_log_source_request_and_its_record(tmp_path: Path) -> None:
    config = load_config(environ={"SECLAKE_HOME": str(tmp_path)})
    client = boto3.client("securitylake", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    expected = {
        "sourceName": "seclake-ipinsights",
        "sourceVersion": "1.0",
        "eventClasses": ["DETECTION_FINDING"],
        "configuration": {
            "crawlerConfiguration": {"roleArn": "arn:aws:iam::123456789012:role/SeclakeIpInsightsFindingsCrawler"},
            "providerIdentity": {"externalId": "seclake-ipinsights", "principal": "123456789012"},
        },
    }
    assert create_request(config) == expected
    response = {
        "source": {
            "sourceName": "seclake-ipinsights",
            "sourceVersion": "1.0",
            "provider": {"location": LOCATION.rstrip("/"), "roleArn": PROVIDER_ROLE},
            "attributes": {
                "tableArn": "arn:aws:securitylake:us-east-1:123456789012:table/ext_seclake_ipinsights",
                "crawlerArn": "arn:aws:securitylake:us-east-1:123456789012:crawler/seclake-ipinsights",
                "databaseArn": "arn:aws:securitylake:us-east-1:123456789012:database/amazon_security_lake",
            },
        }
    }
    with Stubber(client) as stub:
        stub.add_response("create_custom_log_source", response, expected)
        source = create_custom_source(config, client)
        stub.assert_no_pending_responses()
    save_record(config, source)
    assert load_record(config) == source
    assert source.monitor_environment() == {
        "FINDINGS_URI": LOCATION,
        "FINDINGS_ROLE_ARN": PROVIDER_ROLE,
        "FINDINGS_EXTERNAL_ID": "seclake-ipinsights",
    }


def test_a_source_name_security_lake_would_refuse_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"findings\.source_name.*at most 20 characters"):
        load_config(environ={"SECLAKE_FINDINGS__SOURCE_NAME": "seclake-ipinsights-findings"})


def test_local_create_records_the_local_lakes_ext_prefix(tmp_path: Path) -> None:
    bucket = "aws-security-data-lake-us-east-1-" + "b" * 30
    (tmp_path / "s3" / bucket).mkdir(parents=True)
    result = CliRunner().invoke(app, ["findings-source", "create", "--local"], env={"SECLAKE_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "findings-source.json").read_text())
    assert record["location"] == f"s3://{bucket}/ext/seclake-ipinsights/"
    # the local profile's lake is another account's: Security Lake creates the source's provider role there
    assert record["provider_role_arn"] == (
        "arn:aws:iam::210987654321:role/AmazonSecurityLake-Provider-seclake-ipinsights-us-east-1"
    )
    shown = CliRunner().invoke(app, ["findings-source", "show"], env={"SECLAKE_HOME": str(tmp_path)})
    assert f"FINDINGS_URI=s3://{bucket}/ext/seclake-ipinsights/" in shown.output


def test_findings_are_written_as_the_provider_role_under_the_location() -> None:
    settings = Settings.from_environment(
        {"ENDPOINT_NAME": "e", "ARTIFACT_URI": "s3://a/p", "FINDINGS_URI": LOCATION, "FINDINGS_ROLE_ARN": PROVIDER_ROLE}
        | {"FINDINGS_EXTERNAL_ID": "seclake-ipinsights"}
    )
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    credentials = {
        "AccessKeyId": "ASIAPROVIDERROLE01",
        "SecretAccessKey": "s",
        "SessionToken": "t",
        "Expiration": expires,
    }
    with Stubber(sts) as stub:
        stub.add_response(
            "assume_role",
            {"Credentials": credentials},
            {
                "RoleArn": PROVIDER_ROLE,
                "RoleSessionName": "seclake-ipinsights-monitor",
                "DurationSeconds": 3600,
                "ExternalId": "seclake-ipinsights",
            },
        )
        writer = assumed_role_store(settings, sts, lambda **keys: boto3.client("s3", region_name="us-east-1", **keys))
        with pytest.raises(AssertionError):  # nothing is assumed before the first write
            stub.assert_no_pending_responses()
        client = writer.client  # the first use assumes the role, once
        stub.assert_no_pending_responses()
        assert writer.client is client
    assert client._request_signer._credentials.access_key == "ASIAPROVIDERROLE01"

    class Recorder(ObjectStore):
        def __init__(self) -> None:
            super().__init__(client=object())
            self.puts: list[tuple[str, str]] = []

        def put(self, bucket: str, key: str, body: bytes) -> None:
            self.puts.append((bucket, key))

    recorder = Recorder()
    report = ObjectReport("aws/VPC_FLOW/2.0/region=us-east-1/accountId=123456789012/eventDay=20261126/x.parquet")
    report.findings = [_pair()]
    [written] = write_findings(report, settings, recorder, "lake-bucket")
    [(bucket, key)] = recorder.puts
    assert bucket == "aws-security-data-lake-us-east-1-abcdefghijklmnopqrstuvwxyz0123"
    assert key.startswith("ext/seclake-ipinsights/1.0/region=us-east-1/accountId=123456789012/eventDay=20261126/")
    assert written == f"s3://{bucket}/{key}"


def test_a_fleet_finding_says_what_raised_it_and_does_not_claim_the_pair_reached_the_threshold() -> None:
    pair, fleet = ocsf_rows([_pair(), _fleet()], now_ms=0)
    assert pair["finding_info"]["desc"].startswith("i-0abc talked to 203.0.113.9, which does not fit its usual peers")
    assert "surprisal 12.50 nats reaches the threshold 9.20" in pair["finding_info"]["desc"]
    assert fleet["finding_info"]["desc"] == (
        "Many workloads met a new address the same day: 3 workloads met 198.18.0.1 for the first time on 20261126; "
        "the account never reached 198.18.0.0/15. Detector: detector surprisal 4.10 nats for the pair alone, against "
        "the threshold 9.20 (IP Insights dot_product -1.0000)."
    )
    assert [r["uid"] for r in fleet["resources"]] == ["i-1", "i-2", "eni-3"]
