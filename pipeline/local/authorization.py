"""The AWS requests a step makes, checked as the role that makes them: SageMaker's Create* calls and the role it
passes (the pipeline role), the images it pulls, the inputs it lists and downloads, the outputs it uploads and the
lake objects a job's driver reads (the job's role). Nothing is checked when the environment has no identity."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.local.identity import (
    SAGEMAKER_SERVICE,
    Identity,
    s3_bucket_arn,
    s3_object_arn,
    split_s3_uri,
)
from pipeline.local.step_environment import StepEnvironment
from scripts.prepare.request_log import GET, LIST

ECR_READS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")


def _identity(env: StepEnvironment) -> Identity | None:
    return env.identity


@dataclass(frozen=True)
class RoleCaller:
    """A job's role as the caller of the local Athena (its calls recorded under the job's step)."""

    identity: Identity
    step: str
    role: str

    def authorize(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> None:
        self.identity.authorize(self.step, self.role, action, resource, context)

    def arn(self, service: str, resource: str) -> str:
        return self.identity.principal(self.role, self.step).arn(service, resource)


def caller(env: StepEnvironment, step: str, role: str) -> RoleCaller | None:
    identity = _identity(env)
    return RoleCaller(identity, step, role) if identity is not None else None


def execution_role(env: StepEnvironment) -> str:
    """The role a model's containers run as; ours is the pipeline role (the definition's ExecutionRoleArn)."""
    identity = _identity(env)
    return identity.pipeline_role if identity is not None else ""


def create(env: StepEnvironment, step: str, action: str, resource: str, passed_role: str | None = None) -> None:
    """The step's caller (the pipeline role, or the function that makes the call) calls SageMaker's `action` on
    `resource` (an ARN's resource part), passing a role."""
    identity = _identity(env)
    if identity is None:
        return
    caller = env.caller_role or identity.pipeline_role
    principal = identity.principal(caller, step)
    identity.authorize(step, caller, action, principal.arn("sagemaker", resource))
    if passed_role is not None:
        identity.authorize(step, caller, "iam:PassRole", passed_role, {"iam:PassedToService": SAGEMAKER_SERVICE})


def pull(env: StepEnvironment, step: str, role: str, image: str) -> None:
    """SageMaker pulls a job's image from ECR with the job's role."""
    identity = _identity(env)
    if identity is None:
        return
    registry, _, path = image.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3] if registry.count(".") >= 3 else ""
    repository = path.split(":")[0].split("@")[0]
    identity.authorize(step, role, "ecr:GetAuthorizationToken", "*")
    for action in ECR_READS:
        identity.authorize(step, role, action, f"arn:aws:ecr:{region}:{account}:repository/{repository}")


def read(env: StepEnvironment, step: str, role: str, uri: str, objects: Iterable[Path]) -> None:
    """An S3Prefix input: a listing under the key, then each object."""
    identity = _identity(env)
    if identity is None:
        return
    bucket, key = split_s3_uri(uri)
    identity.authorize(step, role, "s3:ListBucket", s3_bucket_arn(bucket), {"s3:prefix": key})
    for path in objects:
        object_bucket, object_key = split_s3_uri(env.s3.to_uri(path))
        identity.authorize(step, role, "s3:GetObject", s3_object_arn(object_bucket, object_key))


def get(env: StepEnvironment, step: str, role: str, uri: str) -> None:
    """One object read by its URI (a model's artifact, downloaded by its execution role)."""
    identity = _identity(env)
    if identity is None:
        return
    bucket, key = split_s3_uri(uri)
    identity.authorize(step, role, "s3:GetObject", s3_object_arn(bucket, key))


def write(env: StepEnvironment, step: str, role: str, uri: str, source: Path) -> None:
    """An output upload: each file as one object under the URI."""
    identity = _identity(env)
    if identity is None:
        return
    bucket, key = split_s3_uri(uri.rstrip("/"))
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    for path in files:
        relative = path.relative_to(source).as_posix() if source.is_dir() else ""
        object_key = f"{key}/{relative}" if relative else key
        identity.authorize(step, role, "s3:PutObject", s3_object_arn(bucket, object_key))


def region(env: StepEnvironment, step: str, role: str) -> str:
    """The region a job runs in: its role's (the account's region); us-east-1 where nothing is checked."""
    identity = _identity(env)
    return identity.principal(role, step).region if identity is not None else "us-east-1"


def driver_requests(env: StepEnvironment, step: str, role: str, log: Path) -> None:
    """What a Spark job's driver listed and read (scripts/prepare/request_log.py), as S3 would have judged it: as
    the principal whose key signed it (the subscriber role's session), else the job's role."""
    identity = _identity(env)
    if identity is None or not log.exists():
        return
    for entry in json.loads(log.read_text()):
        uri = entry["uri"]
        if uri.startswith("file:"):  # Hadoop writes file:/path, the job was handed file:///path
            uri = env.s3.to_uri(Path("/" + uri.removeprefix("file:").lstrip("/")))
        bucket, key = split_s3_uri(uri)
        caller = identity.role_of(entry["key"], step) if entry.get("key") else role
        if entry["action"] == LIST:
            identity.authorize(step, caller, LIST, s3_bucket_arn(bucket), {"s3:prefix": key})
        elif entry["action"] == GET:
            identity.authorize(step, caller, GET, s3_object_arn(bucket, key))
