"""Pair extraction throughput on a generated lake: Spark engine, pyarrow engine, and a plain pandas baseline.

    python -m benchmarks.preprocess --events 10000000        # generates the lake first (cached under --work)
Each engine extracts `peer` pairs from every VPC flow file; one warm-up run, then the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.samplelake.writer import GenerationOptions, generate_lake
from scripts.ocsf.schemas import Source, spark_schema
from scripts.pairs import arrow_engine, spark_engine
from scripts.pairs.mapping import mapping

END_DAY = dt.date(2026, 11, 28)
BASELINE_COLUMNS = ["connection_info", "src_endpoint", "dst_endpoint", "cloud", "disposition", "action"]


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in (root / "s3").rglob("*.parquet") if "/aws/VPC_FLOW/" in p.as_posix())


def spark_run(files: list[str]) -> int:
    from scripts.jobs.preprocess import build_session

    spark = build_session("seclake-bench")
    frame = spark.read.schema(spark_schema(Source.VPC_FLOW, 2)).parquet(*files)
    extracted = spark_engine.extract(frame, Source.VPC_FLOW, 2, mapping("peer").rule(Source.VPC_FLOW))
    return int(extracted.where("reason is null").count())


def arrow_run(files: list[str]) -> int:
    rule = mapping("peer").rule(Source.VPC_FLOW)
    kept = 0
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=100_000):
            kept += arrow_engine.extract(batch, Source.VPC_FLOW, 2, rule).pairs.num_rows
    return kept


def baseline_run(files: list[str]) -> int:
    """What one would write by hand: read the struct columns to pandas, pick sides with numpy, drop '-' and nulls."""
    kept = 0
    for path in files:
        table = pq.read_table(path, columns=BASELINE_COLUMNS)
        while any(pa.types.is_struct(f.type) for f in table.schema):
            table = table.flatten()
        frame = table.select(
            [
                "connection_info.direction",
                "src_endpoint.ip",
                "dst_endpoint.ip",
                "src_endpoint.instance_uid",
                "dst_endpoint.instance_uid",
                "src_endpoint.interface_uid",
                "dst_endpoint.interface_uid",
                "cloud.account.uid",
                "action",
            ]
        ).to_pandas()
        inbound = (frame["connection_info.direction"] == "Inbound").to_numpy()
        instance = np.where(inbound, frame["dst_endpoint.instance_uid"], frame["src_endpoint.instance_uid"])
        interface = np.where(inbound, frame["dst_endpoint.interface_uid"], frame["src_endpoint.interface_uid"])
        entity = np.where(pd.notna(instance) & (instance != "-"), instance, interface)
        ip = np.where(inbound, frame["src_endpoint.ip"], frame["dst_endpoint.ip"])
        keep = (
            frame["connection_info.direction"].isin(["Inbound", "Outbound"]).to_numpy()
            & (frame["action"] != "Denied").to_numpy()
            & (ip != "-")
            & pd.notna(entity)
        )
        kept += int(keep.sum())
    return kept


def measure(name: str, run: Callable[[list[str]], int], files: list[str], rows: int, repeat: int) -> float:
    run(files)  # warm-up: JVM start, first query, page cache
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        kept = run(files)
        seconds.append(time.perf_counter() - started)
    rate = rows / statistics.median(seconds)
    print(
        f"{name:>9}: median {rate:,.0f} rows/s over {rows:,} rows (runs: "
        f"{', '.join(f'{s:.1f}s' for s in seconds)}); pairs kept {kept:,}",
        flush=True,
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="VPC flow rows in the lake (over 2 days)")
    parser.add_argument("--work", type=Path, default=Path(".seclake/bench/preprocess"))
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    root = arguments.work / f"lake-{arguments.events}"
    if not _files(root):
        generate_lake(
            GenerationOptions(
                root=root, days=2, events_per_day=arguments.events // 2, end_day=END_DAY, anomalies_per_kind=1
            )
        )
    files = _files(root)
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    baseline = measure("baseline", baseline_run, files, rows, arguments.repeat)
    arrow = measure("pyarrow", arrow_run, files, rows, arguments.repeat)
    spark = measure("spark", spark_run, files, rows, arguments.repeat)
    print(
        f"ratios vs baseline (pandas by hand): pyarrow engine {arrow / baseline:.2f}x, "
        f"spark engine {spark / baseline:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
