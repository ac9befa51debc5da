"""The job code as content-addressed objects: the same sources always give the same s3:// URIs and bytes."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.network_table import network_table_bytes
from scripts.handoff.artifacts import BUNDLE_FILE, NETWORKS_FILE, ArtifactLayout
from scripts.handoff.verdicts import FORMAT_FILE, format_note
from steps.context import CodeLocations

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class CodeObject:
    """One object to upload: its key suffix and bytes."""

    name: str
    body: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:16]


def scripts_zip(root: Path = PROJECT_ROOT) -> bytes:
    """The `scripts` package as a zip for spark-submit --py-files: sorted entries, fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((root / "scripts").rglob("*.py")):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _job(name: str, root: Path) -> CodeObject:
    """A job's entry script (scripts/jobs/<name>), uploaded under its own name; the rest comes in the bundle."""
    return CodeObject(name, (root / "scripts" / "jobs" / name).read_bytes())


def code_objects(root: Path = PROJECT_ROOT) -> dict[str, CodeObject]:
    """The code objects the pipeline references."""
    return {
        "preprocess_app": _job("preprocess.py", root),
        "scripts_zip": CodeObject(BUNDLE_FILE, scripts_zip(root)),
        "evaluate_script": _job("evaluate.py", root),
        "fit_detector_script": _job("fit_detector.py", root),
        "query_lake_script": _job("query_lake.py", root),
        "network_table": CodeObject(NETWORKS_FILE, network_table_bytes()),
    }


def object_uri(artifact_uri: str, code: CodeObject) -> str:
    return ArtifactLayout(artifact_uri).code(code.digest, code.name)


def code_locations(artifact_uri: str, objects: dict[str, CodeObject]) -> CodeLocations:
    return CodeLocations(**{key: object_uri(artifact_uri, code) for key, code in objects.items()})


def standing_objects(artifact_uri: str) -> dict[str, bytes]:
    """Objects the pipeline's inputs need before anyone wrote there, put with the code when absent: the verdicts'
    format note (a processing job fails on an input prefix with no object)."""
    return {ArtifactLayout(artifact_uri).verdict(FORMAT_FILE): format_note()}
