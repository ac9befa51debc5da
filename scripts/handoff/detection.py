"""detection.json: what the fitted detector delivers on the held-out day (alerts, recall per injected kind), one
record that the FitDetector job writes and the evaluation, the gate and the CLI read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.handoff.artifacts import DETECTION_FILE, DETECTOR
from scripts.handoff.records import dumps, field_key, from_json, read_json

WRITER = f"the FitDetector step ({DETECTOR}/{DETECTION_FILE})"


@dataclass(frozen=True)
class KindRecall:
    """One injected kind: how many pairs, the share flagged, a few it missed."""

    count: int
    recall: float
    missed_examples: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class TopAlert:
    entity: str
    ip: str
    score: float
    why: str


@dataclass(frozen=True)
class FeedbackRecord:
    """What the analysts' verdicts (scripts/handoff/verdicts.py) changed, and the production precision they give:
    true positives over all verdicts on the findings of the `production_days` days up to the day after the window
    (None: no verdict there)."""

    verdicts: int
    skipped: list[str]
    benign_pairs: int  # known to the detector from now on
    true_positive_pairs: int  # never learned as normal
    history_rows_removed: int  # the true positives' rows taken out of the history
    production_days: list[str]  # the first and last day of the verdicts counted for the precision
    production_true_positives: int
    production_benign: int
    production_precision: float | None


@dataclass(frozen=True)
class DetectionReport:
    """detection.json. The gate reads recall and alerts_per_1000_workloads (under the evaluation's detection key)."""

    held_out_day: str
    false_positive_rate: float
    workloads: int
    pairs: int
    alerts: int
    alerts_per_1000_workloads: float
    fleet_changes: int
    fleet_changes_in_unknown_networks: int
    alerts_rule: str
    recall: float
    recall_rule: str
    per_kind: dict[str, KindRecall] = field(default_factory=dict)
    top_alerts: list[TopAlert] = field(default_factory=list)
    sweeps: int = 0  # workloads whose many flagged first connections are one alert, as the monitor reports them
    # The gate's own figure (scripts/detect/gate.py): alerts beyond the allowance per 1,000 workloads, and its verdict.
    alert_allowance: int = 0
    alerts_judged_per_1000_workloads: float = 0.0
    gate: str = ""
    feedback: FeedbackRecord | None = None  # the analysts' verdicts the detector was fitted with

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def dumps(self) -> str:
        return dumps(self.to_json())

    def degenerate(self) -> DetectionReport:
        """What the gate sees when the model's evaluation is degenerate: recall 0, so it never passes."""
        degenerate = "the model's evaluation is degenerate (every score alike): recall counts as 0"
        return dataclasses.replace(self, recall=0.0, recall_rule="0: the evaluation is degenerate", gate=degenerate)

    @staticmethod
    def from_json(document: dict[str, Any], where: str) -> DetectionReport:
        kinds = document.get(PER_KIND_KEY) or {}
        alerts = document.get(TOP_ALERTS_KEY) or []
        feedback = document.get(FEEDBACK_KEY)
        parsed = {
            FEEDBACK_KEY: from_json(FeedbackRecord, feedback, f"{where} {FEEDBACK_KEY}") if feedback else None,
            PER_KIND_KEY: {kind: from_json(KindRecall, value, f"{where} {kind}") for kind, value in kinds.items()},
            TOP_ALERTS_KEY: [from_json(TopAlert, value, f"{where} top alert") for value in alerts],
        }
        return from_json(DetectionReport, {**document, **parsed}, where)


PER_KIND_KEY = field_key(DetectionReport, "per_kind")
TOP_ALERTS_KEY = field_key(DetectionReport, "top_alerts")
RECALL_KEY = field_key(DetectionReport, "recall")
ALERTS_KEY = field_key(DetectionReport, "alerts_per_1000_workloads")
JUDGED_ALERTS_KEY = field_key(DetectionReport, "alerts_judged_per_1000_workloads")
GATE_KEY = field_key(DetectionReport, "gate")
FEEDBACK_KEY = field_key(DetectionReport, "feedback")
WORKLOADS_KEY = field_key(DetectionReport, "workloads")


def read_detection(folder: Path) -> DetectionReport:
    """The FitDetector step's detector/detection.json (the folder a processing job receives it in)."""
    path = folder / DETECTION_FILE
    return DetectionReport.from_json(read_json(path, WRITER), str(path))
