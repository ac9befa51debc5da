"""Hand-off records as the steps write them, for tests that feed one job what an earlier step would have made."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from scripts.handoff.artifacts import DETECTION_FILE, DETECTOR, QUALITY_FILE, QUALITY_OUTPUT
from scripts.handoff.detection import DetectionReport, KindRecall, TopAlert
from scripts.handoff.quality import QualityCounts, QualityReport, WindowRecord


def quality(**changes: Any) -> QualityReport:
    report = QualityReport(
        counts=QualityCounts(rows_read={"vpc_flow": 10}, pairs_kept={"vpc_flow": 8}),
        window=WindowRecord(end_day="20261128", lookback_days=8, validation_day="20261128"),
        mapping="role",
        access="s3",
        algorithm="builtin",
        max_pair_repeats=100,
        train_rows=5,
        validation_rows=3,
        eval_rows={"normal": 3},
        distinct_entities=2,
        distinct_ips=4,
        address_book_rows=0,
        suggested_num_entity_vectors=4,
    )
    return dataclasses.replace(report, **changes)


def detection(**changes: Any) -> DetectionReport:
    report = DetectionReport(
        held_out_day="20261128",
        false_positive_rate=1e-4,
        workloads=80,
        pairs=400,
        alerts=1,
        alerts_per_1000_workloads=12.5,
        fleet_changes=0,
        fleet_changes_in_unknown_networks=0,
        alerts_rule="flagged pairs",
        recall=0.75,
        recall_rule="mean over the injected kinds",
        per_kind={"new_role": KindRecall(count=4, recall=1.0)},
        top_alerts=[TopAlert(entity="a/i-1#client:web", ip="203.0.113.9", score=11.0, why="it <never> did")],
    )
    return dataclasses.replace(report, **changes)


def write_quality(root: Path, report: QualityReport | None = None) -> Path:
    """<root>/quality/quality.json; returns the folder."""
    folder = root / QUALITY_OUTPUT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / QUALITY_FILE).write_text((report or quality()).dumps())
    return folder


def write_detection(root: Path, report: DetectionReport | None = None) -> Path:
    """<root>/detector/detection.json; returns the folder."""
    folder = root / DETECTOR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DETECTION_FILE).write_text((report or detection()).dumps())
    return folder
