"""Evaluation step: model quality on the eval set, a calibrated threshold, evaluation.json and an HTML report.

    python scripts/evaluate.py --eval DIR --scores DIR --output DIR [--target-fpr 0.001]
Inside a SageMaker processing job the defaults are /opt/ml/processing/{eval,scores,evaluation}.
Sign convention: a higher IP Insights dot_product means a more normal pair; a pair is anomalous when its
dot_product is below the threshold.
Runs in the SageMaker scikit-learn 1.4-2-py312 container: it imports numpy, scikit-learn and the standard library
only (the image promises no pandas and no plotting library), and draws its plots as inline SVG.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROCESSING = Path("/opt/ml/processing")
# Fixed JSON paths read by the pipeline's condition step and by the monitor.
AUC_PATH = "binary_classification_metrics.auc.value"
THRESHOLD_PATH = "seclake.threshold.dot_product"
DETECTOR_URI_KEY = "detector_uri"  # under "seclake": where the monitor finds this model's fitted detector
DETECTION_KEY = "detection"  # under "seclake": the FitDetector step's detection.json (what the gate reads)
DETECTION_FILE = "detection.json"  # scripts/layout.py's DETECTION_FILE: this script ships alone
RECALL_PATH = "seclake.detection.recall"
ALERTS_PATH = "seclake.detection.alerts_per_1000_workloads"
TRAINING_DATA_KEY = "training_data"  # under "seclake": the pair mapping and algorithm the model's data was made with
RECORDED_FROM_QUALITY = ("mapping", "algorithm", "window")
SIGN_CONVENTION = "higher dot_product = more normal; a pair is anomalous when dot_product < threshold"
FPR_POINTS = (0.001, 0.01, 0.05)
MIN_ROWS_PER_CLASS = 10
BOOTSTRAP_ROUNDS = 30


class EvaluationInputError(ValueError):
    """The eval set and the scores cannot be evaluated together; the message says why and what to check."""


@dataclass
class EvalSet:
    """Eval pairs with labels, row-aligned with their scores: one array per column."""

    entity: np.ndarray
    ip: np.ndarray
    label: np.ndarray
    kind: np.ndarray
    entity_in_training: np.ndarray
    dot_product: np.ndarray
    model_negative: np.ndarray

    def __len__(self) -> int:
        return len(self.entity)

    def subset(self, mask: np.ndarray) -> EvalSet:
        return EvalSet(
            self.entity[mask],
            self.ip[mask],
            self.label[mask],
            self.kind[mask],
            self.entity_in_training[mask],
            self.dot_product[mask],
            self.model_negative[mask],
        )


@dataclass
class Evaluation:
    """Everything evaluation.json and the report say."""

    status: str
    problems: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)


def _score_lines(path: Path) -> list[float]:
    """dot_product values of one transform output file, in row order.

    Accepts the built-in's JSON Lines (`{"dot_product": x}` per line), JSON (`{"predictions": [...]}` per line or
    per file), and lines that start with the joined input (`entity,ip,{...}`).
    """
    values: list[float] = []
    text = path.read_text()
    stripped = text.strip()
    if stripped.startswith("{") and "\n" not in stripped:
        lines = [stripped]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        payload = line[line.index("{") :] if "{" in line else line
        try:
            document = json.loads(payload)
        except json.JSONDecodeError:
            try:
                values.append(float(payload.split(",")[-1]))
                continue
            except ValueError:
                message = f"{path}, line {number}: not a score line ({line[:80]!r})"
                raise EvaluationInputError(message) from None
        records = document["predictions"] if isinstance(document, dict) and "predictions" in document else [document]
        for record in records:
            if not isinstance(record, dict) or "dot_product" not in record:
                message = f"{path}, line {number}: no dot_product in {json.dumps(record)[:80]}"
                raise EvaluationInputError(message)
            values.append(float(record["dot_product"]))
    return values


def load_eval_set(eval_dir: Path, scores_dir: Path) -> EvalSet:
    """Join eval/pairs.csv, eval/labels.csv and the transform output, checking that they line up."""
    pairs_path, labels_path = eval_dir / "pairs.csv", eval_dir / "labels.csv"
    for path in (pairs_path, labels_path):
        if not path.exists():
            message = f"{path} is missing; the preprocessing step writes eval/pairs.csv and eval/labels.csv"
            raise EvaluationInputError(message)
    with pairs_path.open(newline="") as handle:
        pairs = [row for row in csv.reader(handle) if row]
    with labels_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        labels = list(reader)
    missing = {"label", "kind"} - set(columns)
    if missing:
        message = f"{labels_path} lacks columns {sorted(missing)}; found {columns}"
        raise EvaluationInputError(message)
    if len(pairs) != len(labels):
        message = f"{pairs_path} has {len(pairs)} rows but {labels_path} has {len(labels)}: they must be row-aligned"
        raise EvaluationInputError(message)
    bad = next((number for number, row in enumerate(pairs, 1) if len(row) != 2), None)
    if bad is not None:
        message = f"{pairs_path}, line {bad}: expected entity,ip, found {pairs[bad - 1]!r}"
        raise EvaluationInputError(message)
    candidates = sorted(scores_dir.glob("pairs.csv.out")) or sorted(scores_dir.glob("*.out"))
    if len(candidates) != 1:
        message = (
            f"expected one transform output for pairs.csv in {scores_dir} (pairs.csv.out), found "
            f"{[p.name for p in candidates] or 'none'}"
        )
        raise EvaluationInputError(message)
    scores = _score_lines(candidates[0])
    if len(scores) != len(pairs):
        message = (
            f"{candidates[0]} has {len(scores)} scores for {len(pairs)} eval pairs: the transform output is not "
            "row-aligned with eval/pairs.csv (check the transform's split and assemble settings: Line/Line)"
        )
        raise EvaluationInputError(message)
    _check_joined_input(candidates[0], pairs)
    return EvalSet(
        entity=np.array([row[0] for row in pairs], dtype=object),
        ip=np.array([row[1] for row in pairs], dtype=object),
        label=np.array([int(row["label"]) for row in labels], dtype=np.int64),
        kind=np.array([row["kind"] for row in labels], dtype=object),
        entity_in_training=np.array([int(row.get("entity_in_training") or 1) for row in labels], dtype=np.int64),
        dot_product=np.asarray(scores, dtype=np.float64),
        model_negative=np.array(
            [int(row.get("model_negative") or int(row["label"])) for row in labels], dtype=np.int64
        ),
    )


def _check_joined_input(path: Path, pairs: list[list[str]]) -> None:
    """When the transform joined its input to each output line, the input must be the eval pair of that row."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0].startswith("{"):
        return
    for number, (line, (entity, ip)) in enumerate(zip(lines, pairs, strict=True), 1):
        if not line.startswith(f"{entity},{ip},"):
            message = f"{path}, line {number}: joined input {line[:60]!r} is not eval pair {entity},{ip}"
            raise EvaluationInputError(message)


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
        return Evaluation("degenerate", problems, {"counts": counts, "share_entities_seen_in_training": share_seen})
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
    return Evaluation("ok", [], metrics)


def _value(value: float, std: float = 0.0) -> dict[str, float]:
    return {"value": value, "standard_deviation": std}


def evaluation_json(result: Evaluation) -> dict[str, Any]:
    """SageMaker model-quality statistics (binary classification), plus this project's own section.

    The condition step reads binary_classification_metrics.auc.value; the monitor reads
    seclake.threshold.dot_product. A degenerate evaluation reports AUC 0 so it can never pass the gate.
    """
    m = result.metrics
    if result.status != "ok":
        return {
            "version": 0.0,
            "binary_classification_metrics": {"auc": _value(0.0)},
            "seclake": {
                "status": result.status,
                "problems": result.problems,
                "sign_convention": SIGN_CONVENTION,
                "threshold": {"dot_product": None},
                "counts": m.get("counts", {}),
            },
        }
    c = m["confusion"]
    positives, negatives = c["tp"] + c["fn"], c["fp"] + c["tn"]
    recall = c["tp"] / max(positives, 1)
    precision = c["tp"] / max(c["tp"] + c["fp"], 1)
    fpr = c["fp"] / max(negatives, 1)
    accuracy = (c["tp"] + c["tn"]) / max(positives + negatives, 1)
    return {
        "version": 0.0,
        "binary_classification_metrics": {
            "confusion_matrix": {"0": {"0": c["tn"], "1": c["fp"]}, "1": {"0": c["fn"], "1": c["tp"]}},
            "recall": _value(recall, _rate_std(recall, positives)),
            "precision": _value(precision, _rate_std(precision, c["tp"] + c["fp"])),
            "accuracy": _value(accuracy, _rate_std(accuracy, positives + negatives)),
            "true_positive_rate": _value(recall, _rate_std(recall, positives)),
            "false_positive_rate": _value(fpr, _rate_std(fpr, negatives)),
            "auc": _value(m["auc"], m["auc_std"]),
            "pr_auc": _value(m["pr_auc"], m["pr_auc_std"]),
        },
        "seclake": {
            "status": "ok",
            "sign_convention": SIGN_CONVENTION,
            "threshold": m["threshold"],
            "tpr_at_fpr": m["tpr_at_fpr"],
            "auc_per_negative_kind": m["per_kind"],
            "share_entities_seen_in_training": m["share_entities_seen_in_training"],
            "counts": m["counts"],
        },
    }


def json_get(document: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (what the pipeline's JsonGet reads)."""
    value: Any = document
    for part in path.split("."):
        value = value[part]
    return value


def detection_html(found: dict[str, Any]) -> str:
    """What the detector delivers on the held-out day: alerts per 1,000 workloads, recall per injected kind, the top
    alerts with why."""
    kinds = "".join(
        f"<tr><td>{html.escape(kind)}</td><td>{v['count']:,}</td><td>{v['recall']:.3f}</td></tr>"
        for kind, v in sorted(found.get("per_kind", {}).items())
    )
    alerts = "".join(
        f"<tr><td>{html.escape(a['entity'])}</td><td>{html.escape(a['ip'])}</td><td>{a['score']:.2f}</td>"
        f"<td>{html.escape(a['why'])}</td></tr>"
        for a in found.get("top_alerts", [])
    )
    return (
        f"<h2>Detection on the held-out day {html.escape(str(found.get('held_out_day', '')))}</h2>"
        f"<p>{found.get('alerts', 0):,} alerts for {found.get('workloads', 0):,} workloads and "
        f"{found.get('pairs', 0):,} distinct pairs: <b>{found.get('alerts_per_1000_workloads', 0.0):.1f} alerts per "
        f"1,000 workloads per day</b> at false positive rate {found.get('false_positive_rate', 0.0):g}; "
        f"{found.get('fleet_changes', 0):,} fleet-wide changes. Recall on injected attacks "
        f"<b>{found.get('recall', 0.0):.3f}</b> ({html.escape(str(found.get('recall_rule', '')))}).</p>"
        f"<table><tr><th>injected kind</th><th>pairs</th><th>recall</th></tr>{kinds}</table>"
        "<h3>Top alerts</h3><table><tr><th>entity</th><th>ip</th><th>surprisal</th><th>why</th></tr>"
        f"{alerts}</table>"
    )


def write_report(data: EvalSet, result: Evaluation, output: Path, found: dict[str, Any] | None = None) -> list[str]:
    """report.html with the detector's figures, the ROC curve, score histograms with the threshold, confusion
    numbers, top anomalies; returns the titles of the plots it drew."""
    images: list[tuple[str, str]] = []
    body = [f"<h1>IP Insights evaluation</h1><p>{html.escape(SIGN_CONVENTION)}.</p>"]
    if found is not None:
        body.append(detection_html(found))
    if result.status != "ok":
        body.append(
            "<h2>Not evaluated</h2><ul>"
            + "".join(f"<li>{html.escape(p)}</li>" for p in result.problems)
            + "</ul><p>The AUC is reported as 0 so the model cannot pass the deployment gate.</p>"
        )
    else:
        m = result.metrics
        images = _plots(data, m)
        t = m["threshold"]
        c = m["confusion"]
        kinds = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v['count']:,}</td><td>{v['auc']:.4f}</td></tr>"
            for k, v in m["per_kind"].items()
        )
        body.append(
            f"<h2>Quality</h2><table><tr><th>ROC AUC</th><td>{m['auc']:.4f} &plusmn; {m['auc_std']:.4f}</td></tr>"
            f"<tr><th>PR AUC</th><td>{m['pr_auc']:.4f}</td></tr>"
            + "".join(f"<tr><th>TPR at FPR {k}</th><td>{v:.4f}</td></tr>" for k, v in m["tpr_at_fpr"].items())
            + f"<tr><th>Eval entities seen in training</th><td>{m['share_entities_seen_in_training']:.1%}</td></tr>"
            "</table><h3>AUC per negative kind</h3><table><tr><th>kind</th><th>pairs</th><th>AUC</th></tr>"
            f"{kinds}</table>"
            f"<h2>Threshold</h2><p>dot_product &lt; <b>{t['dot_product']:.6g}</b> is anomalous "
            f"(target FPR {t['target_fpr']:g}; on the eval set FPR {t['fpr']:.4f}, TPR {t['tpr']:.4f}).</p>"
            f"<table><tr><th></th><th>flagged</th><th>not flagged</th></tr>"
            f"<tr><th>anomalous</th><td>{c['tp']:,}</td><td>{c['fn']:,}</td></tr>"
            f"<tr><th>normal</th><td>{c['fp']:,}</td><td>{c['tn']:,}</td></tr></table>"
        )
        body.extend(f"<h2>{html.escape(title)}</h2>{svg}" for title, svg in images)
    top = np.argsort(data.dot_product, kind="stable")[:20]
    rows = "".join(
        f"<tr><td>{html.escape(str(data.entity[i]))}</td><td>{html.escape(str(data.ip[i]))}</td>"
        f"<td>{data.dot_product[i]:.4f}</td><td>{html.escape(str(data.kind[i]))}</td><td>{data.label[i]}</td></tr>"
        for i in top
    )
    body.append(
        "<h2>The 20 most anomalous eval pairs</h2><table><tr><th>entity</th><th>ip</th><th>dot_product</th>"
        f"<th>kind</th><th>label</th></tr>{rows}</table>"
    )
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}svg{max-width:100%}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>IP Insights evaluation</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    (output / "report.html").write_text(page)
    return [title for title, _ in images]


