"""The hand-offs between steps (scripts/handoff/): every record reads back what it wrote, a missing key is named with
its writer, each file name and key is spelled in one module, and the imports point from earlier steps to later ones."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import zipfile
from pathlib import Path

import pytest

from pipeline.code_bundle import code_objects
from pipeline.config import load_config
from pipeline.definition import definition_json
from pipeline.monitor_package import monitor_zip
from scripts.handoff.detection import DetectionReport
from scripts.handoff.evaluation import (
    ALERTS_PATH,
    AUC_PATH,
    GATE_PATH,
    JUDGED_ALERTS_PATH,
    RECALL_PATH,
    THRESHOLD_PATH,
    EvaluationReport,
    SeclakeSection,
    ThresholdRecord,
    metric,
)
from scripts.handoff.manifest import RunManifest
from scripts.handoff.quality import SUGGESTED_VECTORS_PATH, QualityReport
from scripts.handoff.records import HandoffError, field_key, json_get
from tests.handoffs import detection, quality

ROOT = Path(__file__).resolve().parent.parent
HANDOFF = ROOT / "scripts" / "handoff"
# What one step hands another, by file name or key: spelled as a literal only under scripts/handoff/.
SPELLED_ONCE = (
    "quality.json",
    "detection.json",
    "evaluation.json",
    "manifest.json",
    "report.html",
    "query.json",
    "pairs.csv",
    "labels.csv",
    "pairs.csv.out",
    "history.parquet",
    "address_book.parquet",
    "detector.npz",
    "detector.json",
    "networks.npz",
    "scripts.zip",
    "/opt/ml/processing",
    "suggested_num_entity_vectors",
    "alerts_per_1000_workloads",
    "detector_uri",
    "training_data",
    "binary_classification_metrics",
)
# Literals that name something else by the same name, with why.
NOT_HANDOFFS = {
    ("pipeline/samplelake/writer.py", "manifest.json"): "the sample lake's answer key, labels/manifest.json"
}


def _evaluation() -> EvaluationReport:
    return EvaluationReport(
        binary_classification_metrics={"auc": metric(0.93, 0.01)},
        seclake=SeclakeSection(
            status="ok",
            sign_convention="higher is normal",
            threshold=ThresholdRecord(dot_product=-1.5, target_fpr=0.001, fpr=0.001, tpr=0.8, rule="below"),
            counts={"rows": 10},
            detection=detection(),
        ),
    )


def test_each_record_reads_back_what_it_wrote() -> None:
    report = quality()
    assert QualityReport.from_json(json.loads(report.dumps()), "q") == report
    assert DetectionReport.from_json(json.loads(detection().dumps()), "d") == detection()
    evaluation = _evaluation()
    assert EvaluationReport.from_json(json.loads(evaluation.dumps()), "e") == evaluation
    manifest = RunManifest.of_run(evaluation, report, "s3://a/runs/r1/detector/detector.npz")
    assert RunManifest.from_json(json.loads(manifest.dumps()), "m") == manifest
    assert (manifest.threshold, manifest.mapping, manifest.window) == (-1.5, "role", report.window)


def test_the_quality_record_keeps_the_layout_its_readers_know() -> None:
    document = quality().to_json()
    assert document["rows_read"] == {"vpc_flow": 10} and "counts" not in document  # the counts stay top-level
    assert document["window"] == {"end_day": "20261128", "lookback_days": 8, "validation_day": "20261128"}


def test_the_paths_the_gate_tuning_and_monitor_read_resolve_on_the_records() -> None:
    evaluation = _evaluation().to_json()
    assert json_get(evaluation, RECALL_PATH) == 0.75
    assert json_get(evaluation, ALERTS_PATH) == 12.5
    assert json_get(evaluation, JUDGED_ALERTS_PATH) == 0.0 and json_get(evaluation, GATE_PATH) == ""
    assert json_get(evaluation, AUC_PATH) == 0.93
    assert json_get(evaluation, THRESHOLD_PATH) == -1.5
    assert json_get(quality().to_json(), SUGGESTED_VECTORS_PATH) == 4
    definition = json.loads(definition_json(load_config(profile="prod", environ={})))
    read = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if "Std:JsonGet" in value:
                read.add(value["Std:JsonGet"]["Path"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(definition)
    assert read == {RECALL_PATH, JUDGED_ALERTS_PATH, GATE_PATH, SUGGESTED_VECTORS_PATH}


def test_a_missing_key_is_named_with_the_step_that_writes_it(tmp_path: Path) -> None:
    document = quality().to_json()
    del document["mapping"], document["algorithm"]
    with pytest.raises(HandoffError, match=r"q lacks mapping, algorithm \(QualityReport\)"):
        QualityReport.from_json(document, "q")
    from scripts.handoff.quality import read_quality

    (tmp_path / "quality.json").write_text("[1, 2]")
    with pytest.raises(HandoffError, match=r"holds a list, not a JSON object; the preprocessing step"):
        read_quality(tmp_path)


def test_a_renamed_field_breaks_the_json_paths_built_on_it_at_import() -> None:
    assert field_key(DetectionReport, "recall") == "recall"
    with pytest.raises(AttributeError, match="DetectionReport has no field 'recal'"):
        field_key(DetectionReport, "recal")


def _literals(path: Path) -> list[str]:
    """The string constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_each_hand_off_name_and_key_is_spelled_in_the_catalog_only() -> None:
    spelled: dict[str, set[str]] = {}
    for folder in ("scripts", "steps", "pipeline"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for literal in _literals(path):
                for name in SPELLED_ONCE:
                    if name in literal:
                        spelled.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    outside = {
        name: sorted(p for p in paths if not p.startswith("scripts/handoff/") and (p, name) not in NOT_HANDOFFS)
        for name, paths in spelled.items()
    }
    assert {name: paths for name, paths in outside.items() if paths} == {}
    assert {name for name, paths in spelled.items() if paths} >= set(SPELLED_ONCE) - {"pairs.csv.out"}


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return {m for m in modules if m.split(".")[0] in {"scripts", "steps", "pipeline"}}


def _module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _closure(module: str) -> set[str]:
    """The project modules `module` imports, directly or through others."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        path = _module_path(current)
        if current in seen or path is None:
            continue
        seen.add(current)
        todo.extend(_imports(path))
    return seen


def test_the_imports_point_from_earlier_steps_to_later_ones() -> None:
    library = [p for p in (ROOT / "scripts").rglob("*.py") if "jobs" not in p.relative_to(ROOT / "scripts").parts]
    entry_imports = {
        str(p.relative_to(ROOT)): sorted(m for m in _imports(p) if m.startswith("scripts.jobs")) for p in library
    }
    assert {path: found for path, found in entry_imports.items() if found} == {}  # no library module imports a job
    preparing = _closure("scripts.jobs.preprocess")
    later = ("scripts.detect", "scripts.monitor", "scripts.modelquality", "scripts.ipinsights")
    assert sorted(m for m in preparing if m.startswith(later)) == []  # the first job knows nothing of what follows
    detecting = _closure("scripts.detect.held_out_day") | _closure("scripts.jobs.fit_detector")
    assert sorted(m for m in detecting if m.startswith(("scripts.monitor", "scripts.modelquality"))) == []
    assert sorted(m for m in _closure("pipeline.config") if m.startswith("scripts.monitor")) == []
    jobs_code = list((ROOT / "scripts").rglob("*.py"))
    outside = {
        str(p.relative_to(ROOT)) for p in jobs_code if any(m.startswith(("pipeline", "steps")) for m in _imports(p))
    }
    assert outside == set()  # scripts/ ships into containers and the Lambda: self-contained


def test_what_ships_where() -> None:
    """Each job's entry script is under scripts/jobs/ and ships with the scripts bundle; the Lambda zip holds every
    module the handler imports."""
    objects = code_objects()
    entries = {key: code.name for key, code in objects.items() if code.name.endswith(".py")}
    assert all((ROOT / "scripts" / "jobs" / name).exists() for name in entries.values())
    with zipfile.ZipFile(io.BytesIO(monitor_zip())) as archive:
        shipped = set(archive.namelist())
    needed = {str(_module_path(m).relative_to(ROOT)) for m in _closure("scripts.monitor.handler")}  # type: ignore[union-attr]
    needed |= {
        str(p.relative_to(ROOT)) for p in (ROOT / "scripts").rglob("__init__.py") if p.parent.name in {"scripts"}
    }
    assert sorted(needed - shipped) == []
    assert not any(name.startswith(("scripts/jobs/", "scripts/ipinsights/", "scripts/prepare/")) for name in shipped)


def test_records_are_plain_dataclasses() -> None:
    for record in (QualityReport, DetectionReport, EvaluationReport, RunManifest):
        assert dataclasses.is_dataclass(record)
