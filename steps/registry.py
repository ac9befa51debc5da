"""RegisterModel: a model package in the group, with evaluation.json as its model-quality metrics."""

from __future__ import annotations

from typing import Any

from steps.context import StepContext
from steps.evaluation import evaluation_uri
from steps.names import REGISTER, TEXT
from steps.scoring import model_builder


def register_step(ctx: StepContext, training: Any, evaluation: Any) -> Any:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
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
    )
    return ModelStep(
        name=REGISTER,
        step_args=step_args,
        display_name=TEXT[REGISTER].display_name,
        description=TEXT[REGISTER].description,
    )
