"""Summarise a lake on disk: files, rows, days, accounts, regions, workloads, and the injected anomalies."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.local.s3map import local_lake_buckets
from pipeline.samplelake.writer import LABELS_FILE
from scripts.ocsf.layout import CUSTOM_SOURCE_PREFIX, parse_object_key

_WORKLOAD_COLUMNS = {
    "VPC_FLOW": [
        "src_endpoint.instance_uid",
        "dst_endpoint.instance_uid",
        "src_endpoint.interface_uid",
        "dst_endpoint.interface_uid",
    ],
    "ROUTE53": ["src_endpoint.instance_uid"],
}
_MISSING = {"-", ""}


@dataclass
class SourceSummary:
    """One source and version in the lake."""

    source: str
    version: int | None
    files: int = 0
    rows: int = 0
    bytes: int = 0
    days: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)
    instances: set[str] = field(default_factory=set)
    interfaces: set[str] = field(default_factory=set)


@dataclass
class LakeSummary:
    """Everything `seclake lake summary` reports."""

    root: Path
    sources: list[SourceSummary]
    anomalies: dict[str, int]
    custom_sources: dict[str, int] = field(default_factory=dict)  # ext/<name>/ in a lake bucket -> its files
    other_files: dict[str, int] = field(default_factory=dict)  # a lake bucket's files in neither layout, by prefix

    @property
    def empty(self) -> bool:
        return not any(s.files for s in self.sources)


def _distinct(path: Path, columns: list[str]) -> tuple[set[str], set[str]]:
    instances: set[str] = set()
    interfaces: set[str] = set()
    table = pq.read_table(path, columns=columns)
    for name, column in zip(columns, table.columns, strict=True):
        values = {v for v in pc.unique(column).to_pylist() if v is not None and v not in _MISSING}
        (interfaces if name.endswith("interface_uid") else instances).update(values)
    return instances, interfaces


def lake_files(lake: Path) -> list[Path]:
    """The parquet files of the Security Lake buckets under the local S3 root (never the artifacts' bucket, which
    holds the pipeline's own parquet: its history and address book)."""
    return [path for _, bucket in local_lake_buckets(lake) for path in sorted(bucket.rglob("*.parquet"))]


def _other_prefix(bucket: str, key: str) -> tuple[str, str | None]:
    """A custom source's name (ext/<name>/...), or the prefix (two folders deep) that names an unknown file."""
    parts = key.split("/")
    if parts[0] == CUSTOM_SOURCE_PREFIX and len(parts) > 2:
        return parts[1], None
    return "", f"s3://{bucket}/" + "".join(f"{part}/" for part in parts[:-1][:2])


def summarise_lake(root: Path) -> LakeSummary:
    """Walk the local lake's buckets for native-source objects and read their metadata and workload columns; files of
    custom sources are counted by source, any other file by its prefix."""
    summaries: dict[tuple[str, int | None], SourceSummary] = {}
    custom: Counter[str] = Counter()
    other: Counter[str] = Counter()
    lake = root / "s3"
    for path in lake_files(lake):
        bucket, _, key = path.relative_to(lake).as_posix().partition("/")
        location = parse_object_key(key)
        if location is None:
            name, prefix = _other_prefix(bucket, key)
            if prefix is None:
                custom[name] += 1
            else:
                other[prefix] += 1
            continue
        summary = summaries.setdefault(
            (location.source, location.version), SourceSummary(location.source, location.version)
        )
        summary.files += 1
        summary.rows += pq.ParquetFile(path).metadata.num_rows
        summary.bytes += path.stat().st_size
        summary.days.add(location.event_day)
        summary.accounts.add(location.account)
        summary.regions.add(location.region)
        columns = _WORKLOAD_COLUMNS.get(location.source)
        if columns:
            instances, interfaces = _distinct(path, columns)
            summary.instances |= instances
            summary.interfaces |= interfaces
    anomalies: Counter[str] = Counter()
    labels = root / LABELS_FILE
    if labels.exists():
        with labels.open(newline="") as handle:
            anomalies.update(row["kind"] for row in csv.DictReader(handle))
    ordered = sorted(summaries.values(), key=lambda s: (s.source, s.version or 0))
    return LakeSummary(root, ordered, dict(sorted(anomalies.items())), dict(sorted(custom.items())), dict(other))
