"""The lake's objects for a window: finding them (S3 layout or UNLOADed), reading them, vetting each (schema,
duplicates, unreadable) on one cheap scan, and the candidate pairs of the kept ones."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts.handoff.quality import QualityCounts
from scripts.lakequery.sql import READ_COLUMNS
from scripts.ocsf.schemas import CLASS_UIDS, SOURCE_VERSIONS, Source, spark_mismatches, spark_schema
from scripts.pairs.mapping import (
    ADDRESS_BOOK_RULE,
    Algorithm,
    PairMapping,
    account_column,
)
from scripts.pairs.spark_engine import address_rows, extract
from scripts.prepare.errors import PreprocessError
from scripts.prepare.hadoop_io import glob_files, qualified, visible_files
from scripts.prepare.request_log import REQUESTS
from scripts.window import Window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LOCAL_SCHEME = "file:"  # a folder on this machine (the local S3 lays out several buckets in one)

SCHEMA_MISMATCH = "schema_mismatch"


DUPLICATE_OBJECT = "duplicate_object"


UNREADABLE_OR_EMPTY = "unreadable_or_empty"


# A row in one of the window's eventDay partitions whose time is null or lies outside the window's days (a drifting
# clock, epoch 0): it cannot be placed in the training or validation split, so it is dropped and counted.
TIME_OUTSIDE_WINDOW = "time_outside_window"

# Rows dropped before pair extraction, counted with the candidates so that every row read is accounted for.
ROW_DROPS = (SCHEMA_MISMATCH, DUPLICATE_OBJECT, TIME_OUTSIDE_WINDOW)
IN_WINDOW = "_in_window"


# What makes two objects the same records: a copy under another name is read once, and counted.
FINGERPRINT_COLUMNS = {
    Source.VPC_FLOW: (
        "time",
        "src_endpoint.ip",
        "dst_endpoint.ip",
        "src_endpoint.port",
        "dst_endpoint.port",
        "traffic.bytes",
    ),
    Source.ROUTE53: ("time", "src_endpoint.ip", "query.hostname"),
}


@dataclass
class SourceInput:
    """The objects of one source found under the lake roots."""

    source: Source
    version: int
    files: list[str]
    partitioned: bool
    columns: tuple[str, ...] | None = None  # what a query selected (the Athena path); None: every column


@dataclass(frozen=True)
class FileVerdicts:
    """Per object of one source: which to skip and why (rows counted by reason), decided on one cheap scan."""

    rows: int  # every row of the window, skipped objects' and (partitioned) rows outside the window's time included
    skipped: dict[str, str]
    skipped_rows: dict[str, int]


def source_prefixes(root: str, source: Source, folder: str) -> list[str]:
    """Where a source's objects lie under a lake root: <bucket>/aws/<SOURCE>/<version>. A local folder (file://) may
    hold several buckets, as the local S3 lays them out: <folder>/*/aws/... too. An S3 root is one bucket: listing
    anything above aws/<SOURCE>/ would be refused by the role's s3:prefix condition (AccessDenied)."""
    base = root.rstrip("/")
    prefixes = [f"{base}/aws/{source.value}/{folder}"]
    if base.startswith(LOCAL_SCHEME) and not _is_bucket_folder(base):
        prefixes.append(f"{base}/*/aws/{source.value}/{folder}")
    return prefixes


def _is_bucket_folder(local_root: str) -> bool:
    """A local root that is one bucket (it holds aws/): listed as S3 would list it, never above aws/<SOURCE>/."""
    return (Path(local_root.removeprefix(LOCAL_SCHEME).removeprefix("//")) / "aws").is_dir()


def find_source(
    spark: SparkSession, roots: list[str], source: Source, window: Window, forced_version: int | None
) -> SourceInput | None:
    """The source's parquet objects under every root (one bucket per region): the window's eventDay partitions, or
    every object when the layout has no partitions. The newest source version found wins unless one is forced."""
    versions = [forced_version] if forced_version else sorted(SOURCE_VERSIONS, reverse=True)
    days = ",".join(window.days)
    for version in versions:
        folder = SOURCE_VERSIONS[version].folder
        partitioned: list[str] = []
        flat: list[str] = []
        for root in roots:
            for prefix in source_prefixes(root, source, folder):
                in_window = glob_files(spark, f"{prefix}/region=*/accountId=*/eventDay={{{days}}}/*.parquet")
                partitioned.extend(in_window)
                if not in_window and not glob_files(spark, f"{prefix}/region=*/accountId=*/eventDay=*"):
                    flat.extend(glob_files(spark, f"{prefix}/*.parquet") + glob_files(spark, f"{prefix}/**/*.parquet"))
        if partitioned:
            return SourceInput(source, version, sorted(set(partitioned)), partitioned=True)
        if flat:
            return SourceInput(source, version, sorted(set(flat)), partitioned=False)
    return None


