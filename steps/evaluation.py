"""EvaluateModel: scripts/evaluate.py on the eval set and its scores, with evaluation.json as a PropertyFile."""

from __future__ import annotations

from typing import Any

from pipeline.containers import SKLEARN_PROCESSING
from scripts.detect.history import HISTORY_FILE
from steps.context import StepContext
from steps.names import EVALUATE, EVALUATION_PROPERTY_FILE, TEXT
from steps.prepare import output_uri

PROCESSING = "/opt/ml/processing"


def evaluate_step(ctx: StepContext, prepare: Any, scoring: Any) -> Any:
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
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
        ProcessingInput(
            input_name="eval",
            s3_input=ProcessingS3Input(
                s3_uri=output_uri(prepare, "eval"),
                local_path=f"{PROCESSING}/eval",
                s3_data_type="S3Prefix",
                s3_input_mode="File",
            ),
        ),
        ProcessingInput(
            input_name="quality",
            s3_input=ProcessingS3Input(
                s3_uri=output_uri(prepare, "quality"),
                local_path=f"{PROCESSING}/quality",
                s3_data_type="S3Prefix",
                s3_input_mode="File",
            ),
        ),
        ProcessingInput(
            input_name="scores",
            s3_input=ProcessingS3Input(
                s3_uri=scoring.properties.TransformOutput.S3OutputPath,
                local_path=f"{PROCESSING}/scores",
                s3_data_type="S3Prefix",
                s3_input_mode="File",
            ),
        ),
    ]
    outputs = [
        ProcessingOutput(
            output_name="evaluation",
            s3_output=ProcessingS3Output(
                s3_uri=ctx.run_uri("evaluation"), local_path=f"{PROCESSING}/evaluation", s3_upload_mode="EndOfJob"
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
            Join(on="/", values=[output_uri(prepare, "history"), HISTORY_FILE]),
            "--quality",
            f"{PROCESSING}/quality",
        ],
    )
    report = PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path="evaluation.json")
    return ProcessingStep(
        name=EVALUATE,
        step_args=step_args,
        display_name=TEXT[EVALUATE].display_name,
        description=TEXT[EVALUATE].description,
        property_files=[report],
    )


def evaluation_uri(step: Any) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[output_uri(step, "evaluation"), "evaluation.json"])
