"""`seclake monitor`: feed local lake objects to the monitoring Lambda's handler, as SQS would deliver them."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.context import config_of, console, styled
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.findings_source import load_record, local_source
from pipeline.local.executor import STATE_FILE
from pipeline.local.monitor_identity import checked_resources, monitor_identity
from pipeline.local.s3map import local_lake_buckets
from pipeline.local.state import Store

if TYPE_CHECKING:
    from scripts.monitor.resources import MonitorResources

MONITOR_STATE_FILE = "monitor-state.sqlite"  # the local stand-in for the DynamoDB state table
SUPPRESSIONS_FILE = "suppressions.sqlite"  # the local stand-in for the DynamoDB suppression rules table


def sqs_event(objects: list[tuple[str, str]], start: int = 0) -> dict[str, Any]:
    """An SQS batch whose bodies are JSON strings holding S3 object-created notifications, as Security Lake sends."""
    records = []
    for position, (bucket, key) in enumerate(objects, start):
        body = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
                }
            ]
        }
        records.append({"messageId": f"local-{position:08d}", "body": json.dumps(body), "eventSource": "aws:sqs"})
    return {"Records": records}


def lake_objects(home: Path, day: str | None) -> list[tuple[str, str]]:
    lake = home / "s3"
    pattern = f"aws-security-data-lake-*/aws/*/*/region=*/accountId=*/eventDay={day or '*'}/*.parquet"
    return [(p.relative_to(lake).parts[0], "/".join(p.relative_to(lake).parts[1:])) for p in sorted(lake.glob(pattern))]


def local_resources(config: Config) -> MonitorResources:
    """The monitor's resources for local replay: the local lake folder, the local endpoint (its current config names
    the deployed execution, as DescribeEndpoint does in AWS), a SQLite state table, the registered findings source."""
    from scripts.monitor.resources import folder_resources
    from scripts.monitor.settings import Settings

    store = Store(config.home / STATE_FILE)
    name = config.pipeline.endpoint_name

    def endpoint() -> dict[str, Any]:
        found = store.endpoint(name)
        if found is None or found["status"] != "InService":
            message = f"no local endpoint {name!r} in service; run `seclake run` first"
            raise UserError(message)
        return found

    # the registered custom source (its location and provider role); unregistered, the one the local lake would get
    recorded = load_record(config) or local_source(config)
    settings = Settings(
        endpoint=name,
        artifact_uri=config.aws.artifact_uri,
        findings_uri=recorded.location,
        detector=config.detection.enabled,
        findings_role_arn=recorded.provider_role_arn or None,
        findings_external_id=config.findings.external_id,
        lake_role_arn=config.lake.subscriber.role_arn or None,
        lake_external_id=config.lake.subscriber.external_id or None,
        trusted_lists=tuple(config.detection.trusted_lists),
        threat_lists=tuple(config.detection.threat_lists),
        suppression_db=str((config.home / SUPPRESSIONS_FILE).resolve()),
    )
    root = (config.home / "s3").resolve()
    resources = folder_resources(
        settings,
        root,
        str(endpoint()["url"]),
        lambda: str(endpoint()["config_name"]),
        state_db=(config.home / MONITOR_STATE_FILE).resolve(),
        region=config.aws.region,
    )
    # as the function's role, the subscriber role and the provider role the template and Security Lake set up
    buckets = local_lake_buckets(root)
    lake = [folder.name for _, folder in buckets]
    home = next((folder.name for region, folder in buckets if region == config.aws.region), "")
    findings = settings.findings_uri.removeprefix("s3://").split("/")[0] if settings.findings_uri else home
    identity = monitor_identity(config, lake, findings, settings.findings_role_arn or "")
    return checked_resources(resources, identity, config)


def replay(config: Config, objects: list[tuple[str, str]]) -> tuple[list[str], list[Any]]:
    """Run the handler's logic over the objects in SQS-sized batches (10 messages)."""
    import logging

    from scripts.monitor.events import parse_batch
    from scripts.monitor.handler import handle_messages

    for logger in ("seclake.monitor", "seclake.metrics", "botocore"):
        logging.getLogger(logger).setLevel(logging.WARNING)  # the CLI prints its own per-object table
    resources = local_resources(config)
    failures: list[str] = []
    reports: list[Any] = []
    for start in range(0, len(objects), 10):
        failed, done = handle_messages(parse_batch(sqs_event(objects[start : start + 10], start)), resources)
        failures += failed
        reports += done
    return failures, reports


def monitor(
    ctx: typer.Context,
    replay_day: Annotated[str | None, typer.Option(help="Score every object of this event day (YYYYMMDD).")] = None,
    watch: Annotated[bool, typer.Option(help="Keep scoring objects as they appear in the local lake.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks with --watch.")] = 10.0,
) -> None:
    """Score local lake objects through the monitoring handler and the local endpoint; findings go to ext/."""
    config = config_of(ctx)
    if (replay_day is None) == (not watch):
        message = "give --replay-day YYYYMMDD or --watch"
        raise UserError(message)
    if replay_day is not None and not _is_day(replay_day):
        message = (
            f"--replay-day {replay_day!r} is not a day: give it as YYYYMMDD (e.g. 20261205), the eventDay partition"
        )
        raise UserError(message)
    seen: set[tuple[str, str]] = set() if replay_day else set(lake_objects(config.home, None))
    while True:
        objects = [o for o in lake_objects(config.home, replay_day) if o not in seen]
        if objects:
            failures, reports = replay(config, objects)
            seen.update(objects)
            table = Table(title=f"{len(objects)} objects scored")
            for column in ("object", "rows", "pairs", "findings"):
                table.add_column(column)
            for report in reports:
                table.add_row(
                    report.key.rsplit("/", 3)[-3] + "/.../" + report.key.rsplit("/", 1)[-1][:8],
                    f"{report.rows:,}",
                    f"{report.pairs:,}",
                    str(len(report.findings)),
                )
            console.print(table)
            if failures:
                console.print(styled(f"{len(failures)} messages failed", "red", f": {', '.join(failures)}"))
        elif replay_day is not None:
            where = config.home / "s3"
            console.print(f"no lake objects of eventDay={replay_day} under {where}; `seclake lake summary` lists days")
        if not watch:
            return
        time.sleep(interval)


def _is_day(text: str) -> bool:
    try:
        dt.datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return len(text) == 8


def package_monitor(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = Path("monitor.zip"),
) -> None:
    """Build the monitor Lambda's zip (handler scripts.monitor.handler.handler; pyarrow from the pandas layer)."""
    from pipeline.monitor_package import monitor_zip

    body = monitor_zip()
    out.write_bytes(body)
    console.print(f"wrote {out} ({len(body):,} bytes); deploy with config/cloudformation/monitor.yaml")