def find_unloaded(spark: SparkSession, root: str, source: Source) -> SourceInput | None:
    """The files an Athena UNLOAD wrote for a source under <root>/aws/<SOURCE>/<version>/ (named after the query,
    without an extension): only the columns the query selected, every row already in the window."""
    for version in sorted(SOURCE_VERSIONS, reverse=True):
        prefix = f"{root.rstrip('/')}/aws/{source.value}/{SOURCE_VERSIONS[version].folder}"
        files = visible_files(spark, f"{prefix}/*")
        if files:
            return SourceInput(source, version, files, partitioned=False, columns=READ_COLUMNS[source])
    return None


REFERENCE_CANDIDATES = 5  # readable objects whose schema is checked before a source version is declared wrong


def read_source(spark: SparkSession, found: SourceInput, window: Window) -> DataFrame:
    """The rows of the found objects, read with the declared schema once an object's own schema is found to match
    it, each marked `_in_window` when its time lies in the window (`in_window` keeps those).

    The first readable objects decide a wrong --source-version: when none of the first few matches, every file would
    be wrong. A truncated, misfiled or foreign object among them, wherever it sorts, is passed over here and named
    by `judge_files`. Corrupt files are skipped by Spark (spark.sql.files.ignoreCorruptFiles), never left to abort
    the job.
    """
    from pyspark.sql import functions as F

    mismatches: list[tuple[str, list[str]]] = []
    matched = False
    for name in found.files:
        observed = _footer_schema(spark, name)
        if observed is None:
            continue
        problems = spark_mismatches(observed, found.source, found.version, found.columns)
        if not problems:
            matched = True
            break
        mismatches.append((name, problems))
        if len(mismatches) >= REFERENCE_CANDIDATES:
            break
    if not matched and not mismatches:
        message = (
            f"none of the {len(found.files)} {found.source.value} objects could be read (truncated or not parquet)"
        )
        raise PreprocessError(message)
    if not matched:
        first, problems = mismatches[0]
        message = (
            f"{first} is under {found.source.value}/{SOURCE_VERSIONS[found.version].folder} but its schema does not "
            f"match source version {found.version}: {'; '.join(problems[:5])}; nor does any of the "
            f"{len(mismatches)} readable objects checked. Expected the Security Lake {found.source.value} "
            f"{SOURCE_VERSIONS[found.version].folder} schema; pass --source-version to force another version if the "
            "folder name is wrong."
        )
        raise PreprocessError(message)
    REQUESTS.read(found.files)
    frame = spark.read.schema(spark_schema(found.source, found.version, found.columns)).parquet(*found.files)
    frame = frame.withColumn("_file", F.input_file_name())
    placed = (F.col("time") >= window.start_ms) & (F.col("time") < window.end_ms)
    return frame.withColumn(IN_WINDOW, F.coalesce(placed, F.lit(False)))


def in_window(rows: DataFrame) -> DataFrame:
    """The rows whose time lies in the window, without the mark."""
    from pyspark.sql import functions as F

    return rows.where(F.col(IN_WINDOW)).drop(IN_WINDOW)


def _footer_schema(spark: SparkSession, name: str) -> Any:
    """An object's own schema from its parquet footer, or None when it cannot be read (truncated, not parquet)."""
    try:
        return spark.read.parquet(name).schema
    except Exception:  # Spark's AnalysisException or the JVM's error: the object is judged unreadable later
        return None


