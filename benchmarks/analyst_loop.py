"""The analyst loop on the sample lake: the alerts an analyst sees per replayed day before and after marking the first
replayed day's false alerts benign (and the pipeline run again), with the incidents they form against their pairs.

    SECLAKE_SAMPLE_LAKE__AUTOSCALING_CHURN=0.3 python -m benchmarks.analyst_loop --home /tmp/loop [--replay-days 3]

The pipeline is trained on every day but the last `--replay-days`; those are replayed through the monitor. A false
alert is an alert (above Low) on a pair the generator did not label as an attack. The first replayed day's false
alerts get a benign verdict each, as `seclake findings verdict` writes it; the pipeline runs again on the same window
and the same days are replayed with a fresh state table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.artifact_store import put_artifact
from pipeline.cli.lake import generation_options, run_generation
from pipeline.cli.monitor_cmd import MONITOR_STATE_FILE, lake_objects, replay
from pipeline.config import Config, load_config
from pipeline.local.run_definition import execute_locally, lake_days
from pipeline.samplelake.labels import labelled_pairs
from pipeline.samplelake.summary import summarise_lake
from scripts.detect.fleet import SERVICE_MOVING_SEVERITY
from scripts.entity import base_entity
from scripts.handoff.artifacts import ArtifactLayout
from scripts.handoff.verdicts import BENIGN, Verdict
from scripts.monitor.findings import Finding


@dataclass(frozen=True)
class DayFigures:
    """What an analyst sees on one replayed day."""

    findings: int  # above Low
    incidents: int  # one workload's findings of the day, or one fleet change
    pairs: int  # the distinct (workload, ip) pairs those findings stand for
    false_pairs: int  # of those, pairs the generator did not label as attacks
    false_findings: int  # findings none of whose pairs is labelled
    attack_pairs: int  # labelled pairs found


def alerts_of(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity != SERVICE_MOVING_SEVERITY and f.status != "Suppressed"]


def figures(findings: Sequence[Finding], labelled: set[tuple[str, str]]) -> DayFigures:
    alerts = alerts_of(findings)
    pairs = {(base_entity(entity), ip) for f in alerts for entity, ip in f.pairs}
    false_findings = [f for f in alerts if not any((base_entity(e), ip) in labelled for e, ip in f.pairs)]
    return DayFigures(
        findings=len(alerts),
        incidents=len({f.incident_uid for f in alerts}),
        pairs=len(pairs),
        false_pairs=len(pairs - labelled),
        false_findings=len(false_findings),
        attack_pairs=len(pairs & labelled),
    )


def replay_days(config: Config, days: Sequence[str]) -> dict[str, list[Finding]]:
    """Each day's objects through the monitor's handler, from a fresh state table."""
    (config.home / MONITOR_STATE_FILE).unlink(missing_ok=True)
    found = {}
    for day in days:
        failures, reports = replay(config, lake_objects(config.home, day))
        if failures:
            print(f"warning: {len(failures)} failed messages on {day}", file=sys.stderr)
        found[day] = [f for report in reports for f in report.findings]
    return found


def mark_benign(config: Config, findings: Sequence[Finding], labelled: set[tuple[str, str]]) -> int:
    """A benign verdict on each false alert, written where `seclake findings verdict` writes it."""
    layout = ArtifactLayout(config.aws.artifact_uri)
    now = dt.datetime.now(dt.UTC)
    marked = 0
    for finding in alerts_of(findings):
        if any((base_entity(e), ip) in labelled for e, ip in finding.pairs):
            continue
        verdict = Verdict.of(
            finding.uid, BENIGN, finding.day, finding.account, finding.pairs, now, "benchmark", "false alert", "bench"
        )
        put_artifact(config, layout.verdict(verdict.file_name), verdict.dumps().encode(), aws=False)
        marked += 1
    return marked


def run_pipeline(config: Config, end_day: str, lookback: int) -> str:
    summary = summarise_lake(config.home)
    result = execute_locally(config, summary, {"EndDay": end_day, "LookbackDays": lookback})
    if result.status != "Succeeded":
        message = f"execution {result.execution}: {result.status}: {result.failure}"
        raise SystemExit(message)
    return result.execution


def table(days: Sequence[str], before: dict[str, DayFigures], after: dict[str, DayFigures]) -> str:
    lines = [
        "| day | findings above Low | incidents | pairs | false pairs | false findings | attack pairs found |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, day in enumerate(days):
        b, a = before[day], after[day]
        label = f"{day}{' (marked)' if index == 0 else ''}"
        cells = [
            f"{getattr(b, name)} -> {getattr(a, name)}"
            for name in ("findings", "incidents", "pairs", "false_pairs", "false_findings", "attack_pairs")
        ]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="SECLAKE_HOME: generated here when empty")
    parser.add_argument("--replay-days", type=int, default=3)
    arguments = parser.parse_args(argv)
    config = load_config(environ={**os.environ, "SECLAKE_HOME": str(arguments.home)})
    if summarise_lake(config.home).empty:
        run_generation(generation_options(config), force=False)
    days = lake_days(summarise_lake(config.home))
    replayed, window = days[-arguments.replay_days :], days[: -arguments.replay_days]
    labelled = labelled_pairs(config.home)
    first = run_pipeline(config, window[-1], len(window))
    before_findings = replay_days(config, replayed)
    marked = mark_benign(config, before_findings[replayed[0]], labelled)
    second = run_pipeline(config, window[-1], len(window))
    after_findings = replay_days(config, replayed)
    before = {day: figures(found, labelled) for day, found in before_findings.items()}
    after = {day: figures(found, labelled) for day, found in after_findings.items()}
    print(
        f"window {window[0]}..{window[-1]}; executions {first} then {second}; {marked} false findings of "
        f"{replayed[0]} marked benign"
    )
    print(table(replayed, before, after))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
