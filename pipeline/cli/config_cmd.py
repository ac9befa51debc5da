"""`seclake config show`: the merged, validated configuration."""

from __future__ import annotations

import typer
import yaml

from pipeline.cli.context import config_of, console

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the configuration after merging default.yaml, the profile, --config and SECLAKE_* variables."""
    config = config_of(ctx)
    console.print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="", highlight=False)
