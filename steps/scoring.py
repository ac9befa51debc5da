"""CreateModel from the best artifact, then ScoreEvalSet: batch transform of eval/pairs.csv."""

from __future__ import annotations

from typing import Any

from scripts.handoff.artifacts import EVAL_OUTPUT, SCORES
from scripts.handoff.evalset import PAIRS_FILE
from steps.context import StepContext
from steps.names import CREATE_MODEL, SCORE_EVAL, TEXT
from steps.prepare import output_uri
from steps.training import ipinsights_image, model_artifact


def model_builder(ctx: StepContext, training: Any) -> Any:
    """A ModelBuilder for the built-in image and the best artifact; build() and register() give step arguments."""
    from sagemaker.serve.model_builder import ModelBuilder

    return ModelBuilder(
        image_uri=ipinsights_image(ctx.config.aws.region),
        s3_model_data_url=model_artifact(ctx, training),
        role_arn=ctx.config.aws.role_arn,
        instance_type=ctx.config.pipeline.endpoint_instance_type,
        sagemaker_session=ctx.session,
    )


def create_model_step(ctx: StepContext, training: Any) -> Any:
    from sagemaker.mlops.workflow.model_step import ModelStep

    from steps.registry import drop_sdk_leftovers

    step_args = model_builder(ctx, training).build()
    drop_sdk_leftovers(step_args.create_model_request)
    return ModelStep(
        name=CREATE_MODEL,
        step_args=step_args,
        display_name=TEXT[CREATE_MODEL].display_name,
        description=TEXT[CREATE_MODEL].description,
    )


def score_eval_step(ctx: StepContext, prepare: Any, model: Any) -> Any:
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.steps import TransformStep

    transformer = Transformer(
        model_name=model.properties.ModelName,
        instance_count=1,
        instance_type=ctx.config.pipeline.transform_instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        accept="application/jsonlines",
        output_path=ctx.run_uri(SCORES),
        base_transform_job_name=ctx.job_name("score"),
        sagemaker_session=ctx.session,
        tags=ctx.tags(),
    )
    step_args = transformer.transform(
        data=Join(on="/", values=[output_uri(prepare, EVAL_OUTPUT), PAIRS_FILE]),
        content_type="text/csv",
        split_type="Line",
    )
    return TransformStep(
        name=SCORE_EVAL,
        step_args=step_args,
        display_name=TEXT[SCORE_EVAL].display_name,
        description=TEXT[SCORE_EVAL].description,
        cache_config=ctx.cache(),
    )
