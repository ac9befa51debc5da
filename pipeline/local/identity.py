"""Who makes a local step's AWS requests, and the AccessDenied AWS would answer: each request is checked against the
principal's policies as `seclake iam` generates them, and every request is recorded (the run's request trace)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.policy_evaluation import ContextValue, Decision, Request, evaluate

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
ROLE_SESSION = "SageMaker"  # the session name SageMaker uses when it assumes a job's role


class AccessDeniedError(PermissionError):
    """The request is not allowed by the principal's policies; the message is AWS's, with the statement to add. Not a
    RuntimeError: nothing that retries a failed job (a tuning trial) may swallow it."""


@dataclass(frozen=True)
class Principal:
    """An IAM role and its identity-based policies, in one account and region."""

    role_arn: str
    policies: Sequence[Mapping[str, Any]]
    account: str
    region: str

    @property
    def session_arn(self) -> str:
        role = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{self.account}:assumed-role/{role}/{ROLE_SESSION}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


@dataclass(frozen=True)
class RecordedRequest:
    step: str
    principal: str
    request: Request


@dataclass
class Identity:
    """The principals of one local execution by role ARN, and the trace of every request checked."""

    principals: dict[str, Principal]
    pipeline_role: str  # the role Pipelines runs the execution as (CreatePipeline's RoleArn)
    trace: list[RecordedRequest] = field(default_factory=list)

    def principal(self, role_arn: str, step: str) -> Principal:
        if role_arn not in self.principals:
            known = ", ".join(sorted(self.principals)) or "none"
            message = (
                f"{step}: role {role_arn} is not a role of this account (the local runtime knows {known}); "
                "the definition must name the role `seclake iam` generates"
            )
            raise AccessDeniedError(message)
        return self.principals[role_arn]

    def authorize(
        self,
        step: str,
        role_arn: str,
        action: str,
        resource: str,
        context: Mapping[str, ContextValue] | None = None,
    ) -> None:
        """Check one request as `role_arn`; record it; raise AccessDenied as AWS words it."""
        principal = self.principal(role_arn, step)
        request = Request(action, resource, dict(context or {}))
        self.trace.append(RecordedRequest(step, role_arn, request))
        verdict = evaluate(principal.policies, request)
        if verdict.allowed:
            return
        reason = (
            f"with an explicit deny in statement {verdict.statement}"
            if verdict.decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {action} action"
        )
        conditions = f" (context {dict(request.context)})" if request.context else ""
        message = (
            f"User: {principal.session_arn} is not authorized to perform: {action} on resource: "
            f"{resource} {reason}{conditions}. Grant it in the role's policy (config/iam/, `seclake iam`)"
        )
        raise AccessDeniedError(message)


def s3_bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def s3_object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
