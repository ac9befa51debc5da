"""Virtual environments that stand in for the job containers: the container's Python and packages, nothing else."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.containers import JobContainer

RUNTIMES_ENV = "SECLAKE_RUNTIMES"
DEFAULT_ROOT = Path.home() / ".cache" / "seclake-ipinsights" / "runtimes"
READY_MARK = ".ready"


class RuntimeUnavailableError(RuntimeError):
    """The container's Python cannot be found or its packages cannot be installed; the message says how to fix it."""


def runtimes_root() -> Path:
    return Path(os.environ.get(RUNTIMES_ENV) or DEFAULT_ROOT)


def find_python(version: str) -> Path:
    """An interpreter of exactly `version` (major.minor): pyenv's versions first, then pythonX.Y on PATH."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"), reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        probe = subprocess.run(
            [str(candidate), "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    message = (
        f"no Python {version} found (looked in {pyenv_root}/versions and for python{version} on PATH); the job's "
        f"container runs Python {version}: install it with `pyenv install {version}` (or your OS's python{version} "
        "and python{version}-venv packages)"
    )
    raise RuntimeUnavailableError(message)


def _digest(container: JobContainer) -> str:
    text = "\n".join([container.python, *container.requirements()])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def runtime_dir(container: JobContainer, root: Path | None = None) -> Path:
    return (root or runtimes_root()) / f"{container.name}-py{container.python}-{_digest(container)}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_runtime(container: JobContainer, root: Path | None = None) -> Path:
    """The stand-in environment's python, built on first use (pip's cache makes later builds quick)."""
    folder = runtime_dir(container, root)
    python = folder / "bin" / "python"
    if (folder / READY_MARK).exists():
        return python
    with _locked(folder.parent / f"{folder.name}.lock"):
        if (folder / READY_MARK).exists():
            return python
        if folder.exists():
            shutil.rmtree(folder)
        interpreter = find_python(container.python)
        steps = [
            [str(interpreter), "-m", "venv", str(folder)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *container.requirements()],
        ]
        for command in steps:
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-10:])
                message = (
                    f"could not build the {container.name} environment (Python {container.python}, "
                    f"{', '.join(container.requirements())}) in {folder}: `{' '.join(command[:4])} ...` failed:\n"
                    f"{tail}\nCheck the network to the package index, or remove {folder} and retry."
                )
                raise RuntimeUnavailableError(message)
        (folder / READY_MARK).write_text(" ".join(container.requirements()) + "\n")
    return python


def host_python() -> Path:
    """This process's interpreter: for jobs that have no container to stand in for (the open IP Insights)."""
    return Path(sys.executable)
