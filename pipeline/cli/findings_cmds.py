"""`seclake findings` and `seclake findings-source create | show`: the findings as a Security Lake custom source."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline import aws_ops
from pipeline.artifact_store import put_artifact
from pipeline.cli.context import config_of, console
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.findings_source import create_custom_source, load_record, local_source, save_record
from scripts.handoff.artifacts import ArtifactLayout
from scripts.handoff.verdicts import BENIGN, VERDICTS, Verdict, VerdictError
from scripts.lakequery.athena import AthenaQueryError, QueryTarget
from scripts.monitor.findings import finding_pairs
from scripts.ocsf.layout import custom_source_table

SHOWN_UID = 12  # the digits of a finding's id `seclake findings` shows (`verdict` takes 8 or more)
CLI_SOURCE = "seclake findings verdict"
source_app = typer.Typer(help="The findings as a Security Lake custom source.", no_args_is_help=True)
findings_app = typer.Typer(
    help="Recent findings as incidents; `verdict` records an analyst's decision on one.", invoke_without_command=True
)


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


@findings_app.callback()
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
    if ctx.invoked_subcommand is not None:
        return
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
    target = _target(config)
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
    decided = _verdicts(config, [row.uid for row in rows], athena)
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
            if row.uid in decided:
                status += f" [{decided[row.uid].verdict}: {decided[row.uid].note or 'no note'}]"
            console.print(
                f"  - {row.uid[:SHOWN_UID]} {row.time} {row.entity} -> {row.ip}{status}: {row.why}", highlight=False
            )
    console.print(
        "record a decision: seclake findings verdict ID true-positive|benign --note TEXT (the next run learns it)"
    )


def _verdicts(config: Config, uids: list[str], aws: bool) -> dict[str, Verdict]:
    """The analysts' latest verdicts on these findings, to mark them in the listing."""
    from pipeline.verdict_store import bucket_verdicts, local_verdicts

    if not aws:
        return local_verdicts(config, uids)
    with aws_ops.readable_aws_errors(config):
        return bucket_verdicts(config, aws_ops.aws_session(config).client("s3", region_name=config.aws.region), uids)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container with no user name
        return ""


def _target(config: Config) -> QueryTarget:
    return QueryTarget(
        config.lake.athena.workgroup,
        config.athena_database,
        config.lake.athena.catalog,
        ArtifactLayout(config.aws.artifact_uri).athena_results,
    )


@findings_app.command("verdict")
def verdict(
    ctx: typer.Context,
    finding: Annotated[str, typer.Argument(help="The finding's id, or its first digits as `seclake findings` shows")],
    decision: Annotated[str, typer.Argument(metavar="true-positive|benign", help="What the finding was")],
    note: Annotated[str, typer.Option(help="Why: what the analyst found (kept with the verdict).")] = "",
    author: Annotated[str | None, typer.Option(help="Who decided; default: this machine's user.")] = None,
    aws: Annotated[
        bool,
        typer.Option(help="Find the finding with Athena in your account and write to the artifact bucket."),
    ] = False,
) -> None:
    """Record an analyst's verdict on one finding where the next pipeline run reads it: a benign finding's pairs
    become known to the detector, a true positive's never join its history; the evaluation reports the production
    precision of the verdicts of the last days. In AWS, Security Hub's workflow (RESOLVED, SUPPRESSED) does the same."""
    from pipeline.findings_view import finding_by_uid

    if decision not in VERDICTS:
        message = f"verdict {decision!r}: give one of {', '.join(VERDICTS)}"
        raise UserError(message)
    config = config_of(ctx)
    table = custom_source_table(config.aws.region, config.findings.source_name)
    if not aws and not _local_table_exists(config, table):
        message = f"no findings under {config.home / 's3'}: `seclake run` (or `seclake monitor`) writes them"
        raise UserError(message)
    try:
        with _athena(config, aws) as client:
            row, evidence = finding_by_uid(client, _target(config), table, finding.strip().lower())
    except (LookupError, ValueError, AthenaQueryError) as error:
        raise UserError(str(error)) from error
    pairs = finding_pairs(row.entity, row.ip, evidence)
    if not pairs:
        message = (
            f"finding {row.uid} is a fleet change written before findings named their members' entities: record "
            "verdicts on its workloads' own findings, or on a later run's"
        )
        raise UserError(message)
    try:
        recorded = Verdict.of(
            row.uid,
            decision,
            row.day,
            row.account,
            pairs,
            dt.datetime.now(dt.UTC),
            author=author if author is not None else _user(),
            note=note,
            source=CLI_SOURCE,
        )
    except VerdictError as error:
        raise UserError(str(error)) from None
    uri = ArtifactLayout(config.aws.artifact_uri).verdict(recorded.file_name)
    put_artifact(config, uri, recorded.dumps().encode(), aws)
    learns = "known to the detector" if decision == BENIGN else "kept out of the detector's history"
    console.print(
        f"finding {row.uid} ({row.entity} -> {row.ip}, {row.day}): {decision}, {len(recorded.pairs)} pairs; "
        f"written to {uri}. The next pipeline run makes them {learns}.",
        highlight=False,
        soft_wrap=True,
    )
