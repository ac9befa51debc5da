"""One handler per step type: each runs the step's resolved arguments locally and returns its properties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.local.endpoints import endpoint, endpoint_config
from pipeline.local.models import create_model, register_model, transform
from pipeline.local.processing_jobs import processing
from pipeline.local.step_environment import StepEnvironment
from pipeline.local.training_jobs import training, tuning

HANDLERS: dict[str, Callable[[dict[str, Any], dict[str, Any], StepEnvironment], dict[str, Any]]] = {
    "Processing": processing,
    "Training": training,
    "Tuning": tuning,
    "Model": create_model,
    "Transform": transform,
    "RegisterModel": register_model,
    "EndpointConfig": endpoint_config,
    "Endpoint": endpoint,
}
