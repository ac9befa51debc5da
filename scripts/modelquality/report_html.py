"""report.html: the detector's figures, the ROC curve, score histograms with the threshold, the confusion numbers and
the most anomalous eval pairs. Its plots are inline SVG: the scikit-learn image has no plotting library."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from scripts.handoff.artifacts import REPORT_FILE
from scripts.handoff.detection import DetectionReport, FeedbackRecord
from scripts.handoff.evalset import EvalSet
from scripts.handoff.evaluation import OK, SIGN_CONVENTION
from scripts.modelquality.metrics import Evaluation


def detection_html(found: DetectionReport) -> str:
    """What the detector delivers on the held-out day: alerts per 1,000 workloads, recall per injected kind, the top
    alerts with why."""
    kinds = "".join(
        f"<tr><td>{html.escape(kind)}</td><td>{v.count:,}</td><td>{v.recall:.3f}</td></tr>"
        for kind, v in sorted(found.per_kind.items())
    )
    alerts = "".join(
        f"<tr><td>{html.escape(a.entity)}</td><td>{html.escape(a.ip)}</td><td>{a.score:.2f}</td>"
        f"<td>{html.escape(a.why)}</td></tr>"
        for a in found.top_alerts
    )
    return (
        f"<h2>Detection on the held-out day {html.escape(found.held_out_day)}</h2>"
        f"<p>{found.alerts:,} alerts for {found.workloads:,} workloads and "
        f"{found.pairs:,} distinct pairs: <b>{found.alerts_per_1000_workloads:.1f} alerts per "
        f"1,000 workloads per day</b> at false positive rate {found.false_positive_rate:g}; "
        f"{found.fleet_changes:,} fleet-wide changes. Recall on injected attacks "
        f"<b>{found.recall:.3f}</b> ({html.escape(found.recall_rule)}).</p>"
        f"<table><tr><th>injected kind</th><th>pairs</th><th>recall</th></tr>{kinds}</table>"
        "<h3>Top alerts</h3><table><tr><th>entity</th><th>ip</th><th>surprisal</th><th>why</th></tr>"
        f"{alerts}</table>"
    )


def feedback_html(feedback: FeedbackRecord) -> str:
    """The analysts' verdicts: production precision beside the held-out figures, and what the detector learnt."""
    first, last = feedback.production_days
    judged = feedback.production_true_positives + feedback.production_benign
    precision = (
        f"<b>{feedback.production_precision:.3f}</b> ({feedback.production_true_positives:,} true positives of "
        f"{judged:,} verdicts)"
        if feedback.production_precision is not None
        else "not known: no verdict"
    )
    skipped = "".join(f"<li>{html.escape(reason)}</li>" for reason in feedback.skipped)
    return (
        f"<h2>Analysts' verdicts</h2><p>Production precision on the findings of {first} to {last}: {precision}. "
        f"Of {feedback.verdicts:,} verdicts: {feedback.benign_pairs:,} benign pairs are known to this detector; "
        f"{feedback.true_positive_pairs:,} true-positive pairs are never learned as normal "
        f"({feedback.history_rows_removed:,} history rows left out).</p>"
        + (f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else "")
    )


def write_report(data: EvalSet, result: Evaluation, output: Path, found: DetectionReport | None = None) -> list[str]:
    """report.html with the detector's figures, the ROC curve, score histograms with the threshold, confusion
    numbers, top anomalies; returns the titles of the plots it drew."""
    images: list[tuple[str, str]] = []
    body = [f"<h1>IP Insights evaluation</h1><p>{html.escape(SIGN_CONVENTION)}.</p>"]
    if found is not None:
        body.append(detection_html(found))
        if found.feedback is not None:
            body.append(feedback_html(found.feedback))
    if result.status != OK:
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
    (output / REPORT_FILE).write_text(page)
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
