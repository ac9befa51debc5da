"""Who makes a local step's AWS requests, and the AccessDenied AWS would answer: each request is checked against the
principal's policies as `seclake iam` generates them, and every request is recorded (the run's request trace)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.policy_evaluation import ContextValue, Decision, Request, evaluate, trust_allows

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
ROLE_SESSION = "SageMaker"  # the session name SageMaker uses when it assumes a job's role
ASSUME_ROLE = "sts:AssumeRole"
EXTERNAL_ID_KEY = "sts:ExternalId"


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
    trust: Mapping[str, Any] | None = None  # who may assume it (checked for sts:AssumeRole by other principals)
    session: str = ROLE_SESSION  # the session name its requests carry (a Lambda's: the function's name)

    @property
    def session_arn(self) -> str:
        role = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{self.account}:assumed-role/{role}/{self.session}"

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
    # The account that owns each bucket; another account's principal is refused there, as S3 refuses a request no
    # bucket policy grants (a Security Lake bucket grants only the roles of its own account). Unlisted: the caller's.
    bucket_owners: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # an access key id handed out -> the role it is a session of

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
        owner = self.owner(resource, principal.account)
        if verdict.allowed and owner != principal.account and action != ASSUME_ROLE:
            message = (
                f"User: {principal.session_arn} is not authorized to perform: {action} on resource: {resource} "
                f"because no resource-based policy allows the {action} action (the resource is account {owner}'s, "
                f"the caller account {principal.account}'s). Read another account's lake through the role its "
                "Security Lake subscriber gives you (lake.subscriber in config)"
            )
            raise AccessDeniedError(message)
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

    def owner(self, resource: str, caller_account: str) -> str:
        """The account an S3 resource belongs to, where it is known; else the caller's (AWS's own repositories and
        resources shared by RAM carry their own grants, which the local runtime does not model)."""
        if resource.startswith("arn:aws:s3:::"):
            bucket = resource.removeprefix("arn:aws:s3:::").split("/")[0]
            return self.bucket_owners.get(bucket, caller_account)
        return caller_account

    def session_key(self, role_arn: str) -> str:
        """The access key id of a session of `role_arn` (stable, so a log names the same key across runs)."""
        key = "ASIA" + hashlib.sha256(role_arn.encode()).hexdigest()[:16].upper()
        self.sessions[key] = role_arn
        return key

    def role_of(self, access_key_id: str, step: str) -> str:
        if access_key_id not in self.sessions:
            message = f"{step}: the security token included in the request is invalid (access key {access_key_id})"
            raise AccessDeniedError(message)
        return self.sessions[access_key_id]

    def assume_role(self, step: str, caller_role: str, role_arn: str, external_id: str | None) -> str:
        """sts:AssumeRole as IAM decides it: the caller's policy must allow it on the role, and the role's trust
        policy must name the caller's account (or role) with the external id it asks for. The session's key."""
        self.authorize(step, caller_role, ASSUME_ROLE, role_arn)
        caller = self.principal(caller_role, step)
        target = self.principals.get(role_arn)
        context = {EXTERNAL_ID_KEY: external_id} if external_id else {}
        if (
            target is None
            or target.trust is None
            or not trust_allows(target.trust, caller_role, caller.account, context)
        ):
            given = f"external id {external_id!r}" if external_id else "no external id"
            message = (
                f"User: {caller.session_arn} is not authorized to perform: {ASSUME_ROLE} on resource: {role_arn} "
                f"(its trust policy does not allow account {caller.account} with {given}); check "
                "lake.subscriber.role_arn and external_id against the subscriber Security Lake created"
            )
            raise AccessDeniedError(message)
        return self.session_key(role_arn)


def s3_bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def s3_object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
