"""`seclake monitor`: feed local lake objects to the monitoring Lambda's handler, as SQS would deliver them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.context import config_of, console
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.findings_source import load_record
from pipeline.local.executor import STATE_FILE
from pipeline.local.state import Store
from scripts.layout import ArtifactLayout

MONITOR_STATE_FILE = "monitor-state.sqlite"  # the local stand-in for the DynamoDB state table


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


def configure_local_monitor(config: Config) -> dict[str, Any]:
    """The Lambda's environment, wired to the local endpoint, the local registry's model and local S3."""
    import os

    store = Store(config.home / STATE_FILE)
    endpoint = store.endpoint(config.pipeline.endpoint_name)
    if endpoint is None or endpoint["status"] != "InService":
        message = f"no local endpoint {config.pipeline.endpoint_name!r} in service; run `seclake run` first"
        raise UserError(message)
    execution = str(endpoint["config_name"]).removeprefix(f"{config.pipeline.endpoint_name}-")
    environment = {
        "ENDPOINT_NAME": config.pipeline.endpoint_name,
        "FINDINGS_URI": "",
        "SECLAKE_OBJECT_STORE_ROOT": str((config.home / "s3").resolve()),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": str(endpoint["url"]),
        "SECLAKE_EVALUATION_URI": ArtifactLayout(config.aws.artifact_uri).evaluation(execution),
        "SECLAKE_MODEL_VERSION": execution,
        "ARTIFACT_URI": config.aws.artifact_uri,
        "SECLAKE_STATE_DB": str((config.home / MONITOR_STATE_FILE).resolve()),
        "SECLAKE_DETECTOR": "on" if config.detection.enabled else "off",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "AWS_DEFAULT_REGION": config.aws.region,
    }
    recorded = load_record(config)
    if recorded is not None:  # the registered custom source's location (a local one has no provider role)
        environment.update(recorded.monitor_environment())
    os.environ.update(environment)
    import logging

    from scripts.monitor import handler

    logging.getLogger("seclake.monitor").setLevel(logging.WARNING)  # the CLI prints its own per-object table
    logging.getLogger("seclake.metrics").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)

    for name in ("SECLAKE_DETECTOR_URI", "SECLAKE_DETECTOR_FPR"):
        os.environ.pop(name, None)  # the deployed run's evaluation.json names its detector, fitted at its rate
    handler.model_threshold.cache_clear()
    handler.deployed_evaluation.cache_clear()
    handler.pair_rules.cache_clear()
    handler.evaluation_document.cache_clear()
    handler.detector_file.cache_clear()
    handler._clients.cache_clear()
    return environment


def replay(config: Config, objects: list[tuple[str, str]]) -> tuple[list[str], list[Any]]:
    """Run the handler over the objects in SQS-sized batches (10 messages)."""
    configure_local_monitor(config)
    from scripts.monitor.events import parse_batch
    from scripts.monitor.handler import _clients, handle_messages
    from scripts.monitor.settings import Settings
    from scripts.monitor.store import ObjectStore

    settings = Settings.from_environment()
    failures: list[str] = []
    reports: list[Any] = []
    for start in range(0, len(objects), 10):
        failed, done = handle_messages(
            parse_batch(sqs_event(objects[start : start + 10], start)), settings, ObjectStore(), _clients()[0]
        )
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
                console.print(f"[red]{len(failures)} messages failed[/]: {', '.join(failures)}")
        if not watch:
            return
        time.sleep(interval)


def package_monitor(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = Path("monitor.zip"),
) -> None:
    """Build the monitor Lambda's zip (handler scripts.monitor.handler.handler; pyarrow from the pandas layer)."""
    from pipeline.monitor_package import monitor_zip

    body = monitor_zip()
    out.write_bytes(body)
    console.print(f"wrote {out} ({len(body):,} bytes); deploy with config/cloudformation/monitor.yaml")
