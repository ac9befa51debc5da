"""`seclake definition | upsert | execute | schedule | status`: the SageMaker pipeline from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline import aws_ops
from pipeline.cli.context import config_of, console
from pipeline.config import AWS_PROFILE
from pipeline.definition import definition_json


def definition(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of standard output.")] = None,
) -> None:
    """Print the pipeline definition JSON. Offline: no network, no credentials; the same inputs give the same bytes."""
    text = definition_json(config_of(ctx, AWS_PROFILE))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"wrote {out} ({len(text):,} bytes)")


def upsert(ctx: typer.Context) -> None:
    """Upload the job code (content-addressed) and create or update the pipeline with its role and tags."""
    config = config_of(ctx, AWS_PROFILE)
    with aws_ops.readable_aws_errors(config):
        response = aws_ops.upsert(config, aws_ops.aws_session(config))
    console.print(f"pipeline {config.pipeline.name}: {response.get('PipelineArn', response)}")


def execute(
    ctx: typer.Context,
    param: Annotated[list[str] | None, typer.Option("--param", help="Name=Value, repeatable.")] = None,
    wait: Annotated[bool, typer.Option(help="Stream step statuses until the execution ends.")] = False,
) -> None:
    """Start an execution, optionally waiting and showing each step's status."""
    config = config_of(ctx, AWS_PROFILE)
    with aws_ops.readable_aws_errors(config):
        session = aws_ops.aws_session(config)
        arn = aws_ops.start_execution(config, session, aws_ops.parse_parameters(param or []))
        console.print(f"started {arn}")
        if not wait:
            return
        with console.status("waiting") as status:

            def show(state: str, steps: list[aws_ops.StepStatus]) -> None:
                done = ", ".join(f"{s.name}: {s.status}" for s in reversed(steps)) or "no step details"
                status.update(f"{state} - {done}")

            final = aws_ops.wait_for_execution(session, arn, show)
    console.print(f"execution {final}")
    if final != "Succeeded":
        raise typer.Exit(1)


def schedule(
    ctx: typer.Context,
    cron: Annotated[str | None, typer.Option(help="EventBridge cron: 'MIN HOUR DOM MON DOW YEAR'.")] = None,
    rate: Annotated[str | None, typer.Option(help="EventBridge rate: 'VALUE UNIT', e.g. '1 day'.")] = None,
    disable: Annotated[bool, typer.Option(help="Delete the schedule.")] = False,
) -> None:
    """Create, update or delete the EventBridge schedule that starts the pipeline."""
    config = config_of(ctx, AWS_PROFILE)
    with aws_ops.readable_aws_errors(config):
        console.print(aws_ops.schedule(config, aws_ops.aws_session(config), cron, rate, disable))


def status(ctx: typer.Context) -> None:
    """Recent executions of the pipeline."""
    config = config_of(ctx, AWS_PROFILE)
    with aws_ops.readable_aws_errors(config):
        executions = aws_ops.recent_executions(config, aws_ops.aws_session(config))
    table = Table(title=f"Executions of {config.pipeline.name}")
    for column in ("started", "status", "execution"):
        table.add_column(column)
    for item in executions:
        table.add_row(
            str(item.get("StartTime", "")),
            str(item.get("PipelineExecutionStatus", "")),
            str(item.get("PipelineExecutionArn", "")).rsplit("/", 1)[-1],
        )
    console.print(table)


def iam(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder for the rendered policy documents.")] = Path("iam-policies"),
) -> None:
    """Write the pipeline and scheduler role policies (config/iam templates) filled in from your config."""
    import json

    from pipeline.iam import render_policies

    out.mkdir(parents=True, exist_ok=True)
    for name, document in render_policies(config_of(ctx, AWS_PROFILE)).items():
        (out / name).write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"wrote {out / name}")
