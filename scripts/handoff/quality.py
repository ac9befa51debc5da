"""quality.json: what the preprocessing step made (the window, the pair mapping, counts, drops), as one record."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.handoff.artifacts import QUALITY_FILE, QUALITY_OUTPUT
from scripts.handoff.records import HandoffError, dumps, field_key, from_json, read_json

WRITER = f"the preprocessing step ({QUALITY_OUTPUT}/{QUALITY_FILE})"


@dataclass(frozen=True)
class WindowRecord:
    """The days the step read: how many, and the last one (held out: the validation day)."""

    end_day: str  # YYYYMMDD
    lookback_days: int
    validation_day: str  # YYYYMMDD

    def validation_start_ms(self) -> int:
        """The held-out day's first millisecond (UTC)."""
        try:
            start = dt.datetime.strptime(str(self.validation_day), "%Y%m%d").replace(tzinfo=dt.UTC)
        except ValueError:
            message = f"window.validation_day {self.validation_day!r} is not a day (YYYYMMDD); {WRITER} writes it"
            raise HandoffError(message) from None
        return int(start.timestamp() * 1000)


@dataclass
class QualityCounts:
    """What the step counts while it reads: rows, candidate pairs, drops by reason, pairs kept, objects skipped."""

    rows_read: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, int] = field(default_factory=dict)
    drops: dict[str, dict[str, int]] = field(default_factory=dict)
    pairs_kept: dict[str, int] = field(default_factory=dict)
    skipped_files: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityReport:
    """quality.json. The tuning step reads suggested_num_entity_vectors (SUGGESTED_VECTORS_PATH); the detector's
    evaluation reads the window; the evaluation copies the mapping, algorithm and window into the run's manifest."""

    counts: QualityCounts
    window: WindowRecord
    mapping: str
    access: str  # s3 or athena
    algorithm: str
    max_pair_repeats: int
    train_rows: int
    validation_rows: int
    eval_rows: dict[str, int]
    distinct_entities: int
    distinct_ips: int
    address_book_rows: int
    suggested_num_entity_vectors: int

    def to_json(self) -> dict[str, Any]:
        """The counts' keys at the top level, beside the rest (the layout quality.json has always had)."""
        document = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != COUNTS_KEY}
        document[WINDOW_KEY] = dataclasses.asdict(self.window)
        return {**dataclasses.asdict(self.counts), **document}

    def dumps(self) -> str:
        return dumps(self.to_json())

    @staticmethod
    def from_json(document: dict[str, Any], where: str) -> QualityReport:
        counts = from_json(QualityCounts, document, where)
        window = from_json(WindowRecord, document.get(WINDOW_KEY) or {}, f"{where} {WINDOW_KEY}")
        return from_json(QualityReport, {**document, COUNTS_KEY: counts, WINDOW_KEY: window}, where)


COUNTS_KEY = field_key(QualityReport, "counts")
WINDOW_KEY = field_key(QualityReport, "window")
SUGGESTED_VECTORS_PATH = field_key(QualityReport, "suggested_num_entity_vectors")


def read_quality(folder: Path) -> QualityReport:
    """The step's quality/quality.json (the folder a processing job receives it in)."""
    path = folder / QUALITY_FILE
    return QualityReport.from_json(read_json(path, WRITER), str(path))
