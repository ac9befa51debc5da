"""Spark processing step: Security Lake OCSF rows -> IP Insights training channels, an eval set and quality counts.

Runs unchanged in SageMaker's Spark 3.5 processing container (s3:// URIs) and under local pyspark (file:// URIs):
    python scripts/preprocess.py --lake-root URI --end-day YYYYMMDD|latest|ISO-TIME --lookback-days N \
        --sources vpc_flow,route53 --mapping role|peer|blog [--algorithm builtin|open] [--output-uri URI]

Every output is written straight to its URI by Spark (or, for the small ones, by the driver through Hadoop's
FileSystem), never to a scheme-less path: in the container Spark's default filesystem is HDFS, and with several
instances the executors of every node write part files. Inside a processing job the outputs' S3 URIs come from the
job's own request (/opt/ml/config/processingjobconfig.json), so they never enter the step's arguments and so its cache
key; run by hand, --output-uri BASE puts each output under BASE/<name>.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a file (python scripts/preprocess.py, spark-submit): make `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from scripts.detect.detector import account_of, peer_group, role_of
from scripts.eval_kinds import (
    KIND_ORDER,
    LABEL_COLUMNS,
    MODEL_NEGATIVE_KINDS,
    NEW_NETWORK,
    NEW_ROLE,
    NORMAL,
    OTHER_ACCOUNT_INTERNAL,
    OTHER_GROUP_IP,
    RANDOM_IPV4,
)
from scripts.jobconfig import job_config_path, output_uris
from scripts.lakequery.sql import READ_COLUMNS
from scripts.layout import ADDRESS_BOOK_FILE, HISTORY_FILE, PREPARED_OUTPUTS, QUALITY_FILE
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, spark_mismatches, spark_schema
from scripts.pairs.mapping import (
    ADDRESS_BOOK_RULE,
    ROLE_SEPARATOR,
    Algorithm,
    PairMapping,
    account_column,
    base_entity,
    mapping,
)
from scripts.pairs.spark_engine import address_book, address_rows, extract
from scripts.window import DAY_MS, END_DAY_HELP, Window, parse_end_day, parse_sources

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OVER_CAP = "over_pair_cap"
NEGATIVE_ATTEMPTS = 8


OUTPUT_NAMES = PREPARED_OUTPUTS
SCHEMA_MISMATCH = "schema_mismatch"
DUPLICATE_OBJECT = "duplicate_object"
UNREADABLE_OR_EMPTY = "unreadable_or_empty"
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


class PreprocessError(ValueError):
    """The lake or the arguments cannot give training data; the message says what was found and what to do."""


@dataclass(frozen=True)
class Destinations:
    """Where each output goes: a Hadoop URI per output name (s3://... in the container, file://... locally)."""

    uris: dict[str, str]

    @classmethod
    def under(cls, base: str) -> Destinations:
        return cls({name: f"{base.rstrip('/')}/{name}" for name in OUTPUT_NAMES})

    @classmethod
    def from_job_config(cls, config: dict[str, Any]) -> Destinations:
        uris = output_uris(config)
        missing = [name for name in OUTPUT_NAMES if name not in uris]
        if missing:
            message = (
                f"the processing job declares outputs {sorted(uris)} but not {missing}: the step must declare one "
                f"ProcessingOutput per output ({', '.join(OUTPUT_NAMES)})"
            )
            raise PreprocessError(message)
        return cls({name: uris[name] for name in OUTPUT_NAMES})

    def __getitem__(self, name: str) -> str:
        return self.uris[name]


@dataclass
class SourceInput:
    """The objects of one source found under the lake roots."""

    source: Source
    version: int
    files: list[str]
    partitioned: bool
    columns: tuple[str, ...] | None = None  # what a query selected (the Athena path); None: every column


@dataclass
class Quality:
    """What quality.json reports."""

    rows_read: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, int] = field(default_factory=dict)
    drops: dict[str, dict[str, int]] = field(default_factory=dict)
    pairs_kept: dict[str, int] = field(default_factory=dict)
    skipped_files: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_json(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "candidates": self.candidates,
            "drops": self.drops,
            "pairs_kept": self.pairs_kept,
            "skipped_files": self.skipped_files,
            **extra,
        }


@dataclass(frozen=True)
class FileVerdicts:
    """Per object of one source: which to skip and why (rows counted by reason), decided on one cheap scan."""

    rows: int  # every row of the window, skipped objects' included
    skipped: dict[str, str]
    skipped_rows: dict[str, int]


def _glob_statuses(spark: SparkSession, pattern: str) -> list[Any]:
    filesystem, path = _filesystem(spark, pattern)
    return list(filesystem.globStatus(path) or [])


def _glob(spark: SparkSession, pattern: str) -> list[str]:
    return sorted(str(status.getPath().toString()) for status in _glob_statuses(spark, pattern))


def _filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    if jvm is None:
        message = "the Spark session has no JVM gateway; start it with build_session()"
        raise PreprocessError(message)
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def write_small_file(spark: SparkSession, uri: str, text: str) -> None:
    """Write a small file from the driver to any Hadoop URI (s3://, file://): what Spark writes everywhere else."""
    filesystem, path = _filesystem(spark, uri)
    stream = filesystem.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def write_single_parquet(spark: SparkSession, frame: DataFrame, folder_uri: str, name: str) -> None:
    """One parquet file `folder_uri/name`, written by Spark (one task) and renamed from its part file."""
    staging = f"{folder_uri.rstrip('/')}/_staging"
    frame.coalesce(1).write.mode("overwrite").parquet(staging)
    filesystem, staging_path = _filesystem(spark, staging)
    parts = [s.getPath() for s in filesystem.listStatus(staging_path) if s.getPath().getName().endswith(".parquet")]
    if len(parts) != 1:
        message = f"expected one parquet part under {staging}, found {len(parts)}"
        raise PreprocessError(message)
    _, target = _filesystem(spark, f"{folder_uri.rstrip('/')}/{name}")
    filesystem.delete(target, False)
    if not filesystem.rename(parts[0], target):
        message = f"could not move {parts[0].toString()} to {target.toString()}"
        raise PreprocessError(message)
    filesystem.delete(staging_path, True)


def _csv_text(rows: list[list[Any]], header: list[str] | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


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
            base = root.rstrip("/")
            for prefix in (f"{base}/aws/{source.value}/{folder}", f"{base}/*/aws/{source.value}/{folder}"):
                in_window = _glob(spark, f"{prefix}/region=*/accountId=*/eventDay={{{days}}}/*.parquet")
                partitioned.extend(in_window)
                if not in_window and not _glob(spark, f"{prefix}/region=*/accountId=*/eventDay=*"):
                    flat.extend(_glob(spark, f"{prefix}/*.parquet") + _glob(spark, f"{prefix}/**/*.parquet"))
        if partitioned:
            return SourceInput(source, version, sorted(set(partitioned)), partitioned=True)
        if flat:
            return SourceInput(source, version, sorted(set(flat)), partitioned=False)
    return None


def _visible_files(spark: SparkSession, pattern: str) -> list[str]:
    """Files matching a glob whose names do not start with '_' or '.' (what Spark itself would read)."""
    return sorted(
        str(status.getPath().toString())
        for status in _glob_statuses(spark, pattern)
        if status.isFile() and not str(status.getPath().getName()).startswith(("_", "."))
    )


def find_unloaded(spark: SparkSession, root: str, source: Source) -> SourceInput | None:
    """The files an Athena UNLOAD wrote for a source under <root>/aws/<SOURCE>/<version>/ (named after the query,
    without an extension): only the columns the query selected, every row already in the window."""
    for version in sorted(SOURCE_VERSIONS, reverse=True):
        prefix = f"{root.rstrip('/')}/aws/{source.value}/{SOURCE_VERSIONS[version].folder}"
        files = _visible_files(spark, f"{prefix}/*")
        if files:
            return SourceInput(source, version, files, partitioned=False, columns=READ_COLUMNS[source])
    return None


def read_source(spark: SparkSession, found: SourceInput, window: Window) -> DataFrame:
    """The rows of the window, read with the declared schema once the first file's own schema is checked.

    The first file decides a wrong --source-version (every file would be wrong); `judge_files` then finds the
    single misfiled, unreadable or duplicate objects among the rest. Corrupt files are skipped by Spark
    (spark.sql.files.ignoreCorruptFiles) and named by `judge_files`, never left to abort the job.
    """
    from pyspark.sql import functions as F

    observed = spark.read.parquet(found.files[0]).schema
    problems = spark_mismatches(observed, found.source, found.version, found.columns)
    if problems:
        message = (
            f"{found.files[0]} is under {found.source.value}/{SOURCE_VERSIONS[found.version].folder} but its schema "
            f"does not match source version {found.version}: {'; '.join(problems[:5])}. Expected the Security Lake "
            f"{found.source.value} {SOURCE_VERSIONS[found.version].folder} schema; pass --source-version to force "
            "another version if the folder name is wrong."
        )
        raise PreprocessError(message)
    frame = spark.read.schema(spark_schema(found.source, found.version, found.columns)).parquet(*found.files)
    frame = frame.withColumn("_file", F.input_file_name())
    return frame.where((F.col("time") >= window.start_ms) & (F.col("time") < window.end_ms))


def judge_files(spark: SparkSession, rows: DataFrame, found: SourceInput) -> FileVerdicts:
    """One scan of a few columns, grouped by object: an object whose every row lacks the version's account column
    was written with another schema (a v1 file under 2.0, a Route 53 file under VPC_FLOW); an object with the same
    row count and record fingerprint as another is a copy (the first by name is kept); in the window's eventDay
    partitions, a listed object that gave no rows could not be read (truncated, not parquet) or was empty (a flat
    layout's objects of other days rightly give none). Each is named in quality.json."""
    from pyspark.sql import functions as F

    fingerprint = F.xxhash64(*[F.col(name) for name in FINGERPRINT_COLUMNS[found.source]])
    stats = (
        rows.groupBy("_file")
        .agg(
            F.count("*").alias("rows"),
            F.sum(F.col(account_column(found.version)).isNull().cast("long")).alias("no_account"),
            F.sum(fingerprint).alias("fingerprint"),
        )
        .collect()
    )
    skipped: dict[str, str] = {}
    skipped_rows: dict[str, int] = {}
    seen: dict[tuple[int, int], str] = {}
    for row in sorted(stats, key=lambda r: str(r["_file"])):
        name, count = str(row["_file"]), int(row["rows"])
        if count and int(row["no_account"]) == count:
            skipped[name] = (
                f"{SCHEMA_MISMATCH}: no row has {account_column(found.version)}; written with another source's "
                f"or version's schema, not {found.source.value}/{SOURCE_VERSIONS[found.version].folder}"
            )
            skipped_rows[SCHEMA_MISMATCH] = skipped_rows.get(SCHEMA_MISMATCH, 0) + count
            continue
        key = (count, int(row["fingerprint"] or 0))
        if key in seen:
            skipped[name] = f"{DUPLICATE_OBJECT}: the same {count} records as {seen[key]}"
            skipped_rows[DUPLICATE_OBJECT] = skipped_rows.get(DUPLICATE_OBJECT, 0) + count
            continue
        seen[key] = name
    total = sum(int(row["rows"]) for row in stats)
    if not found.partitioned:  # without eventDay partitions, objects of other days rightly give no rows
        return FileVerdicts(total, skipped, skipped_rows)
    listed = {_qualified(spark, f) for f in found.files}
    read = {_qualified(spark, str(row["_file"])) for row in stats}
    for name in sorted(listed - read):
        skipped[name] = f"{UNREADABLE_OR_EMPTY}: no rows in the window could be read (truncated, not parquet, or empty)"
    return FileVerdicts(total, skipped, skipped_rows)


def _qualified(spark: SparkSession, uri: str) -> str:
    filesystem, path = _filesystem(spark, uri)
    return str(filesystem.makeQualified(path).toString())


def candidates(
    spark: SparkSession,
    roots: list[str],
    sources: list[Source],
    pair_mapping: PairMapping,
    algorithm: Algorithm,
    window: Window,
    forced_version: int | None,
    quality: Quality,
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
        if source == Source.VPC_FLOW and book_rows is not None:
            book_rows.append(address_rows(rows.drop("_file"), found.version, ADDRESS_BOOK_RULE))
        extracted = extract(rows.drop("_file"), source, found.version, pair_mapping.rule(source), algorithm)
        frames.append(extracted.withColumn("source", F.lit(key)))
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame)
    return combined


def cap_repetitions(kept: DataFrame, cap: int) -> DataFrame:
    """Keep each (entity, ip) pair's first `cap` events of each split; mark the rest over the cap."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    order = SparkWindow.partitionBy("split", "entity", "ip").orderBy("time", "source")
    ranked = kept.withColumn("_rank", F.row_number().over(order))
    return ranked.withColumn("reason", F.when(F.col("_rank") > cap, F.lit(OVER_CAP))).drop("_rank")


def _public_ipv4(value: Any) -> Any:
    """A Spark condition: the 32-bit value is a public unicast IPv4 address."""
    from pyspark.sql import functions as F

    first = F.shiftright(value, 24)
    second = F.shiftright(value, 16).bitwiseAND(255)
    return ~(
        first.isin(0, 10, 127)
        | (first >= 224)
        | ((first == 100) & (second >= 64) & (second < 128))
        | ((first == 169) & (second == 254))
        | ((first == 172) & (second >= 16) & (second < 32))
        | ((first == 192) & (second == 168))
        | ((first == 198) & (second.isin(18, 19)))
    )


def _dotted(value: Any) -> Any:
    from pyspark.sql import functions as F

    return F.concat_ws(".", *[F.shiftright(value, shift).bitwiseAND(255).cast("string") for shift in (24, 16, 8, 0)])


def entity_groups(spark: SparkSession, entities: list[str]) -> DataFrame:
    """Each entity's workload, account, role and peer group, named by the detector's own functions (one place)."""
    rows = [(e, base_entity(e), account_of(e), role_of(e), peer_group(e)) for e in sorted(entities)]
    schema = "entity string, workload string, account string, role string, peer_group string"
    return spark.createDataFrame(rows, schema)


def _ipv4_prefix16(ip: Any) -> Any:
    """A Spark expression: the /16 of a dotted IPv4 address as a number (null for IPv6)."""
    from pyspark.sql import functions as F

    parts = F.split(ip, "\\.")
    is_v4 = ip.rlike("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$")
    return F.when(is_v4, parts.getItem(0).cast("long") * 256 + parts.getItem(1).cast("long"))


def _private_ipv4(ip: Any) -> Any:
    """A Spark condition: a dotted IPv4 address in 10/8, 172.16/12 or 192.168/16."""
    return ip.rlike("^(10\\.|192\\.168\\.|172\\.(1[6-9]|2[0-9]|3[01])\\.)")


def _first_found(candidates: DataFrame, key: str) -> DataFrame:
    """The first attempt per key that survived the filters."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    first = SparkWindow.partitionBy(key).orderBy("attempt")
    return candidates.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n")


def eval_set(train: DataFrame, validation: DataFrame, seed: int) -> DataFrame:
    """Held-out validation pairs (label 0), the model's negatives per normal row of an entity seen in training, and
    the attacks injected into that day for the detector (scripts/eval_kinds.py says what each kind is)."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    spark = train.sparkSession
    known_pairs = train.select("entity", "ip").unionByName(validation.select("entity", "ip")).distinct()
    info = F.broadcast(entity_groups(spark, [r["entity"] for r in known_pairs.select("entity").distinct().collect()]))
    known = known_pairs.join(info, "entity")
    group_ips = known.select("peer_group", "ip").distinct()
    train_entities = train.select("entity").distinct().withColumn("entity_in_training", F.lit(1))
    positives = (
        validation.select("entity", "ip")
        .distinct()
        .join(train_entities, "entity", "left")
        .fillna({"entity_in_training": 0})
        .withColumn("row_id", F.row_number().over(SparkWindow.orderBy("entity", "ip")) - 1)
    )
    ips = known_pairs.select("ip").distinct().withColumn("ip_index", F.row_number().over(SparkWindow.orderBy("ip")) - 1)
    ip_count = max(ips.count(), 1)
    seen = positives.where(F.col("entity_in_training") == 1).select("row_id", "entity").join(info, "entity")
    attempts = seen.crossJoin(spark.range(NEGATIVE_ATTEMPTS).withColumnRenamed("id", "attempt"))
    hashed = F.xxhash64("entity", "row_id", "attempt", F.lit(seed))
    other_group = (
        attempts.withColumn("ip_index", F.pmod(hashed, F.lit(ip_count)))
        .join(ips, "ip_index")
        .join(group_ips, ["peer_group", "ip"], "left_anti")
        .withColumn("kind", F.lit(OTHER_GROUP_IP))
    )
    random_value = F.pmod(F.xxhash64("entity", "row_id", "attempt", F.lit(seed), F.lit("r")), F.lit(2**32))
    random = (
        attempts.withColumn("value", random_value)
        .where(_public_ipv4(F.col("value")))
        .withColumn("ip", _dotted(F.col("value")))
        .join(known_pairs, ["entity", "ip"], "left_anti")
        .withColumn("kind", F.lit(RANDOM_IPV4))
    )
    per_row = [
        _first_found(frame.select("row_id", "entity", "ip", "attempt", "kind"), "row_id")
        for frame in (other_group, random)
    ]
    injected = _injected(spark, seen, known, info, group_ips, seed)
    negatives = per_row[0].unionByName(per_row[1]).drop("attempt").withColumn("entity_in_training", F.lit(1))
    negatives = negatives.unionByName(injected).withColumn("label", F.lit(1))
    model_negative = F.col("kind").isin(*MODEL_NEGATIVE_KINDS).cast("int")
    normal = positives.select(
        "row_id", "entity", "ip", F.lit(NORMAL).alias("kind"), F.lit(0).alias("label"), "entity_in_training"
    )
    order = F.lit(len(KIND_ORDER))
    for position, kind in reversed(list(enumerate(KIND_ORDER))):
        order = F.when(F.col("kind") == kind, position).otherwise(order)
    return (
        normal.unionByName(negatives)
        .withColumn("model_negative", model_negative)
        .withColumn("_order", order)
        .orderBy("row_id", "_order", "entity", "ip")
        .drop("_order")
    )


def _injected(
    spark: SparkSession, seen: DataFrame, known: DataFrame, info: DataFrame, group_ips: DataFrame, seed: int
) -> DataFrame:
    """One attack of each injected kind per entity seen in training (new_role: per workload), where one exists:
    row_id, entity, ip, kind, entity_in_training. They sit next to the entity's first normal row."""
    from pyspark.sql import functions as F

    entities = seen.groupBy("entity", "workload", "account", "peer_group").agg(F.min("row_id").alias("row_id"))
    attempts = entities.crossJoin(spark.range(4 * NEGATIVE_ATTEMPTS).withColumnRenamed("id", "attempt"))
    value = F.pmod(F.xxhash64("entity", "attempt", F.lit(seed), F.lit("n")), F.lit(2**32))
    group_networks = (
        known.select("peer_group", _ipv4_prefix16(F.col("ip")).alias("prefix16")).where(F.col("prefix16").isNotNull())
    ).distinct()
    new_network = (
        attempts.withColumn("value", value)
        .where(_public_ipv4(F.col("value")))
        .withColumn("prefix16", F.shiftright(F.col("value"), 16))
        .join(group_networks, ["peer_group", "prefix16"], "left_anti")
        .withColumn("ip", _dotted(F.col("value")))
        .withColumn("kind", F.lit(NEW_NETWORK))
    )
    pool = (
        known.where(_private_ipv4(F.col("ip")))
        .select(F.col("account").alias("owner"), "ip")
        .distinct()
        .withColumn("pool_index", F.row_number().over(_ordered("owner", "ip")) - 1)
    )
    pool_size = max(pool.count(), 1)
    internal = (
        attempts.withColumn(
            "pool_index", F.pmod(F.xxhash64("entity", "attempt", F.lit(seed), F.lit("i")), F.lit(pool_size))
        )
        .join(pool, "pool_index")
        .where(F.col("owner") != F.col("account"))
        .join(group_ips, ["peer_group", "ip"], "left_anti")
        .withColumn("kind", F.lit(OTHER_ACCOUNT_INTERNAL))
    )
    roles = info.where(F.col("role") != "").select("account", "role").distinct()
    held = info.select("workload", "role").distinct()
    role_groups = info.where(F.col("role") != "").select("account", "role", F.col("peer_group").alias("role_group"))
    workloads = entities.groupBy("workload", "account").agg(F.min("row_id").alias("row_id"))
    new_roles = (
        workloads.join(roles, "account")
        .join(held, ["workload", "role"], "left_anti")
        .join(role_groups.distinct(), ["account", "role"])
        .join(group_ips.withColumnRenamed("peer_group", "role_group"), "role_group")
        .withColumn("attempt", F.xxhash64("workload", "role", "ip", F.lit(seed)))
        .withColumn("entity", F.concat("workload", F.lit(ROLE_SEPARATOR), "role"))
        .withColumn("kind", F.lit(NEW_ROLE))
    )
    columns = ("row_id", "entity", "ip", "attempt", "kind")
    found = [
        _first_found(new_network.select(*columns), "entity"),
        _first_found(internal.select(*columns), "entity"),
        _first_found(new_roles.select(*columns, "workload"), "workload").drop("workload"),
    ]
    union = found[0].unionByName(found[1]).unionByName(found[2]).drop("attempt")
    return union.withColumn("entity_in_training", F.when(F.col("kind") == NEW_ROLE, 0).otherwise(1))


def _ordered(*columns: str) -> Any:
    from pyspark.sql import Window as SparkWindow

    return SparkWindow.orderBy(*columns)


def check_splits(split_rows: dict[str, int], window: Window, final: DataFrame) -> None:
    """Both splits must have rows, or training fails later with a message about channels, not about the window."""
    from pyspark.sql import functions as F

    empty = [name for name in ("train", "validation") if not split_rows.get(name)]
    if not empty:
        return
    days = sorted(
        dt.datetime.fromtimestamp(int(row["day"]) * DAY_MS / 1000, dt.UTC).strftime("%Y%m%d")
        for row in final.select(F.floor(F.col("time") / F.lit(DAY_MS)).alias("day")).distinct().collect()
    )
    which = {
        "validation": f"the validation day {window.days[-1]} has no pairs",
        "train": f"the training days {window.days[0]}..{window.days[-2]} have no pairs",
    }
    message = (
        f"{' and '.join(which[name] for name in empty)} (days with pairs in the window: {', '.join(days) or 'none'}). "
        "Set --end-day to the last day with data (the validation day) and --lookback-days so that earlier days "
        "with data are inside the window."
    )
    raise PreprocessError(message)


def write_history(spark: SparkSession, kept: DataFrame, folder_uri: str) -> None:
    """history/history.parquet: each pair once per day it was seen (training and validation days), with the first
    time it was seen that day and its events that day.

    The detector reads it: what each entity talked to before and since when, and, day by day, how often its new
    peers are that new. Counted before the per-pair cap, so a chatty pair's count is its true one. Written by Spark,
    not pandas: the Spark image's Python has no parquet engine.
    """
    from pyspark.sql import functions as F

    day = F.floor(F.col("time") / F.lit(DAY_MS))
    history = (
        kept.groupBy("entity", "ip", day.alias("day"))
        .agg(F.min("time").cast("long").alias("first_seen_ms"), F.count("*").cast("long").alias("events"))
        .repartition(1)
        .sortWithinPartitions("entity", "ip", "day")
        .select("entity", "ip", "first_seen_ms", "events")
    )
    write_single_parquet(spark, history, folder_uri, HISTORY_FILE)


def write_address_book(spark: SparkSession, rows: list[DataFrame], folder_uri: str) -> int:
    """history/address_book.parquet: who had each address the flow logs were logged on (account, region, VPC,
    subnet, workload) and when; the detector learns from it which account an internal peer belongs to. Its size
    grows with the organisation's addresses, not with its traffic. Returns its row count (0: no flow source, no
    file)."""
    if not rows:
        return 0
    combined = rows[0]
    for frame in rows[1:]:
        combined = combined.unionByName(frame)
    book = address_book(combined).repartition(1).sortWithinPartitions("ip", "last_seen_ms").persist()
    write_single_parquet(spark, book, folder_uri, ADDRESS_BOOK_FILE)
    count = book.count()
    book.unpersist()
    return count


def build_session(app_name: str = "seclake-preprocess") -> SparkSession:
    """A Spark session for this step: UTC, account ids kept as strings, no checksum files in local output."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.files.ignoreCorruptFiles", "true")
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


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
) -> dict[str, Any]:
    """The whole step: read, extract, clean, split by time, cap, write channels, eval set and quality.json."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    quality = Quality()
    book_rows: list[DataFrame] = []
    all_candidates = candidates(
        spark, roots, sources, pair_mapping, algorithm, window, forced_version, quality, unloaded, book_rows
    )
    split = F.when(F.col("time") >= window.validation_start_ms, F.lit("validation")).otherwise(F.lit("train"))
    kept = cap_repetitions(all_candidates.where(F.col("reason").isNull()).withColumn("split", split), max_pair_repeats)
    kept = kept.persist(StorageLevel.MEMORY_AND_DISK)
    dropped = all_candidates.where(F.col("reason").isNotNull()).select("source", "reason")
    for row in (
        dropped.unionByName(kept.where(F.col("reason").isNotNull()).select("source", "reason"))
        .groupBy("source", "reason")
        .count()
        .collect()
    ):
        quality.drops.setdefault(row["source"], {})[row["reason"]] = int(row["count"])
    for row in all_candidates.groupBy("source").count().collect():
        skipped = sum(quality.drops.get(row["source"], {}).get(r, 0) for r in (SCHEMA_MISMATCH, DUPLICATE_OBJECT))
        quality.candidates[row["source"]] = int(row["count"]) + skipped
    final = kept.where(F.col("reason").isNull())
    for row in final.groupBy("source").count().collect():
        quality.pairs_kept[row["source"]] = int(row["count"])
    split_rows = {row["split"]: int(row["count"]) for row in final.groupBy("split").count().collect()}
    check_splits(split_rows, window, final)
    train = final.where(F.col("split") == "train")
    validation = final.where(F.col("split") == "validation")
    for name, frame in (("train", train), ("validation", validation)):
        frame.orderBy("time", "entity", "ip").select("entity", "ip").write.mode("overwrite").csv(
            destinations[name], header=False
        )
    write_history(spark, kept, destinations["history"])
    book_addresses = write_address_book(spark, book_rows, destinations["history"])
    evaluation = eval_set(train, validation, seed).collect()
    eval_uri = destinations["eval"].rstrip("/")
    write_small_file(spark, f"{eval_uri}/pairs.csv", _csv_text([[r["entity"], r["ip"]] for r in evaluation]))
    write_small_file(
        spark,
        f"{eval_uri}/labels.csv",
        _csv_text(
            [[r[column] for column in LABEL_COLUMNS] for r in evaluation],
            header=list(LABEL_COLUMNS),
        ),
    )
    kinds: dict[str, int] = {}
    for r in evaluation:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    entities = train.select("entity").distinct().count()
    extra = {
        "window": {
            "end_day": window.end_day.strftime("%Y%m%d"),
            "lookback_days": window.lookback_days,
            "validation_day": window.days[-1],
        },
        "mapping": pair_mapping.name,
        "access": "athena" if unloaded else "s3",
        "algorithm": algorithm.value,
        "max_pair_repeats": max_pair_repeats,
        "train_rows": train.count(),
        "validation_rows": validation.count(),
        "eval_rows": dict(sorted(kinds.items())),
        "distinct_entities": entities,
        "distinct_ips": final.select("ip").distinct().count(),
        "address_book_rows": book_addresses,
        "suggested_num_entity_vectors": max(2 * entities, 2),
    }
    report = quality.as_json(extra)
    write_small_file(
        spark,
        f"{destinations['quality'].rstrip('/')}/{QUALITY_FILE}",
        json.dumps(report, indent=2, sort_keys=True) + "\n",
    )
    kept.unpersist()
    return report


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
    parser.add_argument("--lookback-days", type=int, default=7, help="Days in the window, validation day included")
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


def main(argv: list[str] | None = None) -> int:
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
        spark = build_session()
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
