"""EvaluateModel: scripts/jobs/evaluate.py on the eval set, its scores and the detector's record -> evaluation.json (a
PropertyFile the gate reads), manifest.json (what the monitor reads) and report.html."""

from __future__ import annotations

from typing import Any

from scripts.handoff.artifacts import (
    BUNDLE,
    DETECTOR,
    EVAL_OUTPUT,
    EVALUATION,
    EVALUATION_FILE,
    QUALITY_OUTPUT,
    SCORES,
    processing_input_path,
    processing_path,
)
from steps.context import StepContext
from steps.fit_detector import detector_uri
from steps.names import EVALUATE, EVALUATION_PROPERTY_FILE, TEXT
from steps.prepare import output_uri
from steps.script_jobs import processing_input, processing_output, sklearn_processor


def evaluate_step(ctx: StepContext, prepare: Any, scoring: Any, detector: Any) -> Any:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = sklearn_processor(ctx, "evaluate")
    inputs = [
        processing_input(EVAL_OUTPUT, output_uri(prepare, EVAL_OUTPUT)),
        processing_input(QUALITY_OUTPUT, output_uri(prepare, QUALITY_OUTPUT)),
        processing_input(SCORES, scoring.properties.TransformOutput.S3OutputPath),
        processing_input(DETECTOR, output_uri(detector, DETECTOR)),
        processing_input(BUNDLE, ctx.code.scripts_zip, processing_input_path(BUNDLE)),
    ]
    step_args = processor.run(
        code=ctx.code.evaluate_script,
        inputs=inputs,
        outputs=[processing_output(ctx, EVALUATION)],
        arguments=[
            "--eval",
            processing_path(EVAL_OUTPUT),
            "--scores",
            processing_path(SCORES),
            "--output",
            processing_path(EVALUATION),
            "--target-fpr",
            Join(on="", values=[ctx.parameters.target_fpr]),
            "--detector-uri",
            detector_uri(detector),
            "--quality",
            processing_path(QUALITY_OUTPUT),
            "--detection",
            processing_path(DETECTOR),
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
