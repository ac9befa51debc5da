"""The monitor template's functions' requests made locally as the principals that make them in AWS: the monitoring
function's role as the template creates it (config/cloudformation/monitor.yaml, rendered for this config), the lake
read through the subscriber role it assumes, the findings written as the custom source's provider role; and the
deploy-on-approval function's role for `seclake models approve`. Each is checked as IAM and S3 would."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.cloudformation import Stack, load_template
from pipeline.config import Config
from pipeline.iam import lake_buckets
from pipeline.local.identity import Identity, Principal, s3_object_arn
from pipeline.local.run_definition import account_identity
from pipeline.local.security_lake import provider_principal, subscriber_principal
from scripts.monitor.deployment import Deployment
from scripts.monitor.resources import MonitorResources
from scripts.monitor.store import ObjectStore

REPLAY = "monitor"  # the name requests are recorded under
FUNCTION_ROLE = "MonitorRole"  # the template's logical id of the function's role
FUNCTION = "MonitorFunction"  # and of the function, whose name its role's sessions carry
DEPLOYER_ROLE = "DeployOnApprovalRole"  # the deploy-on-approval function's role
DEPLOYER = "DeployOnApprovalFunction"


def monitor_stack(config: Config, lake_bucket: str, provider_role: str) -> Stack:
    """The monitor template as `seclake` documents deploying it for this config, in aws.region."""
    subscriber = config.lake.subscriber
    queue = subscriber.queue_arn or f"arn:aws:sqs:{config.aws.region}:{config.aws.account_id}:seclake-lake-queue"
    parameters = {
        "SubscriberQueueArn": queue,
        "LakeBucketName": lake_bucket,
        "EndpointName": config.pipeline.endpoint_name,
        "ModelPackageGroupName": config.pipeline.model_package_group,
        "ArtifactBucket": config.aws.artifact_bucket,
        "ArtifactPrefix": config.aws.artifact_prefix,
        "CodeBucket": config.aws.artifact_bucket,
        "PandasLayerArn": f"arn:aws:lambda:{config.aws.region}:336392948345:layer:AWSSDKPandas-Python311:1",
        "CustomSourceName": config.findings.source_name,
        "FindingsProviderRoleArn": provider_role,
        "FindingsExternalId": config.findings.external_id if provider_role else "",
        "LakeSubscriberRoleArn": subscriber.role_arn,
        "LakeSubscriberExternalId": subscriber.external_id,
        "KmsKeyArns": config.aws.kms_key_arns,
    }
    return Stack(load_template(), parameters, config.aws.account_id, config.aws.region)


def monitor_identity(config: Config, lake_buckets: list[str], findings_bucket: str, provider_role: str) -> Identity:
    """The function's role, the subscriber role and the provider role, with the lake's buckets the lake account's."""
    stack = monitor_stack(config, findings_bucket, provider_role)
    function_arn = stack.physical(FUNCTION_ROLE)
    function = Principal(
        function_arn, [stack.role_policy(FUNCTION_ROLE)], config.aws.account_id, config.aws.region, session=FUNCTION
    )
    principals = {function_arn: function}
    if config.lake.subscriber.enabled:
        roots = ",".join(f"s3://{bucket}" for bucket in lake_buckets)
        scoped = config.model_copy(update={"aws": config.aws.model_copy(update={"lake_roots": roots})})
        principals[config.lake.subscriber.role_arn] = subscriber_principal(scoped)
    if provider_role:
        principals[provider_role] = provider_principal(config, provider_role, findings_bucket)
    owners = dict.fromkeys(lake_buckets, config.lake_account)
    owners[config.aws.artifact_bucket] = config.aws.account_id
    return Identity(principals, pipeline_role=function_arn, bucket_owners=owners)


def deployer_identity(config: Config, lake_roots: str) -> tuple[Identity, str]:
    """The account as the pipeline leaves it plus the deploy-on-approval function's role of the monitor template: the
    identity an approval deploys under, and that role (SageMaker still reads the model as the pipeline role)."""
    identity = account_identity(config, lake_roots)
    lake = lake_buckets(config.model_copy(update={"aws": config.aws.model_copy(update={"lake_roots": lake_roots})}))
    stack = monitor_stack(config, lake[0] if lake else "", "")
    role = stack.physical(DEPLOYER_ROLE)
    policy = stack.role_policy(DEPLOYER_ROLE)
    identity.principals[role] = Principal(role, [policy], config.aws.account_id, config.aws.region, session=DEPLOYER)
    return identity, role


class CheckedObjects(ObjectStore):
    """An object store whose reads and writes are checked as one role before they are made."""

    def __init__(self, store: ObjectStore, identity: Identity, role: str) -> None:
        super().__init__(root=store.root)
        self.store = store
        self.identity = identity
        self.role = role

    def download(self, bucket: str, key: str) -> Path:
        self.identity.authorize(REPLAY, self.role, "s3:GetObject", s3_object_arn(bucket, key))
        return self.store.download(bucket, key)

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.identity.authorize(REPLAY, self.role, "s3:PutObject", s3_object_arn(bucket, key))
        self.store.put(bucket, key, body)

    def get_text(self, uri: str) -> str:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self.identity.authorize(REPLAY, self.role, "s3:GetObject", s3_object_arn(bucket, key))
        return self.store.get_text(uri)


def checked_resources(resources: MonitorResources, identity: Identity, config: Config) -> MonitorResources:
    """The replay's resources with every request made as its AWS principal: artifacts and the endpoint as the
    function's role; the lake as the subscriber role it assumes (with the external id); findings as the provider
    role it assumes (with the findings' external id), or as itself where there is none."""
    function = identity.pipeline_role
    endpoint_arn = identity.principals[function].arn("sagemaker", f"endpoint/{config.pipeline.endpoint_name}")
    objects = CheckedObjects(resources.objects, identity, function)
    lake = objects
    subscriber = config.lake.subscriber
    if subscriber.enabled:
        identity.assume_role(REPLAY, function, subscriber.role_arn, subscriber.external_id)
        lake = CheckedObjects(resources.lake, identity, subscriber.role_arn)
    provider = resources.settings.findings_role_arn

    def findings_store() -> ObjectStore:
        if not provider:
            return objects
        identity.assume_role(REPLAY, function, provider, config.findings.external_id)
        return CheckedObjects(resources.findings_store(), identity, provider)

    def current_config() -> str:
        identity.authorize(REPLAY, function, "sagemaker:DescribeEndpoint", endpoint_arn)
        return resources.deployment.current_config()

    def invoke(**_: Any) -> None:
        identity.authorize(REPLAY, function, "sagemaker:InvokeEndpoint", endpoint_arn)

    resources.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpoint", invoke)
    return replace(
        resources,
        objects=objects,
        lake_objects=lake,
        deployment=Deployment(resources.settings, objects, current_config),
        findings_store=findings_store,
    )
