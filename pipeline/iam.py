"""Render the IAM policy templates in config/iam with the values of a configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pipeline.config import CONFIG_DIR, Config

IAM_DIR = CONFIG_DIR / "iam"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def template_values(config: Config) -> dict[str, str]:
    first_root = config.aws.lake_roots.split(",")[0].strip()
    return {
        "account_id": config.aws.account_id,
        "region": config.aws.region,
        "lake_bucket": first_root.removeprefix("s3://").split("/")[0],
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
        rendered[path.name] = json.loads(_PLACEHOLDER.sub(lambda m: values[m.group(1)], text))
    return rendered


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
