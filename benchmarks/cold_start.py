"""The monitor's cold start as the history grows: the fitted detector loaded whole (detector.npz) or one account's
shard of it (the index, then shards/<account>.npz), against fitting it.

    python -m benchmarks.cold_start [--sizes 1000000 10000000] [--synthetic-sizes 100000000]
                                    [--baseline-sizes 1000000] [--repeat 3]
                                    [--work .seclake/benchmarks/cold_start]

For each size, a synthetic history of that many (entity, ip, day) rows (what history/history.parquet holds: each
pair once per day it was seen, 7 days, workloads in accounts and roles, peers drawn from each workload's networks
with new addresses every day, server roles meeting residential clients) is written, the detector is fitted on it
(what the FitDetector step does once per pipeline run, with the network table it ships) and saved. Then, in a
fresh Python process each time (a Lambda container's cold start), the artifact is loaded and one object's 20,000
pairs (of one account) are scored: wall time and peak resident memory (VmHWM) of that process, median of --repeat
runs. The same for the sharded detector (FitDetector's output since issue 29: 20 accounts, evenly sized): the index
and that account's shard are loaded instead of the whole detector.
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
import pyarrow.compute
import pyarrow.parquet as pq

from scripts.detect.shards import write_shards
from scripts.handoff.artifacts import DETECTOR_INDEX_FILE
from scripts.handoff.detector_index import ORGANISATION_SHARD

DAY_MS = 86_400_000
DAYS = 7
QUERIES = 20_000
ACCOUNTS = tuple(f"{100000000000 + a:012d}" for a in range(20))  # the workloads spread evenly over 20 accounts
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
elif mode == "shard":  # the monitor's cold start on a sharded detector: the index, then one account's shard
    from pathlib import Path
    from scripts.detect.artifact import load_detector
    from scripts.handoff.detector_index import ShardIndex
    index_path, account = path.split("#")
    index = ShardIndex.from_json(Path(index_path).read_text(), index_path)
    detector, _ = load_detector(Path(index_path).parent / index.file_of(account))
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


def synthetic_history(rows: int, seed: int = 0, accounts: tuple[str, ...] = ACCOUNTS) -> pa.Table:
    """`rows` (entity, ip, first_seen_ms, events) rows over DAYS days; about one workload per 2,000 rows."""
    rng = np.random.default_rng(seed)
    workloads = max(rows // 2_000, 10)
    entity_names = np.array(
        [f"{accounts[w % len(accounts)]}/i-{w:017x}#{ROLES[w % len(ROLES)]}" for w in range(workloads)], dtype=object
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


def prepare(size: int, work: Path, synthetic: bool = False) -> tuple[Path, Path, Path, dict[str, float]]:
    """history.parquet, detector.npz, its shards (shards/detector.json) and one object's queries (one account's) for
    a size (reused when present). `synthetic`: a history of `size` rows is not built; its first account's share
    (size / 20 rows, that account's workloads at the same density) is, and fitted alone: that account's shard, but for
    the organisation's part, which then holds one account's calibration (measured at 1M and 10M: 4.1 and 4.3 MiB)."""
    from pipeline.network_table import network_table
    from scripts.detect.artifact import save_detector
    from scripts.detect.detector import Detector
    from scripts.detect.memory import Pairs

    folder = work / (f"synthetic-{size}" if synthetic else str(size))
    history, artifact, queries = folder / "history.parquet", folder / "detector.npz", folder / "queries.parquet"
    facts = folder / "facts.json"
    if facts.exists():
        return history, artifact, queries, json.loads(facts.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    table = synthetic_history(size // len(ACCOUNTS), accounts=ACCOUNTS[:1]) if synthetic else synthetic_history(size)
    pq.write_table(table, history)
    of_account = pa.compute.starts_with(table.column("entity"), f"{ACCOUNTS[0]}/")
    pq.write_table(table.filter(of_account).slice(0, QUERIES).select(["entity", "ip"]), queries)
    started = time.perf_counter()
    columns = [table.column(c).to_numpy(zero_copy_only=False) for c in ("entity", "ip", "first_seen_ms")]
    pairs = Pairs.of(*columns)
    last = int(pairs.time.max()) // DAY_MS * DAY_MS
    detector = Detector.fit(pairs, lambda e, i: np.zeros(len(e)), last, networks=network_table())
    fit_s = time.perf_counter() - started
    if not synthetic:  # the whole organisation's artifact; a synthetic size has one account's only
        save_detector(detector, artifact)
    started = time.perf_counter()
    index = write_shards(detector, folder / "shards", {"benchmark": True})
    shards_s = time.perf_counter() - started
    accounts = {name: entry for name, entry in index.shards.items() if name != ORGANISATION_SHARD}
    found = {
        "fit_s": fit_s,
        "distinct_pairs": len(detector.memory.history),
        "artifact_mib": artifact.stat().st_size / 2**20 if artifact.exists() else None,
        "history_mib": history.stat().st_size / 2**20,
        "shards": len(index.shards),
        "write_shards_s": shards_s,
        "organisation_shard_mib": index.shards[ORGANISATION_SHARD]["bytes"] / 2**20,
        "largest_shard_mib": max(entry["bytes"] for entry in accounts.values()) / 2**20,
        "queried_shard_mib": index.shards[ACCOUNTS[0]]["bytes"] / 2**20,
        "queried_shard_pairs": index.shards[ACCOUNTS[0]]["history_pairs"],
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
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument(
        "--synthetic-sizes", type=int, nargs="*", default=[100_000_000], help="Sizes whose largest shard alone is built"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(".seclake/benchmarks/cold_start"))
    arguments = parser.parse_args(argv)
    report = {}
    for size, synthetic in [*((n, False) for n in arguments.sizes), *((n, True) for n in arguments.synthetic_sizes)]:
        history, artifact, queries, facts = prepare(size, arguments.work, synthetic)
        row: dict[str, object] = {"history_rows": size, "synthetic_shard": synthetic, **facts}
        if not synthetic:
            row["artifact"] = median_of([cold_start("artifact", artifact, queries) for _ in range(arguments.repeat)])
        shard = f"{artifact.parent / 'shards' / DETECTOR_INDEX_FILE}#{ACCOUNTS[0]}"
        row["shard"] = median_of([cold_start("shard", Path(shard), queries) for _ in range(arguments.repeat)])
        if size in arguments.baseline_sizes and not synthetic:
            row["baseline_fit_at_cold_start"] = median_of(
                [cold_start("history", history, queries) for _ in range(arguments.repeat)]
            )
        report[f"{size}{' (synthetic shard)' if synthetic else ''}"] = row
        print(json.dumps(row), flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
