"""Write a generated lake to disk in the real Security Lake layout, streaming row group by row group."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.samplelake.anomalies import ANOMALY_KINDS, Injection, Label, merge_injections, plan_anomalies
from pipeline.samplelake.backups import nightly_backups
from pipeline.samplelake.changes import BENIGN_CHANGES, plan_changes
from pipeline.samplelake.organisation import DEFAULT_WORKLOADS_PER_VPC, World
from pipeline.samplelake.records import WorldArrays, dns_table, flow_table, nodata_table, query_table
from pipeline.samplelake.stealthy import plan_stealthy
from pipeline.samplelake.topology import BLUE_GREEN, NEW_SERVICE
from pipeline.samplelake.traffic import (
    DIURNAL,
    HOUR_MS,
    Connections,
    Queries,
    block_hours,
    draw_times,
    normal_connections,
    scan_connections,
)
from pipeline.samplelake.world import build_world
from scripts.ocsf.layout import bucket_name, object_key
from scripts.ocsf.schemas import Source, arrow_schema

LABELS_FILE = "labels/anomalies.csv"
BENIGN_LABELS_FILE = "labels/benign_changes.csv"  # the pairs of benign changes (changes.py), same columns
MANIFEST_FILE = "labels/manifest.json"
LABEL_COLUMNS = ("entity", "ip", "kind", "first_seen", "account", "region")
# Share of outbound connections to named services preceded by a Route 53 lookup (the rest hit resolver caches).
DNS_SHARE = 0.6
# Security Lake writes GZIP parquet; level 1 is four times faster to write than the default and ~3% larger.
GZIP_LEVEL = 1


@dataclass(frozen=True)
class GenerationOptions:
    """What to generate: size, shape and dirt."""

    root: Path
    days: int
    events_per_day: int
    end_day: dt.date
    source_version: int = 2
    seed: int = 7
    accounts: int = 3
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    workloads_per_vpc: int = DEFAULT_WORKLOADS_PER_VPC  # one VPC per (account, region); ROLE_COUNTS scaled
    nodata_fraction: float = 0.005
    reject_scan_fraction: float = 0.04
    ipv6_client_fraction: float = 0.05
    malformed_ip_fraction: float = 0.0002
    anomalies_per_kind: int = 2
    anomaly_kinds: tuple[str, ...] = ANOMALY_KINDS
    benign_changes: tuple[str, ...] = ()  # changes.BENIGN_CHANGES to make on the last day, labelled apart
    autoscaling_churn: float = 0.0  # share of each autoscaled group's instances replaced every day
    s3_rotation: bool = False  # S3 answers from many networks, many new addresses a day
    cross_account_calls: bool = False  # app servers call app servers of the other accounts in their region
    ipam_subnets: bool = False  # every subnet a /24 drawn from 10/8 (an IPAM pool), accounts' subnets interleaved
    db_failover: float = 0.0  # each day, the share of databases that fail over to a standby in another subnet
    nightly_backups: bool = False  # database and batch servers upload their backups to S3 every night (backups.py)
    files_per_partition: int = 4
    row_group_rows: int = 200_000


@dataclass
class GenerationReport:
    """What was written, and how fast."""

    files: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    benign_labels: int = 0
    seconds: float = 0.0
    lake_root: str = ""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds else 0.0


def _file_name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=32)) + ".gz.parquet"


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of `total` proportional to `weights`, summing exactly to `total`."""
    raw = total * weights / weights.sum()
    shares: np.ndarray = np.floor(raw).astype(np.int64)
    shares[np.argsort(raw - shares)[::-1][: total - shares.sum()]] += 1
    return shares


