"""A role in another account assumed with its external id, its session re-assumed before it expires (warm Lambdas and
long Spark jobs outlive the one-hour limit of a chained role session)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A role assumed from a role's session (a job's, a function's) is chained: STS allows it one hour at most.
CHAINED_SESSION_SECONDS = 3600
# A session is re-assumed when less than this is left: one Spark scan or one SQS batch must fit in it.
REFRESH_MARGIN = dt.timedelta(minutes=20)


@dataclass(frozen=True)
class RoleToAssume:
    """A role ARN and the external id its trust policy asks for (a Security Lake subscriber's or provider's)."""

    role_arn: str
    external_id: str
    session_name: str

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]

    def request(self, duration_seconds: int = CHAINED_SESSION_SECONDS) -> dict[str, Any]:
        """AssumeRole's request (the external id only when there is one)."""
        request: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": duration_seconds,
        }
        if self.external_id:
            request["ExternalId"] = self.external_id
        return request


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: dt.datetime

    def client_keys(self) -> dict[str, str]:
        """boto3.client(...)'s credential arguments."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RoleSession:
    """The current credentials of an assumed role: assumed on first use, assumed again once less than `margin` is
    left, so a caller that asks before each unit of work never holds credentials that expire during it."""

    def __init__(
        self,
        sts: Any,
        role: RoleToAssume,
        margin: dt.timedelta = REFRESH_MARGIN,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.sts = sts
        self.role = role
        self.margin = margin
        self.clock = clock
        self.assumed = 0  # how many times the role was assumed (a refresh counts)
        self._current: SessionCredentials | None = None

    def credentials(self) -> SessionCredentials:
        current = self._current
        if current is None or current.expiration - self.clock() < self.margin:
            answer = self.sts.assume_role(**self.role.request())["Credentials"]
            expiration = answer["Expiration"]
            if isinstance(expiration, str):
                expiration = dt.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
            current = SessionCredentials(
                answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"], expiration
            )
            self._current = current
            self.assumed += 1
        return current
