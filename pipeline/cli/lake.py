"""`seclake lake generate` and `seclake lake summary`: the sample Security Lake."""

from __future__ import annotations

import datetime as dt
import resource
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli.context import config_of, console
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.samplelake.layout import check_address_plan
from pipeline.samplelake.summary import LakeSummary, summarise_lake
from pipeline.samplelake.writer import (
    BENIGN_LABELS_FILE,
    LABELS_FILE,
    GenerationOptions,
    GenerationReport,
    generate_lake,
)

app = typer.Typer(help="Generate and inspect a local Security Lake.", no_args_is_help=True)


def _yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def _parse_day(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").replace(tzinfo=dt.UTC).date()
    except ValueError as error:
        message = f"--end-day {text!r} is not a date in the form YYYYMMDD (e.g. 20261128)"
        raise typer.BadParameter(message) from error


def generation_options(
    config: Config,
    root: Path | None = None,
    days: int | None = None,
    events_per_day: int | None = None,
    source_version: int | None = None,
    seed: int | None = None,
    end_day: dt.date | None = None,
) -> GenerationOptions:
    """Generation settings from config, with any value given on the command line taking precedence."""
    sample = config.sample_lake
    version = source_version if source_version is not None else config.lake.source_version
    if version not in (1, 2):
        message = f"--source-version {version} is not a Security Lake source version; allowed: 1, 2"
        raise typer.BadParameter(message)
    try:
        check_address_plan(sample.accounts * len(config.lake.regions), sample.ipam_subnets)
    except ValueError as error:
        raise UserError(str(error)) from error
    return GenerationOptions(
        root=root or config.home,
        days=days or sample.days,
        events_per_day=events_per_day or sample.events_per_day,
        end_day=end_day or _yesterday(),
        source_version=version,
        seed=sample.seed if seed is None else seed,
        accounts=sample.accounts,
        regions=tuple(config.lake.regions),
        workloads_per_vpc=sample.workloads_per_vpc,
        nodata_fraction=sample.nodata_fraction,
        reject_scan_fraction=sample.reject_scan_fraction,
        autoscaling_churn=sample.autoscaling_churn,
        s3_rotation=sample.s3_rotation,
        cross_account_calls=sample.cross_account_calls,
        ipam_subnets=sample.ipam_subnets,
        db_failover=sample.db_failover,
        nightly_backups=sample.nightly_backups,
        benign_changes=tuple(sample.benign_changes),
        ipv6_client_fraction=sample.ipv6_client_fraction,
        malformed_ip_fraction=sample.malformed_ip_fraction,
        anomalies_per_kind=sample.anomalies_per_kind,
        anomaly_kinds=tuple(sample.anomaly_kinds),
        files_per_partition=sample.files_per_partition,
        row_group_rows=sample.row_group_rows,
    )


def run_generation(options: GenerationOptions, force: bool) -> GenerationReport:
    """Generate with a progress bar; refuse to mix into an existing lake unless forced."""
    lake = options.root / "s3"
    existing = sorted(lake.glob("aws-security-data-lake-*")) if lake.exists() else []
    if existing and not force:
        message = (
            f"{lake} already holds a lake ({len(existing)} buckets); pass --force to replace it, "
            "or --root to write elsewhere"
        )
        raise UserError(message)
    for bucket in existing:
        shutil.rmtree(bucket)
    for labels in (LABELS_FILE, BENIGN_LABELS_FILE):
        (options.root / labels).unlink(missing_ok=True)
    total = options.events_per_day * options.days
    with Progress(
        TextColumn("generating VPC flow rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("rows", total=total)
        report = generate_lake(options, progress=lambda rows: progress.advance(task, rows))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(
        f"wrote {report.total_rows:,} rows in {sum(report.files.values())} files under {report.lake_root} "
        f"in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s, peak memory {peak_mib:,.0f} MiB); "
        f"{report.labels} anomalous pairs labelled in {options.root / LABELS_FILE}"
        + (
            f"; {report.benign_labels} pairs of benign changes ({', '.join(options.benign_changes)}) in "
            f"{options.root / BENIGN_LABELS_FILE}"
            if options.benign_changes
            else ""
        ),
        highlight=False,
    )
    return report


@app.command("generate")
def generate(
    ctx: typer.Context,
    root: Annotated[
        Path | None, typer.Option(help="Where to write (the lake goes under ROOT/s3). Default: home.")
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=2, help="Days of history; the last one carries the anomalies.")
    ] = None,
    events_per_day: Annotated[int | None, typer.Option(min=1000, help="VPC flow rows per day, all accounts.")] = None,
    source_version: Annotated[int | None, typer.Option(help="Security Lake source version: 1 or 2.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed; the same seed and end day give the same lake.")] = None,
    end_day: Annotated[str | None, typer.Option(help="Last day, YYYYMMDD (default: yesterday, UTC).")] = None,
    force: Annotated[bool, typer.Option(help="Replace a lake already at ROOT.")] = False,
) -> None:
    """Generate a realistic sample Security Lake with injected anomalies on the last day."""
    options = generation_options(
        config_of(ctx), root, days, events_per_day, source_version, seed, _parse_day(end_day) if end_day else None
    )
    run_generation(options, force)
    print_summary(summarise_lake(options.root))


def print_summary(summary: LakeSummary) -> None:
    """Render a lake summary as tables."""
    table = Table(title=f"Security Lake at {summary.root / 's3'}")
    for column in ("source", "ver", "files", "rows", "MiB", "days", "accounts", "regions", "instances", "ENIs"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source in summary.sources:
        table.add_row(
            source.source,
            str(source.version or "?"),
            f"{source.files:,}",
            f"{source.rows:,}",
            f"{source.bytes / 2**20:,.1f}",
            str(len(source.days)),
            str(len(source.accounts)),
            str(len(source.regions)),
            str(len(source.instances)),
            str(len(source.interfaces)) if source.interfaces else "-",
        )
    all_days = sorted(day for source in summary.sources for day in source.days)
    if all_days:
        table.caption = f"event days {all_days[0]} .. {all_days[-1]}"
    console.print(table)
    if summary.anomalies:
        labels = Table(title="Injected anomalies (labels, outside the lake)")
        labels.add_column("kind")
        labels.add_column("pairs", justify="right")
        for kind, count in summary.anomalies.items():
            labels.add_row(kind, str(count))
        console.print(labels)
    if summary.custom_sources:
        named = ", ".join(f"{name} ({files:,} files)" for name, files in summary.custom_sources.items())
        console.print(f"custom sources (not read for training): {named}")
    if summary.other_files:
        named = ", ".join(f"{files:,} under {prefix}" for prefix, files in sorted(summary.other_files.items()))
        console.print(f"parquet files in neither Security Lake layout, ignored: {named}")


@app.command("summary")
def summary(
    ctx: typer.Context,
    root: Annotated[Path | None, typer.Option(help="The folder holding s3/ (default: home).")] = None,
) -> None:
    """Summarise the lake: files, rows, days, accounts, instances and labelled anomalies."""
    lake_root = root or config_of(ctx).home
    result = summarise_lake(lake_root)
    if result.empty:
        message = f"no Security Lake objects under {lake_root / 's3'}; run `seclake lake generate` first"
        raise UserError(message)
    print_summary(result)
