"""`seclake executions`, `seclake execution show`, `seclake models ...`: the local runtime's state, like Studio's."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from pipeline.cli.context import config_of, console, styled
from pipeline.errors import UserError
from pipeline.local.executor import STATE_FILE
from pipeline.local.state import Store
from scripts.handoff.evaluation import evaluation_of
from scripts.handoff.registry import DETECTOR_PROPERTY

models_app = typer.Typer(help="The local model registry.", no_args_is_help=True)
execution_app = typer.Typer(help="One local execution.", no_args_is_help=True)
STATUS_STYLE = {"Succeeded": "green", "Failed": "red", "Executing": "yellow"}


def _store(ctx: typer.Context) -> Store:
    return Store(config_of(ctx).home / STATE_FILE)


def _time(value: float | None) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def executions(ctx: typer.Context, limit: Annotated[int, typer.Option(help="How many.")] = 20) -> None:
    """Recent local executions."""
    table = Table(title="Local executions")
    for column in ("execution", "status", "started (UTC)", "duration", "failure"):
        table.add_column(column)
    for item in _store(ctx).executions(limit):
        duration = f"{item['ended'] - item['started']:.0f} s" if item["ended"] else "-"
        status = Text(item["status"], style=STATUS_STYLE.get(item["status"], "white"))
        table.add_row(item["id"], status, _time(item["started"]), duration, (item["failure"] or "")[:80])
    console.print(table)


@execution_app.command("show")
def show(
    ctx: typer.Context, execution: Annotated[str, typer.Argument(help="Execution id (a prefix is enough).")]
) -> None:
    """The execution's steps as a graph with each step's status, like Studio's view."""
    store = _store(ctx)
    record = store.execution(execution)
    if record is None:
        message = f"no local execution {execution!r}; see `seclake executions`"
        raise UserError(message)
    runs = {run.step: run for run in store.step_runs(record["id"])}
    definition = json.loads(record["definition"])
    tree = Tree(
        Text.assemble(
            f"{record['pipeline']} / {record['id']}: ",
            (record["status"], STATUS_STYLE.get(record["status"], "white")),
        )
    )

    def label(step: dict[str, object]) -> Text:
        run = runs.get(str(step["Name"]))
        status = run.status if run else "NotExecuted"
        took = f" {run.ended - run.started:.0f} s" if run and run.started and run.ended else ""
        text = Text.assemble(f"{step['Name']} ({step['Type']}) ", (status, STATUS_STYLE.get(status, "dim")), took)
        if run and "CacheHitResult" in run.properties:
            text.append(f" (cache hit: {run.properties['CacheHitResult']['SourceExecution']})", style="cyan")
        if run and run.failure:
            text.append(f"\n  {run.failure.splitlines()[0][:160]}", style="red")
        return text

    def add(parent: Tree, step: dict[str, Any]) -> None:
        """A step, and a condition's branches with their steps (conditions nest: DeployIfApproved)."""
        node = parent.add(label(step))
        if step["Type"] != "Condition":
            return
        outcome = runs[step["Name"]].properties.get("Outcome") if step["Name"] in runs else None
        for branch, key in (("if true", "IfSteps"), ("else", "ElseSteps")):
            chosen = " (taken)" if outcome == ("true" if key == "IfSteps" else "false") else ""
            sub = node.add(f"{branch}{chosen}")
            for nested in step["Arguments"].get(key, []):
                add(sub, nested)

    for step in definition["Steps"]:
        add(tree, step)
    console.print(tree)
    if record["failure"]:
        console.print(styled("failure:", "red", f" {record['failure']}"), highlight=False)


