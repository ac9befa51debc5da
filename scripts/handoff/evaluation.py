"""evaluation.json: the model-quality report (SageMaker's binary-classification format plus this project's section),
its record, and the JSON paths the pipeline's gate and the CLI read from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.handoff.artifacts import EVALUATION, EVALUATION_FILE
from scripts.handoff.detection import ALERTS_KEY, GATE_KEY, JUDGED_ALERTS_KEY, RECALL_KEY, DetectionReport
from scripts.handoff.records import dumps, field_key, from_json, json_path, read_json

WRITER = f"the EvaluateModel step ({EVALUATION}/{EVALUATION_FILE})"
FORMAT_VERSION = 0.0
METRIC_VALUE = "value"  # SageMaker's model-quality format: {"value": x, "standard_deviation": s}
METRIC_STD = "standard_deviation"
SIGN_CONVENTION = "higher dot_product = more normal; a pair is anomalous when dot_product < threshold"


def metric(value: float, std: float = 0.0) -> dict[str, float]:
    """One metric in SageMaker's model-quality format."""
    return {METRIC_VALUE: value, METRIC_STD: std}


@dataclass(frozen=True)
class ThresholdRecord:
    """The model's calibrated threshold: dot_product below it is anomalous (None when the evaluation is degenerate)."""

    dot_product: float | None
    target_fpr: float | None = None
    fpr: float | None = None
    tpr: float | None = None
    rule: str | None = None


@dataclass(frozen=True)
class SeclakeSection:
    """This project's part of evaluation.json: status, threshold, the model's figures, the detector's record."""

    status: str  # ok or degenerate
    sign_convention: str
    threshold: ThresholdRecord
    counts: dict[str, Any]
    problems: list[str] | None = None
    tpr_at_fpr: dict[str, float] | None = None
    auc_per_negative_kind: dict[str, dict[str, Any]] | None = None
    share_entities_seen_in_training: float | None = None
    detection: DetectionReport | None = None


@dataclass(frozen=True)
class EvaluationReport:
    """evaluation.json: what the model package records as its model quality and the gate reads."""

    binary_classification_metrics: dict[str, dict[str, Any]]
    seclake: SeclakeSection
    version: float = FORMAT_VERSION

    @property
    def ok(self) -> bool:
        return self.seclake.status == OK

    @property
    def auc(self) -> float | None:
        value = self.binary_classification_metrics.get(AUC_KEY, {}).get(METRIC_VALUE)
        return float(value) if isinstance(value, int | float) else None

    def to_json(self) -> dict[str, Any]:
        section = {
            f.name: getattr(self.seclake, f.name)
            for f in dataclasses.fields(SeclakeSection)
            if getattr(self.seclake, f.name) is not None
        }
        threshold = dataclasses.asdict(self.seclake.threshold)
        section[THRESHOLD_KEY] = {k: v for k, v in threshold.items() if v is not None or k == DOT_PRODUCT_KEY}
        if self.seclake.detection is not None:
            section[DETECTION_KEY] = self.seclake.detection.to_json()
        return {
            field_key(EvaluationReport, "version"): self.version,
            METRICS_KEY: self.binary_classification_metrics,
            SECLAKE_KEY: section,
        }

    def dumps(self) -> str:
        return dumps(self.to_json())

    @staticmethod
    def from_json(document: dict[str, Any], where: str) -> EvaluationReport:
        section = document.get(SECLAKE_KEY)
        if not isinstance(section, dict):
            section = {}
        threshold = from_json(ThresholdRecord, section.get(THRESHOLD_KEY) or {}, f"{where} {THRESHOLD_KEY}")
        found = section.get(DETECTION_KEY)
        detection = DetectionReport.from_json(found, f"{where} {DETECTION_KEY}") if found else None
        parsed = from_json(SeclakeSection, {**section, THRESHOLD_KEY: threshold, DETECTION_KEY: detection}, where)
        return from_json(EvaluationReport, {**document, SECLAKE_KEY: parsed}, where)


OK = "ok"
DEGENERATE = "degenerate"
METRICS_KEY = field_key(EvaluationReport, "binary_classification_metrics")
SECLAKE_KEY = field_key(EvaluationReport, "seclake")
THRESHOLD_KEY = field_key(SeclakeSection, "threshold")
DOT_PRODUCT_KEY = field_key(ThresholdRecord, "dot_product")
DETECTION_KEY = field_key(SeclakeSection, "detection")
AUC_KEY = "auc"  # SageMaker's binary-classification metric names
# The JSON paths read from evaluation.json: the gate (RECALL_PATH, JUDGED_ALERTS_PATH, GATE_PATH), the CLI, the report.
AUC_PATH = json_path(METRICS_KEY, AUC_KEY, METRIC_VALUE)
THRESHOLD_PATH = json_path(SECLAKE_KEY, THRESHOLD_KEY, DOT_PRODUCT_KEY)
RECALL_PATH = json_path(SECLAKE_KEY, DETECTION_KEY, RECALL_KEY)
ALERTS_PATH = json_path(SECLAKE_KEY, DETECTION_KEY, ALERTS_KEY)
JUDGED_ALERTS_PATH = json_path(SECLAKE_KEY, DETECTION_KEY, JUDGED_ALERTS_KEY)  # compared with AlertBudget
GATE_PATH = json_path(SECLAKE_KEY, DETECTION_KEY, GATE_KEY)  # the verdict in words, for the failure message


def read_evaluation(folder: Path) -> EvaluationReport:
    """A run's evaluation/evaluation.json."""
    path = folder / EVALUATION_FILE
    return EvaluationReport.from_json(read_json(path, WRITER), str(path))


def evaluation_of(document: dict[str, Any] | None, where: str) -> EvaluationReport | None:
    """The record of a stored evaluation document (a model package's metrics), or None when there is none."""
    return EvaluationReport.from_json(document, where) if document else None
