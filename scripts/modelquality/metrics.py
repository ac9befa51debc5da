"""The model's quality on the eval set: ROC and PR AUC (with bootstrap spread), TPR at fixed FPRs, AUC per negative
kind, and the threshold calibrated to a target false positive rate, as evaluation.json's record.

Sign convention: a higher IP Insights dot_product means a more normal pair; a pair is anomalous when its
dot_product is below the threshold. numpy and scikit-learn only (the scikit-learn image's packages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scripts.handoff.detection import DetectionReport
from scripts.handoff.evalset import EvalSet
from scripts.handoff.evaluation import (
    AUC_KEY,
    DEGENERATE,
    OK,
    SIGN_CONVENTION,
    EvaluationReport,
    SeclakeSection,
    ThresholdRecord,
    metric,
)

FPR_POINTS = (0.001, 0.01, 0.05)
MIN_ROWS_PER_CLASS = 10
BOOTSTRAP_ROUNDS = 30


@dataclass
class Evaluation:
    """Everything evaluation.json and the report say."""

    status: str
    problems: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)


def _rate_std(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n)) if n else 0.0


def calibrate_threshold(normal_scores: np.ndarray, target_fpr: float) -> float:
    """The dot_product below which at most `target_fpr` of the normal pairs fall."""
    ordered = np.sort(normal_scores)
    allowed = int(np.floor(target_fpr * len(ordered)))
    return float(ordered[min(allowed, len(ordered) - 1)])


def evaluate(data: EvalSet, target_fpr: float, seed: int = 0) -> Evaluation:
    """Metrics on entities seen in training (only they get meaningful scores), and the calibrated threshold.

    The model's negatives are the rows marked model_negative (a random address, and an address outside the
    entity's peer group); the attacks injected for the detector are judged by the detector's own evaluation."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    data = data.subset((data.label == 0) | (data.model_negative == 1))
    seen = data.subset(data.entity_in_training == 1)
    normal = seen.subset(seen.label == 0)
    anomalous = seen.subset(seen.label == 1)
    problems = []
    if len(normal) < MIN_ROWS_PER_CLASS:
        problems.append(f"only {len(normal)} normal pairs of entities seen in training (need {MIN_ROWS_PER_CLASS})")
    if len(anomalous) < MIN_ROWS_PER_CLASS:
        problems.append(f"only {len(anomalous)} anomalous pairs (need {MIN_ROWS_PER_CLASS})")
    if not np.isfinite(seen.dot_product).all():
        problems.append(f"{int((~np.isfinite(seen.dot_product)).sum())} scores are not finite numbers")
    entities = len(set(data.entity.tolist()))
    counts = {
        "rows": len(data),
        "normal": len(normal),
        "anomalous": len(anomalous),
        "entities": entities,
        "entities_seen_in_training": len(set(seen.entity.tolist())),
    }
    share_seen = counts["entities_seen_in_training"] / entities if entities else 0.0
    if problems:
        return Evaluation(DEGENERATE, problems, {"counts": counts, "share_entities_seen_in_training": share_seen})
    truth = seen.label
    anomaly_score = -seen.dot_product
    auc = float(roc_auc_score(truth, anomaly_score))
    pr_auc = float(average_precision_score(truth, anomaly_score))
    rng = np.random.default_rng(seed)
    boot_auc, boot_pr = [], []
    for _ in range(BOOTSTRAP_ROUNDS):
        sample = rng.integers(0, len(truth), size=len(truth))
        if truth[sample].min() != truth[sample].max():
            boot_auc.append(roc_auc_score(truth[sample], anomaly_score[sample]))
            boot_pr.append(average_precision_score(truth[sample], anomaly_score[sample]))
    fpr, tpr, _ = roc_curve(truth, anomaly_score)
    tpr_at = {f"{point:g}": float(np.interp(point, fpr, tpr)) for point in FPR_POINTS}
    per_kind = {}
    for kind in sorted(set(anomalous.kind.tolist())):
        group = anomalous.dot_product[anomalous.kind == kind]
        kind_truth = np.r_[np.zeros(len(normal)), np.ones(len(group))]
        kind_scores = -np.r_[normal.dot_product, group]
        per_kind[str(kind)] = {"auc": float(roc_auc_score(kind_truth, kind_scores)), "count": len(group)}
    threshold = calibrate_threshold(normal.dot_product, target_fpr)
    flagged = seen.dot_product < threshold
    tp = int((flagged & (truth == 1)).sum())
    fp = int((flagged & (truth == 0)).sum())
    fn = int((~flagged & (truth == 1)).sum())
    tn = int((~flagged & (truth == 0)).sum())
    metrics = {
        "counts": counts,
        "share_entities_seen_in_training": share_seen,
        "auc": auc,
        "auc_std": float(np.std(boot_auc)) if boot_auc else 0.0,
        "pr_auc": pr_auc,
        "pr_auc_std": float(np.std(boot_pr)) if boot_pr else 0.0,
        "tpr_at_fpr": tpr_at,
        "per_kind": per_kind,
        "threshold": {
            "dot_product": threshold,
            "target_fpr": target_fpr,
            "fpr": fp / max(fp + tn, 1),
            "tpr": tp / max(tp + fn, 1),
            "rule": SIGN_CONVENTION,
        },
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
    }
    return Evaluation(OK, [], metrics)


def evaluation_report(result: Evaluation, detection: DetectionReport | None = None) -> EvaluationReport:
    """SageMaker model-quality statistics (binary classification), plus this project's own section with the
    detector's record (what the gate reads). A degenerate evaluation reports AUC 0 and detection recall 0, so it
    can never pass the gate."""
    m = result.metrics
    if result.status != OK:
        return EvaluationReport(
            binary_classification_metrics={AUC_KEY: metric(0.0)},
            seclake=SeclakeSection(
                status=result.status,
                problems=result.problems,
                sign_convention=SIGN_CONVENTION,
                threshold=ThresholdRecord(dot_product=None),
                counts=m.get("counts", {}),
                detection=detection.degenerate() if detection is not None else None,
            ),
        )
    c = m["confusion"]
    positives, negatives = c["tp"] + c["fn"], c["fp"] + c["tn"]
    recall = c["tp"] / max(positives, 1)
    precision = c["tp"] / max(c["tp"] + c["fp"], 1)
    fpr = c["fp"] / max(negatives, 1)
    accuracy = (c["tp"] + c["tn"]) / max(positives + negatives, 1)
    return EvaluationReport(
        binary_classification_metrics={
            "confusion_matrix": {"0": {"0": c["tn"], "1": c["fp"]}, "1": {"0": c["fn"], "1": c["tp"]}},
            "recall": metric(recall, _rate_std(recall, positives)),
            "precision": metric(precision, _rate_std(precision, c["tp"] + c["fp"])),
            "accuracy": metric(accuracy, _rate_std(accuracy, positives + negatives)),
            "true_positive_rate": metric(recall, _rate_std(recall, positives)),
            "false_positive_rate": metric(fpr, _rate_std(fpr, negatives)),
            AUC_KEY: metric(m["auc"], m["auc_std"]),
            "pr_auc": metric(m["pr_auc"], m["pr_auc_std"]),
        },
        seclake=SeclakeSection(
            status=OK,
            sign_convention=SIGN_CONVENTION,
            threshold=ThresholdRecord(**m["threshold"]),
            tpr_at_fpr=m["tpr_at_fpr"],
            auc_per_negative_kind=m["per_kind"],
            share_entities_seen_in_training=m["share_entities_seen_in_training"],
            counts=m["counts"],
            detection=detection,
        ),
    )
