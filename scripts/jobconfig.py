"""What a SageMaker processing job tells its container about itself: /opt/ml/config/processingjobconfig.json."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# SageMaker Processing writes the job's own CreateProcessingJob request here ("How Amazon SageMaker Processing
# Configures Your Processing Container"); the local runtime writes the same file into each job's folder and names it
# in LOCATION_VARIABLE, as it maps every /opt/ml path.
PROCESSING_JOB_CONFIG = Path("/opt/ml/config/processingjobconfig.json")
LOCATION_VARIABLE = "SECLAKE_PROCESSING_JOB_CONFIG"


def job_config_path() -> Path:
    return Path(os.environ.get(LOCATION_VARIABLE) or PROCESSING_JOB_CONFIG)


def output_uris(config: dict[str, Any]) -> dict[str, str]:
    """Each declared output's destination URI by its name."""
    outputs = config.get("ProcessingOutputConfig", {}).get("Outputs", [])
    return {item["OutputName"]: item["S3Output"]["S3Uri"] for item in outputs if "S3Output" in item}
