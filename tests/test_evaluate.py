"""The evaluation step: known AUC and threshold on a hand-built eval set, alignment checks, degenerate inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from scripts.handoff.evalset import EvalSetError
from scripts.handoff.evaluation import ALERTS_PATH, AUC_PATH, RECALL_PATH, THRESHOLD_PATH
from scripts.handoff.records import HandoffError, json_get
from scripts.jobs.evaluate import main
from scripts.jobs.evaluate import run as run_job
from tests.handoffs import detection, quality, write_detection, write_quality


def run(eval_dir: Path, scores: Path, output: Path, target_fpr: float, detector_uri: str | None = None) -> Any:
    """The job on its eval set, with the quality and detection records the earlier steps write; evaluation.json."""
    root = output.parent
    report, _ = run_job(eval_dir, scores, write_quality(root), write_detection(root), output, target_fpr, detector_uri)
    return report.to_json()


def _arguments(root: Path, output: str = "out") -> list[str]:
    folders = {"eval": root / "eval", "scores": root / "scores", "quality": write_quality(root)}
    folders["detection"] = write_detection(root)
    return [f"--{name}={path}" for name, path in folders.items()] + [f"--output={root / output}", "--target-fpr=0.001"]


def _write(root: Path, rows: list[tuple[str, str, int, str, float]], scores_format: str = "jsonlines") -> None:
    (root / "eval").mkdir(parents=True)
    (root / "scores").mkdir(parents=True)
    (root / "eval" / "pairs.csv").write_text("".join(f"{e},{ip}\n" for e, ip, _, _, _ in rows))
    (root / "eval" / "labels.csv").write_text(
        "label,kind,entity_in_training\n" + "".join(f"{label},{kind},1\n" for _, _, label, kind, _ in rows)
    )
    if scores_format == "jsonlines":
        text = "".join(json.dumps({"dot_product": s}) + "\n" for *_, s in rows)
    elif scores_format == "json":
        text = json.dumps({"predictions": [{"dot_product": s} for *_, s in rows]})
    else:
        text = "".join(f"{e},{ip},{json.dumps({'dot_product': s})}\n" for e, ip, _, _, s in rows)
    (root / "scores" / "pairs.csv.out").write_text(text)


def _known_rows() -> list[tuple[str, str, int, str, float]]:
    """1,000 normal pairs scoring 0..999; 10 random-IPv4 negatives at -10..-1; 10 other-entity negatives at 0.5..9.5."""
    normal = [(f"acct/i-{i % 7}", f"10.0.{i // 250}.{i % 250}", 0, "normal", float(i)) for i in range(1000)]
    random = [(f"acct/i-{j}", f"203.0.113.{j}", 1, "random_ipv4", float(-10 + j)) for j in range(10)]
    other = [(f"acct/i-{j}", f"198.51.100.{j}", 1, "other_entity_ip", j + 0.5) for j in range(10)]
    return normal + random + other


@pytest.mark.parametrize("scores_format", ["jsonlines", "json", "joined"])
def test_known_auc_and_threshold(tmp_path: Path, scores_format: str) -> None:
    _write(tmp_path, _known_rows(), scores_format)
    document = run(tmp_path / "eval", tmp_path / "scores", tmp_path / "out", target_fpr=0.001)
    assert json_get(document, AUC_PATH) == pytest.approx((10 * 1000 + 9945) / 20_000)
    section = document["seclake"]
    assert section["auc_per_negative_kind"]["random_ipv4"]["auc"] == pytest.approx(1.0)
    assert section["auc_per_negative_kind"]["other_entity_ip"]["auc"] == pytest.approx(0.9945)
    assert json_get(document, THRESHOLD_PATH) == 1.0
    assert section["threshold"]["fpr"] == pytest.approx(0.001)
    assert section["threshold"]["tpr"] == pytest.approx(11 / 20)
    matrix = document["binary_classification_metrics"]["confusion_matrix"]
    assert matrix == {"0": {"0": 999, "1": 1}, "1": {"0": 9, "1": 11}}
    assert section["tpr_at_fpr"]["0.01"] >= section["tpr_at_fpr"]["0.001"]
    assert "higher dot_product = more normal" in section["sign_convention"]
    stored = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert json_get(stored, AUC_PATH) == json_get(document, AUC_PATH)


def test_report_draws_inline_svg_plots_and_lists_top_anomalies(tmp_path: Path) -> None:
    _write(tmp_path, _known_rows())
    run(tmp_path / "eval", tmp_path / "scores", tmp_path / "out", target_fpr=0.001)
    page = (tmp_path / "out" / "report.html").read_text()
    titles = re.findall(r"<h2>([^<]+)</h2><svg", page)
    assert titles == [
        "ROC curve",
        "Score histogram: normal",
        "Score histogram: other_entity_ip",
        "Score histogram: random_ipv4",
    ]
    svgs = re.findall(r"<svg .*?</svg>", page)
    assert len(svgs) == 4
    roc = ElementTree.fromstring(svgs[0])
    points = roc.find("{http://www.w3.org/2000/svg}polyline").get("points").split()  # type: ignore[union-attr]
    assert len(points) > 2
    normal = ElementTree.fromstring(svgs[1])
    bars = normal.findall("{http://www.w3.org/2000/svg}rect")[1:]  # the first rect is the frame
    assert len(bars) == 60
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["evaluation.json", "manifest.json", "report.html"]
    most_anomalous = page.split("The 20 most anomalous eval pairs")[1]
    assert most_anomalous.count("203.0.113.") == 10  # all random negatives...
    assert "198.51.100.0" in most_anomalous  # ...and the lowest-scoring other-entity ones
    assert "dot_product &lt; <b>1</b> is anomalous" in page


def test_misaligned_scores_are_rejected(tmp_path: Path) -> None:
    rows = _known_rows()
    _write(tmp_path, rows)
    lines = (tmp_path / "scores" / "pairs.csv.out").read_text().splitlines()
    (tmp_path / "scores" / "pairs.csv.out").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(EvalSetError, match="1019 scores for 1020 eval pairs"):
        run(tmp_path / "eval", tmp_path / "scores", tmp_path / "out", 0.001)


def test_joined_input_in_the_wrong_order_is_rejected(tmp_path: Path) -> None:
    rows = _known_rows()
    _write(tmp_path, rows, "joined")
    lines = (tmp_path / "scores" / "pairs.csv.out").read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    (tmp_path / "scores" / "pairs.csv.out").write_text("\n".join(lines) + "\n")
    with pytest.raises(EvalSetError, match=r"line 1: joined input .* is not eval pair acct/i-0,10\.0\.0\.0"):
        run(tmp_path / "eval", tmp_path / "scores", tmp_path / "out", 0.001)


def test_one_class_only_is_marked_and_cannot_pass_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, [r for r in _known_rows() if r[2] == 0])
    assert main(_arguments(tmp_path)) == 0
    document = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert json_get(document, AUC_PATH) == 0.0
    assert document["seclake"]["status"] == "degenerate"
    assert "only 0 anomalous pairs" in document["seclake"]["problems"][0]
    assert json_get(document, RECALL_PATH) == 0.0  # the detector's record cannot pass the gate either
    assert "Not evaluated" in (tmp_path / "out" / "report.html").read_text()
    assert '"status": "degenerate"' in capsys.readouterr().out


def test_missing_eval_files_name_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "eval").mkdir()
    assert main(_arguments(tmp_path, "o")) == 2
    assert "pairs.csv is missing" in capsys.readouterr().err


def test_the_detection_record_goes_where_the_gate_reads_and_the_manifest_holds_what_the_monitor_needs(
    tmp_path: Path,
) -> None:
    _write(tmp_path, _known_rows())
    detector = "s3://a/runs/r1/detector/detector.npz"
    write_quality(tmp_path, quality(mapping="peer", algorithm="open"))
    write_detection(tmp_path, detection(recall=0.75, alerts_per_1000_workloads=12.5))
    report, manifest = run_job(
        tmp_path / "eval",
        tmp_path / "scores",
        tmp_path / "quality",
        tmp_path / "detector",
        tmp_path / "out",
        0.001,
        detector,
    )
    document = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert json_get(document, RECALL_PATH) == 0.75
    assert json_get(document, ALERTS_PATH) == 12.5
    assert "detector_uri" not in document["seclake"] and "training_data" not in document["seclake"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert "12.5 alerts per 1,000 workloads per day" in page
    assert "it &lt;never&gt; did" in page
    stored = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert stored == {
        "threshold": 1.0,
        "detector_uri": detector,
        "mapping": "peer",
        "algorithm": "open",
        "window": {"end_day": "20261128", "lookback_days": 8, "validation_day": "20261128"},
    }
    assert stored["threshold"] == json_get(document, THRESHOLD_PATH) == report.seclake.threshold.dot_product
    assert manifest.detector_uri == detector


def test_a_missing_quality_record_is_named_with_its_writer(tmp_path: Path) -> None:
    _write(tmp_path, _known_rows())
    detection_folder = write_detection(tmp_path)
    with pytest.raises(HandoffError, match=r"nowhere/quality\.json is missing; the preprocessing step"):
        run_job(tmp_path / "eval", tmp_path / "scores", tmp_path / "nowhere", detection_folder, tmp_path / "o", 0.001)
