"""`seclake findings` and `seclake findings-source create | show`: the findings as a Security Lake custom source."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline import aws_ops
from pipeline.cli.context import config_of, console
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.findings_source import create_custom_source, load_record, local_source, save_record
from scripts.handoff.artifacts import ArtifactLayout
from scripts.lakequery.athena import AthenaQueryError, QueryTarget
from scripts.ocsf.layout import custom_source_table

source_app = typer.Typer(help="The findings as a Security Lake custom source.", no_args_is_help=True)


@source_app.command("create")
def create(
    ctx: typer.Context,
    local: Annotated[bool, typer.Option(help="Record the local lake's ext/<source>/ instead of calling AWS.")] = False,
) -> None:
    """Register the findings with Security Lake (CreateCustomLogSource, DETECTION_FINDING) and record the location
    it returns, where the monitor then writes."""
    config = config_of(ctx)
    if local:
        source = local_source(config)
    else:
        with aws_ops.readable_aws_errors(config):
            client = aws_ops.aws_session(config).client("securitylake", region_name=config.aws.region)
            source = create_custom_source(config, client)
    path = save_record(config, source)
    console.print(f"custom source {source.source_name}: findings go to {source.location} (recorded in {path})")
    if source.provider_role_arn:
        console.print(
            "deploy config/cloudformation/monitor.yaml with "
            f"CustomSourceName={source.source_name} FindingsLocation={source.location} "
            f"FindingsProviderRoleArn={source.provider_role_arn} FindingsExternalId={source.external_id}",
            highlight=False,
        )


@source_app.command("show")
def show(ctx: typer.Context) -> None:
    """The recorded custom source: where the monitor writes findings."""
    config = config_of(ctx)
    source = load_record(config)
    if source is None:
        console.print("no custom source recorded: run `seclake findings-source create` (or with --local)")
        return
    for name, value in source.monitor_environment().items():
        typer.echo(f"{name}={value}")  # plain lines, for `export $(seclake findings-source show)`


@contextlib.contextmanager
def _athena(config: Config, aws: bool) -> Iterator[Any]:
    """An Athena client: AWS's, or the local Athena over the local lake."""
    if aws:
        with aws_ops.readable_aws_errors(config):
            yield aws_ops.aws_session(config).client("athena", region_name=config.aws.region)
        return
    from pipeline.local.athena import local_athena, local_client

    with local_athena(config.home / "s3") as (endpoint, _):
        yield local_client(endpoint, config.aws.region)


def _local_table_exists(config: Config, table: str) -> bool:
    """Whether the local lake holds the findings' custom source table (it exists once the monitor wrote a finding)."""
    from pipeline.local.athena import local_catalog

    return any(t.database == config.athena_database and t.name == table for t in local_catalog(config.home / "s3"))


def findings(
    ctx: typer.Context,
    entity: Annotated[
        str | None, typer.Option(help="Only this workload (an instance or ENI id, or a whole entity).")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Only this 12-digit account.")] = None,
    day: Annotated[str | None, typer.Option(help="Only this event day, YYYYMMDD.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    athena: Annotated[
        bool, typer.Option(help="Query the registered custom source's table with Athena in your account.")
    ] = False,
) -> None:
    """Recent findings as incidents (one workload's findings of a day; a fleet change alone), newest first, each
    finding with why: the custom source's table, through Athena (or the local lake's)."""
    from pipeline.findings_view import recent_findings
    from pipeline.incidents import incidents

    config = config_of(ctx)
    table = custom_source_table(config.aws.region, config.findings.source_name)
    if not athena and not _local_table_exists(config, table):
        console.print(
            f"no findings yet under {config.home / 's3'}: `seclake run` (or `seclake monitor`) writes them",
            highlight=False,
            soft_wrap=True,
        )
        return
    target = QueryTarget(
        config.lake.athena.workgroup,
        config.athena_database,
        config.lake.athena.catalog,
        ArtifactLayout(config.aws.artifact_uri).athena_results,
    )
    try:
        with _athena(config, athena) as client:
            rows = recent_findings(client, target, table, entity, account, day, limit)
    except AthenaQueryError as error:
        if athena:
            message = (
                f"no findings table {target.database}.{table} in the custom source's table (run `seclake run` or "
                f"`seclake monitor` first, and `seclake findings-source create`): {error}"
            )
        else:  # the findings' files are there (checked above): one of them cannot be read
            message = (
                f"the findings under {config.home / 's3'} could not be read: {error}. A damaged findings file is "
                "named in the error: remove it, or write its day again with `seclake monitor --replay-day YYYYMMDD`"
            )
        raise UserError(message) from error
    except ValueError as error:
        raise UserError(str(error)) from error
    if not rows:
        filters = ", ".join(f"{k} {v}" for k, v in (("entity", entity), ("account", account), ("day", day)) if v)
        console.print(f"no findings match {filters}" if filters else "no findings yet")
        return
    grouped = incidents(rows)
    grid = Table(title=f"Incidents in {target.database}.{table} (one workload's findings of a day), newest first")
    for column in ("first (UTC)", "severity", "account", "workload", "findings", "addresses"):
        grid.add_column(column)
    for incident in grouped:
        first = incident.first
        grid.add_row(
            first.time,
            incident.severity,
            incident.account,
            incident.workload,
            str(len(incident.findings)),
            incident.addresses,
        )
    console.print(grid)
    for incident in grouped:
        console.print(f"{incident.workload} on {incident.day} ({incident.severity}):", highlight=False)
        for row in incident.findings:
            status = "" if row.status == "New" else f" [{row.status}]"
            console.print(f"  - {row.time} {row.entity} -> {row.ip}{status}: {row.why}", highlight=False)
