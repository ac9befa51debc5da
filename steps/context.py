"""What every step factory needs: config, the pipeline session, parameters, code locations and URI helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scripts.handoff.artifacts import RUNS


@dataclass(frozen=True)
class CodeLocations:
    """s3:// URIs of the content-addressed code the jobs run (uploaded by `seclake upsert`)."""

    preprocess_app: str
    scripts_zip: str
    evaluate_script: str
    fit_detector_script: str
    query_lake_script: str
    network_table: str  # the network table (who owns public addresses), content-addressed like the code


@dataclass(frozen=True)
class StepContext:
    """Inputs of the step factories. No I/O happens through it."""

    config: Any
    session: Any
    parameters: Any
    code: CodeLocations

    @property
    def artifact_uri(self) -> str:
        return str(self.config.aws.artifact_uri)

    def run_uri(self, *parts: str) -> Any:
        """s3://<artifacts>/runs/<execution id>/<parts...> as a pipeline Join."""
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        return Join(on="/", values=[self.artifact_uri, RUNS, ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])

    def cache(self) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig

        return CacheConfig(enable_caching=True, expire_after=self.config.pipeline.cache_expire_after)

    def tags(self) -> list[dict[str, str]]:
        return [{"Key": key, "Value": value} for key, value in sorted(self.config.pipeline.tags.items())]

    def job_name(self, suffix: str) -> str:
        return f"{self.config.pipeline.job_prefix}-{suffix}"
