"""The detection gate's figures and its verdict in words, at every fleet size: the alerts on the held-out day beyond a
small allowance, per 1,000 workloads (one host with one alert would otherwise be 1,000 per 1,000, over any budget),
and, when it refuses, which figure failed, by how much, and the parameter to change."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from scripts.handoff.detection import DetectionReport

DEFAULT_ALERT_ALLOWANCE = 3  # alerts a fleet of any size may raise on the held-out day before the budget applies


@dataclass(frozen=True)
class GateThresholds:
    recall_gate: float
    alert_budget: float  # alerts per 1,000 workloads, beyond the allowance
    alert_allowance: int = DEFAULT_ALERT_ALLOWANCE


def judged_alert_rate(alerts: int, workloads: int, allowance: int) -> float:
    """Alerts beyond the allowance, per 1,000 workloads: what the gate compares with the AlertBudget."""
    return 1000.0 * max(alerts - allowance, 0) / max(workloads, 1)


def judge(report: DetectionReport, thresholds: GateThresholds) -> DetectionReport:
    """The report with the gate's figure and its verdict in words (the gate itself compares the same figures)."""
    rate = judged_alert_rate(report.alerts, report.workloads, thresholds.alert_allowance)
    failures = []
    if report.recall < thresholds.recall_gate:
        failures.append(
            f"recall on injected attacks {report.recall:.2f} is {thresholds.recall_gate - report.recall:.2f} below "
            f"RecallGate {thresholds.recall_gate:.2f} (lower it with --param RecallGate=..., or pipeline.recall_gate; "
            "the report's per-kind recall says which attacks look like this fleet's ordinary days)"
        )
    if rate > thresholds.alert_budget:
        failures.append(
            f"{report.alerts} alerts on the held-out day for {report.workloads} workloads: {rate:,.1f} per 1,000 "
            f"beyond the allowance of {thresholds.alert_allowance}, {rate - thresholds.alert_budget:,.1f} over "
            f"AlertBudget {thresholds.alert_budget:g} (raise AlertAllowance or AlertBudget, or "
            "pipeline.alert_allowance / pipeline.alert_budget)"
        )
    verdict = "; ".join(failures) if failures else "passed"
    return dataclasses.replace(
        report, alert_allowance=thresholds.alert_allowance, alerts_judged_per_1000_workloads=rate, gate=verdict
    )
