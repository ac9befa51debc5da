"""Approval gates deployment: a package registered for manual approval is deployed when it is approved (the
deploy-on-approval function in AWS, `seclake models approve` locally), by the exact SageMaker requests, once."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scripts.deploy.approved import DeployError, deploy_approved
from scripts.handoff.registry import EXECUTION_PROPERTY, MODEL_PROPERTY, REGISTERED_AS_PROPERTY
from tests.cfn import load_template, role_statements

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/seclake-ipinsights/7"
ENDPOINT = "seclake-ipinsights"


def _client() -> Any:
    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _package(status: str, registered_as: str = "PendingManualApproval") -> dict[str, Any]:
    return {
        "ModelPackageGroupName": "seclake-ipinsights",
        "ModelPackageName": "seclake-ipinsights",
        "ModelPackageArn": PACKAGE,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CreationTime": "2026-12-06T00:00:00Z",
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": {
            EXECUTION_PROPERTY: "abc123def456",
            MODEL_PROPERTY: "pipelines-abc123def456-CreateModel-xyz",
            REGISTERED_AS_PROPERTY: registered_as,
        },
    }


CONFIG = f"{ENDPOINT}-abc123def456"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/seclake-ipinsights"
ENDPOINT_CONFIG_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{CONFIG}"
VARIANT = {
    "VariantName": "AllTraffic",
    "ModelName": "pipelines-abc123def456-CreateModel-xyz",
    "InitialInstanceCount": 1,
    "InstanceType": "ml.m5.large",
}


def test_an_approved_package_is_deployed_under_its_executions_endpoint_config() -> None:
    """No endpoint yet: the config named after the registering execution (where the monitor finds its manifest),
    then the endpoint."""
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("describe_model_package", _package("Approved"), {"ModelPackageName": PACKAGE})
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
            {"EndpointConfigName": CONFIG, "ProductionVariants": [VARIANT]},
        )
        stub.add_client_error("describe_endpoint", "ValidationException", f'Could not find endpoint "{ENDPOINT}".', 400)
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/seclake-ipinsights"},
            {"EndpointName": ENDPOINT, "EndpointConfigName": CONFIG},
        )
        outcome = deploy_approved(client, PACKAGE, ENDPOINT, "ml.m5.large")
        stub.assert_no_pending_responses()
    assert outcome.action == "created"


def _serving(stub: Stubber, config: str) -> None:
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": ENDPOINT,
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/seclake-ipinsights",
            "EndpointConfigName": config,
            "EndpointStatus": "InService",
            "CreationTime": "2026-12-06T00:00:00Z",
            "LastModifiedTime": "2026-12-06T00:00:00Z",
        },
        {"EndpointName": ENDPOINT},
    )


def test_an_approval_updates_the_serving_endpoint_and_a_redelivered_event_changes_nothing() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("describe_model_package", _package("Approved"), {"ModelPackageName": PACKAGE})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": ENDPOINT_CONFIG_ARN}, None)
        _serving(stub, f"{ENDPOINT}-older0execution")
        stub.add_response(
            "update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": ENDPOINT, "EndpointConfigName": CONFIG}
        )
        assert deploy_approved(client, PACKAGE, ENDPOINT, "ml.m5.large").action == "updated"
        stub.add_response("describe_model_package", _package("Approved"), {"ModelPackageName": PACKAGE})
        stub.add_client_error(
            "create_endpoint_config",
            "ValidationException",
            f'Cannot create already existing endpoint configuration "{CONFIG}".',
            400,
        )
        _serving(stub, CONFIG)
        assert deploy_approved(client, PACKAGE, ENDPOINT, "ml.m5.large").action == "serving"
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("status", "registered_as"), [("PendingManualApproval", "PendingManualApproval"), ("Approved", "Approved")]
)
def test_pending_packages_and_those_their_execution_deployed_are_left_alone(status: str, registered_as: str) -> None:
    """A package registered Approved was deployed by its own execution: deploying it again from the rule would race
    the execution's CreateEndpointConfig step (same name) and fail it."""
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("describe_model_package", _package(status, registered_as), {"ModelPackageName": PACKAGE})
        assert deploy_approved(client, PACKAGE, ENDPOINT, "ml.m5.large").action == "skipped"
        stub.assert_no_pending_responses()


def test_a_package_this_pipeline_did_not_register_is_named_not_guessed() -> None:
    client = _client()
    foreign = {**_package("Approved"), "CustomerMetadataProperties": {}}
    with Stubber(client) as stub:
        stub.add_response("describe_model_package", foreign, {"ModelPackageName": PACKAGE})
        with pytest.raises(DeployError, match=f"{EXECUTION_PROPERTY}, {MODEL_PROPERTY}"):
            deploy_approved(client, PACKAGE, ENDPOINT, "ml.m5.large")


def test_the_rule_sends_the_groups_approvals_to_the_function_which_may_deploy_only_this_endpoint() -> None:
    template = load_template()
    resources = template["Resources"]
    pattern = resources["PackageApprovedRule"]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"] == {
        "ModelPackageGroupName": ["!Ref ModelPackageGroupName"],
        "ModelApprovalStatus": ["Approved"],
    }
    assert resources["DeployOnApprovalFunction"]["Properties"]["Handler"] == "scripts.deploy.approved.handler"
    actions = sorted(a for s in role_statements(template, "DeployOnApprovalRole") for a in _list(s["Action"]))
    assert actions == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sagemaker:CreateEndpoint",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeModelPackage",
        "sagemaker:UpdateEndpoint",
    ]


def _list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]
