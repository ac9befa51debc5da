"""IP Insights hyperparameters with the built-in's names, ranges and defaults; values arrive as strings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


class HyperparameterError(ValueError):
    """A hyperparameter is missing, unknown, unparsable or out of range; the message names it and its range."""


@dataclass(frozen=True)
class Spec:
    """One hyperparameter of the built-in algorithm."""

    kind: type
    low: float
    high: float | None
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is None

    def describe(self) -> str:
        def text(value: float) -> str:
            return str(int(value)) if self.kind is int else f"{value:g}"

        upper = "inf" if self.high is None else text(self.high)
        return f"{self.kind.__name__} in [{text(self.low)}, {upper}]"


SPECS: dict[str, Spec] = {
    "num_entity_vectors": Spec(int, 1, 250_000_000),
    "vector_dim": Spec(int, 4, 4096),
    "epochs": Spec(int, 1, None, 10),
    "learning_rate": Spec(float, 1e-6, 10.0, 0.001),
    "mini_batch_size": Spec(int, 1, 500_000, 10_000),
    "num_ip_encoder_layers": Spec(int, 0, 100, 1),
    "random_negative_sampling_rate": Spec(int, 0, 500, 1),
    "shuffled_negative_sampling_rate": Spec(int, 0, 500, 1),
    "weight_decay": Spec(float, 0.0, 10.0, 0.00001),
    "batch_metrics_publish_interval": Spec(int, 1, None, 1000),
}
# SageMaker adds these to every training job's hyperparameters; they are not the algorithm's.
IGNORED_PREFIXES = ("sagemaker_", "_tuning_objective_metric")


@dataclass(frozen=True)
class Hyperparameters:
    """Validated hyperparameters."""

    num_entity_vectors: int
    vector_dim: int
    epochs: int = 10
    learning_rate: float = 0.001
    mini_batch_size: int = 10_000
    num_ip_encoder_layers: int = 1
    random_negative_sampling_rate: int = 1
    shuffled_negative_sampling_rate: int = 1
    weight_decay: float = 0.00001
    batch_metrics_publish_interval: int = 1000

    def as_strings(self) -> dict[str, str]:
        """The form SageMaker passes: every value a string."""
        return {name: str(value) for name, value in asdict(self).items()}


def _parse_value(name: str, raw: Any, spec: Spec) -> int | float:
    text = str(raw).strip()
    try:
        value: int | float = int(text) if spec.kind is int else float(text)
    except ValueError:
        if spec.kind is int:
            try:
                as_float = float(text)
            except ValueError:
                as_float = float("nan")
            if as_float.is_integer():
                return _parse_value(name, int(as_float), spec)
        message = f"hyperparameter {name}={raw!r} is not a valid {spec.kind.__name__}; expected {spec.describe()}"
        raise HyperparameterError(message) from None
    if math.isnan(value) or value < spec.low or (spec.high is not None and value > spec.high):
        message = f"hyperparameter {name}={raw!r} is out of range; expected {spec.describe()}"
        raise HyperparameterError(message)
    return value


def check_hyperparameter(name: str, raw: Any) -> str:
    """One hyperparameter as SageMaker passes it (a string), once its name and value are known to be valid."""
    spec = SPECS.get(name)
    if spec is None:
        message = f"unknown hyperparameter {name!r}; IP Insights accepts: {', '.join(SPECS)}"
        raise HyperparameterError(message)
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        message = f"hyperparameter {name}={raw!r} must be a number; expected {spec.describe()}"
        raise HyperparameterError(message)
    return str(_parse_value(name, raw, spec))


def parse_hyperparameters(raw: Mapping[str, Any]) -> Hyperparameters:
    """Validate a hyperparameters.json mapping (string values) into Hyperparameters."""
    unknown = sorted(k for k in raw if k not in SPECS and not k.startswith(IGNORED_PREFIXES))
    if unknown:
        message = f"unknown hyperparameter(s) {', '.join(unknown)}; IP Insights accepts: {', '.join(SPECS)}"
        raise HyperparameterError(message)
    values: dict[str, int | float] = {}
    for name, spec in SPECS.items():
        if name in raw:
            values[name] = _parse_value(name, raw[name], spec)
        elif spec.required:
            message = f"hyperparameter {name} is required; expected {spec.describe()}"
            raise HyperparameterError(message)
    parsed = Hyperparameters(**values)  # type: ignore[arg-type]
    rates = parsed.random_negative_sampling_rate + parsed.shuffled_negative_sampling_rate
    if not 1 <= rates <= 500:
        message = (
            f"random_negative_sampling_rate + shuffled_negative_sampling_rate = {rates} "
            f"({parsed.random_negative_sampling_rate} + {parsed.shuffled_negative_sampling_rate}); must be in [1, 500]"
        )
        raise HyperparameterError(message)
    return parsed
