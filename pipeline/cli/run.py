"""`seclake run`: the main job. For now: make sure a sample lake exists, then summarise it."""

from __future__ import annotations

import typer

from pipeline.cli.context import config_of, console
from pipeline.cli.lake import generation_options, print_summary, run_generation
from pipeline.samplelake.summary import summarise_lake


def run(ctx: typer.Context) -> None:
    """Run the local end-to-end job: generate the sample lake when the local lake is empty, then summarise it."""
    config = config_of(ctx)
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
