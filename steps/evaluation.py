"""EvaluateModel: scripts/evaluate.py on the eval set, its scores and the detector's figures -> evaluation.json, a
PropertyFile."""

from __future__ import annotations

from typing import Any

from pipeline.containers import SKLEARN_PROCESSING
from scripts.layout import DETECTOR, EVALUATION, EVALUATION_FILE, QUALITY_OUTPUT
from steps.context import StepContext
from steps.detector import detector_uri, processing_input
from steps.names import EVALUATE, EVALUATION_PROPERTY_FILE, TEXT
from steps.prepare import output_uri

PROCESSING = "/opt/ml/processing"


def evaluate_step(ctx: StepContext, prepare: Any, scoring: Any, detector: Any) -> Any:
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
        processing_input("eval", output_uri(prepare, "eval")),
        processing_input(QUALITY_OUTPUT, output_uri(prepare, QUALITY_OUTPUT)),
        processing_input("scores", scoring.properties.TransformOutput.S3OutputPath),
        processing_input(DETECTOR, output_uri(detector, DETECTOR)),
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
            "--detector-uri",
            detector_uri(detector),
            "--quality",
            f"{PROCESSING}/quality",
            "--detection",
            f"{PROCESSING}/{DETECTOR}",
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


def evaluation_uri(step: Any) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[output_uri(step, EVALUATION), EVALUATION_FILE])