class _LakeWriter:
    def __init__(
        self,
        options: GenerationOptions,
        world: World,
        injections: dict[int, Injection],
        progress: Callable[[int], None] | None,
    ) -> None:
        self.options = options
        self.world = world
        self.arrays = WorldArrays.of(world)
        self.injections = injections
        self.progress = progress
        self.report = GenerationReport(lake_root=str(options.root / "s3"))
        self.schemas = {source: arrow_schema(source, options.source_version) for source in Source}
        self.first_day = options.end_day - dt.timedelta(days=options.days - 1)

    def path(self, source: Source, partition: int, day: dt.date, rng: np.random.Generator) -> Path:
        part = self.world.partitions[partition]
        bucket = bucket_name(part.region, self.world.bucket_suffix[part.region])
        key = object_key(
            source, self.options.source_version, part.region, part.account, day.strftime("%Y%m%d"), _file_name(rng)
        )
        path = self.options.root / "s3" / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_day(self, day_index: int) -> None:
        options = self.options
        day = self.first_day + dt.timedelta(days=day_index)
        day_start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
        cumulative = self.world.peers.day_cumulative(day_index)
        activity = np.array([p.activity for p in self.world.partitions])
        per_partition = _split(options.events_per_day, activity)
        blocks = options.files_per_partition
        block_weight = np.array([DIURNAL[block_hours(b, blocks)].sum() for b in range(blocks)])
        for partition, records in enumerate(per_partition.tolist()):
            injection = self.injections.get(partition) if day_index == self.world.days - 1 else None
            added = [injection.connections] if injection is not None and injection.connections is not None else []
            day_queries = injection.queries if injection is not None else None
            if options.nightly_backups:
                backups = nightly_backups(self.world, options.seed, partition, day_index, day_start)
                added += [backups] if backups is not None else []
            day_extra = Connections.concat(added) if added else None
            for block, block_records in enumerate(_split(records, block_weight).tolist()):
                rng = np.random.default_rng([options.seed, 3, day_index, partition, block])
                hours = block_hours(block, blocks)
                extra = _in_hours(day_extra, day_start, hours)
                queries = _in_hours(day_queries, day_start, hours)
                self.write_block(
                    rng, partition, day_index, day, day_start, hours, block_records, cumulative, extra, queries
                )

    def write_block(
        self,
        rng: np.random.Generator,
        partition: int,
        day_index: int,
        day: dt.date,
        day_start: int,
        hours: np.ndarray,
        records: int,
        cumulative: np.ndarray,
        extra: Connections | None,
        queries: Queries | None = None,
    ) -> None:
        options = self.options
        writers = {
            source: pq.ParquetWriter(
                self.path(source, partition, day, rng),
                self.schemas[source],
                compression="gzip",
                compression_level=GZIP_LEVEL,
            )
            for source in Source
        }
        remaining = records
        try:
            while remaining > 0 or extra is not None or queries is not None:
                chunk = min(remaining, options.row_group_rows)
                remaining -= chunk
                scans = int(rng.binomial(chunk, options.reject_scan_fraction))
                nodata = int(rng.binomial(chunk, options.nodata_fraction))
                pairs = max((chunk - scans - nodata) // 2, 0)
                scans = max(chunk - nodata - 2 * pairs, 0)  # exact row count: the odd row is one more scan
                parts = [
                    normal_connections(
                        rng, self.world, partition, day_index, cumulative, draw_times(rng, day_start, hours, pairs)
                    ),
                    scan_connections(rng, self.world, partition, day_index, draw_times(rng, day_start, hours, scans)),
                ]
                if extra is not None:
                    parts.append(extra)
                    extra = None
                conns = Connections.concat(parts)
                members = self.world.partitions[partition].workloads
                silent = members[rng.integers(0, len(members), size=nodata)]
                flows = pa.concat_tables(
                    [
                        flow_table(self.arrays, conns, options.source_version, rng, options.malformed_ip_fraction),
                        nodata_table(
                            self.arrays, silent, draw_times(rng, day_start, hours, nodata), options.source_version
                        ),
                    ]
                )
                dns = dns_table(self.arrays, conns, options.source_version, rng, DNS_SHARE, day_index)
                if queries is not None:
                    dns = pa.concat_tables([dns, query_table(self.arrays, queries, options.source_version, rng)])
                    queries = None
                for source, table in ((Source.VPC_FLOW, flows), (Source.ROUTE53, dns)):
                    ordered = table.take(np.argsort(table.column("time").to_numpy(), kind="stable"))
                    writers[source].write_table(ordered, row_group_size=options.row_group_rows)
                    self.report.rows[source.value] = self.report.rows.get(source.value, 0) + len(ordered)
                if self.progress is not None:
                    self.progress(len(flows))
        finally:
            for source, writer in writers.items():
                writer.close()
                self.report.files[source.value] = self.report.files.get(source.value, 0) + 1


Picked = TypeVar("Picked", Connections, Queries)


def _in_hours(rows: Picked | None, day_start: int, hours: np.ndarray) -> Picked | None:
    """The rows (connections or queries) whose time falls in `hours` of the day; None when none do."""
    if rows is None:
        return None
    mask = np.isin((rows.time_ms - day_start) // HOUR_MS, hours)
    return rows.select(mask) if mask.any() else None


def _write_labels(root: Path, labels: list[Label], options: GenerationOptions) -> tuple[int, int]:
    """The attacks' labels, the benign changes' labels and the manifest: (attack pairs, benign pairs) written."""
    attacks = _write_label_file(root / LABELS_FILE, [label for label in labels if label.kind not in BENIGN_CHANGES])
    benign = [label for label in labels if label.kind in BENIGN_CHANGES]
    changes = _write_label_file(root / BENIGN_LABELS_FILE, benign) if options.benign_changes else 0
    manifest = {
        key: str(value) if isinstance(value, Path | dt.date) else value for key, value in asdict(options).items()
    }
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return attacks, changes


def _write_label_file(path: Path, labels: list[Label]) -> int:
    earliest: dict[tuple[str, str], Label] = {}
    for label in labels:
        key = (label.entity, label.ip)
        if key not in earliest or label.first_seen_ms < earliest[key].first_seen_ms:
            earliest[key] = label
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LABEL_COLUMNS)
        for label in sorted(earliest.values(), key=lambda x: (x.first_seen_ms, x.entity, x.ip)):
            first_seen = dt.datetime.fromtimestamp(label.first_seen_ms / 1000, tz=dt.UTC).isoformat()
            writer.writerow((label.entity, label.ip, label.kind, first_seen, label.account, label.region))
    return len(earliest)


def generate_lake(options: GenerationOptions, progress: Callable[[int], None] | None = None) -> GenerationReport:
    """Generate the lake under `options.root/s3/`, the anomaly labels and the benign changes' under
    `options.root/labels/`."""
    started = time.perf_counter()
    world = build_world(
        options.seed,
        options.days,
        options.accounts,
        list(options.regions),
        options.ipv6_client_fraction,
        options.autoscaling_churn,
        options.s3_rotation,
        options.cross_account_calls,
        options.ipam_subnets,
        options.db_failover,
        BLUE_GREEN in options.benign_changes,
        NEW_SERVICE in options.benign_changes,
        options.workloads_per_vpc,
    )
    last_day = options.end_day
    last_start = int(dt.datetime(last_day.year, last_day.month, last_day.day, tzinfo=dt.UTC).timestamp() * 1000)
    attacks = plan_anomalies(world, options.seed, last_start, options.anomalies_per_kind, options.anomaly_kinds)
    stealthy = plan_stealthy(world, options.seed, last_start, options.anomalies_per_kind, options.anomaly_kinds)
    changes = plan_changes(world, options.seed, last_start, options.benign_changes)
    injections = merge_injections(attacks, stealthy, changes)
    writer = _LakeWriter(options, world, injections, progress)
    for day_index in range(options.days):
        writer.write_day(day_index)
    report = writer.report
    labels = [label for i in injections.values() for label in i.labels]
    report.labels, report.benign_labels = _write_labels(options.root, labels, options)
    report.seconds = time.perf_counter() - started
    return report
