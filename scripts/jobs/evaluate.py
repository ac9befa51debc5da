"""EvaluateModel job: the model's quality on the eval set, the detector's record, evaluation.json, the run's
manifest.json and an HTML report.

    python scripts/jobs/evaluate.py --eval DIR --scores DIR --quality DIR --detection DIR --output DIR
                                    --target-fpr RATE [--detector-uri URI]
Runs in the SageMaker scikit-learn image's python3 (numpy, scikit-learn, the standard library: no pandas, no
plotting library); the `scripts` package comes as scripts.zip in /opt/ml/processing/input/bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # a processing job runs this file: the package is in the bundle, or in the checkout
    _BUNDLES = sorted((Path(__file__).resolve().parent.parent / "bundle").glob("*.zip"))
    sys.path.insert(0, str(_BUNDLES[0]) if _BUNDLES else str(Path(__file__).resolve().parents[2]))

import argparse
import json

from scripts.handoff.artifacts import EVALUATION_FILE, MANIFEST_FILE
from scripts.handoff.detection import read_detection
from scripts.handoff.evalset import load_eval_set
from scripts.handoff.evaluation import EvaluationReport
from scripts.handoff.manifest import RunManifest
from scripts.handoff.quality import read_quality
from scripts.handoff.records import HandoffError
from scripts.modelquality.metrics import evaluate, evaluation_report
from scripts.modelquality.report_html import write_report


def run(
    eval_dir: Path,
    scores_dir: Path,
    quality_dir: Path,
    detection_dir: Path,
    output: Path,
    target_fpr: float,
    detector_uri: str | None = None,
) -> tuple[EvaluationReport, RunManifest]:
    """evaluation.json (the model package's quality, the gate's PropertyFile), manifest.json (what the monitor
    reads: the threshold, the detector, which after a cache hit may be an earlier execution's, and the pair mapping
    and algorithm the training data was made with) and report.html."""
    data = load_eval_set(eval_dir, scores_dir)
    result = evaluate(data, target_fpr)
    report = evaluation_report(result, read_detection(detection_dir))
    manifest = RunManifest.of_run(report, read_quality(quality_dir), detector_uri)
    output.mkdir(parents=True, exist_ok=True)
    (output / EVALUATION_FILE).write_text(report.dumps())
    (output / MANIFEST_FILE).write_text(manifest.dumps())
    write_report(data, result, output, report.seclake.detection)
    return report, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, required=True, help="The preprocessing step's eval set folder")
    parser.add_argument("--scores", type=Path, required=True, help="The batch transform's output of the eval set")
    parser.add_argument("--quality", type=Path, required=True, help="The preprocessing step's quality/ folder")
    parser.add_argument("--detection", type=Path, required=True, help="The FitDetector step's output folder")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--target-fpr", type=float, required=True, help="The model threshold's false positive rate")
    parser.add_argument(
        "--detector-uri", default=None, help="Where the FitDetector step wrote the detector (recorded in the manifest)"
    )
    arguments = parser.parse_args(argv)
    if not 0 < arguments.target_fpr < 1:
        print(f"error: --target-fpr {arguments.target_fpr} must be between 0 and 1 (e.g. 0.001)", file=sys.stderr)
        return 2
    try:
        report, _ = run(
            arguments.eval,
            arguments.scores,
            arguments.quality,
            arguments.detection,
            arguments.output,
            arguments.target_fpr,
            arguments.detector_uri,
        )
    except HandoffError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    detection = report.seclake.detection
    summary = {
        "status": report.seclake.status,
        "auc": report.auc,
        "threshold": report.seclake.threshold.dot_product,
        "detection_recall": detection.recall if detection is not None else None,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
