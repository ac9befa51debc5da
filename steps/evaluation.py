"""EvaluateModel: scripts/evaluate.py on the eval set and its scores, with evaluation.json as a PropertyFile."""

from __future__ import annotations

from typing import Any

from pipeline.containers import SKLEARN_PROCESSING
from scripts.layout import EVALUATION, EVALUATION_FILE, HISTORY_FILE, HISTORY_OUTPUT, QUALITY_OUTPUT
from steps.context import StepContext
from steps.names import EVALUATE, EVALUATION_PROPERTY_FILE, TEXT
from steps.prepare import output_uri

PROCESSING = "/opt/ml/processing"


def evaluate_step(ctx: StepContext, prepare: Any, scoring: Any) -> Any:
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = ScriptProcessor(
        image_uri=SKLEARN_PROCESSING.image_uri(ctx.config.aws.region),
        command=["python3"],
        role=ctx.config.aws.role_arn,
        instance_type=ctx.config.pipeline.processing_instance_type,
        instance_count=1,
        max_runtime_in_seconds=ctx.config.pipeline.max_runtime_seconds,
        base_job_name=ctx.job_name("evaluate"),
        sagemaker_session=ctx.session,
        tags=ctx.tags(),
    )
    inputs = [
        _input("eval", output_uri(prepare, "eval")),
        _input(QUALITY_OUTPUT, output_uri(prepare, QUALITY_OUTPUT)),
        _input("scores", scoring.properties.TransformOutput.S3OutputPath),
    ]
    outputs = [
        ProcessingOutput(
            output_name=EVALUATION,
            s3_output=ProcessingS3Output(
                s3_uri=ctx.run_uri(EVALUATION), local_path=f"{PROCESSING}/{EVALUATION}", s3_upload_mode="EndOfJob"
            ),
        )
    ]
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=inputs,
        outputs=outputs,
        arguments=[
            "--eval",
            f"{PROCESSING}/eval",
            "--scores",
            f"{PROCESSING}/scores",
            "--output",
            f"{PROCESSING}/evaluation",
            "--target-fpr",
            Join(on="", values=[ctx.parameters.target_fpr]),
            "--history-uri",
            Join(on="/", values=[output_uri(prepare, HISTORY_OUTPUT), HISTORY_FILE]),
            "--quality",
            f"{PROCESSING}/quality",
        ],
    )
    report = PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name=EVALUATION, path=EVALUATION_FILE)
    return ProcessingStep(
        name=EVALUATE,
        step_args=step_args,
        display_name=TEXT[EVALUATE].display_name,
        description=TEXT[EVALUATE].description,
        property_files=[report],
    )


def _input(name: str, uri: Any) -> Any:
    """A whole S3 prefix copied to /opt/ml/processing/<name> before the job starts."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=f"{PROCESSING}/{name}", s3_data_type="S3Prefix", s3_input_mode="File"
        ),
    )


def evaluation_uri(step: Any) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[output_uri(step, EVALUATION), EVALUATION_FILE])
