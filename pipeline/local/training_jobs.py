"""Training and tuning steps with the ipinsights image: the open IP Insights trainer, Optuna for tuning."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

from pipeline.local import authorization
from pipeline.local.jobs import JobFolder, pack_model, python, run_job
from pipeline.local.step_environment import StepEnvironment, StepError, job_name

IPINSIGHTS_IMAGE = "/ipinsights:"


def check_ipinsights(image: str, what: str) -> None:
    if IPINSIGHTS_IMAGE not in image:
        message = f"{what} image {image!r} has no local equivalent; the local runtime trains and serves ipinsights"
        raise StepError(message)


def train_one(
    env: StepEnvironment,
    step: str,
    job_name: str,
    hyperparameters: dict[str, str],
    channels: list[dict[str, Any]],
    output_path: str,
    role: str,
) -> tuple[float | None, str]:
    """One training job with the open trainer; returns (validation metric, model.tar.gz URI)."""
    from scripts.ipinsights.trainer import METRIC_REGEX

    folder = JobFolder(env.home / "jobs" / env.execution / job_name)
    if folder.root.exists():
        shutil.rmtree(folder.root)
    config = folder.root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2, sort_keys=True))
    for channel in channels:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        authorization.read(env, step, role, uri, env.s3.objects(uri))
        env.s3.download(uri, folder.root / "input" / "data" / channel["ChannelName"])
    try:
        output = run_job([python(), "-m", "scripts.ipinsights.train", "--root", str(folder.root)], folder.root)
    except Exception as error:
        env.store.record_training_job(job_name, env.execution, step, "Failed", hyperparameters, failure=str(error))
        raise
    matches = re.findall(METRIC_REGEX, output)
    metric = float(matches[-1]) if matches else None
    artifact = f"{output_path.rstrip('/')}/{job_name}/output/model.tar.gz"
    authorization.write(env, step, role, artifact, folder.root / "model")
    pack_model(folder.root / "model", env.s3.to_local(artifact))
    env.store.record_training_job(job_name, env.execution, step, "Completed", hyperparameters, metric, artifact)
    return metric, artifact


def training(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    image = args["AlgorithmSpecification"]["TrainingImage"]
    check_ipinsights(image, "training")
    name = job_name(env, step["Name"])
    authorization.create(
        env, step["Name"], "sagemaker:CreateTrainingJob", f"training-job/{name}", args.get("RoleArn", "")
    )
    authorization.pull(env, step["Name"], args.get("RoleArn", ""), image)
    hyperparameters = {k: str(v) for k, v in args.get("HyperParameters", {}).items()}
    metric, artifact = train_one(
        env,
        step["Name"],
        name,
        hyperparameters,
        args["InputDataConfig"],
        args["OutputDataConfig"]["S3OutputPath"],
        args.get("RoleArn", ""),
    )
    properties: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": artifact},
    }
    if metric is not None:
        properties["FinalMetricDataList"] = [{"MetricName": "validation:discriminator_auc", "Value": metric}]
    return properties


def tuning(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    from pipeline.local.tuning import tune

    definition = args["TrainingJobDefinition"]
    image = definition["AlgorithmSpecification"]["TrainingImage"]
    check_ipinsights(image, "tuning")
    name = job_name(env, step["Name"])[:32]
    resource = f"hyper-parameter-tuning-job/{name}"
    authorization.create(
        env, step["Name"], "sagemaker:CreateHyperParameterTuningJob", resource, definition.get("RoleArn", "")
    )
    authorization.pull(env, step["Name"], definition.get("RoleArn", ""), image)
    return tune(
        step["Name"],
        name,
        args["HyperParameterTuningJobConfig"],
        definition,
        env,
        train_one,
    )
