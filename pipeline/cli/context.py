"""State shared by the CLI's commands: the consoles and how to load the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from pipeline.config import Config, load_config

console = Console()
error_console = Console(stderr=True)


@dataclass(frozen=True)
class CliState:
    """Global options given before the subcommand."""

    profile: str
    user_file: Path | None

    def config(self) -> Config:
        return load_config(self.profile, self.user_file)


def config_of(ctx: typer.Context) -> Config:
    """The merged, validated configuration for this invocation."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState("local", None)
    return state.config()
