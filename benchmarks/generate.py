"""Sample-lake generator throughput and peak memory, each run in a fresh process: `python -m benchmarks.generate`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.samplelake.writer import GenerationOptions, generate_lake


def one_run(events_per_day: int, days: int, root: Path) -> dict[str, float]:
    """Generate once in this process; rows/s over the whole run and this process's peak RSS."""
    options = GenerationOptions(root=root, days=days, events_per_day=events_per_day, end_day=dt.date(2026, 11, 28))
    started = time.perf_counter()
    report = generate_lake(options)
    seconds = time.perf_counter() - started
    return {
        "rows": report.total_rows,
        "seconds": seconds,
        "rows_per_second": report.total_rows / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events-per-day", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        with tempfile.TemporaryDirectory() as root:
            print(json.dumps(one_run(arguments.events_per_day[0], arguments.days, Path(root))))
        return 0
    for events in arguments.events_per_day:
        runs = []
        for _ in range(arguments.repeat):
            command = [
                sys.executable,
                "-m",
                "benchmarks.generate",
                "--child",
                "--events-per-day",
                str(events),
                "--days",
                str(arguments.days),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
        rates = [r["rows_per_second"] for r in runs]
        peaks = [r["peak_rss_mib"] for r in runs]
        print(
            f"events/day={events:,} days={arguments.days} rows/run={runs[0]['rows']:,.0f}: "
            f"median {statistics.median(rates):,.0f} rows/s (runs: {', '.join(f'{r:,.0f}' for r in rates)}), "
            f"peak RSS median {statistics.median(peaks):,.0f} MiB (max {max(peaks):,.0f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
