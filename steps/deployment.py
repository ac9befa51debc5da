"""CheckDetectionQuality: the detector's recall >= RecallGate and its alerts beyond the AlertAllowance per 1,000
workloads <= AlertBudget registers the model; else FailStep, saying which figure failed, and nothing is registered.
DeployIfApproved then deploys it (endpoint config, create-or-update endpoint) only when ModelApprovalStatus is
Approved; a package registered for manual approval is deployed when it is approved (the deploy-on-approval function
in AWS, `seclake models approve` locally)."""

from __future__ import annotations

from typing import Any

from scripts.handoff.artifacts import ENDPOINT_CONFIG_JOIN
from scripts.handoff.evaluation import GATE_PATH, JUDGED_ALERTS_PATH, RECALL_PATH
from scripts.handoff.registry import APPROVED
from steps.context import StepContext
from steps.names import APPROVAL_GATE, ENDPOINT, ENDPOINT_CONFIG, EVALUATION_PROPERTY_FILE, FAIL, QUALITY_GATE, TEXT


def _json_get(evaluation: Any, path: str) -> Any:
    from sagemaker.core.workflow.functions import JsonGet

    report = next(f for f in evaluation.property_files if f.name == EVALUATION_PROPERTY_FILE)
    return JsonGet(step_name=evaluation.name, property_file=report, json_path=path)


def endpoint_steps(ctx: StepContext, model: Any, register: Any) -> list[Any]:
    """Register, then, when the package is registered Approved, the endpoint config and the endpoint: what runs when
    the model passes the gate."""
    from sagemaker.core.workflow.conditions import ConditionEquals
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.endpoint_step import EndpointConfigStep, EndpointStep

    pipeline = ctx.config.pipeline
    config_name = Join(
        on=ENDPOINT_CONFIG_JOIN, values=[pipeline.endpoint_name, ExecutionVariables.PIPELINE_EXECUTION_ID]
    )
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
    approved = ConditionStep(
        name=APPROVAL_GATE,
        display_name=TEXT[APPROVAL_GATE].display_name,
        description=TEXT[APPROVAL_GATE].description,
        conditions=[ConditionEquals(left=ctx.parameters.approval_status, right=APPROVED)],
        if_steps=[config_step, endpoint_step],
        else_steps=[],
        depends_on=[register],
    )
    return [register, approved]


def quality_gate_step(ctx: StepContext, evaluation: Any, deploy: list[Any]) -> Any:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep

    recall = _json_get(evaluation, RECALL_PATH)
    alerts = _json_get(evaluation, JUDGED_ALERTS_PATH)
    p = ctx.parameters
    fail = FailStep(
        name=FAIL,
        display_name=TEXT[FAIL].display_name,
        description=TEXT[FAIL].description,
        error_message=Join(
            on=" ",
            values=["Model not deployed:", _json_get(evaluation, GATE_PATH), "(see the evaluation report)"],
        ),
    )
    return ConditionStep(
        name=QUALITY_GATE,
        display_name=TEXT[QUALITY_GATE].display_name,
        description=TEXT[QUALITY_GATE].description,
        conditions=[
            ConditionGreaterThanOrEqualTo(left=recall, right=p.recall_gate),
            ConditionLessThanOrEqualTo(left=alerts, right=p.alert_budget),
        ],
        if_steps=deploy,
        else_steps=[fail],
    )
