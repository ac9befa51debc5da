"""The pipeline's AWS operations: upload code, upsert, execute, schedule, status. Thin I/O around the SDK."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.code_bundle import code_objects, object_uri, standing_objects
from pipeline.config import Config
from pipeline.definition import build_pipeline, pipeline_session, prepare_sdk_environment
from pipeline.errors import UserError

SCHEDULE_NAME = "seclake-ipinsights-schedule"
TERMINAL = {"Succeeded", "Failed", "Stopped"}


@contextmanager
def readable_aws_errors(config: Config) -> Iterator[None]:
    """Turn the usual AWS failures into one line that says what to fix."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    try:
        yield
    except NoCredentialsError:
        message = (
            "no AWS credentials found: run `aws configure` or `aws sso login`, set AWS_PROFILE, or in CI "
            "assume a role with OIDC (see .github/workflows/seclake-pipeline.yml)"
        )
        raise UserError(message) from None
    except NoRegionError:
        message = "no AWS region: set aws.region in your config or SECLAKE_AWS__REGION"
        raise UserError(message) from None
    except EndpointConnectionError as error:
        message = f"cannot reach AWS ({error}); check the network and that region {config.aws.region!r} is right"
        raise UserError(message) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        text = error.response.get("Error", {}).get("Message", str(error))
        hint = {
            "AccessDenied": f"the caller or role {config.aws.role_arn} lacks a permission; see config/iam/",
            "AccessDeniedException": f"the caller or role {config.aws.role_arn} lacks a permission; see config/iam/",
            "ValidationException": "check aws.account_id and aws.role_name in your config, and that the role exists",
            "NoSuchBucket": f"create the artifact bucket {config.aws.artifact_bucket} or set aws.artifact_bucket",
            "ResourceNotFound": f"upsert the pipeline {config.pipeline.name} first: seclake upsert",
        }.get(code, "see the AWS message")
        message = f"AWS {code}: {text} ({hint})"
        raise UserError(message) from None


def aws_session(config: Config) -> Any:
    prepare_sdk_environment(config)
    import boto3

    return boto3.Session(region_name=config.aws.region)


def upload_code(config: Config, boto_session: Any) -> list[str]:
    """Put the content-addressed code objects, and the standing objects the pipeline's inputs need, that are not
    there yet; returns the URIs uploaded."""
    from botocore.exceptions import ClientError

    s3 = boto_session.client("s3")
    uploaded = []
    wanted = {object_uri(config.aws.artifact_uri, code): code.body for code in code_objects().values()}
    for uri, body in {**wanted, **standing_objects(config.aws.artifact_uri)}.items():
        bucket, _, key = uri[len("s3://") :].partition("/")
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploaded.append(uri)
    return uploaded


def upsert(config: Config, boto_session: Any) -> dict[str, Any]:
    """Upload the code, then create or update the pipeline with the role and tags."""
    upload_code(config, boto_session)
    pipeline = build_pipeline(config, pipeline_session(config, boto_session))
    tags = [{"Key": k, "Value": v} for k, v in sorted(config.pipeline.tags.items())]
    response: dict[str, Any] = pipeline.upsert(
        role_arn=config.aws.role_arn, tags=tags, description="Security Lake IP Insights (seclake-ipinsights)"
    )
    return response


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """Name=Value pairs from the command line."""
    result = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            message = f"--param {pair!r} must be Name=Value (e.g. --param EndDay=20261128)"
            raise UserError(message)
        result[name] = value
    return result


@dataclass(frozen=True)
class StepStatus:
    name: str
    status: str
    failure: str | None = None


def pinned_end_day(parameters: dict[str, str], now: dt.datetime | None = None) -> dict[str, str]:
    """EndDay 'latest' (or none) becomes the start of today, UTC, as an ISO time: the window still ends yesterday,
    but the value is fixed when the execution starts, so the cache key changes each day as the data does."""
    if parameters.get("EndDay", "latest").strip().lower() != "latest":
        return parameters
    today = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT00:00:00Z")
    return {**parameters, "EndDay": today}


