"""manifest.json: what the monitor needs to score new objects as the run did (the model's threshold, the fitted
detector, the pair mapping and algorithm, the window), apart from the model-quality report."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from scripts.handoff.artifacts import EVALUATION, MANIFEST_FILE
from scripts.handoff.evaluation import DOT_PRODUCT_KEY, SECLAKE_KEY, THRESHOLD_KEY, EvaluationReport
from scripts.handoff.quality import QualityReport, WindowRecord
from scripts.handoff.records import dumps, field_key, from_json

WRITER = f"the EvaluateModel step ({EVALUATION}/{MANIFEST_FILE})"
# A run made before manifests recorded these under evaluation.json's seclake section; read only by the fallback.
LEGACY_DETECTOR_URI = "detector_uri"
LEGACY_TRAINING_DATA = "training_data"
LEGACY_PAIR_RULES = ("role", "builtin")  # what a model that recorded no pair rules was trained with


@dataclass(frozen=True)
class RunManifest:
    """One run's deployable facts. threshold: dot_product below it is anomalous (None: degenerate evaluation);
    detector_uri: the FitDetector step's detector.npz, which after a cache hit lies under an earlier execution."""

    threshold: float | None
    detector_uri: str | None
    mapping: str
    algorithm: str
    window: WindowRecord | None = None

    @staticmethod
    def of_run(evaluation: EvaluationReport, quality: QualityReport, detector_uri: str | None) -> RunManifest:
        return RunManifest(
            threshold=evaluation.seclake.threshold.dot_product,
            detector_uri=detector_uri or None,
            mapping=quality.mapping,
            algorithm=quality.algorithm,
            window=quality.window,
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def dumps(self) -> str:
        return dumps(self.to_json())

    @staticmethod
    def from_json(document: dict[str, Any], where: str) -> RunManifest:
        window = document.get(WINDOW_KEY)
        parsed = from_json(WindowRecord, window, f"{where} {WINDOW_KEY}") if window else None
        return from_json(RunManifest, {**document, WINDOW_KEY: parsed}, where)


WINDOW_KEY = field_key(RunManifest, "window")


def manifest_of_legacy_evaluation(document: dict[str, Any], where: str) -> tuple[RunManifest, list[str]]:
    """The manifest of a run made before manifests, from its evaluation.json; and what it had to assume."""
    section = document.get(SECLAKE_KEY) or {}
    recorded = section.get(LEGACY_TRAINING_DATA) or {}
    threshold = (section.get(THRESHOLD_KEY) or {}).get(DOT_PRODUCT_KEY)
    notes = [f"{where}: a run made before {MANIFEST_FILE}; its facts are read from the evaluation"]
    mapping, algorithm = recorded.get("mapping"), recorded.get("algorithm")
    if not mapping or not algorithm:
        mapping, algorithm = mapping or LEGACY_PAIR_RULES[0], algorithm or LEGACY_PAIR_RULES[1]
        notes.append(f"{where} records no pair mapping; using {mapping}/{algorithm}")
    window = recorded.get("window")
    manifest = RunManifest(
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        detector_uri=section.get(LEGACY_DETECTOR_URI) or None,
        mapping=str(mapping),
        algorithm=str(algorithm),
        window=from_json(WindowRecord, window, f"{where} window") if window else None,
    )
    return manifest, notes
