"""FitDetector step: the detector fitted on the history and the held-out day's scores, and what it delivers there.

    python scripts/jobs/fit_detector.py --history DIR --eval DIR --scores DIR --quality DIR --output DIR
                                        --false-positive-rate RATE [--networks FILE] [--feedback DIR]
Writes the detector cut by account (detector.json and shards/*.npz: scripts/detect/shards.py; the monitor loads
the shard of each object's account; the shards are written in parallel on the instance's cores) and detection.json
(its alerts on the held-out day and its recall on the attacks injected into it). --networks is the network table
(who owns public addresses) the pipeline ships with the job code; the detector and its artifact carry it.
--feedback is the analysts' verdicts (scripts/handoff/verdicts.py): benign pairs become known, true positives leave
the history, and detection.json reports the production precision of the last days. Runs in the SageMaker
scikit-learn image: numpy and pyarrow, no pandas; the `scripts` package comes as scripts.zip in
/opt/ml/processing/input/bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # a processing job runs this file: the package is in the bundle, or in the checkout
    _BUNDLES = sorted((Path(__file__).resolve().parent.parent / "bundle").glob("*.zip"))
    sys.path.insert(0, str(_BUNDLES[0]) if _BUNDLES else str(Path(__file__).resolve().parents[2]))

import argparse
import dataclasses
import json
import os

from scripts.detect.detector import fit_workers
from scripts.detect.gate import DEFAULT_ALERT_ALLOWANCE, GateThresholds, judge
from scripts.detect.held_out_day import evaluate_detection, fit_for_deployment, load_inputs
from scripts.detect.settings import DetectorSettings
from scripts.detect.shards import write_shards
from scripts.handoff.artifacts import DETECTION_FILE
from scripts.handoff.detection import (
    ALERTS_KEY,
    FEEDBACK_KEY,
    GATE_KEY,
    JUDGED_ALERTS_KEY,
    RECALL_KEY,
    WORKLOADS_KEY,
    DetectionReport,
)
from scripts.handoff.records import HandoffError


def run(
    history: Path,
    eval_dir: Path,
    scores: Path,
    quality: Path,
    output: Path,
    false_positive_rate: float,
    networks: Path | None = None,
    thresholds: GateThresholds | None = None,
    feedback: Path | None = None,
) -> DetectionReport:
    """Fit, evaluate, write both files; returns detection.json's record, judged by the gate's thresholds."""
    inputs = load_inputs(history, eval_dir, scores, quality, networks, feedback)
    settings = DetectorSettings(false_positive_rate=false_positive_rate)
    cores = os.cpu_count() or 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    workers = fit_workers(cores, memory, len(inputs.history))  # calibration days at once, as cores and memory allow
    report = evaluate_detection(inputs, settings, workers)
    if inputs.feedback is not None:
        report = dataclasses.replace(report, feedback=inputs.feedback.record)
    if thresholds is not None:
        report = judge(report, thresholds)
    detector = fit_for_deployment(inputs, settings, workers)
    output.mkdir(parents=True, exist_ok=True)
    metadata = {
        "fit_workers": workers,
        "validation_day": inputs.validation_day,
        "history_pairs": len(inputs.history),
        "networks": inputs.networks.source if inputs.networks is not None else None,
        "address_book": len(inputs.book) if inputs.book is not None else None,
        "names": len(inputs.names.account_keys) if inputs.names is not None else None,
        "acknowledged_pairs": len(inputs.feedback.acknowledged) if inputs.feedback is not None else 0,
    }
    write_shards(detector, output, metadata, cores)  # a shard is an account's: small beside the fit
    (output / DETECTION_FILE).write_text(report.dumps())
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=Path, required=True, help="The preprocessing step's history/ folder")
    parser.add_argument("--eval", type=Path, required=True, help="The preprocessing step's eval set folder")
    parser.add_argument("--scores", type=Path, required=True, help="The batch transform's output of the eval set")
    parser.add_argument("--quality", type=Path, required=True, help="The preprocessing step's quality/ folder")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--networks", type=Path, help="The network table (.npz); without it, prefixes alone")
    parser.add_argument("--feedback", type=Path, help="The analysts' verdicts (feedback/verdicts/); without it, none")
    parser.add_argument("--false-positive-rate", type=float, required=True, help="The detector's rate on clean days")
    parser.add_argument("--recall-gate", type=float, default=0.0, help="The gate's RecallGate (for its verdict)")
    parser.add_argument("--alert-budget", type=float, default=float("inf"), help="The gate's AlertBudget")
    parser.add_argument(
        "--alert-allowance", type=int, default=DEFAULT_ALERT_ALLOWANCE, help="Alerts any fleet may raise"
    )
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
            GateThresholds(arguments.recall_gate, arguments.alert_budget, arguments.alert_allowance),
            arguments.feedback,
        )
    except HandoffError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    document = report.to_json()
    keys = (RECALL_KEY, ALERTS_KEY, JUDGED_ALERTS_KEY, WORKLOADS_KEY, GATE_KEY, FEEDBACK_KEY)
    print(json.dumps({key: document[key] for key in keys}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
