"""PrepareSecurityLakeData: PySpark (Spark 3.5) over the Security Lake tables -> channels, eval set, quality."""

from __future__ import annotations

from typing import Any

from pipeline.containers import SPARK_PROCESSING
from scripts.handoff.artifacts import (
    FEEDBACK,
    LAKE,
    PREPARED,
    PREPARED_OUTPUTS,
    QUALITY_FILE,
    QUALITY_OUTPUT,
    ArtifactLayout,
    processing_input_path,
    processing_path,
)
from steps.context import StepContext
from steps.names import PREPARE, QUALITY_PROPERTY_FILE, TEXT
from steps.parameters import window_arguments
from steps.script_jobs import processing_input

# The job writes each output straight to the S3 URI its request declares (read from processingjobconfig.json, so
# the execution-scoped URIs stay out of the cache key); these local paths stay empty in the container.
OUTPUT_ROOT = processing_path("output")


def prepare_step(ctx: StepContext, query: Any) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.spark.processing import PySparkProcessor
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    p = ctx.parameters
    processor = PySparkProcessor(
        role=ctx.config.aws.role_arn,
        instance_type=p.spark_instance_type,
        instance_count=p.spark_instance_count,
        framework_version=SPARK_PROCESSING.framework_version,
        image_uri=SPARK_PROCESSING.image_uri(ctx.config.aws.region),
        max_runtime_in_seconds=ctx.config.pipeline.max_runtime_seconds,
        base_job_name=ctx.job_name("prepare"),
        sagemaker_session=ctx.session,
        tags=ctx.tags(),
    )
    outputs = [
        ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=ctx.run_uri(PREPARED, name), local_path=f"{OUTPUT_ROOT}/{name}", s3_upload_mode="EndOfJob"
            ),
        )
        for name in PREPARED_OUTPUTS
    ]
    arguments = [
        "--lake-root",
        p.lake_roots,
        "--access",
        p.lake_access,
        "--unloaded",
        output_uri(query, LAKE),
        *window_arguments(p),
        "--mapping",
        p.mapping,
        "--algorithm",
        "builtin",
        "--max-pair-repeats",
        str(ctx.config.preprocess.max_pair_repeats),
        "--seed",
        str(ctx.config.preprocess.seed),
        "--feedback",
        processing_input_path(FEEDBACK),
    ]
    subscriber = ctx.config.lake.subscriber
    if subscriber.enabled:  # the lake is another account's: read it as the role its Security Lake subscriber gives
        arguments += ["--lake-role-arn", subscriber.role_arn, "--lake-external-id", subscriber.external_id]
    # the verdicts as they stand when the job starts; a cache hit (same window) keeps the earlier run's channels
    feedback = processing_input(
        FEEDBACK, f"{ArtifactLayout(ctx.artifact_uri).verdicts}/", processing_input_path(FEEDBACK)
    )
    step_args = processor.run(
        submit_app=ctx.code.preprocess_app,
        submit_py_files=[ctx.code.scripts_zip],
        inputs=[feedback],
        outputs=outputs,
        arguments=arguments,
    )
    quality = PropertyFile(name=QUALITY_PROPERTY_FILE, output_name=QUALITY_OUTPUT, path=QUALITY_FILE)
    return ProcessingStep(
        name=PREPARE,
        step_args=step_args,
        display_name=TEXT[PREPARE].display_name,
        description=TEXT[PREPARE].description,
        cache_config=ctx.cache(),
        property_files=[quality],
    )


def output_uri(step: Any, name: str) -> Any:
    """The S3 URI of one of the step's outputs, as a property reference."""
    return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri
