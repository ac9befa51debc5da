"""The job's outputs: where each goes, the pair cap, the split check, the history and the address book."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scripts.entity import ACCOUNT_SEPARATOR
from scripts.handoff.artifacts import ADDRESS_BOOK_FILE, HISTORY_FILE, NAMES_COLUMNS, NAMES_FILE, PREPARED_OUTPUTS
from scripts.handoff.evalset import LABEL_COLUMNS, LABELS_FILE, PAIRS_FILE
from scripts.jobconfig import output_uris
from scripts.pairs.mapping import BYTES_OUT, QUERY_NAME
from scripts.pairs.spark_engine import address_book
from scripts.prepare.errors import PreprocessError
from scripts.prepare.hadoop_io import csv_text, write_single_parquet, write_small_file
from scripts.window import DAY_MS, Window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OVER_CAP = "over_pair_cap"
TRUE_POSITIVE_VERDICT = "true_positive_verdict"  # an analyst confirmed the pair malicious: never learned as normal


OUTPUT_NAMES = PREPARED_OUTPUTS


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


def mark_true_positives(spark: SparkSession, rows: DataFrame, positives: Collection[tuple[str, str]]) -> DataFrame:
    """Rows of a pair an analyst confirmed as a true positive (scripts/handoff/verdicts.py) are dropped with their
    reason, from every split, the history and the eval set; the rest are unchanged."""
    from pyspark.sql import functions as F

    if not positives:
        return rows
    confirmed = spark.createDataFrame(sorted(positives), "entity string, ip string").withColumn("_confirmed", F.lit(1))
    marked = rows.join(F.broadcast(confirmed), ["entity", "ip"], "left")
    reason = F.when(F.col("reason").isNull() & F.col("_confirmed").isNotNull(), F.lit(TRUE_POSITIVE_VERDICT))
    return marked.withColumn("reason", reason.otherwise(F.col("reason"))).drop("_confirmed")


def cap_repetitions(kept: DataFrame, cap: int) -> DataFrame:
    """Keep each (entity, ip) pair's first `cap` events of each split; mark the rest over the cap."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    order = SparkWindow.partitionBy("split", "entity", "ip").orderBy("time", "source")
    ranked = kept.withColumn("_rank", F.row_number().over(order))
    return ranked.withColumn("reason", F.when(F.col("_rank") > cap, F.lit(OVER_CAP))).drop("_rank")


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
    time it was seen that day, its events that day and the bytes the entity sent to the address that day.

    The detector reads it: what each entity talked to before and since when, and, day by day, how often its new
    peers are that new. Counted before the per-pair cap, so a chatty pair's count is its true one. Written by Spark,
    not pandas: the Spark image's Python has no parquet engine.
    """
    from pyspark.sql import functions as F

    day = F.floor(F.col("time") / F.lit(DAY_MS))
    history = (
        kept.groupBy("entity", "ip", day.alias("day"))
        .agg(
            F.min("time").cast("long").alias("first_seen_ms"),
            F.count("*").cast("long").alias("events"),
            F.sum(BYTES_OUT).cast("long").alias(BYTES_OUT),
        )
        .repartition(1)
        .sortWithinPartitions("entity", "ip", "day")
        .select("entity", "ip", "first_seen_ms", "events", BYTES_OUT)
    )
    write_single_parquet(spark, history, folder_uri, HISTORY_FILE)


def write_names(spark: SparkSession, kept: DataFrame, folder_uri: str) -> int:
    """history/names.parquet: per account (as scripts.entity.account_of reads it off the entity) and name asked of
    Route 53, when first and last answered in the window, its answers and how many entities asked. The detector says
    from it whether a DNS answer's name is one the account asks for routinely or one the organisation never asked
    for. Its size grows with the names, not with the queries. Returns its row count."""
    from pyspark.sql import functions as F

    account = F.substring_index(F.col("entity"), ACCOUNT_SEPARATOR, 1)
    names = (
        kept.where(F.col(QUERY_NAME).isNotNull())
        .groupBy(account.alias("account"), F.col(QUERY_NAME).alias("name"))
        .agg(
            F.min("time").cast("long").alias("first_seen_ms"),
            F.max("time").cast("long").alias("last_seen_ms"),
            F.count("*").cast("long").alias("answers"),
            F.countDistinct("entity").cast("long").alias("workloads"),
        )
        .repartition(1)
        .sortWithinPartitions("account", "name")
        .select(*NAMES_COLUMNS)
        .persist()
    )
    write_single_parquet(spark, names, folder_uri, NAMES_FILE)
    count = names.count()
    names.unpersist()
    return count


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


def write_eval_set(spark: SparkSession, rows: list[Any], folder_uri: str) -> None:
    """pairs.csv (headerless entity,ip: what the batch transform scores) and labels.csv, row-aligned."""
    folder = folder_uri.rstrip("/")
    write_small_file(spark, f"{folder}/{PAIRS_FILE}", csv_text([[r["entity"], r["ip"]] for r in rows]))
    labels = csv_text([[r[column] for column in LABEL_COLUMNS] for r in rows], header=list(LABEL_COLUMNS))
    write_small_file(spark, f"{folder}/{LABELS_FILE}", labels)
