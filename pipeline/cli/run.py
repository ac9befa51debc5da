"""`seclake run`: the main job. For now: make sure a sample lake exists, summarise it, then preprocess it with Spark."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import typer
from rich.table import Table

from pipeline.cli.context import config_of, console
from pipeline.cli.lake import generation_options, print_summary, run_generation
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.javacheck import java_problem
from pipeline.samplelake.summary import LakeSummary, summarise_lake


def _preprocess(config: Config, summary: LakeSummary) -> None:
    problem = java_problem()
    if problem is not None:
        raise UserError(problem)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the local Spark binds loopback only
    from scripts.ocsf.schemas import Source
    from scripts.pairs.mapping import Algorithm, mapping
    from scripts.preprocess import Window, build_session, run

    last_day = max(day for source in summary.sources for day in source.days)
    end_day = dt.datetime.strptime(last_day, "%Y%m%d").replace(tzinfo=dt.UTC).date()
    settings = config.preprocess
    output = config.home / "work" / "preprocess"
    sources = [Source(name.upper()) for name in config.lake.sources]
    console.print(
        f"preprocessing with Spark: mapping {settings.mapping}, {settings.lookback_days} days to {last_day}, "
        f"output {output}"
    )
    started = time.perf_counter()
    spark = build_session("seclake-run")
    try:
        report = run(
            spark,
            [str(config.home / "s3")],
            output,
            Window(end_day, settings.lookback_days),
            sources,
            mapping(settings.mapping),
            Algorithm(settings.algorithm),
            settings.max_pair_repeats,
            settings.seed,
        )
    finally:
        spark.stop()
    table = Table(title=f"Preprocessing ({time.perf_counter() - started:.0f} s): {output}")
    for column in ("source", "rows read", "candidates", "pairs kept", "dropped (reason: count)"):
        table.add_column(column, justify="left" if column in {"source", "dropped (reason: count)"} else "right")
    for key in sorted(report["rows_read"]):
        drops = ", ".join(f"{reason}: {count:,}" for reason, count in sorted(report["drops"].get(key, {}).items()))
        table.add_row(
            key,
            f"{report['rows_read'][key]:,}",
            f"{report['candidates'][key]:,}",
            f"{report['pairs_kept'].get(key, 0):,}",
            drops,
        )
    console.print(table)
    console.print(
        f"train rows {report['train_rows']:,}, validation rows {report['validation_rows']:,}, "
        f"eval rows {json.dumps(report['eval_rows'])}, distinct entities {report['distinct_entities']} "
        f"(num_entity_vectors {report['suggested_num_entity_vectors']})",
        highlight=False,
    )


def run(ctx: typer.Context) -> None:
    """Run the local end-to-end job: generate the sample lake if the local lake is empty, summarise, preprocess."""
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
    _preprocess(config, summary)
