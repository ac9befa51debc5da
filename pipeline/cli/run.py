"""`seclake run`: the main job. Sample lake if needed, the pipeline definition executed locally, the last day scored."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline.cli.context import config_of, console
from pipeline.cli.lake import generation_options, print_summary, run_generation
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.javacheck import java_problem
from pipeline.local.executor import CACHE_HIT_STATUS, STATE_FILE
from pipeline.local.run_definition import execute_locally, lake_days, lake_parameters, run_output, source_plan
from pipeline.local.state import Store
from pipeline.samplelake.labels import (
    AgainstLabels,
    benign_changes,
    judge_findings,
    labelled_kinds,
    labelled_pairs,
)
from pipeline.samplelake.summary import summarise_lake
from scripts.detect.fleet import SERVICE_MOVING_SEVERITY
from scripts.entity import base_entity
from scripts.handoff.artifacts import EVALUATION, EVALUATION_FILE, REPORT_FILE
from scripts.handoff.evaluation import read_evaluation
from scripts.monitor.findings import Finding
from scripts.window import parse_sources


def _steps_table(statuses: dict[str, tuple[str, float, float | None]]) -> Table:
    table = Table(title="Pipeline steps (local runtime)")
    table.add_column("step")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    colours = {"Succeeded": "green", CACHE_HIT_STATUS: "cyan", "Failed": "red", "Executing": "yellow"}
    for step, (status, started, ended) in statuses.items():
        elapsed = f"{(ended or time.monotonic()) - started:.0f}"
        table.add_row(step, Text(status, style=colours.get(status, "white")), elapsed)
    return table


def run(
    ctx: typer.Context,
    sources: Annotated[
        str | None,
        typer.Option(
            help="Read exactly these sources (vpc_flow,route53), each required; default: the configured sources the "
            "lake has"
        ),
    ] = None,
) -> None:
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
    try:
        requested = parse_sources(sources) if sources is not None else None
    except ValueError as error:
        raise UserError(str(error)) from error
    plan = source_plan(config, summary, requested)
    console.print(plan.line(), highlight=False)
    parameters = {**lake_parameters(summary), "Sources": plan.parameter}
    console.print(f"executing the pipeline definition locally: {json.dumps(parameters)}", highlight=False)
    statuses: dict[str, tuple[str, float, float | None]] = {}
    with Live(_steps_table(statuses), console=console, refresh_per_second=2) as live:

        def on_step(step: str, status: str) -> None:
            started = statuses[step][1] if step in statuses else time.monotonic()
            statuses[step] = (status, started, None if status == "Executing" else time.monotonic())
            live.update(_steps_table(statuses))

        result = execute_locally(config, summary, {"Sources": plan.parameter}, on_step=on_step)
    console.print(
        f"execution {result.execution}: {result.status}" + (f" - {result.failure}" if result.failure else ""),
        highlight=False,
    )
    store = Store(config.home / STATE_FILE)
    console.print(evaluation_summary(config, result.execution), highlight=False)
    endpoint = store.endpoint(config.pipeline.endpoint_name)
    if result.status == "Succeeded" and endpoint:
        score_last_day(config, lake_days(summary)[-1])
    console.print(
        f"done in {time.monotonic() - started:.0f} s. Inspect: seclake executions; "
        f"seclake execution show {result.execution}; seclake models list"
    )
    if result.status != "Succeeded":
        raise typer.Exit(1)


def evaluation_summary(config: Config, execution: str) -> str:
    """This execution's figures (not the last registered package's: a model below the gate is not registered)."""
    folder = run_output(config, execution, EVALUATION)
    if not (folder / EVALUATION_FILE).exists():
        return "no evaluation was written"
    evaluation = read_evaluation(folder)
    detection, auc = evaluation.seclake.detection, evaluation.auc
    parts = []
    if detection is not None:
        parts.append(
            f"detector on the held-out day: recall {detection.recall:.3f} on injected attacks, "
            f"{detection.alerts} alerts for {detection.workloads} workloads "
            f"({detection.alerts_per_1000_workloads:.1f} per 1,000); gate: {detection.gate or 'not judged'}"
        )
    if detection is not None and detection.feedback is not None and detection.feedback.verdicts:
        feedback = detection.feedback
        precision = feedback.production_precision
        parts.append(
            f"analysts' verdicts: {feedback.benign_pairs} benign pairs known, {feedback.true_positive_pairs} true "
            "positives kept out of the history, production precision "
            + (f"{precision:.3f}" if precision is not None else "not known (no verdict in the last days)")
        )
    if auc is not None:
        parts.append(f"model ROC AUC {auc:.4f}")
    report = run_output(config, execution, EVALUATION, REPORT_FILE)
    return f"{'; '.join(parts) or 'the evaluation is degenerate'}; report: {report}"


def _most_anomalous_first(finding: Finding) -> tuple[float, float]:
    return (-(finding.surprisal or 0.0), finding.score)


def score_last_day(config: Config, day: str) -> AgainstLabels:
    """The monitoring path on the last day: the Lambda handler, fed as SQS would, then findings against labels."""
    from pipeline.cli.monitor_cmd import lake_objects, replay

    objects = lake_objects(config.home, day)
    failures, reports = replay(config, objects)
    everything = sorted((f for r in reports for f in r.findings), key=_most_anomalous_first)
    judged = judge_findings(everything, labelled_pairs(config.home), benign_changes(config.home))
    table = Table(title=f"Findings on {day}, most anomalous first (written under ext/seclake-ipinsights/)")
    for column in ("entity", "ip", "surprisal", "dot_product", "injected?"):
        table.add_column(column, overflow="fold")
    shown: dict[tuple[str, str], Finding] = {}
    for finding in (f for f in everything if f.severity != SERVICE_MOVING_SEVERITY):
        key = (base_entity(finding.entity), finding.ip)
        if key in shown or len(shown) == 15:
            continue
        shown[key] = finding
        table.add_row(
            finding.entity,
            finding.ip,
            f"{finding.surprisal:.1f}" if finding.surprisal is not None else "",
            f"{finding.score:.3f}",
            "yes" if key in judged.labelled else "",
        )
    console.print(table)
    for finding in list(shown.values())[:5]:
        if finding.why:
            console.print(f"- {finding.why}", highlight=False)
    pairs = sum(r.pairs for r in reports)
    console.print(
        f"monitor: {len(objects)} objects, {pairs:,} pairs scored, {len(judged.alerts)} distinct findings"
        f"{f', {len(failures)} failed messages' if failures else ''}; against the {len(judged.labelled)} "
        f"injected anomalous pairs: precision {judged.precision:.3f}, recall {judged.recall:.3f}; plus "
        f"{len(judged.informational)} low-severity fleet changes (an address many workloads met at once, of a network "
        "or owner the fleet knew)"
    )
    by_kind = judged.recall_by_kind(labelled_kinds(config.home))
    if by_kind:
        console.print(
            "recall by kind: " + ", ".join(f"{kind} {found}/{injected}" for kind, (found, injected) in by_kind.items())
        )
    if judged.benign:
        console.print(
            f"benign changes: {len(judged.benign)} pairs over {len({ip for _, ip in judged.benign})} addresses; "
            f"{len(judged.benign_alerts)} findings above Low on them"
        )
    return judged
