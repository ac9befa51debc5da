"""State shared by the CLI's commands: the consoles and how to load the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from pipeline.config import LOCAL_PROFILE, Config, load_config

# No console markup: everything printed may hold user data (an entity, a path, a regex) whose brackets rich would read
# as tags; emphasis goes through `styled`.
console = Console(markup=False)
error_console = Console(stderr=True, markup=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """`label` in `style`, then `rest` as it is."""
    return Text.assemble((label, style), rest)


@dataclass(frozen=True)
class CliState:
    """Global options given before the subcommand."""

    profile: str | None  # None: the command's own default
    user_file: Path | None

    def config(self, default_profile: str) -> Config:
        return load_config(self.profile or default_profile, self.user_file)


def config_of(ctx: typer.Context, default_profile: str = LOCAL_PROFILE) -> Config:
    """The merged, validated configuration for this invocation: the --profile given, else the command's default (the
    local profile for what runs here, the AWS profile for what goes to an account)."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState(None, None)
    return state.config(default_profile)
