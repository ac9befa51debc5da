"""The lake's account as Security Lake sets it up (not shipped: Security Lake creates it): for a data-access
subscriber (CreateSubscriber), a role that may list and read the subscribed sources' objects, trusted by the
subscriber's account with the external id given; for a custom source (CreateCustomLogSource), a provider role that
may write under ext/<source>/, trusted by the provider's account with its external id. The local runtime checks the
subscriber's reads and the provider's writes against them."""

from __future__ import annotations

from typing import Any

from pipeline.config import Config, SubscriberConfig
from pipeline.iam import PIPELINE_ROLE_POLICY, render_policies
from pipeline.local.identity import ASSUME_ROLE, EXTERNAL_ID_KEY, Principal
from scripts.ocsf.layout import CUSTOM_SOURCE_PREFIX

# What Security Lake grants a subscriber of the VPC_FLOW and ROUTE53 sources: the same reads the pipeline role gets
# when the lake is in its own account (config/iam/pipeline-role-policy.json's statements of these names).
LAKE_READ_STATEMENTS = ("ReadSecurityLakeSources", "ListSecurityLakeSources")


def trusted_with_external_id(subscriber_account: str, external_id: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TheSubscriberAccountWithItsExternalId",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{subscriber_account}:root"},
                "Action": ASSUME_ROLE,
                "Condition": {"StringEquals": {EXTERNAL_ID_KEY: external_id}},
            }
        ],
    }


def subscriber_role_policy(config: Config) -> dict[str, Any]:
    """The subscriber role's reads of the lake (rendered for the lake's buckets, as for a role of the lake account)."""
    in_lake_account = config.model_copy(
        update={"lake": config.lake.model_copy(update={"subscriber": SubscriberConfig()})}
    )
    policy = render_policies(in_lake_account)[PIPELINE_ROLE_POLICY]
    return {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") in LAKE_READ_STATEMENTS]}


def subscriber_principal(config: Config) -> Principal:
    """The subscriber role in the lake's account, with its policy and trust."""
    subscriber = config.lake.subscriber
    return Principal(
        subscriber.role_arn,
        [subscriber_role_policy(config)],
        subscriber.lake_account,
        config.aws.region,
        trust=trusted_with_external_id(config.aws.account_id, subscriber.external_id),
    )


def provider_role_arn(config: Config) -> str:
    """The provider role CreateCustomLogSource creates in the lake's account for the findings' source."""
    name = f"AmazonSecurityLake-Provider-{config.findings.source_name}-{config.aws.region}"
    return f"arn:aws:iam::{config.lake_account}:role/{name}"


def provider_principal(config: Config, role_arn: str, bucket: str) -> Principal:
    """The provider role: writes under ext/<source>/ of the lake's bucket, trusted by the provider's account."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteTheCustomSource",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{CUSTOM_SOURCE_PREFIX}/{config.findings.source_name}/*",
            }
        ],
    }
    writer = config.findings.provider_principal or config.aws.account_id
    trust = trusted_with_external_id(writer, config.findings.external_id)
    return Principal(role_arn, [policy], config.lake_account, config.aws.region, trust=trust)
