"""Spark processing step: Security Lake OCSF rows -> IP Insights training channels, an eval set and quality counts.

Runs unchanged in SageMaker's Spark 3.5 processing container (s3:// URIs) and under local pyspark (file:// URIs):
    python scripts/jobs/preprocess.py --lake-root URI --end-day YYYYMMDD|latest|ISO-TIME --lookback-days N \
        --sources vpc_flow,route53 --mapping role|peer|blog [--algorithm builtin|open] [--output-uri URI]

Every output is written straight to its URI by Spark (or, for the small ones, by the driver through Hadoop's
FileSystem), never to a scheme-less path: in the container Spark's default filesystem is HDFS, and with several
instances the executors of every node write part files. Inside a processing job the outputs' S3 URIs come from the
job's own request (/opt/ml/config/processingjobconfig.json), so they never enter the step's arguments and so its cache
key; run by hand, --output-uri BASE puts each output under BASE/<name>.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a file (spark-submit ships scripts.zip with --py-files; or the checkout)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from scripts.assumed_role import RoleSession, RoleToAssume
from scripts.handoff.artifacts import (
    EVAL_OUTPUT,
    HISTORY_OUTPUT,
    QUALITY_FILE,
    QUALITY_OUTPUT,
    TRAIN_OUTPUT,
    VALIDATION_OUTPUT,
)
from scripts.handoff.quality import QualityCounts, QualityReport, WindowRecord
from scripts.handoff.verdicts import TRUE_POSITIVE, read_verdicts
from scripts.jobconfig import job_config_path
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source
from scripts.pairs.mapping import (
    Algorithm,
    PairMapping,
    mapping,
)
from scripts.prepare.errors import PreprocessError
from scripts.prepare.hadoop_io import write_small_file
from scripts.prepare.injection import eval_set
from scripts.prepare.lake_credentials import SESSION_NAME, LakeCredentials, sts_region, through_s3a
from scripts.prepare.objects import ROW_DROPS, candidates
from scripts.prepare.outputs import (
    Destinations,
    cap_repetitions,
    check_splits,
    mark_true_positives,
    write_address_book,
    write_eval_set,
    write_history,
    write_names,
)
from scripts.prepare.request_log import REQUEST_LOG_VARIABLE, REQUESTS
from scripts.window import END_DAY_HELP, Window, parse_end_day, parse_sources

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


SHUFFLE_PARTITIONS_PER_CORE = 4  # enough tasks to balance skew; adaptive execution merges the small ones
MIN_SHUFFLE_PARTITIONS = 8


def build_session(app_name: str = "seclake-preprocess") -> SparkSession:
    """A Spark session for this step: UTC, account ids kept as strings, no checksum files in local output, and
    shuffles cut into SHUFFLE_PARTITIONS_PER_CORE partitions per core of the job's instances (at least
    MIN_SHUFFLE_PARTITIONS): a fixed count would leave most of a large job's cores idle."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.adaptive.coalescePartitions.enabled", "true")
        .config("spark.sql.files.ignoreCorruptFiles", "true")
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    cores = session.sparkContext.defaultParallelism
    session.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions(cores)))
    return session


def shuffle_partitions(cores: int) -> int:
    """Shuffle partitions for a job with `cores` cores in all (Spark's defaultParallelism)."""
    return max(MIN_SHUFFLE_PARTITIONS, SHUFFLE_PARTITIONS_PER_CORE * cores)


