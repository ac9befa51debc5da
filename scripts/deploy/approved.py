"""Deploy a model package when it is approved: the function an EventBridge rule on the group's "SageMaker Model
Package State Change" events calls. It deploys the model the registering execution created, under that execution's
endpoint config name (so the monitor finds the run's manifest), creating or updating the endpoint. Idempotent: a
redelivered event, or a package approved twice, changes nothing; a package registered Approved was deployed by its
own execution and is left alone.

Environment: ENDPOINT_NAME, ENDPOINT_INSTANCE_TYPE.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from scripts.handoff.artifacts import endpoint_config_name
from scripts.handoff.registry import APPROVED, EXECUTION_PROPERTY, MODEL_PROPERTY, REGISTERED_AS_PROPERTY

LOG = logging.getLogger("seclake.deploy")
VARIANT = "AllTraffic"


class DeployError(ValueError):
    """The package cannot be deployed as it is; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    action: str  # created, updated, serving, skipped
    detail: str


def _already_exists(error: Any) -> bool:
    response = getattr(error, "response", {}) or {}
    message = str(response.get("Error", {}).get("Message", ""))
    return "already exist" in message


def _missing_endpoint(error: Any) -> bool:
    response = getattr(error, "response", {}) or {}
    message = str(response.get("Error", {}).get("Message", ""))
    return "Could not find endpoint" in message


def deploy_approved(sagemaker: Any, package_arn: str, endpoint: str, instance_type: str) -> Outcome:
    """What an approval of `package_arn` does to `endpoint`."""
    from botocore.exceptions import ClientError

    package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    status = package.get("ModelApprovalStatus")
    if status != APPROVED:
        return Outcome("skipped", f"{package_arn} is {status}")
    metadata = package.get("CustomerMetadataProperties") or {}
    if metadata.get(REGISTERED_AS_PROPERTY) == APPROVED:
        return Outcome("skipped", f"{package_arn} was registered Approved: its execution deployed it")
    missing = [key for key in (EXECUTION_PROPERTY, MODEL_PROPERTY) if not metadata.get(key)]
    if missing:
        message = (
            f"{package_arn} has no {', '.join(missing)} in its CustomerMetadataProperties: it was not registered by "
            "this pipeline (or by a version before approvals deployed); deploy it by running the pipeline with "
            "ModelApprovalStatus=Approved"
        )
        raise DeployError(message)
    config = endpoint_config_name(endpoint, metadata[EXECUTION_PROPERTY])
    variant = {
        "VariantName": VARIANT,
        "ModelName": metadata[MODEL_PROPERTY],
        "InitialInstanceCount": 1,
        "InstanceType": instance_type,
    }
    try:
        sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    except ClientError as error:
        if not _already_exists(error):
            raise
    try:
        current = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except ClientError as error:
        if not _missing_endpoint(error):
            raise
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        return Outcome("created", f"{endpoint} serves {config}")
    if current == config:
        return Outcome("serving", f"{endpoint} already serves {config}")
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    return Outcome("updated", f"{endpoint}: {current} -> {config}")


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    """EventBridge "SageMaker Model Package State Change" -> deploy_approved."""
    import boto3

    detail = event.get("detail") or {}
    package = detail.get("ModelPackageArn")
    if not package:
        message = f"event {event.get('id', '?')} has no detail.ModelPackageArn: not a model package state change"
        raise DeployError(message)
    outcome = deploy_approved(
        boto3.client("sagemaker"), package, os.environ["ENDPOINT_NAME"], os.environ["ENDPOINT_INSTANCE_TYPE"]
    )
    LOG.warning("%s: %s", outcome.action, outcome.detail)
    return {"action": outcome.action, "detail": outcome.detail}
