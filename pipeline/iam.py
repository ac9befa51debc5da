"""Render the IAM policy templates in config/iam with the values of a configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pipeline.config import CONFIG_DIR, Config
from scripts.ocsf.layout import glue_database

IAM_DIR = CONFIG_DIR / "iam"
PIPELINE_ROLE_POLICY = "pipeline-role-policy.json"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def lake_buckets(config: Config) -> list[str]:
    """Every bucket of aws.lake_roots (a Security Lake has one per region), in order, once each."""
    buckets = [root.strip().removeprefix("s3://").split("/")[0] for root in config.aws.lake_roots.split(",")]
    return list(dict.fromkeys(bucket for bucket in buckets if bucket))


def shared_lake_tables(config: Config) -> list[str]:
    """A query-access subscriber's Glue resources in the lake's account, behind its resource links: Security Lake's
    database of the region and its tables (none when the lake is in this account)."""
    subscriber = config.lake.subscriber
    if not subscriber.enabled:
        return []
    database = glue_database(config.aws.region)
    prefix = f"arn:aws:glue:{config.aws.region}:{subscriber.lake_account}"
    return [f"{prefix}:catalog", f"{prefix}:database/{database}", f"{prefix}:table/{database}/*"]


def template_values(config: Config) -> dict[str, str | list[str]]:
    """Each placeholder's value; a list (the lake buckets) makes one resource per item wherever it is used, and an
    empty list leaves its statement out. A subscriber reads the lake's objects through the role it assumes: this
    account's roles are then granted that assumption instead of the lake's buckets."""
    subscriber = config.lake.subscriber
    return {
        "account_id": config.aws.account_id,
        "region": config.aws.region,
        "lake_bucket": lake_buckets(config),
        "readable_lake_bucket": [] if subscriber.enabled else lake_buckets(config),
        "subscriber_role_arn": [subscriber.role_arn] if subscriber.enabled else [],
        "shared_lake_tables": shared_lake_tables(config),
        "kms_key_arn": config.aws.kms_keys,
        "artifact_bucket": config.aws.artifact_bucket,
        "artifact_prefix": config.aws.artifact_prefix,
        "role_name": config.aws.role_name,
        "job_prefix": config.pipeline.job_prefix,
        "model_package_group": config.pipeline.model_package_group,
        "endpoint_name": config.pipeline.endpoint_name,
        "pipeline_name": config.pipeline.name,
        "athena_workgroup": config.lake.athena.workgroup,
        "athena_database": config.athena_database,
        "findings_source_name": config.findings.source_name,
    }


def _fill(text: str, values: dict[str, str | list[str]]) -> list[str]:
    """One string per combination of the list values it uses (in practice: one per lake bucket)."""
    filled = [text]
    for name in dict.fromkeys(_PLACEHOLDER.findall(text)):
        value = values[name]
        choices = value if isinstance(value, list) else [value]
        filled = [item.replace(f"{{{{{name}}}}}", choice) for item in filled for choice in choices]
    return filled


def _render(node: Any, values: dict[str, str | list[str]]) -> Any:
    """A policy with its placeholders filled: a string that expands to several becomes several list items (or a list
    where it stood alone)."""
    if isinstance(node, dict):
        return {key: _render(value, values) for key, value in node.items()}
    if isinstance(node, list):
        items: list[Any] = []
        for item in node:
            items.extend(_fill(item, values) if isinstance(item, str) else [_render(item, values)])
        return items
    if isinstance(node, str):
        filled = _fill(node, values)
        return filled[0] if len(filled) == 1 else filled
    return node


def render_policies(config: Config, directory: Path = IAM_DIR) -> dict[str, dict[str, Any]]:
    """Every template filled in; a placeholder without a value is an error naming it."""
    values = template_values(config)
    rendered = {}
    for path in sorted(directory.glob("*.json")):
        text = path.read_text()
        missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
        if missing:
            message = f"{path} uses placeholders with no value: {', '.join(missing)}"
            raise ValueError(message)
        rendered[path.name] = _without_empty_statements(_render(json.loads(text), values))
    return rendered


def _without_empty_statements(policy: dict[str, Any]) -> dict[str, Any]:
    """A statement whose resources all came from an empty list (no customer-managed keys configured) is left out."""
    if "Statement" not in policy:
        return policy
    statements = [s for s in policy["Statement"] if s.get("Resource", "*") != []]
    return {**policy, "Statement": statements}


def wildcard_grants(policy: dict[str, Any]) -> list[str]:
    """Statements that allow a `*` action, or any action on `*` resources without being a documented exception."""
    problems = []
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(a == "*" or a.endswith(":*") for a in actions):
            problems.append(f"{statement.get('Sid', '?')}: wildcard action {actions}")
        if "*" in resources and any(a == "*" or a.endswith(":*") for a in actions):
            problems.append(f"{statement.get('Sid', '?')}: every action on every resource")
    return problems
