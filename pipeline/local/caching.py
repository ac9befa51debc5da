"""Step caching as the service does it: a key from the documented request attributes of each step type, an expiry."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# "Default cache key attributes by pipeline step type" (SageMaker developer guide). What is not listed (outputs, the
# execution id in an output URI, the job name, tags) does not change the key.
CACHE_KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
    "Tuning": ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig"),
    "Transform": ("DataProcessing", "Environment", "ModelName", "TransformInput"),
}
# Of a tuning step's TrainingJobDefinition, only these children change the key.
TRAINING_DEFINITION_CHILDREN = (
    "AlgorithmSpecification",
    "HyperParameterRanges",
    "InputDataConfig",
    "StaticHyperParameters",
    "TuningObjective",
)
_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$",
    re.IGNORECASE,
)
_SECONDS = {
    "years": 365 * 86400,
    "months": 30 * 86400,
    "weeks": 7 * 86400,
    "days": 86400,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
}


class CacheConfigError(ValueError):
    """A CacheConfig the service would reject."""


def expire_after_seconds(duration: str) -> float:
    """An ISO 8601 duration (P7D, PT1H, P30DT5H) in seconds."""
    match = _DURATION.match(duration.strip())
    if not match or not any(match.groupdict().values()):
        message = f"CacheConfig ExpireAfter {duration!r} is not an ISO 8601 duration such as P7D or PT12H"
        raise CacheConfigError(message)
    return float(sum(int(value) * _SECONDS[unit] for unit, value in match.groupdict().items() if value))


def cache_key(step_type: str, arguments: dict[str, Any]) -> str | None:
    """The hash of the resolved request attributes that decide a cache hit; None for step types never cached."""
    attributes = CACHE_KEY_ATTRIBUTES.get(step_type)
    if attributes is None:
        return None
    selected = {name: arguments.get(name) for name in attributes}
    if step_type == "Tuning" and isinstance(selected["TrainingJobDefinition"], dict):
        definition = selected["TrainingJobDefinition"]
        selected["TrainingJobDefinition"] = {name: definition.get(name) for name in TRAINING_DEFINITION_CHILDREN}
    text = json.dumps(selected, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def caching(step: dict[str, Any]) -> tuple[bool, float]:
    """Whether the step asks for caching, and for how long a result stays usable."""
    config = step.get("CacheConfig") or {}
    if not config.get("Enabled"):
        return False, 0.0
    return True, expire_after_seconds(str(config.get("ExpireAfter", "P30D")))