SVG_WIDTH, SVG_HEIGHT, SVG_MARGIN = 560, 260, 40


def _svg_frame(width: int, height: int, x_label: str, y_label: str, content: str) -> str:
    m = SVG_MARGIN
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f'<rect x="{m}" y="8" width="{width - m - 8}" height="{height - m - 8}" fill="none" stroke="#999"/>'
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">{html.escape(x_label)}</text>'
        f'<text x="12" y="{height / 2}" text-anchor="middle" transform="rotate(-90 12 {height / 2})">'
        f"{html.escape(y_label)}</text>{content}</svg>"
    )


def _scale(values: np.ndarray, low: float, high: float, start: float, end: float) -> np.ndarray:
    span = high - low if high > low else 1.0
    return start + (np.asarray(values, dtype=np.float64) - low) / span * (end - start)


def roc_svg(fpr: list[float], tpr: list[float], auc: float) -> str:
    """The ROC curve on a log false-positive axis (1e-4 .. 1), where a security team reads it."""
    m, w, h = SVG_MARGIN, SVG_WIDTH, SVG_HEIGHT
    x = _scale(np.log10(np.clip(fpr, 1e-4, 1.0)), -4.0, 0.0, m, w - 8)
    y = _scale(np.asarray(tpr), 0.0, 1.0, h - m, 8)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
    ticks = "".join(
        f'<text x="{_scale(np.array([e]), -4.0, 0.0, m, w - 8)[0]:.1f}" y="{h - m + 14}" '
        f'text-anchor="middle">1e{e}</text>'
        for e in (-4, -3, -2, -1, 0)
    )
    content = (
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>{ticks}'
        f'<text x="{w - 12}" y="{h - m - 8}" text-anchor="end">AUC {auc:.4f}</text>'
    )
    return _svg_frame(w, h, "false positive rate (normal pairs flagged), log scale", "true positive rate", content)


