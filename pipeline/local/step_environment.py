"""What a step's local handler receives (the execution, the home, the local S3, the state store) and its error."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.local.jobs import JobFolder
from pipeline.local.s3map import S3Map
from pipeline.local.state import Store

if TYPE_CHECKING:
    from pipeline.local.identity import Identity


class StepError(RuntimeError):
    """A step cannot run locally as defined; the message says what and why."""


@dataclass
class StepEnvironment:
    """Where a step runs and what it can reach."""

    execution: str
    home: Path
    s3: S3Map
    store: Store
    property_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: Callable[[str], None] = lambda line: None
    identity: Identity | None = None  # None: nobody's policies are checked (a definition run outside an account)
    # Who calls SageMaker's API in this step: Pipelines, as the pipeline role, unless a function calls it as its own
    # role (the deploy-on-approval function).
    caller_role: str | None = None

    def job_folder(self, name: str) -> JobFolder:
        folder = self.home / "jobs" / self.execution / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return JobFolder(folder)


JOB_NAME_PREFIX = "pipelines-"  # how Pipelines names the jobs, models and tuning jobs it creates


def job_name(env: StepEnvironment, step: str) -> str:
    return f"{JOB_NAME_PREFIX}{env.execution}-{step}"[:63]
