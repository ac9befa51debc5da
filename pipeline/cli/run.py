"""`seclake run`: the main job. Sample lake if needed, the pipeline definition executed locally, the last day scored."""

from __future__ import annotations

import json
import time

import typer
from rich.live import Live
from rich.table import Table

from pipeline.cli.context import config_of, console
from pipeline.cli.lake import generation_options, print_summary, run_generation
from pipeline.errors import UserError
from pipeline.javacheck import java_problem
from pipeline.local.executor import STATE_FILE
from pipeline.local.run_definition import execute_locally, lake_parameters
from pipeline.local.state import Store
from pipeline.samplelake.summary import summarise_lake


def _steps_table(statuses: dict[str, tuple[str, float]]) -> Table:
    table = Table(title="Pipeline steps (local runtime)")
    table.add_column("step")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    colours = {"Succeeded": "green", "Failed": "red", "Executing": "yellow"}
    for step, (status, started) in statuses.items():
        elapsed = f"{time.monotonic() - started:.0f}" if status == "Executing" else ""
        table.add_row(step, f"[{colours.get(status, 'white')}]{status}[/]", elapsed)
    return table


def run(ctx: typer.Context) -> None:
    """The local end-to-end run: sample lake if empty, the SageMaker definition executed here, the last day scored."""
    started = time.monotonic()
    config = config_of(ctx)
    problem = java_problem()
    if problem is not None:
        raise UserError(problem)
    summary = summarise_lake(config.home)
    if summary.empty:
        options = generation_options(config)
        console.print(
            f"no local lake under {config.home / 's3'}: generating the sample lake "
            f"({options.days} days x {options.events_per_day:,} flow rows, "
            f"source version {options.source_version})"
        )
        run_generation(options, force=False)
        summary = summarise_lake(config.home)
    print_summary(summary)
    parameters = lake_parameters(summary)
    console.print(f"executing the pipeline definition locally: {json.dumps(parameters)}", highlight=False)
    statuses: dict[str, tuple[str, float]] = {}
    with Live(_steps_table(statuses), console=console, refresh_per_second=2) as live:

        def on_step(step: str, status: str) -> None:
            statuses[step] = (status, statuses.get(step, (status, time.monotonic()))[1])
            live.update(_steps_table(statuses))

        result = execute_locally(config, summary, on_step=on_step)
    console.print(
        f"execution {result.execution}: {result.status}" + (f" - {result.failure}" if result.failure else ""),
        highlight=False,
    )
    store = Store(config.home / STATE_FILE)
    package = next(iter(store.model_packages(config.pipeline.model_package_group)), None)
    metrics = json.loads(package["metrics"]) if package and package["metrics"] else {}
    auc = metrics.get("binary_classification_metrics", {}).get("auc", {}).get("value")
    threshold = metrics.get("seclake", {}).get("threshold", {}).get("dot_product")
    report = (
        config.home
        / "s3"
        / config.aws.artifact_bucket
        / config.aws.artifact_prefix
        / "runs"
        / result.execution
        / "evaluation"
        / "report.html"
    )
    console.print(
        f"eval-set ROC AUC {auc:.4f}, threshold dot_product < {threshold:.4g}; report: {report}"
        if isinstance(auc, float) and isinstance(threshold, float)
        else "no evaluation was registered"
    )
    endpoint = store.endpoint(config.pipeline.endpoint_name)
    if result.status == "Succeeded" and endpoint and isinstance(threshold, float):
        from pipeline.local.score_day import score_day
        from scripts.pairs.mapping import Algorithm

        scored = score_day(
            config.home, str(parameters["EndDay"]), endpoint, threshold, config.preprocess.mapping, Algorithm.BUILTIN
        )
        table = Table(title=f"Findings on {scored.day} (dot_product < {threshold:.4g}), most anomalous first")
        for column in ("entity", "ip", "dot_product"):
            table.add_column(column)
        for entity, ip, score in scored.flagged[:15]:
            table.add_row(entity, ip, f"{score:.3f}")
        console.print(table)
        console.print(
            f"{scored.pairs:,} distinct pairs scored through endpoint {endpoint['name']} ({endpoint['url']});"
            f" {len(scored.flagged):,} findings; against the {scored.labelled} injected anomalous pairs: "
            f"precision {scored.precision:.3f}, recall {scored.recall:.3f}"
        )
    console.print(
        f"done in {time.monotonic() - started:.0f} s. Inspect: seclake executions; "
        f"seclake execution show {result.execution}; seclake models list"
    )
    if result.status != "Succeeded":
        raise typer.Exit(1)