def histogram_svg(values: np.ndarray, bins: np.ndarray, threshold: float, colour: str, label: str) -> str:
    """One kind's dot_product histogram with the threshold as a dashed line."""
    m, w, h = SVG_MARGIN, SVG_WIDTH, SVG_HEIGHT // 2 + 20
    counts, _ = np.histogram(values, bins=bins)
    x = _scale(bins, float(bins[0]), float(bins[-1]), m, w - 8)
    tallest = max(int(counts.max()), 1)
    bars = "".join(
        f'<rect x="{x[i]:.1f}" y="{_scale(np.array([c]), 0, tallest, h - m, 8)[0]:.1f}" '
        f'width="{max(x[i + 1] - x[i] - 1, 1):.1f}" height="{(h - m - 8) * c / tallest:.1f}" fill="{colour}"/>'
        for i, c in enumerate(counts)
    )
    line_x = _scale(np.array([threshold]), float(bins[0]), float(bins[-1]), m, w - 8)[0]
    content = (
        f'{bars}<line x1="{line_x:.1f}" x2="{line_x:.1f}" y1="8" y2="{h - m}" stroke="black" stroke-dasharray="4 3"/>'
        f'<text x="{m + 6}" y="22">{html.escape(label)} ({len(values):,} pairs)</text>'
        f'<text x="{m}" y="{h - m + 14}">{bins[0]:.2f}</text>'
        f'<text x="{w - 8}" y="{h - m + 14}" text-anchor="end">{bins[-1]:.2f}</text>'
    )
    return _svg_frame(w, h, "dot_product (higher = more normal; dashed: threshold)", "pairs", content)


