"""The monitoring Lambda's settings: every environment variable it reads, typed and checked, in one object.

Its SECLAKE_* variables have no double underscore, so the CLI never reads them as config overrides (those are
SECLAKE_<SECTION>__<KEY>); config/cloudformation/monitor.yaml sets them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

LIST_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CONCURRENCY_VARIABLE = "SECLAKE_SCORING_CONCURRENCY"
DEFAULT_SCORING_CONCURRENCY = (
    4  # twice the default endpoint's vCPUs (one ml.m5.large): requests in transfer overlap requests in work
)
MAX_SCORING_CONCURRENCY = 64  # the Lambda's sagemaker-runtime client pool and threads stay modest


class MonitorConfigError(RuntimeError):
    """The function's environment is incomplete or wrong; the message names the variable and what it allows."""


@dataclass(frozen=True)
class Settings:
    """Read once per container from the environment (the Lambda) or built by the caller (local replay)."""

    endpoint: str
    artifact_uri: str  # the pipeline's artifacts: the deployed run's manifest.json is found under it
    findings_uri: str = ""  # the custom source's location; empty: ext/seclake-ipinsights/ in the object's bucket
    security_hub: bool = False
    sns_topic: str | None = None
    threshold_override: float | None = None  # overrides the deployed run's model threshold
    detector: bool = True  # off: the model's threshold alone flags
    false_positive_rate: float | None = None  # None: the rate the detector was fitted with
    state_table: str | None = None  # DynamoDB table: one finding per (entity, ip, day) across objects
    state_db: str | None = None  # the same in a local SQLite file
    findings_role_arn: str | None = None  # the custom source's provider role, assumed to write findings
    findings_external_id: str | None = None
    lake_role_arn: str | None = None  # the lake's subscriber role (another account's lake), assumed to read objects
    lake_external_id: str | None = None
    account_id: str | None = None  # the function's account (Security Hub's AwsAccountId); else STS says
    trusted_lists: tuple[str, ...] = ()  # analyst lists under <artifact_uri>/lists/trusted/<name>.txt
    threat_lists: tuple[str, ...] = ()  # ... and lists/threat/<name>.txt
    suppression_table: str | None = None  # DynamoDB table of suppression rules (scripts/monitor/rule_store.py)
    suppression_db: str | None = None  # the same in a local SQLite file
    scoring_concurrency: int = DEFAULT_SCORING_CONCURRENCY  # endpoint requests in flight for one object

    @staticmethod
    def from_environment(environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        endpoint = env.get("ENDPOINT_NAME", "")
        if not endpoint:
            message = "environment variable ENDPOINT_NAME is not set; see config/cloudformation/monitor.yaml"
            raise MonitorConfigError(message)
        detector = env.get("SECLAKE_DETECTOR", "on").strip().lower()
        if detector not in {"on", "off", "true", "false", "1", "0"}:
            message = f"SECLAKE_DETECTOR={detector!r}; allowed: on, off"
            raise MonitorConfigError(message)
        findings_uri = _findings_uri(env.get("FINDINGS_URI", ""))
        threshold = _number(env, "SECLAKE_THRESHOLD", None)
        rate = _rate(env)
        artifacts = _artifact_uri(env.get("ARTIFACT_URI", ""))
        return Settings(
            endpoint=endpoint,
            artifact_uri=artifacts,
            findings_uri=findings_uri,
            security_hub=env.get("SECURITY_HUB", "").lower() == "true",
            sns_topic=env.get("SNS_TOPIC_ARN") or None,
            threshold_override=threshold,
            detector=detector in {"on", "true", "1"},
            false_positive_rate=rate,
            state_table=env.get("SECLAKE_STATE_TABLE") or None,
            state_db=env.get("SECLAKE_STATE_DB") or None,
            findings_role_arn=env.get("FINDINGS_ROLE_ARN") or None,
            findings_external_id=env.get("FINDINGS_EXTERNAL_ID") or None,
            lake_role_arn=env.get("LAKE_ROLE_ARN") or None,
            lake_external_id=env.get("LAKE_EXTERNAL_ID") or None,
            account_id=env.get("AWS_ACCOUNT_ID") or None,
            trusted_lists=_list_names(env, "TRUSTED_LISTS"),
            threat_lists=_list_names(env, "THREAT_LISTS"),
            suppression_table=env.get("SECLAKE_SUPPRESSION_TABLE") or None,
            scoring_concurrency=_concurrency(env),
        )


def _concurrency(env: Mapping[str, str]) -> int:
    text = env.get(CONCURRENCY_VARIABLE, "").strip()
    if not text:
        return DEFAULT_SCORING_CONCURRENCY
    if not text.isdigit() or not 1 <= int(text) <= MAX_SCORING_CONCURRENCY:
        message = (
            f"{CONCURRENCY_VARIABLE}={text!r}: set it to the requests the endpoint answers at once, 1 to "
            f"{MAX_SCORING_CONCURRENCY} (its instances times their workers)"
        )
        raise MonitorConfigError(message)
    return int(text)


def _list_names(env: Mapping[str, str], variable: str) -> tuple[str, ...]:
    """Comma-separated analyst list names (letters, digits, `_`, `.`, `-`)."""
    names = tuple(name.strip() for name in env.get(variable, "").split(",") if name.strip())
    for name in names:
        if not LIST_NAME.fullmatch(name):
            message = f"{variable}: {name!r} is not a list name (letters, digits, '_', '.', '-'; at most 64)"
            raise MonitorConfigError(message)
    return names


def _findings_uri(text: str) -> str:
    value = text.strip()
    if value and (not value.startswith("s3://") or len(value.removeprefix("s3://").strip("/")) == 0):
        message = (
            f"FINDINGS_URI={text!r} is not an s3:// location; set it to the location `seclake findings-source "
            "create` printed (e.g. s3://aws-security-data-lake-us-east-1-.../ext/seclake-ipinsights/)"
        )
        raise MonitorConfigError(message)
    return value


def _artifact_uri(text: str) -> str:
    value = text.strip().rstrip("/")
    if not value.startswith("s3://") or len(value.removeprefix("s3://")) == 0:
        message = (
            f"ARTIFACT_URI={text!r}: set it to the pipeline's artifact location, s3://<artifact_bucket>/"
            "<artifact_prefix> (the deployed run's manifest is read under it)"
        )
        raise MonitorConfigError(message)
    return value


def _number(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        return float(text)
    except ValueError:
        message = f"{name}={text!r} is not a number"
        raise MonitorConfigError(message) from None


def _rate(env: Mapping[str, str]) -> float | None:
    rate = _number(env, "SECLAKE_DETECTOR_FPR", None)
    if rate is None:
        return None
    if not 0 < rate < 1:
        message = f"SECLAKE_DETECTOR_FPR={env.get('SECLAKE_DETECTOR_FPR')!r} must be between 0 and 1 (e.g. 0.0001)"
        raise MonitorConfigError(message)
    return rate
