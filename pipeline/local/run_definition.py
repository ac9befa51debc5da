"""Prepare and execute the project's own definition locally: code into local S3, parameters from the local lake."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.code_bundle import code_objects, object_uri, standing_objects
from pipeline.config import Config
from pipeline.definition import definition_json
from pipeline.iam import PIPELINE_ROLE_POLICY, lake_buckets, render_policies
from pipeline.local.executor import ExecutionResult, LocalExecutor
from pipeline.local.identity import Identity, Principal
from pipeline.local.s3map import S3Map
from pipeline.local.security_lake import subscriber_principal
from pipeline.samplelake.summary import LakeSummary
from pipeline.source_plan import SourcePlan, plan_sources
from scripts.handoff.artifacts import ArtifactLayout
from scripts.ocsf.schemas import Source


def stage_code(config: Config, home: Path) -> None:
    """What `upsert` uploads to S3, written to local S3."""
    s3 = S3Map(home / "s3")
    for code in code_objects().values():
        s3.put_bytes(object_uri(config.aws.artifact_uri, code), code.body)
    for uri, body in standing_objects(config.aws.artifact_uri).items():
        if not s3.to_local(uri).exists():
            s3.put_bytes(uri, body)


def lake_days(summary: LakeSummary) -> list[str]:
    return sorted({day for source in summary.sources for day in source.days})


def lake_parameters(summary: LakeSummary) -> dict[str, Any]:
    """LakeRoots, EndDay and LookbackDays: every day of the local lake but the last, which is left for the monitor
    to score as new traffic (as the scheduled pipeline trains on yesterday and before while today's logs arrive);
    a lake of two days or less is used whole."""
    buckets = sorted({path.name for path in (summary.root / "s3").glob("aws-security-data-lake-*")})
    days = lake_days(summary)
    window = days[:-1] if len(days) >= 3 else days
    return {
        "LakeRoots": ",".join(f"s3://{bucket}" for bucket in buckets),
        "EndDay": window[-1],
        "LookbackDays": len(window),
    }


def lake_sources(summary: LakeSummary) -> set[Source]:
    """The native sources the lake has objects of."""
    names = {source.value for source in Source}
    return {Source(s.source) for s in summary.sources if s.files and s.source in names}


def source_plan(config: Config, summary: LakeSummary, requested: list[Source] | None = None) -> SourcePlan:
    """The sources to read: those requested by name (each required), else the configured ones the lake has."""
    configured = requested or [Source(name.upper()) for name in config.lake.sources]
    return plan_sources(configured, lake_sources(summary), explicit=requested is not None)


def account_identity(config: Config, lake_roots: str) -> Identity:
    """The accounts as `seclake iam` would set them up for these lake roots: the pipeline role and its policy; the
    lake's buckets owned by the lake's account and, when that is another account, the subscriber role Security Lake
    created there (its policy and its trust of this account with the external id)."""
    scoped = config.model_copy(update={"aws": config.aws.model_copy(update={"lake_roots": lake_roots})})
    policy = render_policies(scoped)[PIPELINE_ROLE_POLICY]
    role = config.aws.role_arn
    principals = {role: Principal(role, [policy], config.aws.account_id, config.aws.region)}
    if config.lake.subscriber.enabled:
        principals[config.lake.subscriber.role_arn] = subscriber_principal(scoped)
    owners = dict.fromkeys(lake_buckets(scoped), config.lake_account)
    owners[config.aws.artifact_bucket] = config.aws.account_id
    return Identity(principals, pipeline_role=role, bucket_owners=owners)


def execute_locally(
    config: Config,
    summary: LakeSummary,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] = lambda line: None,
    on_step: Callable[[str, str], None] = lambda step, status: None,
    identity: Identity | None = None,
) -> ExecutionResult:
    """Build the definition as SageMaker would get it, stage the code, and run it here as the account's roles
    (`identity`, by default the roles `seclake iam` generates for this lake) with their policies enforced."""
    home = config.home
    stage_code(config, home)
    definition = json.loads(definition_json(config))
    parameters = {**lake_parameters(summary), "Sources": source_plan(config, summary).parameter, **(overrides or {})}
    identity = identity or account_identity(config, str(parameters["LakeRoots"]))
    executor = LocalExecutor(home, log=log, on_step=on_step, identity=identity)
    return executor.execute(definition, config.pipeline.name, parameters)


def run_output(config: Config, execution: str, *parts: str) -> Path:
    """A file an execution wrote under s3://<artifacts>/runs/<execution>/..., in local S3."""
    return S3Map(config.home / "s3").to_local(ArtifactLayout(config.aws.artifact_uri).run(execution, *parts))