def run(
    spark: SparkSession,
    roots: list[str],
    destinations: Destinations,
    window: Window,
    sources: list[Source],
    pair_mapping: PairMapping,
    algorithm: Algorithm,
    max_pair_repeats: int,
    seed: int,
    forced_version: int | None = None,
    unloaded: bool = False,
    before_scan: Callable[[], None] = lambda: None,
    positives: Collection[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The whole step: read, extract, clean, split by time, cap, write channels, eval set and quality.json.
    `before_scan` runs before each part that reads the lake (the subscriber session's refresh); `positives`: the
    (entity, ip) pairs analysts confirmed as true positives, dropped everywhere (counted as true_positive_verdict)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    quality = QualityCounts()
    book_rows: list[DataFrame] = []
    before_scan()
    all_candidates = candidates(
        spark, roots, sources, pair_mapping, algorithm, window, forced_version, quality, unloaded, book_rows
    )
    all_candidates = mark_true_positives(spark, all_candidates, positives)
    split = F.when(F.col("time") >= window.validation_start_ms, F.lit(VALIDATION_OUTPUT)).otherwise(F.lit(TRAIN_OUTPUT))
    kept = cap_repetitions(all_candidates.where(F.col("reason").isNull()).withColumn("split", split), max_pair_repeats)
    kept = kept.persist(StorageLevel.MEMORY_AND_DISK)
    dropped = all_candidates.where(F.col("reason").isNotNull()).select("source", "reason")
    before_scan()
    for row in (
        dropped.unionByName(kept.where(F.col("reason").isNotNull()).select("source", "reason"))
        .groupBy("source", "reason")
        .count()
        .collect()
    ):
        quality.drops.setdefault(row["source"], {})[row["reason"]] = int(row["count"])
    for row in all_candidates.groupBy("source").count().collect():
        skipped = sum(quality.drops.get(row["source"], {}).get(r, 0) for r in ROW_DROPS)
        quality.candidates[row["source"]] = int(row["count"]) + skipped
    final = kept.where(F.col("reason").isNull())
    for row in final.groupBy("source").count().collect():
        quality.pairs_kept[row["source"]] = int(row["count"])
    split_rows = {row["split"]: int(row["count"]) for row in final.groupBy("split").count().collect()}
    check_splits(split_rows, window, final)
    before_scan()
    train = final.where(F.col("split") == TRAIN_OUTPUT)
    validation = final.where(F.col("split") == VALIDATION_OUTPUT)
    for name, frame in ((TRAIN_OUTPUT, train), (VALIDATION_OUTPUT, validation)):
        frame.orderBy("time", "entity", "ip").select("entity", "ip").write.mode("overwrite").csv(
            destinations[name], header=False
        )
    write_history(spark, kept, destinations[HISTORY_OUTPUT])
    write_names(spark, kept, destinations[HISTORY_OUTPUT])
    book_addresses = write_address_book(spark, book_rows, destinations[HISTORY_OUTPUT])
    evaluation = eval_set(train, validation, seed).collect()
    write_eval_set(spark, evaluation, destinations[EVAL_OUTPUT])
    kinds: dict[str, int] = {}
    for r in evaluation:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    entities = train.select("entity").distinct().count()
    report = QualityReport(
        counts=quality,
        window=WindowRecord(window.end_day.strftime("%Y%m%d"), window.lookback_days, window.days[-1]),
        mapping=pair_mapping.name,
        access="athena" if unloaded else "s3",
        algorithm=algorithm.value,
        max_pair_repeats=max_pair_repeats,
        train_rows=train.count(),
        validation_rows=validation.count(),
        eval_rows=dict(sorted(kinds.items())),
        distinct_entities=entities,
        distinct_ips=final.select("ip").distinct().count(),
        address_book_rows=book_addresses,
        suggested_num_entity_vectors=max(2 * entities, 2),
    )
    write_small_file(spark, f"{destinations[QUALITY_OUTPUT].rstrip('/')}/{QUALITY_FILE}", report.dumps())
    kept.unpersist()
    return report.to_json()


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake-root", required=True, help="Lake root(s), comma-separated: s3://bucket or a folder")
    parser.add_argument(
        "--access",
        default="s3",
        choices=["s3", "athena"],
        help="s3: read the objects under --lake-root; athena: read what the QueryLake step unloaded at --unloaded",
    )
    parser.add_argument("--unloaded", default="", help="The QueryLake step's output (--access athena)")
    parser.add_argument(
        "--lake-role-arn",
        default="",
        help="Read the lake's objects as this Security Lake subscriber role (in the lake's account); empty: the job's "
        "own role",
    )
    parser.add_argument("--lake-external-id", default="", help="The external id the subscriber role's trust asks for")
    parser.add_argument(
        "--output-uri",
        default=None,
        help="Base URI for the outputs (file:///..., s3://...); default: the processing job's declared outputs",
    )
    parser.add_argument(
        "--job-config",
        type=Path,
        default=job_config_path(),
        help="The processing job's request, where the outputs' URIs are read from",
    )
    parser.add_argument(
        "--end-day",
        required=True,
        help="Last day of the window (the validation day): YYYYMMDD; an ISO-8601 time such as a schedule's "
        "2026-11-30T03:00:00Z (the last full UTC day before it); or 'latest' (the day before the job starts)",
    )
    parser.add_argument("--lookback-days", type=int, required=True, help="Days in the window, validation day included")
    parser.add_argument("--sources", default="vpc_flow,route53", help="Comma-separated: vpc_flow, route53")
    parser.add_argument("--mapping", default="role", help="Pair mapping: role (default), peer or blog")
    parser.add_argument("--algorithm", default="open", choices=[a.value for a in Algorithm])
    parser.add_argument(
        "--source-version",
        type=int,
        choices=sorted(SOURCE_VERSIONS),
        default=None,
        help="Force the Security Lake source version instead of detecting it",
    )
    parser.add_argument("--max-pair-repeats", type=int, default=100, help="Events kept per pair and split")
    parser.add_argument("--seed", type=int, default=17, help="Seed for the eval set's negatives")
    parser.add_argument(
        "--feedback",
        type=Path,
        default=None,
        help="The analysts' verdicts (feedback/verdicts/): true positives dropped",
    )
    return parser.parse_args(argv)


def _destinations(output_uri: str | None, job_config: Path) -> Destinations:
    if output_uri:
        return Destinations.under(output_uri)
    if job_config.exists():
        return Destinations.from_job_config(json.loads(job_config.read_text()))
    message = (
        f"no --output-uri and no processing job config at {job_config}: give --output-uri (file:///... or s3://...) "
        "when running the step by hand"
    )
    raise PreprocessError(message)


def _subscriber_refresh(spark: SparkSession, arguments: argparse.Namespace, roots: list[str]) -> Callable[[], None]:
    """With --lake-role-arn, the lake is read with that role's session, refreshed before each scan."""
    if not arguments.lake_role_arn:
        return lambda: None
    import boto3

    role = RoleToAssume(arguments.lake_role_arn, arguments.lake_external_id, SESSION_NAME)
    lake = LakeCredentials(RoleSession(boto3.client("sts", region_name=sts_region(roots)), role), roots)
    return lambda: lake.refresh(spark)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        if os.environ.get(REQUEST_LOG_VARIABLE):
            REQUESTS.write(Path(os.environ[REQUEST_LOG_VARIABLE]))


def _main(argv: list[str] | None) -> int:
    arguments = parse_arguments(argv)
    try:
        end_day = parse_end_day(arguments.end_day)
    except ValueError:
        print(f"error: --end-day {arguments.end_day!r} {END_DAY_HELP}", file=sys.stderr)
        return 2
    if arguments.lookback_days < 2:
        print(
            f"error: --lookback-days {arguments.lookback_days} must be at least 2 (train days + 1 validation day)",
            file=sys.stderr,
        )
        return 2
    try:
        destinations = _destinations(arguments.output_uri, arguments.job_config)
        sources = parse_sources(arguments.sources)
        pair_mapping = mapping(arguments.mapping)
        unloaded = arguments.access == "athena"
        if unloaded and not arguments.unloaded.strip():
            message = "--access athena needs --unloaded: the QueryLake step's `lake` output URI"
            raise PreprocessError(message)
        roots = [arguments.unloaded.strip()] if unloaded else [r.strip() for r in arguments.lake_root.split(",")]
        if arguments.lake_role_arn and not unloaded:
            roots = through_s3a(roots)
        verdicts = read_verdicts(arguments.feedback)
        for reason in verdicts.skipped:
            print(f"warning: verdict skipped: {reason}", file=sys.stderr)
        spark = build_session()
        before_scan = _subscriber_refresh(spark, arguments, roots) if not unloaded else (lambda: None)
        report = run(
            spark,
            [root for root in roots if root],
            destinations,
            Window(end_day, arguments.lookback_days),
            sources,
            pair_mapping,
            Algorithm(arguments.algorithm),
            arguments.max_pair_repeats,
            arguments.seed,
            arguments.source_version,
            unloaded,
            before_scan,
            verdicts.pairs(TRUE_POSITIVE),
        )
    except (PreprocessError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "pairs_kept": report["pairs_kept"],
                "train_rows": report["train_rows"],
                "validation_rows": report["validation_rows"],
                "eval_rows": report["eval_rows"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