@models_app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Model packages in the local registry, newest first: the detector's recall and alerts, the model's AUC."""
    table = Table(title="Local model registry")
    for column in ("group", "version", "status", "recall", "alerts/1k", "AUC", "execution", "detector"):
        table.add_column(column)
    for package in _store(ctx).model_packages():
        where = f"model package {package['group_name']}/{package['version']}"
        evaluation = evaluation_of(json.loads(package["metrics"]) if package["metrics"] else None, where)
        detection = evaluation.seclake.detection if evaluation is not None else None
        auc = evaluation.auc if evaluation is not None else None
        recall = detection.recall if detection is not None else None
        alerts = detection.alerts_per_1000_workloads if detection is not None else None
        named = json.loads(package["customer_metadata"]) if package.get("customer_metadata") else {}
        table.add_row(
            package["group_name"],
            str(package["version"]),
            package["status"],
            f"{recall:.3f}" if isinstance(recall, float) else "-",
            f"{alerts:.1f}" if isinstance(alerts, float) else "-",
            f"{auc:.4f}" if isinstance(auc, float) else "-",
            package["execution"],
            named.get(DETECTOR_PROPERTY, "-"),
        )
    console.print(table)


def _set(ctx: typer.Context, group: str, version: int, status: str) -> None:
    try:
        _store(ctx).set_approval(group, version, status)
    except KeyError as error:
        raise UserError(str(error).strip("'\"")) from None
    console.print(f"{group}/{version}: {status}")


@models_app.command("approve")
def approve(ctx: typer.Context, group: str, version: int) -> None:
    """Approve a model package and deploy it, as the deploy-on-approval rule does in AWS (a package registered
    Approved was deployed by its own execution)."""
    from pipeline.local.approval import approve_and_deploy
    from pipeline.local.monitor_identity import deployer_identity
    from pipeline.local.run_definition import lake_parameters
    from pipeline.samplelake.summary import summarise_lake
    from scripts.deploy.approved import DeployError

    config = config_of(ctx)
    # as the deploy-on-approval function's role of the monitor template, checked as IAM would
    summary = summarise_lake(config.home)
    roots = config.aws.lake_roots if summary.empty else str(lake_parameters(summary)["LakeRoots"])
    identity, deployer = deployer_identity(config, roots)
    try:
        outcome = approve_and_deploy(
            config.home,
            group,
            version,
            config.pipeline.endpoint_name,
            config.pipeline.endpoint_instance_type,
            identity,
            deployer,
        )
    except KeyError as error:
        raise UserError(str(error).strip("'\"")) from None
    except DeployError as error:
        raise UserError(str(error)) from None
    console.print(f"{group}/{version}: Approved; {outcome.action}: {outcome.detail}", markup=False)


@models_app.command("reject")
def reject(ctx: typer.Context, group: str, version: int) -> None:
    """Mark a model package Rejected."""
    _set(ctx, group, version, "Rejected")


endpoints_app = typer.Typer(help="Local endpoints (inference servers started by the pipeline).", no_args_is_help=True)


@endpoints_app.command("list")
def list_endpoints(ctx: typer.Context) -> None:
    """Local endpoints with their URL and whether the server still answers."""
    import urllib.request

    table = Table(title="Local endpoints")
    for column in ("endpoint", "model", "url", "answering"):
        table.add_column(column)
    for endpoint in _store(ctx).endpoints():
        try:
            with urllib.request.urlopen(f"{endpoint['url']}/ping", timeout=2) as response:
                alive = response.status == 200
        except OSError:
            alive = False
        table.add_row(endpoint["name"], endpoint["model_name"], endpoint["url"], "yes" if alive else "no")
    console.print(table)


@endpoints_app.command("stop")
def stop_endpoint(ctx: typer.Context, name: str) -> None:
    """Stop a local endpoint's server."""
    import contextlib
    import os
    import signal

    store = _store(ctx)
    endpoint = store.endpoint(name)
    if endpoint is None:
        message = f"no local endpoint {name!r}; see `seclake endpoints list`"
        raise UserError(message)
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(endpoint["pid"]), signal.SIGTERM)
    store.mark_endpoint_stopped(name)
    console.print(f"stopped {name}")