def _plots(data: EvalSet, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    seen = data.subset(data.entity_in_training == 1)
    bins = np.linspace(float(seen.dot_product.min()), float(seen.dot_product.max()), 61)
    plots = [("ROC curve", roc_svg(metrics["roc"]["fpr"], metrics["roc"]["tpr"], metrics["auc"]))]
    for kind in sorted(set(seen.kind.tolist())):
        values = seen.dot_product[seen.kind == kind]
        colour = "#1f77b4" if kind == "normal" else "#d62728"
        svg = histogram_svg(values, bins, metrics["threshold"]["dot_product"], colour, str(kind))
        plots.append((f"Score histogram: {kind}", svg))
    return plots


def training_data(quality_dir: Path | None) -> dict[str, Any]:
    """What the preprocessing step says it made (its quality.json): the pair mapping, the algorithm, the window."""
    if quality_dir is None:
        return {}
    path = quality_dir / "quality.json"
    if not path.exists():
        message = f"{path} is missing; the preprocessing step writes quality/quality.json"
        raise EvaluationInputError(message)
    quality = json.loads(path.read_text())
    return {key: quality[key] for key in RECORDED_FROM_QUALITY if key in quality}


def detection(detection_dir: Path | None) -> dict[str, Any] | None:
    """The FitDetector step's detection.json: the detector's alerts on the held-out day and its recall."""
    if detection_dir is None:
        return None
    path = detection_dir / DETECTION_FILE
    if not path.exists():
        message = f"{path} is missing; the FitDetector step writes detector/{DETECTION_FILE}"
        raise EvaluationInputError(message)
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def run(
    eval_dir: Path,
    scores_dir: Path,
    output: Path,
    target_fpr: float,
    detector_uri: str | None = None,
    quality_dir: Path | None = None,
    detection_dir: Path | None = None,
) -> dict[str, Any]:
    """evaluation.json and report.html. Recorded for the monitor: `detector_uri` (the fitted detector, which after a
    cache hit may be an earlier execution's) and the training data's pair mapping and algorithm (from the
    preprocessing step's quality.json), so the monitor extracts pairs as training did. With the detector's
    detection.json, its figures go under seclake.detection, where the gate reads them; a degenerate evaluation
    reports recall 0 there, so it can never pass."""
    data = load_eval_set(eval_dir, scores_dir)
    result = evaluate(data, target_fpr)
    document = evaluation_json(result)
    if detector_uri:
        document["seclake"][DETECTOR_URI_KEY] = detector_uri
    found = detection(detection_dir)
    if found is not None:
        if result.status != "ok":
            found = {**found, "recall": 0.0, "recall_rule": "0: the evaluation is degenerate"}
        document["seclake"][DETECTION_KEY] = found
    recorded = training_data(quality_dir)
    if recorded:
        document["seclake"][TRAINING_DATA_KEY] = recorded
    output.mkdir(parents=True, exist_ok=True)
    (output / "evaluation.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    write_report(data, result, output, found)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=PROCESSING / "eval")
    parser.add_argument("--scores", type=Path, default=PROCESSING / "scores")
    parser.add_argument("--output", type=Path, default=PROCESSING / "evaluation")
    parser.add_argument("--target-fpr", type=float, default=0.001)
    parser.add_argument("--detector-uri", default=None, help="Where the FitDetector step wrote detector.npz")
    parser.add_argument("--quality", type=Path, default=None, help="The preprocessing step's quality/ folder")
    parser.add_argument("--detection", type=Path, default=None, help="The FitDetector step's output folder")
    arguments = parser.parse_args(argv)
    if not 0 < arguments.target_fpr < 1:
        print(f"error: --target-fpr {arguments.target_fpr} must be between 0 and 1 (e.g. 0.001)", file=sys.stderr)
        return 2
    try:
        document = run(
            arguments.eval,
            arguments.scores,
            arguments.output,
            arguments.target_fpr,
            arguments.detector_uri,
            arguments.quality,
            arguments.detection,
        )
    except EvaluationInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "status": document["seclake"]["status"],
                "auc": json_get(document, AUC_PATH),
                "threshold": document["seclake"]["threshold"]["dot_product"],
                "detection_recall": document["seclake"].get(DETECTION_KEY, {}).get("recall"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
