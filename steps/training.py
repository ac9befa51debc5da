"""TuneIPInsights (or TrainIPInsights when tuning is off): the built-in IP Insights image on the prepared channels."""

from __future__ import annotations

from typing import Any

from scripts.handoff.artifacts import MODELS, TRAIN_OUTPUT, VALIDATION_OUTPUT, ArtifactLayout
from scripts.handoff.quality import SUGGESTED_VECTORS_PATH
from steps.context import StepContext
from steps.names import QUALITY_PROPERTY_FILE, TEXT, TRAIN, TUNE
from steps.prepare import output_uri

OBJECTIVE = "validation:discriminator_auc"


def ipinsights_image(region: str) -> str:
    """The built-in algorithm's image URI (read from the SDK's bundled table: no AWS call)."""
    from sagemaker.core import image_uris

    return str(image_uris.retrieve("ipinsights", region))


def _hyperparameters(ctx: StepContext, prepare: Any, tuned: set[str]) -> dict[str, Any]:
    from sagemaker.core.workflow.functions import Join, JsonGet

    fixed: dict[str, Any] = {k: v for k, v in ctx.config.training.hyperparameters.items() if k not in tuned}
    if "num_entity_vectors" not in fixed and "num_entity_vectors" not in tuned:
        quality = next(f for f in prepare.property_files if f.name == QUALITY_PROPERTY_FILE)
        # 2x the distinct entities the preprocessing step counted, as the algorithm's documentation recommends
        fixed["num_entity_vectors"] = Join(
            on="",
            values=[JsonGet(step_name=prepare.name, property_file=quality, json_path=SUGGESTED_VECTORS_PATH)],
        )
    return fixed


def _channels(prepare: Any) -> list[Any]:
    from sagemaker.core.training.configs import InputData

    return [
        InputData(channel_name=name, data_source=output_uri(prepare, name), content_type="text/csv")
        for name in (TRAIN_OUTPUT, VALIDATION_OUTPUT)
    ]


def _trainer(ctx: StepContext, prepare: Any, hyperparameters: dict[str, Any], with_channels: bool) -> Any:
    from sagemaker.core.shapes import OutputDataConfig, StoppingCondition, Tag
    from sagemaker.core.training.configs import Compute
    from sagemaker.train import ModelTrainer

    return ModelTrainer(
        training_image=ipinsights_image(ctx.config.aws.region),
        role=ctx.config.aws.role_arn,
        compute=Compute(instance_type=ctx.parameters.training_instance_type, instance_count=1, volume_size_in_gb=30),
        hyperparameters=hyperparameters,
        input_data_config=_channels(prepare) if with_channels else None,
        output_data_config=OutputDataConfig(s3_output_path=ArtifactLayout(ctx.artifact_uri).models),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=ctx.config.pipeline.max_runtime_seconds),
        base_job_name=ctx.job_name("train"),
        sagemaker_session=ctx.session,
        tags=[Tag(key=t["Key"], value=t["Value"]) for t in ctx.tags()],
    )


def _ranges(ctx: StepContext) -> dict[str, Any]:
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter

    tuning = ctx.config.tuning
    ranges: dict[str, Any] = {
        name: IntegerParameter(r.min, r.max, scaling_type=r.scaling) for name, r in tuning.integer_ranges.items()
    }
    ranges.update(
        {
            name: ContinuousParameter(r.min, r.max, scaling_type=r.scaling)
            for name, r in tuning.continuous_ranges.items()
        }
    )
    return ranges


def training_step(ctx: StepContext, prepare: Any) -> Any:
    """A TuningStep over the ranges in config, or a TrainingStep when tuning is disabled."""
    from sagemaker.mlops.workflow.steps import TrainingStep, TuningStep
    from sagemaker.train.tuner import HyperparameterTuner

    if not ctx.config.tuning.enabled:
        trainer = _trainer(ctx, prepare, _hyperparameters(ctx, prepare, set()), with_channels=True)
        return TrainingStep(
            name=TRAIN,
            step_args=trainer.train(),
            display_name=TEXT[TRAIN].display_name,
            description=TEXT[TRAIN].description,
            cache_config=ctx.cache(),
        )
    ranges = _ranges(ctx)
    trainer = _trainer(ctx, prepare, _hyperparameters(ctx, prepare, set(ranges)), with_channels=False)
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=OBJECTIVE,
        objective_type="Maximize",
        hyperparameter_ranges=ranges,
        strategy=ctx.config.tuning.strategy,
        max_jobs=ctx.config.tuning.max_jobs,
        max_parallel_jobs=ctx.config.tuning.max_parallel_jobs,
        base_tuning_job_name=ctx.job_name("tune"),
    )
    return TuningStep(
        name=TUNE,
        step_args=tuner.tune(inputs=_channels(prepare)),
        display_name=TEXT[TUNE].display_name,
        description=TEXT[TUNE].description,
        cache_config=ctx.cache(),
    )


def model_artifact(ctx: StepContext, step: Any) -> Any:
    """The best (or only) training job's model.tar.gz."""
    if step.name == TUNE:
        bucket, _, prefix = ctx.artifact_uri[len("s3://") :].partition("/")
        return step.get_top_model_s3_uri(top_k=0, s3_bucket=bucket, prefix=f"{prefix}/{MODELS}")
    return step.properties.ModelArtifacts.S3ModelArtifacts