def start_execution(config: Config, boto_session: Any, parameters: dict[str, str]) -> str:
    parameters = pinned_end_day(parameters)
    client = boto_session.client("sagemaker")
    known = {p["Name"] for p in _definition_parameters(client, config.pipeline.name)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        message = f"unknown pipeline parameter(s) {', '.join(unknown)}; the pipeline has: {', '.join(sorted(known))}"
        raise UserError(message)
    response = client.start_pipeline_execution(
        PipelineName=config.pipeline.name,
        PipelineParameters=[{"Name": k, "Value": v} for k, v in sorted(parameters.items())],
    )
    return str(response["PipelineExecutionArn"])


def _definition_parameters(client: Any, name: str) -> list[dict[str, Any]]:
    import json

    described = client.describe_pipeline(PipelineName=name)
    return list(json.loads(described["PipelineDefinition"]).get("Parameters", []))


def step_statuses(client: Any, execution_arn: str) -> list[StepStatus]:
    """Step statuses, newest first; empty where the API is not available (moto does not emulate it)."""
    try:
        response = client.list_pipeline_execution_steps(PipelineExecutionArn=execution_arn)
    except NotImplementedError:
        return []
    except Exception as error:  # botocore raises ClientError subclasses; the emulator may answer 501
        if "NotImplemented" in type(error).__name__ or "not yet implemented" in str(error).lower():
            return []
        raise
    return [
        StepStatus(s["StepName"], s["StepStatus"], s.get("FailureReason"))
        for s in response.get("PipelineExecutionSteps", [])
    ]


def wait_for_execution(
    boto_session: Any,
    execution_arn: str,
    on_update: Callable[[str, list[StepStatus]], None],
    poll_seconds: float = 15.0,
    timeout_seconds: float = 6 * 3600,
) -> str:
    client = boto_session.client("sagemaker")
    deadline = time.monotonic() + timeout_seconds
    while True:
        status = client.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["PipelineExecutionStatus"]
        on_update(status, step_statuses(client, execution_arn))
        if status in TERMINAL or time.monotonic() > deadline:
            return str(status)
        time.sleep(poll_seconds)


# EventBridge Scheduler's universal target for the StartPipelineExecution API: unlike the templated SageMaker target
# the SDK's put_triggers writes (empty SageMakerPipelineParameters), its Input may carry the context attribute
# <aws.scheduler.scheduled-time>, replaced at each invocation ("Adding context attributes in EventBridge Scheduler").
START_PIPELINE_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


def schedule_target(config: Config) -> dict[str, Any]:
    """Each scheduled run passes its own time as EndDay (the job reads the last full UTC day before it), so runs on
    different days have different cache keys and a retried invocation of the same day reuses the first."""
    import json

    request = {
        "PipelineName": config.pipeline.name,
        "PipelineExecutionDisplayName": "scheduled",
        "PipelineParameters": [{"Name": "EndDay", "Value": SCHEDULED_TIME}],
        # required by the API (SDK clients fill it in; a universal target sends what it is given); one per scheduled
        # time, so the scheduler's retries of one invocation never start a second execution
        "ClientRequestToken": f"seclake-ipinsights-scheduled-{SCHEDULED_TIME}",
    }
    return {
        "Arn": START_PIPELINE_TARGET,
        "RoleArn": config.aws.scheduler_role_arn,
        "Input": json.dumps(request, sort_keys=True),
        "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 6 * 3600},
    }


def schedule_expression(cron: str | None, rate: str | None) -> str:
    if (cron is None) == (rate is None):
        message = "give exactly one of --cron 'MIN HOUR DOM MON DOW YEAR' or --rate 'VALUE UNIT', or --disable"
        raise UserError(message)
    if rate is not None:
        value, _, unit = rate.partition(" ")
        if not value.isdigit() or unit not in {"minute", "minutes", "hour", "hours", "day", "days"}:
            message = f"--rate {rate!r} must be like '1 day' or '12 hours'"
            raise UserError(message)
        return f"rate({rate})"
    return f"cron({cron})"


def schedule(config: Config, boto_session: Any, cron: str | None, rate: str | None, disable: bool) -> str:
    """Create or update the EventBridge schedule (cron or rate), or delete it."""
    client = boto_session.client("scheduler")
    missing = client.exceptions.ResourceNotFoundException
    if disable:
        try:
            client.delete_schedule(Name=SCHEDULE_NAME)
        except missing:
            return f"no schedule {SCHEDULE_NAME} to delete"
        return f"deleted schedule {SCHEDULE_NAME}"
    expression = schedule_expression(cron, rate)
    request = {
        "Name": SCHEDULE_NAME,
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": schedule_target(config),
        "State": "ENABLED",
        "Description": f"Runs {config.pipeline.name} with EndDay = the scheduled time",
    }
    try:
        client.get_schedule(Name=SCHEDULE_NAME)
    except missing:
        client.create_schedule(**request)
    else:
        client.update_schedule(**request)
    return f"schedule {SCHEDULE_NAME}: {expression}, EndDay = {SCHEDULED_TIME}"


def recent_executions(config: Config, boto_session: Any, limit: int = 10) -> list[dict[str, Any]]:
    client = boto_session.client("sagemaker")
    response = client.list_pipeline_executions(
        PipelineName=config.pipeline.name, MaxResults=limit, SortBy="CreationTime", SortOrder="Descending"
    )
    return list(response.get("PipelineExecutionSummaries", []))
