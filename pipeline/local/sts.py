"""A local STS on 127.0.0.1 that answers AssumeRole (the query protocol, as botocore speaks it) for a job: the caller
is the principal whose access key signed the request, and IAM's decision is the Identity's (the caller's policy and
the role's trust policy with its external id). A job reaches it through AWS_ENDPOINT_URL_STS, unchanged."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from pipeline.local.identity import AccessDeniedError, Identity
from pipeline.local.loopback import serving

STS_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_STS"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
SESSION_SECONDS_DEFAULT = 3600
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
UNCHECKED_KEY = "ASIALOCALUNCHECKED"  # the key a job gets when no identity is enforced


@dataclass
class LocalSts:
    """AssumeRole for one job (its step name), with the Identity's checks; every refusal is kept for the step."""

    identity: Identity | None
    step: str
    refusals: list[str] = field(default_factory=list)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def caller_key(self, role_arn: str) -> str:
        """The access key id the job's own role session signs with."""
        return self.identity.session_key(role_arn) if self.identity is not None else UNCHECKED_KEY

    def assume_role(self, caller_key: str, form: dict[str, str]) -> tuple[int, str]:
        role_arn, external_id = form.get("RoleArn", ""), form.get("ExternalId") or None
        duration = int(form.get("DurationSeconds", SESSION_SECONDS_DEFAULT))
        try:
            if self.identity is None:
                key = "ASIA" + uuid.uuid5(uuid.NAMESPACE_URL, role_arn).hex[:16].upper()
            else:
                caller = self.identity.role_of(caller_key, self.step)
                key = self.identity.assume_role(self.step, caller, role_arn, external_id)
        except AccessDeniedError as error:
            self.refusals.append(str(error))
            return 403, _error("AccessDenied", str(error))
        expiration = (self.now + dt.timedelta(seconds=duration)).strftime("%Y-%m-%dT%H:%M:%SZ")
        session = form.get("RoleSessionName", "session")
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        role_name = role_arn.rsplit("/", 1)[-1]
        body = (
            f'<AssumeRoleResponse xmlns="{NAMESPACE}"><AssumeRoleResult><Credentials>'
            f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>local-secret</SecretAccessKey>"
            f"<SessionToken>local-session-{escape(session)}</SessionToken><Expiration>{expiration}</Expiration>"
            f"</Credentials><AssumedRoleUser><AssumedRoleId>{key}:{escape(session)}</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{account}:assumed-role/{escape(role_name)}/{escape(session)}</Arn></AssumedRoleUser>"
            f"</AssumeRoleResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</AssumeRoleResponse>"
        )
        return 200, body


def _error(code: str, message: str) -> str:
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )


def _handler_class(sts: LocalSts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            signed = _CREDENTIAL.search(self.headers.get("Authorization", ""))
            if form.get("Action") != "AssumeRole":
                status, body = (
                    400,
                    _error("InvalidAction", f"the local STS answers AssumeRole, not {form.get('Action')}"),
                )
            elif signed is None:
                status, body = 403, _error("MissingAuthenticationToken", "the request is not signed")
            else:
                status, body = sts.assume_role(signed.group(1), form)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextlib.contextmanager
def local_sts(identity: Identity | None, step: str) -> Iterator[tuple[str, LocalSts]]:
    """The local STS for the duration of the block: its endpoint URL and its state."""
    sts = LocalSts(identity, step)
    with serving(_handler_class(sts)) as endpoint:
        yield endpoint, sts


def job_environment(endpoint: str, access_key_id: str, region: str) -> dict[str, str]:
    """What a job's boto3 needs to reach the local STS as its own role's session, in its region (SageMaker sets
    AWS_REGION in the container)."""
    return {
        STS_ENDPOINT_VARIABLE: endpoint,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": "local-secret",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
