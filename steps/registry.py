"""RegisterModel: a model package in the group naming its detector, with evaluation.json as its model-quality metrics.

It runs inside the quality gate's passing branch: a model below the gate is never registered (the execution fails
with the AUC and the gate instead), and the endpoint is deployed only after the package exists.
"""

from __future__ import annotations

from typing import Any

from scripts.handoff.registry import DETECTOR_PROPERTY, EXECUTION_PROPERTY, MODEL_PROPERTY, REGISTERED_AS_PROPERTY
from steps.context import StepContext
from steps.evaluate_model import evaluation_uri
from steps.fit_detector import detector_uri
from steps.names import REGISTER, TEXT
from steps.scoring import model_builder


def drop_sdk_leftovers(request: dict[str, Any]) -> None:
    """What the SDK writes that means nothing for this model: empty Bias / Explainability metrics, and the script-mode
    variables (SAGEMAKER_PROGRAM, SAGEMAKER_SUBMIT_DIRECTORY) left empty for a built-in algorithm's container."""
    metrics = request.get("ModelMetrics", {})
    for section in [name for name, value in metrics.items() if value in ({}, None)]:
        del metrics[section]
    containers = [*request.get("InferenceSpecification", {}).get("Containers", []), request.get("PrimaryContainer")]
    for container in filter(None, containers):
        environment = container.get("Environment", {})
        for name in [name for name, value in environment.items() if value == ""]:
            del environment[name]


def register_step(ctx: StepContext, training: Any, evaluation: Any, detector: Any, model: Any) -> Any:
    """`model`: the CreateModel step, whose model an approval deploys (scripts/deploy/approved.py)."""
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.mlops.workflow.model_step import ModelStep

    pipeline = ctx.config.pipeline
    metrics = ModelMetrics(
        model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri(evaluation))
    )
    step_args = model_builder(ctx, training).register(
        model_package_group_name=pipeline.model_package_group,
        content_types=["text/csv", "application/json", "application/jsonlines"],
        response_types=["application/json", "application/jsonlines"],
        inference_instances=[pipeline.endpoint_instance_type],
        transform_instances=[pipeline.transform_instance_type],
        model_metrics=metrics,
        approval_status=ctx.parameters.approval_status,
        customer_metadata_properties={
            DETECTOR_PROPERTY: detector_uri(detector),
            EXECUTION_PROPERTY: ExecutionVariables.PIPELINE_EXECUTION_ID,
            MODEL_PROPERTY: model.properties.ModelName,
            REGISTERED_AS_PROPERTY: ctx.parameters.approval_status,
        },
        description="IP Insights model and its detector (seclake:detector); detection figures in the model metrics",
    )
    drop_sdk_leftovers(step_args.create_model_package_request)
    return ModelStep(
        name=REGISTER,
        step_args=step_args,
        display_name=TEXT[REGISTER].display_name,
        description=TEXT[REGISTER].description,
    )
