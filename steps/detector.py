"""FitDetector: scripts/fit_detector.py on the history, the eval set and its scores -> detector.npz, detection.json."""

from __future__ import annotations

from typing import Any

from pipeline.containers import SKLEARN_PROCESSING
from scripts.layout import BUNDLE, DETECTOR, DETECTOR_FILE, HISTORY_OUTPUT, QUALITY_OUTPUT
from steps.context import StepContext
from steps.names import FIT_DETECTOR, TEXT
from steps.prepare import output_uri

PROCESSING = "/opt/ml/processing"


def processing_input(name: str, uri: Any, local_path: str | None = None) -> Any:
    """A whole S3 prefix (or one object) copied to /opt/ml/processing/<name> before the job starts."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=local_path or f"{PROCESSING}/{name}",
            s3_data_type="S3Prefix",
            s3_input_mode="File",
        ),
    )


def fit_detector_step(ctx: StepContext, prepare: Any, scoring: Any) -> Any:
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = ScriptProcessor(
        image_uri=SKLEARN_PROCESSING.image_uri(ctx.config.aws.region),
        command=["python3"],
        role=ctx.config.aws.role_arn,
        instance_type=ctx.config.pipeline.processing_instance_type,
        instance_count=1,
        max_runtime_in_seconds=ctx.config.pipeline.max_runtime_seconds,
        base_job_name=ctx.job_name("detector"),
        sagemaker_session=ctx.session,
        tags=ctx.tags(),
    )
    inputs = [
        processing_input(HISTORY_OUTPUT, output_uri(prepare, HISTORY_OUTPUT)),
        processing_input("eval", output_uri(prepare, "eval")),
        processing_input(QUALITY_OUTPUT, output_uri(prepare, QUALITY_OUTPUT)),
        processing_input("scores", scoring.properties.TransformOutput.S3OutputPath),
        processing_input(BUNDLE, ctx.code.scripts_zip, f"{PROCESSING}/input/{BUNDLE}"),
    ]
    outputs = [
        ProcessingOutput(
            output_name=DETECTOR,
            s3_output=ProcessingS3Output(
                s3_uri=ctx.run_uri(DETECTOR), local_path=f"{PROCESSING}/{DETECTOR}", s3_upload_mode="EndOfJob"
            ),
        )
    ]
    step_args = processor.run(
        code=ctx.code.fit_detector_script,
        inputs=inputs,
        outputs=outputs,
        arguments=[
            "--history",
            f"{PROCESSING}/{HISTORY_OUTPUT}",
            "--eval",
            f"{PROCESSING}/eval",
            "--scores",
            f"{PROCESSING}/scores",
            "--quality",
            f"{PROCESSING}/{QUALITY_OUTPUT}",
            "--output",
            f"{PROCESSING}/{DETECTOR}",
            "--false-positive-rate",
            Join(on="", values=[ctx.parameters.detector_fpr]),
        ],
    )
    return ProcessingStep(
        name=FIT_DETECTOR,
        step_args=step_args,
        display_name=TEXT[FIT_DETECTOR].display_name,
        description=TEXT[FIT_DETECTOR].description,
    )


def detector_uri(step: Any) -> Any:
    """s3://.../detector/detector.npz of a FitDetector step, as a pipeline Join."""
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[output_uri(step, DETECTOR), DETECTOR_FILE])
