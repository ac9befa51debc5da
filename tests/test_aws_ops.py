"""Upsert, execute and schedule against moto's SageMaker, S3 and EventBridge Scheduler emulation."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline import aws_ops
from pipeline.code_bundle import code_objects, object_uri
from pipeline.config import Config, load_config
from pipeline.errors import UserError


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket="seclake-ipinsights-artifacts")
        yield session


@pytest.fixture
def config() -> Config:
    return load_config(environ={})


def test_upsert_creates_then_updates_and_uploads_code_once(aws: Any, config: Config) -> None:
    first = aws_ops.upsert(config, aws)
    client = aws.client("sagemaker")
    described = client.describe_pipeline(PipelineName=config.pipeline.name)
    assert described["PipelineArn"] == first["PipelineArn"]
    assert described["RoleArn"] == config.aws.role_arn
    assert '"TuneIPInsights"' in described["PipelineDefinition"]
    for code in code_objects().values():
        bucket, _, key = object_uri(config.aws.artifact_uri, code)[len("s3://") :].partition("/")
        assert aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == code.body
    assert aws_ops.upload_code(config, aws) == []  # content-addressed: nothing new to upload
    changed = config.model_copy(update={"pipeline": config.pipeline.model_copy(update={"recall_gate": 0.95})})
    aws_ops.upsert(changed, aws)
    assert len(client.list_pipelines()["PipelineSummaries"]) == 1
    updated = client.describe_pipeline(PipelineName=config.pipeline.name)["PipelineDefinition"]
    assert '"DefaultValue": 0.95' in updated.replace('"DefaultValue":0.95', '"DefaultValue": 0.95')
    tags = client.list_tags(ResourceArn=first["PipelineArn"])["Tags"]
    assert {"Key": "project", "Value": "seclake-ipinsights"} in tags


def test_execute_starts_with_the_given_parameters(aws: Any, config: Config) -> None:
    aws_ops.upsert(config, aws)
    arn = aws_ops.start_execution(config, aws, aws_ops.parse_parameters(["EndDay=20261128", "RecallGate=0.7"]))
    client = aws.client("sagemaker")
    parameters = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in parameters} == {"EndDay": "20261128", "RecallGate": "0.7"}
    seen: list[str] = []
    final = aws_ops.wait_for_execution(aws, arn, lambda status, steps: seen.append(status), poll_seconds=0.01)
    assert final == "Succeeded" and seen
    assert aws_ops.recent_executions(config, aws)[0]["PipelineExecutionArn"] == arn


def test_execute_pins_latest_to_the_day_it_starts(aws: Any, config: Config) -> None:
    """A manual run with EndDay 'latest' must not share yesterday's cache key: the CLI fixes the day when it starts."""
    aws_ops.upsert(config, aws)
    arn = aws_ops.start_execution(config, aws, {})
    parameters = aws.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    [end_day] = [p["Value"] for p in parameters["PipelineParameters"] if p["Name"] == "EndDay"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00Z", end_day)
    now = dt.datetime(2026, 11, 30, 17, 5, tzinfo=dt.UTC)
    assert aws_ops.pinned_end_day({"EndDay": "latest"}, now) == {"EndDay": "2026-11-30T00:00:00Z"}
    assert aws_ops.pinned_end_day({}, now) == {"EndDay": "2026-11-30T00:00:00Z"}  # EndDay has no default: always sent
    assert aws_ops.pinned_end_day({"EndDay": "20261101"}, now) == {"EndDay": "20261101"}


def test_execute_rejects_unknown_parameters(aws: Any, config: Config) -> None:
    aws_ops.upsert(config, aws)
    with pytest.raises(UserError, match=r"unknown pipeline parameter\(s\) EndDate; the pipeline has: .*EndDay"):
        aws_ops.start_execution(config, aws, {"EndDate": "20261128"})
    with pytest.raises(UserError, match="must be Name=Value"):
        aws_ops.parse_parameters(["EndDay"])


def test_schedule_creates_updates_and_deletes(aws: Any, config: Config) -> None:
    aws_ops.upsert(config, aws)
    scheduler = aws.client("scheduler")
    assert "cron(0 3 * * ? *)" in aws_ops.schedule(config, aws, "0 3 * * ? *", None, False)
    schedule = scheduler.get_schedule(Name=aws_ops.SCHEDULE_NAME)
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert schedule["Target"]["RoleArn"] == config.aws.scheduler_role_arn
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
    assert json.loads(schedule["Target"]["Input"]) == {
        "PipelineName": config.pipeline.name,
        "PipelineExecutionDisplayName": "scheduled",
        "PipelineParameters": [{"Name": "EndDay", "Value": "<aws.scheduler.scheduled-time>"}],
        "ClientRequestToken": "seclake-ipinsights-scheduled-<aws.scheduler.scheduled-time>",
    }
    aws_ops.schedule(config, aws, None, "1 day", False)
    assert scheduler.get_schedule(Name=aws_ops.SCHEDULE_NAME)["ScheduleExpression"] == "rate(1 day)"
    aws_ops.schedule(config, aws, None, None, True)
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name=aws_ops.SCHEDULE_NAME)
    with pytest.raises(UserError, match="exactly one of --cron"):
        aws_ops.schedule(config, aws, None, None, False)


def test_missing_credentials_read_as_one_line(config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from botocore.exceptions import NoCredentialsError

    with (
        pytest.raises(UserError, match="no AWS credentials found: run `aws configure`"),
        aws_ops.readable_aws_errors(config),
    ):
        raise NoCredentialsError()