def judge_files(spark: SparkSession, rows: DataFrame, found: SourceInput) -> FileVerdicts:
    """One scan of a few columns, grouped by object: an object whose every row lacks the version's account column
    was written with another schema (a v1 file under 2.0, a Route 53 file under VPC_FLOW); an object with the same
    row count and record fingerprint as another is a copy (the first by name is kept); in the window's eventDay
    partitions, a listed object that gave no rows could not be read (truncated, not parquet) or was empty (a flat
    layout's objects of other days rightly give none). Each is named in quality.json."""
    from pyspark.sql import functions as F

    fingerprint = F.xxhash64(*[F.col(name) for name in FINGERPRINT_COLUMNS[found.source]])
    expected_class = CLASS_UIDS[found.source]
    other_class = (
        (F.col("class_uid").isNotNull() & (F.col("class_uid") != expected_class)).cast("long")
        if "class_uid" in rows.columns  # an UNLOADed window holds the selected columns only
        else F.lit(0)
    )
    placed = F.col(IN_WINDOW)
    stats = (
        rows.groupBy("_file")
        .agg(
            F.sum(placed.cast("long")).alias("rows"),
            F.sum((~placed).cast("long")).alias("outside"),
            F.sum(F.when(placed, F.col(account_column(found.version)).isNull().cast("long"))).alias("no_account"),
            F.sum(F.when(placed, other_class)).alias("other_class"),
            F.sum(F.when(placed, fingerprint)).alias("fingerprint"),
        )
        .collect()
    )
    skipped: dict[str, str] = {}
    skipped_rows: dict[str, int] = {}
    seen: dict[tuple[int, int], str] = {}

    def read_rows(row: Any) -> int:  # partitioned: an object's rows outside the window are its rows too
        return int(row["rows"]) + (int(row["outside"]) if found.partitioned else 0)

    for row in sorted(stats, key=lambda r: str(r["_file"])):
        name, count = str(row["_file"]), int(row["rows"])
        if count and (int(row["no_account"] or 0) == count or int(row["other_class"] or 0) == count):
            why = (
                f"no row has {account_column(found.version)}"
                if int(row["no_account"] or 0) == count
                else f"its rows are not of OCSF class {expected_class}"
            )
            skipped[name] = (
                f"{SCHEMA_MISMATCH}: {why}; written with another source's or version's schema, not "
                f"{found.source.value}/{SOURCE_VERSIONS[found.version].folder}"
            )
            skipped_rows[SCHEMA_MISMATCH] = skipped_rows.get(SCHEMA_MISMATCH, 0) + read_rows(row)
            continue
        if count == 0:  # every row outside the window: nothing to read twice
            continue
        key = (count, int(row["fingerprint"] or 0))
        if key in seen:
            skipped[name] = f"{DUPLICATE_OBJECT}: the same {count} records as {seen[key]}"
            skipped_rows[DUPLICATE_OBJECT] = skipped_rows.get(DUPLICATE_OBJECT, 0) + read_rows(row)
            continue
        seen[key] = name
    total = sum(read_rows(row) for row in stats)
    if not found.partitioned:  # without eventDay partitions, rows and objects of other days rightly give nothing
        return FileVerdicts(total, skipped, skipped_rows)
    outside = sum(int(row["outside"]) for row in stats if str(row["_file"]) not in skipped)
    if outside:
        skipped_rows[TIME_OUTSIDE_WINDOW] = outside
    listed = {qualified(spark, f) for f in found.files}
    read = {qualified(spark, str(row["_file"])) for row in stats}  # an object whose rows all lie outside is read
    for name in sorted(listed - read):
        observed = _footer_schema(spark, name)
        problems = spark_mismatches(observed, found.source, found.version, found.columns) if observed else []
        skipped[name] = (
            f"{SCHEMA_MISMATCH}: {'; '.join(problems[:3])}; written with another source's or version's schema"
            if problems
            else f"{UNREADABLE_OR_EMPTY}: no rows could be read (truncated, not parquet, or empty)"
        )
    return FileVerdicts(total, skipped, skipped_rows)


def candidates(
    spark: SparkSession,
    roots: list[str],
    sources: list[Source],
    pair_mapping: PairMapping,
    algorithm: Algorithm,
    window: Window,
    forced_version: int | None,
    quality: QualityCounts,
    unloaded: bool = False,
    book_rows: list[DataFrame] | None = None,
) -> DataFrame:
    """Every candidate pair of every source, with its drop reason (null when kept); counts rows read. With
    `unloaded`, the single root is where the QueryLake step's Athena UNLOADs wrote each source. The logging side
    of each flow row goes to `book_rows` (the address book)."""
    from pyspark.sql import functions as F

    frames = []
    for source in sources:
        if unloaded:
            found = find_unloaded(spark, roots[0], source)
        else:
            found = find_source(spark, roots, source, window, forced_version)
        if found is None and unloaded:
            message = (
                f"no {source.value} rows unloaded under {roots[0]}/aws/{source.value}/: the QueryLake step's Athena "
                "query found nothing in the window. Check the database, table and region settings (lake.athena) and "
                "--end-day, or leave the source out with --sources."
            )
            raise PreprocessError(message)
        if found is None:
            message = (
                f"no {source.value} objects found under {', '.join(roots)}: looked for "
                f"aws/{source.value}/<1.0|2.0>/region=*/accountId=*/eventDay={window.days[0]}..{window.days[-1]}/"
                "*.parquet (or any parquet under aws/<source>/<version>/). Check --lake-root and --end-day, or leave "
                "the source out with --sources."
            )
            raise PreprocessError(message)
        rows = read_source(spark, found, window)
        key = f"{source.value}/{SOURCE_VERSIONS[found.version].folder}"
        verdicts = judge_files(spark, rows, found)
        if verdicts.skipped:
            quality.skipped_files[key] = verdicts.skipped
            for name, reason in verdicts.skipped.items():
                print(f"skipped {name}: {reason}", file=sys.stderr)
            excluded = spark.createDataFrame([(name,) for name in verdicts.skipped], "_file string")
            rows = rows.join(F.broadcast(excluded), "_file", "left_anti")
        quality.rows_read[key] = verdicts.rows  # counted by the same scan: no second pass over the data
        for reason, count in verdicts.skipped_rows.items():
            quality.drops.setdefault(key, {})[reason] = count
        rows = in_window(rows)
        if source == Source.VPC_FLOW and book_rows is not None:
            book_rows.append(address_rows(rows.drop("_file"), found.version, ADDRESS_BOOK_RULE))
        extracted = extract(rows.drop("_file"), source, found.version, pair_mapping.rule(source), algorithm)
        frames.append(extracted.withColumn("source", F.lit(key)))
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame)
    return combined
