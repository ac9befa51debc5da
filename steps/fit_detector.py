"""FitDetector: scripts/jobs/fit_detector.py on the history, the eval set, its scores and the analysts' verdicts ->
the detector cut by account (detector.json, shards/*.npz) and detection.json."""

from __future__ import annotations

from typing import Any

from scripts.handoff.artifacts import (
    BUNDLE,
    DETECTOR,
    DETECTOR_INDEX_FILE,
    EVAL_OUTPUT,
    FEEDBACK,
    HISTORY_OUTPUT,
    NETWORKS,
    NETWORKS_FILE,
    QUALITY_OUTPUT,
    SCORES,
    ArtifactLayout,
    processing_input_path,
    processing_path,
)
from steps.context import StepContext
from steps.names import FIT_DETECTOR, TEXT
from steps.prepare import output_uri
from steps.script_jobs import processing_input, processing_output, sklearn_processor


def fit_detector_step(ctx: StepContext, prepare: Any, scoring: Any) -> Any:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = sklearn_processor(ctx, "detector")
    inputs = [
        processing_input(HISTORY_OUTPUT, output_uri(prepare, HISTORY_OUTPUT)),
        processing_input(EVAL_OUTPUT, output_uri(prepare, EVAL_OUTPUT)),
        processing_input(QUALITY_OUTPUT, output_uri(prepare, QUALITY_OUTPUT)),
        processing_input(SCORES, scoring.properties.TransformOutput.S3OutputPath),
        processing_input(BUNDLE, ctx.code.scripts_zip, processing_input_path(BUNDLE)),
        processing_input(NETWORKS, ctx.code.network_table, processing_input_path(NETWORKS)),
        # the verdicts as they stand when the job starts (the step is never cached); _format.json keeps it non-empty
        processing_input(FEEDBACK, f"{ArtifactLayout(ctx.artifact_uri).verdicts}/", processing_input_path(FEEDBACK)),
    ]
    step_args = processor.run(
        code=ctx.code.fit_detector_script,
        inputs=inputs,
        outputs=[processing_output(ctx, DETECTOR)],
        arguments=[
            "--history",
            processing_path(HISTORY_OUTPUT),
            "--eval",
            processing_path(EVAL_OUTPUT),
            "--scores",
            processing_path(SCORES),
            "--quality",
            processing_path(QUALITY_OUTPUT),
            "--output",
            processing_path(DETECTOR),
            "--networks",
            f"{processing_input_path(NETWORKS)}/{NETWORKS_FILE}",
            "--feedback",
            processing_input_path(FEEDBACK),
            "--false-positive-rate",
            Join(on="", values=[ctx.parameters.detector_fpr]),
            "--recall-gate",
            Join(on="", values=[ctx.parameters.recall_gate]),
            "--alert-budget",
            Join(on="", values=[ctx.parameters.alert_budget]),
            "--alert-allowance",
            Join(on="", values=[ctx.parameters.alert_allowance]),
        ],
    )
    return ProcessingStep(
        name=FIT_DETECTOR,
        step_args=step_args,
        display_name=TEXT[FIT_DETECTOR].display_name,
        description=TEXT[FIT_DETECTOR].description,
    )


def detector_uri(step: Any) -> Any:
    """s3://.../detector/detector.json (the index of the detector's shards) of a FitDetector step, as a pipeline
    Join."""
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[output_uri(step, DETECTOR), DETECTOR_INDEX_FILE])
