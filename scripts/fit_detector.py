"""FitDetector step: the detector fitted on the history and the held-out day's scores, and what it delivers there.

    python scripts/fit_detector.py --history DIR --eval DIR --scores DIR --quality DIR --output DIR
                                   [--networks FILE] [--false-positive-rate 0.0001]
Writes detector.npz (what the monitor loads) and detection.json (its alerts on the held-out day and its recall on the
attacks injected into it). --networks is the network table (who owns public addresses) the pipeline ships with the
job code; the detector and its artifact carry it. Runs in the SageMaker scikit-learn image: numpy and pyarrow, no
pandas; the `scripts` package comes as scripts.zip in /opt/ml/processing/input/bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # a processing job runs this file: the package is in the bundle, or in the checkout
    _BUNDLE = Path(__file__).resolve().parent.parent / "bundle" / "scripts.zip"
    sys.path.insert(0, str(_BUNDLE) if _BUNDLE.exists() else str(Path(__file__).resolve().parent.parent))

import argparse
import json
from typing import Any

from scripts.detect.artifact import save_detector
from scripts.detect.detector import DetectorSettings
from scripts.detect.evaluation import DetectionInputError, evaluate_detection, fit_for_deployment, load_inputs
from scripts.layout import DETECTION_FILE, DETECTOR_FILE

PROCESSING = Path("/opt/ml/processing")


def run(
    history: Path,
    eval_dir: Path,
    scores: Path,
    quality: Path,
    output: Path,
    false_positive_rate: float,
    networks: Path | None = None,
) -> dict[str, Any]:
    """Fit, evaluate, write both files; returns detection.json's document."""
    inputs = load_inputs(history, eval_dir, scores, quality, networks)
    settings = DetectorSettings(false_positive_rate=false_positive_rate)
    report = evaluate_detection(inputs, settings)
    detector = fit_for_deployment(inputs, settings)
    output.mkdir(parents=True, exist_ok=True)
    metadata = {
        "validation_day": inputs.validation_day,
        "history_pairs": len(inputs.history),
        "networks": inputs.networks.source if inputs.networks is not None else None,
        "address_book": len(inputs.book) if inputs.book is not None else None,
    }
    save_detector(detector, output / DETECTOR_FILE, metadata)
    (output / DETECTION_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=Path, default=PROCESSING / "history")
    parser.add_argument("--eval", type=Path, default=PROCESSING / "eval")
    parser.add_argument("--scores", type=Path, default=PROCESSING / "scores")
    parser.add_argument("--quality", type=Path, default=PROCESSING / "quality")
    parser.add_argument("--output", type=Path, default=PROCESSING / "detector")
    parser.add_argument("--networks", type=Path, help="The network table (.npz); without it, prefixes alone")
    parser.add_argument("--false-positive-rate", type=float, default=1e-4)
    arguments = parser.parse_args(argv)
    if not 0 < arguments.false_positive_rate < 1:
        rate = arguments.false_positive_rate
        print(f"error: --false-positive-rate {rate} must be between 0 and 1 (e.g. 0.0001)", file=sys.stderr)
        return 2
    try:
        report = run(
            arguments.history,
            arguments.eval,
            arguments.scores,
            arguments.quality,
            arguments.output,
            arguments.false_positive_rate,
            arguments.networks,
        )
    except DetectionInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({key: report[key] for key in ("recall", "alerts_per_1000_workloads", "workloads")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
