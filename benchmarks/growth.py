"""How each cost grows: measured at several sizes, fitted as cost = a * size^b (least squares on the logs).

    python -m benchmarks.growth [--history 500000 1000000 2000000 4000000] [--train 100000 300000 1000000]
                                [--work .seclake/benchmarks/growth]

Each measurement runs in a fresh process (its own peak memory, VmHWM):
- FitDetector against history rows (cold_start.synthetic_history: 20 accounts, 7 days; the network table shipped
  with the job): the fit's seconds and peak memory, the shards' writing (2 processes), the whole artifact's bytes,
  the largest account shard's and the organisation shard's bytes;
- training against pairs: one epoch of the open trainer (vector_dim 128, 2 threads) on simulated logins.
An exponent b near 1 is linear growth; a cost with a fixed part is read better from its line (fixed + per million);
the table gives the power law at 10x and 100x the largest size measured (an extrapolation: say so where you use it).
`--from-log FILE` prints the table again from a run's JSON lines, without measuring.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

FIT_CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import pyarrow.parquet as pq
def peak_mib():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
from pipeline.network_table import network_table
from scripts.detect.artifact import detector_bytes
from scripts.detect.detector import DAY_MS, Detector
from scripts.detect.memory import Pairs
from scripts.detect.shards import write_shards
history, folder = Path(sys.argv[1]), Path(sys.argv[2])
table = pq.read_table(history, columns=["entity", "ip", "first_seen_ms"])
pairs = Pairs.of(*(table.column(c).to_numpy(zero_copy_only=False) for c in ("entity", "ip", "first_seen_ms")))
networks = network_table()
started = time.perf_counter()
last = int(pairs.time.max()) // DAY_MS * DAY_MS
detector = Detector.fit(pairs, lambda e, i: np.zeros(len(e)), last, networks=networks)
fit_s = time.perf_counter() - started
fit_peak = peak_mib()
started = time.perf_counter()
index = write_shards(detector, folder, {}, workers=2)
shards_s = time.perf_counter() - started
whole = len(detector_bytes(detector))
accounts = [e["bytes"] for name, e in index.shards.items() if name != "organisation"]
print(json.dumps({"fit_s": fit_s, "fit_peak_mib": fit_peak, "write_shards_s": shards_s,
                  "distinct_pairs": len(detector.memory.history), "artifact_mib": whole / 2**20,
                  "largest_shard_mib": max(accounts) / 2**20,
                  "organisation_shard_mib": index.shards["organisation"]["bytes"] / 2**20}))
"""

TRAIN_CHILD = r"""
import json, sys, time
from pathlib import Path
def peak_mib():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
from benchmarks.logins import simulate_logins
from scripts.ipinsights.train import main as train_main
pairs, root = int(sys.argv[1]), Path(sys.argv[2])
logins = simulate_logins(users=max(1000, pairs // 40), events=pairs, seed=4)
folder = root / "input" / "data" / "train"
folder.mkdir(parents=True, exist_ok=True)
(folder / "train.csv").write_text("".join(f"{u},{ip}\n" for u, ip in zip(logins.users, logins.ips)))
(root / "input" / "config").mkdir(parents=True, exist_ok=True)
(root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(
    {"num_entity_vectors": str(max(2000, pairs // 20)), "vector_dim": "128", "epochs": "1", "mini_batch_size": "1000"}))
started = time.perf_counter()
assert train_main(["--root", str(root), "--threads", "2"]) == 0
print(json.dumps({"train_epoch_s": time.perf_counter() - started, "train_peak_mib": peak_mib()}))
"""


def _child(code: str, *arguments: str) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code, *arguments], cwd=root, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def power_law(sizes: list[int], costs: list[float]) -> tuple[float, float]:
    """(a, b) of cost = a * size^b, least squares on log cost against log size."""
    slope, intercept = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(costs, float)), 1)
    return float(np.exp(intercept)), float(slope)


def linear(sizes: list[int], costs: list[float]) -> tuple[float, float]:
    """(fixed, per million) of cost = fixed + per_million * size / 10^6, least squares: for a cost with a fixed part
    (the network table in every artifact), whose power-law exponent would understate its growth."""
    slope, intercept = np.polyfit(np.asarray(sizes, float) / 1e6, np.asarray(costs, float), 1)
    return float(intercept), float(slope)


def growth_rows(name: str, unit: str, sizes: list[int], measured: dict[str, list[float]]) -> list[str]:
    """Markdown rows: each cost at each size, its fitted exponent and line, and the power law at 10x and 100x the
    largest size."""
    rows = []
    for cost, values in measured.items():
        a, b = power_law(sizes, values)
        fixed, per_million = linear(sizes, values)
        top = max(sizes)
        cells = ", ".join(f"{v:,.2f}" for v in values)
        rows.append(
            f"| {name}: {cost} | {', '.join(f'{s:,}' for s in sizes)} {unit} | {cells} | {b:.2f} | "
            f"{fixed:,.2f} + {per_million:,.2f} per million | "
            f"{a * (10 * top) ** b:,.1f} / {a * (100 * top) ** b:,.1f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    from benchmarks.cold_start import synthetic_history

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, nargs="+", default=[500_000, 1_000_000, 2_000_000, 4_000_000])
    parser.add_argument("--train", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path(".seclake/benchmarks/growth"))
    parser.add_argument("--from-log", type=Path, help="A run's output: its JSON lines, tabulated again")
    arguments = parser.parse_args(argv)
    if arguments.from_log is not None:
        return _table_from_log(arguments.from_log)
    import pyarrow.parquet as pq

    fits: dict[str, list[float]] = {}
    for size in arguments.history:
        folder = arguments.work / f"history-{size}"
        folder.mkdir(parents=True, exist_ok=True)
        history = folder / "history.parquet"
        if not history.exists():
            pq.write_table(synthetic_history(size), history)
        result = _child(FIT_CHILD, str(history), str(folder / "detector"))
        print(json.dumps({"history_rows": size, **result}), flush=True)
        for key, value in result.items():
            fits.setdefault(key, []).append(value)
    trains: dict[str, list[float]] = {}
    for size in arguments.train:
        result = _child(TRAIN_CHILD, str(size), str(arguments.work / f"train-{size}"))
        print(json.dumps({"pairs": size, **result}), flush=True)
        for key, value in result.items():
            trains.setdefault(key, []).append(value)
    _print_table(arguments.history, fits, arguments.train, trains)
    return 0


def _print_table(
    history: list[int], fits: dict[str, list[float]], train: list[int], trains: dict[str, list[float]]
) -> None:
    print("| cost | sizes | measured | exponent b | line | power law at 10x / 100x the largest size |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in growth_rows("FitDetector", "history rows", history, fits):
        print(row)
    for row in growth_rows("training", "pairs", train, trains):
        print(row)


def _table_from_log(path: Path) -> int:
    history: list[int] = []
    train: list[int] = []
    fits: dict[str, list[float]] = {}
    trains: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "history_rows" in record:
            history.append(int(record.pop("history_rows")))
            target = fits
        else:
            train.append(int(record.pop("pairs")))
            target = trains
        for key, value in record.items():
            target.setdefault(key, []).append(float(value))
    _print_table(history, fits, train, trains)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
