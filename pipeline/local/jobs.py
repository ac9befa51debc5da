"""Run a job as a child process with its own folder and log, and map container paths into that folder."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.local.s3map import S3Map, hadoop_uri

CONTAINER_ROOT = "/opt/ml"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 15
# In the SageMaker Spark container fs.defaultFS is HDFS; locally it is an address nothing listens on, so a job that
# writes a scheme-less path fails here as it would there (where it would silently write into the cluster's HDFS).
UNREACHABLE_DEFAULT_FS = "hdfs://127.0.0.1:9"
SPARK_SUBMIT_ARGS = f"--conf spark.hadoop.fs.defaultFS={UNREACHABLE_DEFAULT_FS} pyspark-shell"


class JobFailedError(RuntimeError):
    """A job's process exited non-zero; the message carries its last log lines."""


@dataclass(frozen=True)
class JobFolder:
    """A job's private folder; /opt/ml/... paths in the definition map below it."""

    root: Path

    def local(self, container_path: str) -> Path:
        if not container_path.startswith(CONTAINER_ROOT):
            message = f"{container_path!r} is not under {CONTAINER_ROOT}"
            raise ValueError(message)
        return self.root / container_path[len(CONTAINER_ROOT) :].lstrip("/")

    def map_argument(self, value: Any, s3: S3Map, as_uri: bool = False) -> str:
        """Container paths into the job folder; for Spark jobs (as_uri), s3:// URIs (also comma-separated) into
        file:// URIs of local S3, where Spark reads and writes what EMRFS would. Other jobs get s3:// URIs as they
        are, as in their containers, where nothing maps them."""
        text = str(value)
        if text.startswith(CONTAINER_ROOT):
            return str(self.local(text))
        if text.startswith("s3://") and as_uri:
            return ",".join(hadoop_uri(s3.to_local(part.strip())) for part in text.split(","))
        return text


def run_job(
    command: list[str],
    folder: Path,
    extra_path: list[Path] | None = None,
    environment: dict[str, str] | None = None,
    project_on_path: bool = True,
) -> str:
    """Run a command, logging to folder/job.log; return its output, or raise JobFailedError with the log's tail.

    A job that stands in for a container sees only its own code (project_on_path=False): what the step uploads.
    """
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    python_path = [str(p) for p in (extra_path or [])] + ([str(PROJECT_ROOT)] if project_on_path else [])
    if env.get("PYTHONPATH") and project_on_path:
        python_path.append(env["PYTHONPATH"])
    env.update({"PYTHONPATH": os.pathsep.join(python_path), "SPARK_LOCAL_IP": "127.0.0.1", **(environment or {})})
    log = folder / "job.log"
    with log.open("w") as handle:
        completed = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=folder, check=False)
    output = log.read_text(errors="replace")
    if completed.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-LOG_TAIL_LINES:])
        message = f"exit code {completed.returncode}; last lines of {log}:\n{tail}"
        raise JobFailedError(message)
    return output


def python() -> str:
    return sys.executable


def pack_model(model_dir: Path, archive: Path) -> None:
    """model.tar.gz as SageMaker writes it: the model folder's files at the archive root."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)


def unpack_model(archive: Path, destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(destination, filter="data")
    return destination
