"""What the script-processing steps share: the scikit-learn image's processor, inputs and outputs under /opt/ml."""

from __future__ import annotations

from typing import Any

from pipeline.containers import SKLEARN_PROCESSING, JobContainer
from scripts.handoff.artifacts import processing_path
from steps.context import StepContext


def sklearn_processor(ctx: StepContext, suffix: str) -> Any:
    """A python3 ScriptProcessor on the pinned scikit-learn image, one processing instance."""
    return script_processor(ctx, suffix, SKLEARN_PROCESSING)


def script_processor(ctx: StepContext, suffix: str, container: JobContainer) -> Any:
    """A python3 ScriptProcessor on a declared container's pinned image, one processing instance."""
    from sagemaker.core.processing import ScriptProcessor

    return ScriptProcessor(
        image_uri=container.image_uri(ctx.config.aws.region),
        command=["python3"],
        role=ctx.config.aws.role_arn,
        instance_type=ctx.config.pipeline.processing_instance_type,
        instance_count=1,
        max_runtime_in_seconds=ctx.config.pipeline.max_runtime_seconds,
        base_job_name=ctx.job_name(suffix),
        sagemaker_session=ctx.session,
        tags=ctx.tags(),
    )


def processing_input(name: str, uri: Any, local_path: str | None = None) -> Any:
    """A whole S3 prefix (or one object) copied to /opt/ml/processing/<name> before the job starts."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=local_path or processing_path(name),
            s3_data_type="S3Prefix",
            s3_input_mode="File",
        ),
    )


def processing_output(ctx: StepContext, name: str) -> Any:
    """/opt/ml/processing/<name> uploaded at the end of the job to runs/<execution>/<name>/."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=ctx.run_uri(name), local_path=processing_path(name), s3_upload_mode="EndOfJob"
        ),
    )
