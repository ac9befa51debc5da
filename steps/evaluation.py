"""EvaluateModel: scripts/evaluate.py on the eval set, its scores and the detector's figures -> evaluation.json, a
PropertyFile."""

from __future__ import annotations

from typing import Any

from scripts.layout import DETECTOR, EVALUATION, EVALUATION_FILE, QUALITY_OUTPUT
from steps.context import StepContext
from steps.detector import detector_uri
from steps.names import EVALUATE, EVALUATION_PROPERTY_FILE, TEXT
from steps.prepare import output_uri
from steps.script_jobs import PROCESSING, processing_input, processing_output, sklearn_processor


def evaluate_step(ctx: StepContext, prepare: Any, scoring: Any, detector: Any) -> Any:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = sklearn_processor(ctx, "evaluate")
    inputs = [
        processing_input("eval", output_uri(prepare, "eval")),
        processing_input(QUALITY_OUTPUT, output_uri(prepare, QUALITY_OUTPUT)),
        processing_input("scores", scoring.properties.TransformOutput.S3OutputPath),
        processing_input(DETECTOR, output_uri(detector, DETECTOR)),
    ]
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=inputs,
        outputs=[processing_output(ctx, EVALUATION)],
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
