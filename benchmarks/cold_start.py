"""The monitor's cold start as the history grows: the fitted detector loaded from detector.npz, against fitting it.

    python -m benchmarks.cold_start [--sizes 1000000 10000000] [--baseline-sizes 1000000] [--repeat 3]
                                    [--work .seclake/benchmarks/cold_start]

For each size, a synthetic history of that many (entity, ip, day) rows (what history/history.parquet holds: each
pair once per day it was seen, 7 days, workloads in accounts and roles, peers drawn from each workload's networks
with new addresses every day, server roles meeting residential clients) is written, the detector is fitted on it
(what the FitDetector step does once per pipeline run, with the network table it ships) and saved. Then, in a
fresh Python process each time (a Lambda container's cold start), the artifact is loaded and one object's 20,000
pairs are scored: wall time and peak resident memory (VmHWM) of that process, median of --repeat runs.
Baseline (named: "fit at cold start", what the monitor did before the FitDetector step): the same fresh process
reads the history parquet and fits the detector itself, without the endpoint calls it also made then (so the
baseline is a lower bound of the old cost).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DAY_MS = 86_400_000
DAYS = 7
QUERIES = 20_000
ROLES = ("client:web", "client:db", "client:resolved", "server:web", "server:admin", "client:other")

CHILD = r"""
import json, sys, time
started = time.perf_counter()
def peak_mib():  # VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork and exec)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
mode, path, queries = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np
import pyarrow.parquet as pq
if mode == "artifact":
    from scripts.detect.artifact import load_detector
    detector, _ = load_detector(__import__("pathlib").Path(path))
else:
    from scripts.detect.detector import DAY_MS, Detector, Pairs
    table = pq.read_table(path, columns=["entity", "ip", "first_seen_ms"])
    pairs = Pairs.of(*(table.column(c).to_numpy(zero_copy_only=False) for c in ("entity", "ip", "first_seen_ms")))
    last = int(pairs.time.max()) // DAY_MS * DAY_MS
    detector = Detector.fit(pairs, lambda e, i: np.zeros(len(e)), last)
loaded = time.perf_counter()
table = pq.read_table(queries)
entities, ips = table.column("entity").to_pylist(), table.column("ip").to_pylist()
scored = detector.score(entities, ips, np.zeros(len(ips)))
done = time.perf_counter()
print(json.dumps({"load_s": loaded - started, "score_s": done - loaded, "total_s": done - started,
                  "max_rss_mib": peak_mib(),
                  "flagged": int(scored["flagged"].sum())}))
"""


def _dotted(values: np.ndarray) -> np.ndarray:
    parts = [((values >> shift) & 255).astype(str) for shift in (24, 16, 8, 0)]
    text = parts[0]
    for part in parts[1:]:
        text = np.char.add(np.char.add(text, "."), part)
    return text


def synthetic_history(rows: int, seed: int = 0) -> pa.Table:
    """`rows` (entity, ip, first_seen_ms, events) rows over DAYS days; about one workload per 2,000 rows."""
    rng = np.random.default_rng(seed)
    workloads = max(rows // 2_000, 10)
    entity_names = np.array(
        [f"{100000000000 + w % 20:012d}/i-{w:017x}#{ROLES[w % len(ROLES)]}" for w in range(workloads)], dtype=object
    )
    entity = rng.integers(0, workloads, size=rows)
    home = rng.integers(1, 223, size=(workloads, 4)) << 24 | rng.integers(0, 256, size=(workloads, 4)) << 16
    network = home[entity, rng.integers(0, 4, size=rows)]
    server = np.array([ROLES[w % len(ROLES)].startswith("server") for w in range(workloads)])[entity]
    residential = (rng.integers(24, 100, size=rows) << 24) | rng.integers(0, 1 << 24, size=rows)
    spread = np.where(rng.random(rows) < 0.7, rng.integers(0, 64, size=rows), rng.integers(0, 1 << 16, size=rows))
    address = np.where(server, residential, network | spread).astype(np.int64)
    day = rng.integers(0, DAYS, size=rows)
    time_ms = 1_764_000_000_000 // DAY_MS * DAY_MS + day * DAY_MS + rng.integers(0, DAY_MS, size=rows)
    return pa.table(
        {
            "entity": pa.array(entity_names[entity].tolist(), pa.string()),
            "ip": pa.array(_dotted(address).tolist(), pa.string()),
            "first_seen_ms": pa.array(time_ms, pa.int64()),
            "events": pa.array(np.ones(rows, dtype=np.int64)),
        }
    )


def prepare(size: int, work: Path) -> tuple[Path, Path, Path, dict[str, float]]:
    """history.parquet, detector.npz and one object's queries for a size (reused when present)."""
    from pipeline.network_table import network_table
    from scripts.detect.artifact import save_detector
    from scripts.detect.detector import Detector
    from scripts.detect.memory import Pairs

    folder = work / str(size)
    history, artifact, queries = folder / "history.parquet", folder / "detector.npz", folder / "queries.parquet"
    facts = folder / "facts.json"
    if facts.exists() and artifact.exists():
        return history, artifact, queries, json.loads(facts.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    table = synthetic_history(size)
    pq.write_table(table, history)
    pq.write_table(table.slice(0, QUERIES).select(["entity", "ip"]), queries)
    started = time.perf_counter()
    columns = [table.column(c).to_numpy(zero_copy_only=False) for c in ("entity", "ip", "first_seen_ms")]
    pairs = Pairs.of(*columns)
    last = int(pairs.time.max()) // DAY_MS * DAY_MS
    detector = Detector.fit(pairs, lambda e, i: np.zeros(len(e)), last, networks=network_table())
    fit_s = time.perf_counter() - started
    save_detector(detector, artifact)
    found = {
        "fit_s": fit_s,
        "distinct_pairs": len(detector.memory.history),
        "artifact_mib": artifact.stat().st_size / 2**20,
        "history_mib": history.stat().st_size / 2**20,
    }
    facts.write_text(json.dumps(found))
    return history, artifact, queries, found


def cold_start(mode: str, path: Path, queries: Path) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(queries)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(".seclake/benchmarks/cold_start"))
    arguments = parser.parse_args(argv)
    report = {}
    for size in arguments.sizes:
        history, artifact, queries, facts = prepare(size, arguments.work)
        row: dict[str, object] = {"history_rows": size, **facts}
        row["artifact"] = median_of([cold_start("artifact", artifact, queries) for _ in range(arguments.repeat)])
        if size in arguments.baseline_sizes:
            row["baseline_fit_at_cold_start"] = median_of(
                [cold_start("history", history, queries) for _ in range(arguments.repeat)]
            )
        report[str(size)] = row
        print(json.dumps(row), flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
