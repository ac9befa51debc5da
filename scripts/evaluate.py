"""Evaluation step: model quality on the eval set, a calibrated threshold, evaluation.json and an HTML report.

    python scripts/evaluate.py --eval DIR --scores DIR --output DIR [--target-fpr 0.001]
Inside a SageMaker processing job the defaults are /opt/ml/processing/{eval,scores,evaluation}.
Sign convention: a higher IP Insights dot_product means a more normal pair; a pair is anomalous when its
dot_product is below the threshold.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PROCESSING = Path("/opt/ml/processing")
# Fixed JSON paths read by the pipeline's condition step and by the monitor.
AUC_PATH = "binary_classification_metrics.auc.value"
THRESHOLD_PATH = "seclake.threshold.dot_product"
SIGN_CONVENTION = "higher dot_product = more normal; a pair is anomalous when dot_product < threshold"
FPR_POINTS = (0.001, 0.01, 0.05)
MIN_ROWS_PER_CLASS = 10
BOOTSTRAP_ROUNDS = 30


class EvaluationInputError(ValueError):
    """The eval set and the scores cannot be evaluated together; the message says why and what to check."""


@dataclass
class EvalSet:
    """Eval pairs with labels, row-aligned with their scores."""

    frame: pd.DataFrame  # entity, ip, label, kind, entity_in_training, dot_product


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
    pairs = pd.read_csv(pairs_path, header=None, names=["entity", "ip"], dtype=str, keep_default_na=False)
    labels = pd.read_csv(labels_path)
    missing = {"label", "kind"} - set(labels.columns)
    if missing:
        message = f"{labels_path} lacks columns {sorted(missing)}; found {list(labels.columns)}"
        raise EvaluationInputError(message)
    if len(pairs) != len(labels):
        message = f"{pairs_path} has {len(pairs)} rows but {labels_path} has {len(labels)}: they must be row-aligned"
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
    frame = pairs.assign(
        label=labels["label"].astype(int),
        kind=labels["kind"].astype(str),
        entity_in_training=labels.get("entity_in_training", pd.Series(1, index=labels.index)),
        dot_product=np.asarray(scores, dtype=np.float64),
    )
    return EvalSet(frame)


def _check_joined_input(path: Path, pairs: pd.DataFrame) -> None:
    """When the transform joined its input to each output line, the input must be the eval pair of that row."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0].startswith("{"):
        return
    for number, (line, entity, ip) in enumerate(zip(lines, pairs["entity"], pairs["ip"], strict=True), 1):
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
    """Metrics on entities seen in training (only they get meaningful scores), and the calibrated threshold."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    frame = data.frame
    seen = frame[frame["entity_in_training"] == 1]
    normal = seen[seen["label"] == 0]
    anomalous = seen[seen["label"] == 1]
    problems = []
    if len(normal) < MIN_ROWS_PER_CLASS:
        problems.append(f"only {len(normal)} normal pairs of entities seen in training (need {MIN_ROWS_PER_CLASS})")
    if len(anomalous) < MIN_ROWS_PER_CLASS:
        problems.append(f"only {len(anomalous)} anomalous pairs (need {MIN_ROWS_PER_CLASS})")
    if not np.isfinite(seen["dot_product"]).all():
        problems.append(f"{int((~np.isfinite(seen['dot_product'])).sum())} scores are not finite numbers")
    entities = frame["entity"].nunique()
    counts = {
        "rows": len(frame),
        "normal": len(normal),
        "anomalous": len(anomalous),
        "entities": int(entities),
        "entities_seen_in_training": int(frame.loc[frame["entity_in_training"] == 1, "entity"].nunique()),
    }
    share_seen = counts["entities_seen_in_training"] / entities if entities else 0.0
    if problems:
        return Evaluation("degenerate", problems, {"counts": counts, "share_entities_seen_in_training": share_seen})
    truth = seen["label"].to_numpy()
    anomaly_score = -seen["dot_product"].to_numpy()
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
    for kind, group in anomalous.groupby("kind"):
        kind_truth = np.r_[np.zeros(len(normal)), np.ones(len(group))]
        kind_scores = -np.r_[normal["dot_product"].to_numpy(), group["dot_product"].to_numpy()]
        per_kind[str(kind)] = {"auc": float(roc_auc_score(kind_truth, kind_scores)), "count": len(group)}
    threshold = calibrate_threshold(normal["dot_product"].to_numpy(), target_fpr)
    flagged = seen["dot_product"].to_numpy() < threshold
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


def write_report(data: EvalSet, result: Evaluation, output: Path) -> list[Path]:
    """report.html with the ROC curve, score histograms with the threshold, confusion numbers, top anomalies."""
    images: list[Path] = []
    body = [f"<h1>IP Insights evaluation</h1><p>{html.escape(SIGN_CONVENTION)}.</p>"]
    if result.status != "ok":
        body.append(
            "<h2>Not evaluated</h2><ul>"
            + "".join(f"<li>{html.escape(p)}</li>" for p in result.problems)
            + "</ul><p>The AUC is reported as 0 so the model cannot pass the deployment gate.</p>"
        )
    else:
        m = result.metrics
        images = _plots(data, m, output)
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
        body.extend(
            f'<h2>{html.escape(p.stem.replace("_", " "))}</h2><img src="{p.name}" alt="{p.stem}">' for p in images
        )
    top = data.frame.nsmallest(20, "dot_product")
    rows = "".join(
        f"<tr><td>{html.escape(str(r.entity))}</td><td>{html.escape(str(r.ip))}</td><td>{r.dot_product:.4f}</td>"
        f"<td>{html.escape(str(r.kind))}</td><td>{r.label}</td></tr>"
        for r in top.itertuples()
    )
    body.append(
        "<h2>The 20 most anomalous eval pairs</h2><table><tr><th>entity</th><th>ip</th><th>dot_product</th>"
        f"<th>kind</th><th>label</th></tr>{rows}</table>"
    )
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>IP Insights evaluation</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    (output / "report.html").write_text(page)
    return images


def _plots(data: EvalSet, metrics: dict[str, Any], output: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roc_path = output / "roc_curve.png"
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot(metrics["roc"]["fpr"], metrics["roc"]["tpr"], label=f"AUC {metrics['auc']:.4f}")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axis.set_xscale("symlog", linthresh=0.001)
    axis.set_xlabel("false positive rate (normal pairs flagged)")
    axis.set_ylabel("true positive rate (anomalous pairs flagged)")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(roc_path, dpi=100)
    plt.close(figure)
    histogram_path = output / "score_histograms.png"
    seen = data.frame[data.frame["entity_in_training"] == 1]
    kinds = sorted(seen["kind"].unique())
    figure, axes = plt.subplots(len(kinds), 1, figsize=(7, 2.2 * len(kinds)), sharex=True)
    bins = np.linspace(seen["dot_product"].min(), seen["dot_product"].max(), 60)
    for axis, kind in zip(np.atleast_1d(axes), kinds, strict=True):
        axis.hist(
            seen.loc[seen["kind"] == kind, "dot_product"],
            bins=bins,
            color="tab:blue" if kind == "normal" else "tab:red",
        )
        axis.axvline(metrics["threshold"]["dot_product"], color="black", linestyle="--", label="threshold")
        axis.set_ylabel(kind)
        axis.legend(loc="upper left")
    np.atleast_1d(axes)[-1].set_xlabel("dot_product (higher = more normal)")
    figure.tight_layout()
    figure.savefig(histogram_path, dpi=100)
    plt.close(figure)
    return [roc_path, histogram_path]


def run(eval_dir: Path, scores_dir: Path, output: Path, target_fpr: float) -> dict[str, Any]:
    data = load_eval_set(eval_dir, scores_dir)
    result = evaluate(data, target_fpr)
    document = evaluation_json(result)
    output.mkdir(parents=True, exist_ok=True)
    (output / "evaluation.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    write_report(data, result, output)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=PROCESSING / "eval")
    parser.add_argument("--scores", type=Path, default=PROCESSING / "scores")
    parser.add_argument("--output", type=Path, default=PROCESSING / "evaluation")
    parser.add_argument("--target-fpr", type=float, default=0.001)
    arguments = parser.parse_args(argv)
    if not 0 < arguments.target_fpr < 1:
        print(f"error: --target-fpr {arguments.target_fpr} must be between 0 and 1 (e.g. 0.001)", file=sys.stderr)
        return 2
    try:
        document = run(arguments.eval, arguments.scores, arguments.output, arguments.target_fpr)
    except EvaluationInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "status": document["seclake"]["status"],
                "auc": json_get(document, AUC_PATH),
                "threshold": document["seclake"]["threshold"]["dot_product"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
