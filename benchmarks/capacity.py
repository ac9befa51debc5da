"""Capacity and cost per day for 1k, 10k and 100k workloads, derived from the measured unit costs and AWS's prices.

    python -m benchmarks.capacity [--pairs-per-workload-day 1000] [--rescored 4]

Nothing here is measured: every unit cost below names the benchmark or run that measured it (docs/benchmarks.md),
and every price its source (docs/capacity.md). The traffic is an assumption, stated: the issue's 10^5 VPC flow
records per workload a day (10^9 for 10^4 workloads), Route 53 queries 7.5% on top (the sample lake's ratio), and
`--pairs-per-workload-day` distinct (entity, peer) pairs a workload has a day, on which training, the transform,
the detector's fit and the endpoint grow linearly. The output is the markdown table docs/capacity.md carries.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from scripts.detect.detector import FIT_PROCESS_BYTES_PER_ROW, FIT_PROCESS_FIXED_BYTES, MEMORY_SHARE, fit_workers

# --- measured (2-core machine; docs/benchmarks.md gives each command) ---------------------------------------------
SPARK_ROWS_PER_CORE_S = 6_100.0  # PrepareSecurityLakeData, whole step: 6.76M rows in 551 s on 2 cores (scale run)
FIT_SECONDS_A, FIT_SECONDS_B = 2.39e-7, 1.34  # the fit on one core: a * history_rows^b s (benchmarks.growth)
SHARD_MIB_PER_MILLION_ROWS = 16.1  # an account shard's own part, per million of its history rows (benchmarks.growth)
ORGANISATION_SHARD_MIB = 4.2  # the organisation's part of every shard, flat in history rows (benchmarks.growth)
SERVER_PAIRS_PER_WORKER_S = 240_000.0  # inference server, 1,000-row requests, one connection (benchmarks.serve)
MONITOR_RECORDS_PER_VCPU_S = 19_000.0  # monitor: 2.26M rows of 1,600 small objects in 117 s (scale run)
STATE_REQUESTS_PER_NEW_PAIR = 0.03  # DynamoDB requests per first meeting (benchmarks.state_table: 2,910 per 97k)
# --- the service's own figure -------------------------------------------------------------------------------------
BUILTIN_TRAIN_PAIRS_S = 23_000.0  # built-in IP Insights on ml.p3.2xlarge, R=5 (AWS tutorial, ../shared FACTS.md)
# --- prices, us-east-1 on demand (docs/capacity.md cites each) -----------------------------------------------------
PRICE = {
    "ml.m5.4xlarge": 0.922,  # per hour, processing
    "ml.r5.4xlarge": 1.210,
    "ml.p3.2xlarge": 3.825,
    "ml.m5.xlarge": 0.23,
    "ml.m5.large": 0.115,
    "lambda_gb_s": 0.0000166667,
    "lambda_million_requests": 0.20,
    "dynamodb_million_writes": 0.625,
    "dynamodb_million_reads": 0.125,
    "s3_thousand_gets": 0.0004,
    "security_hub_finding": 0.00003,
}
VCPUS = {"ml.m5.4xlarge": 16, "ml.r5.4xlarge": 16, "ml.m5.xlarge": 4, "ml.m5.large": 2}
MEMORY_GIB = {"ml.m5.4xlarge": 64, "ml.r5.4xlarge": 128}
# --- the pipeline's own settings (config/default.yaml) --------------------------------------------------------------
LOOKBACK_DAYS = 8  # preprocess.lookback_days: every daily run reads this window again
NOVELTY_DAYS = 7  # calibration days the fit computes at once (one process each)
EPOCHS = 5
TUNING_JOBS = 6  # tuning.max_jobs, 2 at a time
FLOWS_PER_WORKLOAD_DAY = 100_000
ROUTE53_SHARE = 0.075
EVAL_SET_FACTOR = 3.0  # the eval set: the held-out day's pairs and the attacks injected into it (scale run: 3.0x)
NEW_PAIR_SHARE = 0.05  # first meetings among a day's pairs
FINDINGS_PER_1000_WORKLOADS = 10.0
PEAK_FACTOR = 3.0  # the busiest hour against the mean
LAMBDA_GB = 2.0  # the monitor's MemorySize (config/cloudformation/monitor.yaml): 1.16 vCPU
OBJECTS_PER_ACCOUNT_REGION_DAY = 288  # one object per account, region and source every 5 minutes
ACCOUNTS_PER_1000_WORKLOADS, REGIONS = 5, 4
TARGET_HOURS = 1.0  # the Spark step is sized to finish within this


@dataclass(frozen=True)
class Row:
    step: str
    sizing: str
    hours: float
    dollars: float


def spark(rows_per_run: float) -> Row:
    core_s = rows_per_run / SPARK_ROWS_PER_CORE_S
    count = max(1, math.ceil(core_s / (VCPUS["ml.m5.4xlarge"] * 3600 * TARGET_HOURS)))
    hours = core_s / (VCPUS["ml.m5.4xlarge"] * count * 3600)
    return Row("Spark step", f"{count} x ml.m5.4xlarge", hours, count * hours * PRICE["ml.m5.4xlarge"])


def training(pairs: float) -> Row:
    hours = pairs * EPOCHS / BUILTIN_TRAIN_PAIRS_S / 3600
    cost = TUNING_JOBS * hours * PRICE["ml.p3.2xlarge"]
    return Row("tuning (6 jobs, 2 at a time)", "2 x ml.p3.2xlarge", TUNING_JOBS / 2 * hours, cost)


def transform(pairs: float) -> Row:
    rate = SERVER_PAIRS_PER_WORKER_S * VCPUS["ml.m5.xlarge"]
    hours = max(pairs / rate / 3600, 0.1)  # an instance's start and stop
    return Row("batch transform", "1 x ml.m5.xlarge", hours, hours * PRICE["ml.m5.xlarge"])


def fit(history_rows: float) -> Row:
    """One instance, as many calibration days in parallel as its cores and memory allow (each day's process holds
    its own memory of the days before it: the measured peak is counted once per process); the cheaper instance."""
    one_gib = (FIT_PROCESS_FIXED_BYTES + FIT_PROCESS_BYTES_PER_ROW * history_rows) / 2**30
    serial_hours = FIT_SECONDS_A * history_rows**FIT_SECONDS_B / 3600
    choices = []
    for instance in ("ml.m5.4xlarge", "ml.r5.4xlarge"):
        memory = MEMORY_GIB[instance] * 2**30
        processes = min(NOVELTY_DAYS, fit_workers(VCPUS[instance], memory, int(history_rows)))
        if one_gib <= MEMORY_SHARE * MEMORY_GIB[instance]:
            hours = serial_hours / processes
            sizing = f"1 x {instance} ({processes} processes of {one_gib:,.0f} GiB)"
            choices.append(Row("FitDetector", sizing, hours, hours * PRICE[instance]))
    if not choices:
        sizing = f"does not fit one instance ({one_gib:,.0f} GiB a process): the fit must be cut by account (not built)"
        return Row("FitDetector", sizing, 0.0, float("nan"))
    return min(choices, key=lambda row: row.dollars)


def endpoint(pairs_per_day: float) -> Row:
    peak = pairs_per_day / 86_400 * PEAK_FACTOR
    rate = SERVER_PAIRS_PER_WORKER_S * VCPUS["ml.m5.large"] / 2  # half busy: headroom for bursts
    count = max(2, math.ceil(peak / rate))  # two for availability
    return Row("endpoint", f"{count} x ml.m5.large", 24.0, count * 24 * PRICE["ml.m5.large"])


def monitor(records: float, objects: float, new_pairs: float, findings: float) -> list[Row]:
    seconds = records / (MONITOR_RECORDS_PER_VCPU_S * LAMBDA_GB / 1.769)
    concurrency = math.ceil(seconds / 86_400 * PEAK_FACTOR)
    lam = seconds * LAMBDA_GB * PRICE["lambda_gb_s"] + objects / 10 / 1e6 * PRICE["lambda_million_requests"]
    requests = new_pairs * STATE_REQUESTS_PER_NEW_PAIR
    dynamo = requests / 2 / 1e6 * (PRICE["dynamodb_million_writes"] + PRICE["dynamodb_million_reads"])
    reads = objects / 1000 * PRICE["s3_thousand_gets"]
    return [
        Row("monitor Lambda", f"{concurrency} concurrent (2,048 MB)", seconds / 3600, lam),
        Row("state table (DynamoDB on demand)", f"{requests:,.0f} requests", 0.0, dynamo),
        Row("S3 GETs of new objects", f"{objects:,.0f} objects", 0.0, reads),
        Row("Security Hub findings", f"{findings:,.0f} findings", 0.0, findings * PRICE["security_hub_finding"]),
    ]


def rows_for(workloads: int, pairs_per_workload_day: float, rescored: float) -> list[Row]:
    records = workloads * FLOWS_PER_WORKLOAD_DAY * (1 + ROUTE53_SHARE)
    daily_pairs = workloads * pairs_per_workload_day
    accounts = max(1, workloads * ACCOUNTS_PER_1000_WORKLOADS // 1000)
    objects = accounts * REGIONS * 2 * OBJECTS_PER_ACCOUNT_REGION_DAY
    findings = workloads * FINDINGS_PER_1000_WORKLOADS / 1000
    return [
        spark(records * LOOKBACK_DAYS),
        training(daily_pairs * (LOOKBACK_DAYS - 1)),
        transform(daily_pairs * EVAL_SET_FACTOR),
        fit(daily_pairs * (LOOKBACK_DAYS - 1)),
        endpoint(daily_pairs * rescored),
        *monitor(records, objects, daily_pairs * NEW_PAIR_SHARE, findings),
    ]


def shard_mib(workloads: int, pairs_per_workload_day: float) -> float:
    """The largest account shard, an account holding a tenth of the workloads."""
    rows = workloads * pairs_per_workload_day * (LOOKBACK_DAYS - 1) / 10
    return ORGANISATION_SHARD_MIB + SHARD_MIB_PER_MILLION_ROWS * rows / 1e6


def _total(rows: list[Row]) -> str:
    known = [row.dollars for row in rows if not math.isnan(row.dollars)]
    missing = " + what is not built" if len(known) < len(rows) else ""
    return f"**${sum(known):,.0f}**{missing}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-per-workload-day", type=float, default=1000.0)
    parser.add_argument("--rescored", type=float, default=4.0, help="Objects a day's pair appears in (scored each)")
    arguments = parser.parse_args(argv)
    sizes = (1_000, 10_000, 100_000)
    tables = {w: rows_for(w, arguments.pairs_per_workload_day, arguments.rescored) for w in sizes}
    print("| step | " + " | ".join(f"{w:,} workloads" for w in sizes) + " |")
    print("| --- | " + " | ".join("---" for _ in sizes) + " |")
    for index, first in enumerate(tables[sizes[0]]):
        cells = []
        for w in sizes:
            row = tables[w][index]
            hours = f", {row.hours:,.2f} h" if row.hours else ""
            price = "n/a" if math.isnan(row.dollars) else f"${row.dollars:,.2f}"
            cells.append(f"{row.sizing}{hours}: {price}")
        print(f"| {first.step} | " + " | ".join(cells) + " |")
    totals = " | ".join(_total(tables[w]) for w in sizes)
    print(f"| per day | {totals} |")
    shards = " | ".join(f"{shard_mib(w, arguments.pairs_per_workload_day):,.0f} MiB" for w in sizes)
    print(f"| largest detector shard (an account with a tenth of the workloads) | {shards} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
