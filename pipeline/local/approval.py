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

    def __init__(
        self, home: Path, endpoint_name: str, identity: Identity | None = None, caller_role: str | None = None
    ) -> None:
        self.home = home.resolve()
        self.store = Store(self.home / STATE_FILE)
        self.endpoint_name = endpoint_name
        self.identity = identity
        self.caller_role = caller_role  # the function's role; None: the identity's pipeline role

    def _env(self, config_name: str) -> StepEnvironment:
        execution = execution_of_endpoint_config(self.endpoint_name, config_name) or "approval"
        s3 = S3Map(self.home / "s3")
        return StepEnvironment(
            execution, self.home, s3, self.store, identity=self.identity, caller_role=self.caller_role
        )

    def _authorize(self, action: str, resource: str) -> None:
        if self.identity is None:
            return
        caller = self.caller_role or self.identity.pipeline_role
        arn = self.identity.principal(caller, APPROVAL["Name"]).arn("sagemaker", resource)
        self.identity.authorize(APPROVAL["Name"], caller, action, arn)

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803 (the API's names)
        self._authorize("sagemaker:DescribeModelPackage", ModelPackageName.split(":", 5)[-1])
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
        self._authorize("sagemaker:DescribeEndpoint", f"endpoint/{EndpointName}")
        found = self.store.endpoint(EndpointName)
        if found is None or found["status"] != "InService":
            raise _client_error("DescribeEndpoint", f'Could not find endpoint "{EndpointName}".')
        return {"EndpointName": EndpointName, "EndpointConfigName": found["config_name"]}

    def create_endpoint(self, EndpointName: str, EndpointConfigName: str) -> None:  # noqa: N803
        args = {"EndpointName": EndpointName, "EndpointConfigName": EndpointConfigName}
        endpoint(APPROVAL, args, self._env(EndpointConfigName))

    update_endpoint = create_endpoint  # the local endpoint step creates or updates


def approve_and_deploy(
    home: Path,
    group: str,
    version: int,
    endpoint_name: str,
    instance_type: str,
    identity: Identity | None = None,
    caller_role: str | None = None,
) -> Outcome:
    """Mark the package Approved, then deploy it as the approval's EventBridge rule would: as the deploy-on-approval
    function's role when `caller_role` names it."""
    store = Store(home / STATE_FILE)
    store.set_approval(group, version, APPROVED)
    [package] = [p for p in store.model_packages(group) if p["version"] == version]
    sagemaker = LocalSageMaker(home, endpoint_name, identity, caller_role)
    return deploy_approved(sagemaker, package["arn"], endpoint_name, instance_type)
