"""Approving a package locally deploys it as the deploy-on-approval function does in AWS: the same logic
(scripts/deploy/approved.py) against the local registry and endpoints, answering as SageMaker's API would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline.local.endpoints import endpoint, endpoint_config
from pipeline.local.executor import STATE_FILE
from pipeline.local.identity import Identity
from pipeline.local.s3map import S3Map
from pipeline.local.state import Store
from pipeline.local.step_environment import StepEnvironment
from scripts.deploy.approved import Outcome, deploy_approved
from scripts.handoff.artifacts import execution_of_endpoint_config
from scripts.handoff.registry import APPROVED

APPROVAL = {"Name": "ApproveModelPackage"}  # what the local handlers name the request's step


def _client_error(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, operation)


class LocalSageMaker:
    """The few SageMaker calls deploy_approved makes, answered by the local registry and endpoints."""

    def __init__(self, home: Path, endpoint_name: str, identity: Identity | None = None) -> None:
        self.home = home.resolve()
        self.store = Store(self.home / STATE_FILE)
        self.endpoint_name = endpoint_name
        self.identity = identity

    def _env(self, config_name: str) -> StepEnvironment:
        execution = execution_of_endpoint_config(self.endpoint_name, config_name) or "approval"
        return StepEnvironment(execution, self.home, S3Map(self.home / "s3"), self.store, identity=self.identity)

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803 (the API's names)
        for package in self.store.model_packages():
            if package["arn"] == ModelPackageName:
                metadata = json.loads(package["customer_metadata"]) if package.get("customer_metadata") else {}
                return {
                    "ModelPackageArn": package["arn"],
                    "ModelApprovalStatus": package["status"],
                    "CustomerMetadataProperties": metadata,
                }
        raise _client_error("DescribeModelPackage", f"Model package {ModelPackageName} does not exist.")

    def create_endpoint_config(self, EndpointConfigName: str, ProductionVariants: list[dict[str, Any]]) -> None:  # noqa: N803
        if self.store.endpoint_config(EndpointConfigName) is not None:
            message = f'Cannot create already existing endpoint configuration "{EndpointConfigName}".'
            raise _client_error("CreateEndpointConfig", message)
        args = {"EndpointConfigName": EndpointConfigName, "ProductionVariants": ProductionVariants}
        endpoint_config(APPROVAL, args, self._env(EndpointConfigName))

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:  # noqa: N803
        found = self.store.endpoint(EndpointName)
        if found is None or found["status"] != "InService":
            raise _client_error("DescribeEndpoint", f'Could not find endpoint "{EndpointName}".')
        return {"EndpointName": EndpointName, "EndpointConfigName": found["config_name"]}

    def create_endpoint(self, EndpointName: str, EndpointConfigName: str) -> None:  # noqa: N803
        args = {"EndpointName": EndpointName, "EndpointConfigName": EndpointConfigName}
        endpoint(APPROVAL, args, self._env(EndpointConfigName))

    update_endpoint = create_endpoint  # the local endpoint step creates or updates


def approve_and_deploy(
    home: Path, group: str, version: int, endpoint_name: str, instance_type: str, identity: Identity | None = None
) -> Outcome:
    """Mark the package Approved, then deploy it as the approval's EventBridge rule would."""
    store = Store(home / STATE_FILE)
    store.set_approval(group, version, APPROVED)
    [package] = [p for p in store.model_packages(group) if p["version"] == version]
    return deploy_approved(LocalSageMaker(home, endpoint_name, identity), package["arn"], endpoint_name, instance_type)
