"""The detection gate at every fleet size: alerts beyond a small allowance per 1,000 workloads, and a refusal that
names the figure that failed, by how much, and the parameter to change, as the pipeline's FailStep says it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.definition import definition_json
from pipeline.local.expressions import ResolutionContext, evaluate_condition, resolve
from scripts.detect.gate import GateThresholds, judge, judged_alert_rate
from scripts.handoff.detection import DetectionReport
from steps import names
from tests.steps_of import all_steps

DEFAULTS = GateThresholds(recall_gate=0.8, alert_budget=50.0, alert_allowance=3)


def _report(workloads: int, alerts: int, recall: float) -> DetectionReport:
    return DetectionReport(
        held_out_day="20261205",
        false_positive_rate=0.0001,
        workloads=workloads,
        pairs=1000,
        alerts=alerts,
        alerts_per_1000_workloads=1000.0 * alerts / workloads,
        fleet_changes=0,
        fleet_changes_in_unknown_networks=0,
        alerts_rule="",
        recall=recall,
        recall_rule="",
    )


def test_a_fleet_of_any_size_may_raise_the_allowance_and_the_budget_applies_beyond_it() -> None:
    assert judged_alert_rate(alerts=3, workloads=1, allowance=3) == 0.0
    assert judged_alert_rate(alerts=5, workloads=1, allowance=3) == 2000.0
    assert judged_alert_rate(alerts=503, workloads=10_000, allowance=3) == 50.0  # at scale the allowance is nothing


@pytest.mark.parametrize(
    ("workloads", "alerts", "recall", "words"),
    [
        (1, 1, 0.9, None),  # one host, one alert: within the allowance
        (
            1,
            5,
            0.9,
            "5 alerts on the held-out day for 1 workloads: 2,000.0 per 1,000 beyond the allowance of 3, 1,950.0 over "
            "AlertBudget 50 (raise AlertAllowance or AlertBudget",
        ),
        (5, 2, 0.9, None),
        (
            5,
            3,
            0.0,
            "recall on injected attacks 0.00 is 0.80 below RecallGate 0.80 (lower it with --param RecallGate=...",
        ),
        (
            5,
            9,
            0.9,
            "9 alerts on the held-out day for 5 workloads: 1,200.0 per 1,000 beyond the allowance of 3, 1,150.0 over",
        ),
    ],
)
def test_one_and_five_workload_fleets_get_a_decision_that_names_the_failing_figure_and_the_knob(
    workloads: int, alerts: int, recall: float, words: str | None
) -> None:
    judged = judge(_report(workloads, alerts, recall), DEFAULTS)
    if words is None:
        assert judged.gate == "passed"
    else:
        assert words in judged.gate
        other = "AlertBudget" if "RecallGate" in words else "RecallGate"
        assert other not in judged.gate  # only the figure that failed is named


def _gate_and_fail(definition: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    steps = {step["Name"]: step for step in all_steps(definition)}
    return steps[names.QUALITY_GATE]["Arguments"], steps[names.FAIL]["Arguments"]


def test_the_pipeline_refuses_a_one_host_lake_with_the_judged_figures_in_its_message() -> None:
    """The definition's gate and FailStep, resolved by the local runtime against a one-host evaluation.json."""
    definition = json.loads(definition_json(load_config("prod", environ={})))
    gate, fail = _gate_and_fail(definition)
    parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    report = judge(_report(1, 5, 0.9), DEFAULTS)
    evaluation = {"seclake": {"detection": report.to_json()}}
    context = ResolutionContext(
        parameters=parameters,
        execution={},
        property_files={f"{names.EVALUATE}.{names.EVALUATION_PROPERTY_FILE}": evaluation},
    )
    assert not all(evaluate_condition(condition, context) for condition in gate["Conditions"])
    message = resolve(fail["ErrorMessage"], context)
    assert message.startswith("Model not deployed: 5 alerts on the held-out day for 1 workloads: 2,000.0 per 1,000")
    passing = judge(_report(1, 2, 0.9), DEFAULTS)
    context.property_files[f"{names.EVALUATE}.{names.EVALUATION_PROPERTY_FILE}"] = {
        "seclake": {"detection": passing.to_json()}
    }
    assert all(evaluate_condition(condition, context) for condition in gate["Conditions"])
