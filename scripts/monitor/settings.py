"""The monitoring Lambda's settings: every environment variable it reads, typed and checked, in one object.

Its SECLAKE_* variables have no double underscore, so the CLI never reads them as config overrides (those are
SECLAKE_<SECTION>__<KEY>); config/cloudformation/monitor.yaml sets them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from scripts.pairs.mapping import MAPPINGS, Algorithm


class MonitorConfigError(RuntimeError):
    """The function's environment is incomplete or wrong; the message names the variable and what it allows."""


@dataclass(frozen=True)
class Settings:
    """Read once per invocation from the environment (frozen and hashable: cached lookups key on it)."""

    endpoint: str
    findings_uri: str  # the custom source's location; empty: ext/seclake-ipinsights/ in the object's bucket
    mapping: str | None  # None: the deployed run's record says
    algorithm: Algorithm | None
    security_hub: bool
    sns_topic: str | None
    threshold_override: float | None
    model_version: str
    evaluation_uri: str | None
    artifact_uri: str | None
    detector_uri: str | None
    detector: bool
    false_positive_rate: float | None  # None: the rate the detector was fitted with
    state_table: str | None = None  # DynamoDB table: one finding per (entity, ip, day) across objects
    state_db: str | None = None  # the same in a local SQLite file
    findings_role_arn: str | None = None  # the custom source's provider role, assumed to write findings
    findings_external_id: str | None = None

    @staticmethod
    def from_environment(environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        endpoint = env.get("ENDPOINT_NAME", "")
        if not endpoint:
            message = "environment variable ENDPOINT_NAME is not set; see config/cloudformation/monitor.yaml"
            raise MonitorConfigError(message)
        mapping = env.get("PAIR_MAPPING") or None
        if mapping is not None and mapping not in MAPPINGS:
            message = f"PAIR_MAPPING={mapping!r}; allowed: {', '.join(sorted(MAPPINGS))}"
            raise MonitorConfigError(message)
        detector = env.get("SECLAKE_DETECTOR", "on").strip().lower()
        if detector not in {"on", "off", "true", "false", "1", "0"}:
            message = f"SECLAKE_DETECTOR={detector!r}; allowed: on, off"
            raise MonitorConfigError(message)
        return Settings(
            endpoint=endpoint,
            findings_uri=_findings_uri(env.get("FINDINGS_URI", "")),
            mapping=mapping,
            algorithm=_algorithm(env.get("ALGORITHM")),
            security_hub=env.get("SECURITY_HUB", "").lower() == "true",
            sns_topic=env.get("SNS_TOPIC_ARN") or None,
            threshold_override=_number(env, "SECLAKE_THRESHOLD", None),
            model_version=env.get("SECLAKE_MODEL_VERSION", ""),
            evaluation_uri=env.get("SECLAKE_EVALUATION_URI") or None,
            artifact_uri=env.get("ARTIFACT_URI") or None,
            detector_uri=env.get("SECLAKE_DETECTOR_URI") or None,
            detector=detector in {"on", "true", "1"},
            false_positive_rate=_rate(env),
            state_table=env.get("SECLAKE_STATE_TABLE") or None,
            state_db=env.get("SECLAKE_STATE_DB") or None,
            findings_role_arn=env.get("FINDINGS_ROLE_ARN") or None,
            findings_external_id=env.get("FINDINGS_EXTERNAL_ID") or None,
        )


def _findings_uri(text: str) -> str:
    value = text.strip()
    if value and (not value.startswith("s3://") or len(value.removeprefix("s3://").strip("/")) == 0):
        message = (
            f"FINDINGS_URI={text!r} is not an s3:// location; set it to the location `seclake findings-source "
            "create` printed (e.g. s3://aws-security-data-lake-us-east-1-.../ext/seclake-ipinsights/)"
        )
        raise MonitorConfigError(message)
    return value


def _algorithm(text: str | None) -> Algorithm | None:
    if not text:
        return None
    try:
        return Algorithm(text)
    except ValueError:
        message = f"ALGORITHM={text!r}; allowed: {', '.join(a.value for a in Algorithm)}"
        raise MonitorConfigError(message) from None


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
