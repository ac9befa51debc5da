"""The `seclake` command line: one typer app, subcommands in sibling modules, errors as one readable line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli import (
    config_cmd,
    findings_cmds,
    lake,
    lists_cmd,
    local_cmds,
    monitor_cmd,
    run,
    sagemaker_cmds,
    suppress_cmd,
)
from pipeline.cli.context import CliState, console, error_console, styled
from pipeline.errors import UserError

app = typer.Typer(
    name="seclake",
    help="Learn which IP addresses each workload talks to in Amazon Security Lake; flag the pairs that do not fit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(lake.app, name="lake")
app.add_typer(config_cmd.app, name="config")
app.add_typer(lists_cmd.app, name="lists")
app.add_typer(suppress_cmd.app, name="suppress")
app.command("run")(run.run)
app.command("executions")(local_cmds.executions)
app.command("monitor")(monitor_cmd.monitor)
app.add_typer(findings_cmds.findings_app, name="findings")
app.add_typer(findings_cmds.source_app, name="findings-source")
app.command("package-monitor")(monitor_cmd.package_monitor)
app.add_typer(local_cmds.execution_app, name="execution")
app.add_typer(local_cmds.models_app, name="models")
app.add_typer(local_cmds.endpoints_app, name="endpoints")
for _command in (
    sagemaker_cmds.definition,
    sagemaker_cmds.upsert,
    sagemaker_cmds.execute,
    sagemaker_cmds.schedule,
    sagemaker_cmds.status,
    sagemaker_cmds.iam,
):
    app.command(_command.__name__)(_command)


@app.callback()
def _options(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option(
            envvar="SECLAKE_PROFILE",
            help="Config overlay: config/<profile>.yaml. Default: prod for definition, upsert, execute, schedule, "
            "status and iam (they work with an AWS account), local for everything else.",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", envvar="SECLAKE_CONFIG", help="Your own YAML file, applied last.")
    ] = None,
) -> None:
    ctx.obj = CliState(profile=profile, user_file=config)


def main() -> None:
    """Console-script entry point: user errors print one line and exit 2, never a stack trace."""
    try:
        app()
    except UserError as error:
        error_console.print(styled("error:", "bold red", f" {error}"), highlight=False, soft_wrap=True)
        sys.exit(2)


__all__ = ["app", "console", "main"]
