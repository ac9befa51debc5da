"""CheckModelQuality: AUC >= AucGate registers and deploys (package, endpoint config, create-or-update endpoint);
else FailStep, and nothing is registered."""

from __future__ import annotations

from typing import Any

from steps.context import StepContext
from steps.names import ENDPOINT, ENDPOINT_CONFIG, EVALUATION_PROPERTY_FILE, FAIL, QUALITY_GATE, TEXT

AUC_JSON_PATH = "binary_classification_metrics.auc.value"


def _auc(evaluation: Any) -> Any:
    from sagemaker.core.workflow.functions import JsonGet

    report = next(f for f in evaluation.property_files if f.name == EVALUATION_PROPERTY_FILE)
    return JsonGet(step_name=evaluation.name, property_file=report, json_path=AUC_JSON_PATH)


def endpoint_steps(ctx: StepContext, model: Any, register: Any) -> list[Any]:
    """Register, then the endpoint config, then the endpoint: what runs when the model passes the gate."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.endpoint_step import EndpointConfigStep, EndpointStep

    pipeline = ctx.config.pipeline
    config_name = Join(on="-", values=[pipeline.endpoint_name, ExecutionVariables.PIPELINE_EXECUTION_ID])
    config_args = ctx.session.create_endpoint_config(
        name=config_name,
        production_variants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model.properties.ModelName,
                "InitialInstanceCount": 1,
                "InstanceType": pipeline.endpoint_instance_type,
            }
        ],
        tags=ctx.tags(),
    )
    config_step = EndpointConfigStep(
        name=ENDPOINT_CONFIG,
        step_args=config_args,
        display_name=TEXT[ENDPOINT_CONFIG].display_name,
        description=TEXT[ENDPOINT_CONFIG].description,
        depends_on=[register],
    )
    endpoint_args = ctx.session.create_endpoint(
        endpoint_name=pipeline.endpoint_name, config_name=config_name, tags=ctx.tags()
    )
    endpoint_step = EndpointStep(
        name=ENDPOINT,
        step_args=endpoint_args,
        display_name=TEXT[ENDPOINT].display_name,
        description=TEXT[ENDPOINT].description,
        depends_on=[config_step],
    )
    return [register, config_step, endpoint_step]


def quality_gate_step(ctx: StepContext, evaluation: Any, deploy: list[Any]) -> Any:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep

    auc = _auc(evaluation)
    fail = FailStep(
        name=FAIL,
        display_name=TEXT[FAIL].display_name,
        description=TEXT[FAIL].description,
        error_message=Join(
            on=" ",
            values=["Model not deployed: eval-set ROC AUC", auc, "is below the AucGate", ctx.parameters.auc_gate],
        ),
    )
    return ConditionStep(
        name=QUALITY_GATE,
        display_name=TEXT[QUALITY_GATE].display_name,
        description=TEXT[QUALITY_GATE].description,
        conditions=[ConditionGreaterThanOrEqualTo(left=auc, right=ctx.parameters.auc_gate)],
        if_steps=deploy,
        else_steps=[fail],
    )
