"""What a SageMaker processing job tells its container about itself: /opt/ml/config/processingjobconfig.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# SageMaker Processing writes the job's own CreateProcessingJob request here ("How Amazon SageMaker Processing
# Configures Your Processing Container"); the local runtime writes the same file into each job's folder.
PROCESSING_JOB_CONFIG = Path("/opt/ml/config/processingjobconfig.json")


def output_uris(config: dict[str, Any]) -> dict[str, str]:
    """Each declared output's destination URI by its name."""
    outputs = config.get("ProcessingOutputConfig", {}).get("Outputs", [])
    return {item["OutputName"]: item["S3Output"]["S3Uri"] for item in outputs if "S3Output" in item}
