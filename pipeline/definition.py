"""The SageMaker pipeline, built offline with the SageMaker Python SDK v3.

    QueryLake (LakeAccess=athena: Athena UNLOADs the window of the Security Lake tables; s3: nothing to do)
              |
    PrepareSecurityLakeData (PySpark 3.5: OCSF -> train / validation / eval / quality)
              |
    TuneIPInsights (built-in ipinsights image; objective validation:discriminator_auc)
      [or TrainIPInsights when tuning is disabled]
              |
         CreateModel (best training job's model.tar.gz)
              |
         ScoreEvalSet (batch transform of eval/pairs.csv: the held-out day and the attacks injected into it)
              |
         FitDetector (scripts/jobs/fit_detector.py -> detector.json and its shards, detection.json)
              |
         EvaluateModel (scripts/jobs/evaluate.py -> evaluation.json PropertyFile)
              |
         CheckDetectionQuality: recall >= RecallGate and alerts beyond AlertAllowance per 1,000 <= AlertBudget ?
            yes -> RegisterModel (model package naming its detector, ModelMetrics = evaluation.json)
                   -> CreateEndpointConfig -> DeployEndpoint (create or update)
            no  -> DetectionQualityTooLow (FailStep: the figures and the gates; nothing is registered)

No AWS call happens while building: code is referenced by content-addressed s3:// URIs (uploaded by `upsert`), the
default bucket comes from config and role validation is off.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any

from pipeline.code_bundle import code_locations, code_objects
from pipeline.config import Config
from steps.context import StepContext
from steps.deployment import endpoint_steps, quality_gate_step
from steps.evaluate_model import evaluate_step
from steps.fit_detector import fit_detector_step
from steps.parameters import build_parameters
from steps.prepare import prepare_step
from steps.query_lake import query_lake_step
from steps.registry import register_step
from steps.scoring import create_model_step, score_eval_step
from steps.training import training_step


def prepare_sdk_environment(config: Config) -> None:
    """What the SDK needs before its first import: a region (it builds a client at import) and no role check.

    The SDK also logs, at INFO and WARNING, that a PipelineSession starts no job and which request fields the
    service fills in; those say nothing to a user of this project, so its loggers show errors only.
    """
    os.environ.setdefault("AWS_DEFAULT_REGION", config.aws.region)
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    logging.getLogger("sagemaker").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")


def pipeline_session(config: Config, boto_session: Any) -> Any:
    """A PipelineSession on the given boto3 session, with the artifact bucket already resolved.

    Marking the bucket resolved keeps ModelBuilder.register() from checking it with S3 HeadBucket.
    """
    prepare_sdk_environment(config)
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    session = PipelineSession(
        boto_session=boto_session,
        default_bucket=config.aws.artifact_bucket,
        default_bucket_prefix=config.aws.artifact_prefix,
    )
    session._default_bucket = config.aws.artifact_bucket
    quiet_sdk_loggers()
    return session


def quiet_sdk_loggers() -> None:
    """After the SDK's import: its modules set their own levels, so lower each one to errors."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("sagemaker"):
            sdk_logger = logging.getLogger(name)
            sdk_logger.setLevel(logging.ERROR)
            if _errors_only not in sdk_logger.filters:
                sdk_logger.addFilter(_errors_only)  # the SDK resets levels while building; filters stay


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def offline_session(config: Config) -> Any:
    """A PipelineSession that needs no credentials: region and default bucket come from config."""
    prepare_sdk_environment(config)
    import boto3

    return pipeline_session(config, boto3.Session(region_name=config.aws.region))


def build_pipeline(config: Config, session: Any) -> Any:
    """The Pipeline object: steps in dependency order, parameters with defaults from config."""
    prepare_sdk_environment(config)
    from sagemaker.mlops.workflow.pipeline import Pipeline

    quiet_sdk_loggers()
    parameters = build_parameters(config)
    ctx = StepContext(config, session, parameters, code_locations(config.aws.artifact_uri, code_objects()))
    query = query_lake_step(ctx)
    prepare = prepare_step(ctx, query)
    training = training_step(ctx, prepare)
    model = create_model_step(ctx, training)
    scoring = score_eval_step(ctx, prepare, model)
    detector = fit_detector_step(ctx, prepare, scoring)
    evaluation = evaluate_step(ctx, prepare, scoring, detector)
    register = register_step(ctx, training, evaluation, detector, model)
    gate = quality_gate_step(ctx, evaluation, endpoint_steps(ctx, model, register))
    return Pipeline(
        name=config.pipeline.name,
        parameters=parameters.all(),
        steps=[query, prepare, training, model, scoring, detector, evaluation, gate],
        sagemaker_session=session,
        # No experiment, trial and trial component per execution: the pipeline role is not granted Experiments, and
        # the executions, their steps and the model registry already say what ran.
        pipeline_experiment_config=None,
    )


def definition_json(config: Config) -> str:
    """The definition as canonical JSON (sorted keys, two-space indent): the same inputs give the same bytes."""
    pipeline = build_pipeline(config, offline_session(config))
    return json.dumps(json.loads(pipeline.definition()), indent=2, sort_keys=True) + "\n"
