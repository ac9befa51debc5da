"""Files through Hadoop's FileSystem from the driver (globs, small files, one-file parquet): s3:// and file:// alike,
never a scheme-less path (in the SageMaker Spark container the default filesystem is HDFS)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from scripts.prepare.errors import PreprocessError
from scripts.prepare.request_log import REQUESTS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def glob_statuses(spark: SparkSession, pattern: str) -> list[Any]:
    REQUESTS.listed(pattern)
    filesystem, path = _filesystem(spark, pattern)
    return list(filesystem.globStatus(path) or [])


def glob_files(spark: SparkSession, pattern: str) -> list[str]:
    return sorted(str(status.getPath().toString()) for status in glob_statuses(spark, pattern))


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


def csv_text(rows: list[list[Any]], header: list[str] | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def visible_files(spark: SparkSession, pattern: str) -> list[str]:
    """Files matching a glob whose names do not start with '_' or '.' (what Spark itself would read)."""
    return sorted(
        str(status.getPath().toString())
        for status in glob_statuses(spark, pattern)
        if status.isFile() and not str(status.getPath().getName()).startswith(("_", "."))
    )


def qualified(spark: SparkSession, uri: str) -> str:
    filesystem, path = _filesystem(spark, uri)
    return str(filesystem.makeQualified(path).toString())
