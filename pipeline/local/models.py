"""Model steps, the batch transform and model registration, against the local state store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.local import authorization
from pipeline.local.jobs import unpack_model
from pipeline.local.step_environment import StepEnvironment, StepError, job_name
from pipeline.local.training_jobs import check_ipinsights


def create_model(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    container = args.get("PrimaryContainer") or args["Containers"][0]
    check_ipinsights(container["Image"], "model")
    name = job_name(env, step["Name"])
    authorization.create(env, step["Name"], "sagemaker:CreateModel", f"model/{name}", args.get("ExecutionRoleArn", ""))
    if not env.s3.to_local(container["ModelDataUrl"]).exists():
        message = f"ModelDataUrl {container['ModelDataUrl']} does not exist locally"
        raise StepError(message)
    env.store.create_model(name, env.execution, container["Image"], container["ModelDataUrl"])
    return {"ModelName": name, "PrimaryContainer": {"ModelDataUrl": container["ModelDataUrl"]}}


def model_dir_of(env: StepEnvironment, model_name: str, folder: Path) -> Path:
    record = env.store.model(model_name)
    if record is None:
        message = f"model {model_name!r} does not exist in the local runtime"
        raise StepError(message)
    return unpack_model(env.s3.to_local(record["model_data_url"]), folder / "model")


def transform(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    from scripts.ipinsights.batch import score_file
    from scripts.ipinsights.scoring import Scorer

    name = job_name(env, step["Name"])
    authorization.create(env, step["Name"], "sagemaker:CreateTransformJob", f"transform-job/{name}")
    role = authorization.execution_role(env)  # the model's ExecutionRoleArn: the pipeline role in our definition
    folder = env.job_folder(step["Name"])
    scorer = Scorer.from_model_dir(model_dir_of(env, args["ModelName"], folder.root))
    source = args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    output_uri = args["TransformOutput"]["S3OutputPath"].rstrip("/")
    files = env.s3.objects(source)
    authorization.read(env, step["Name"], role, source, files)
    if not files:
        message = f"transform input {source} matches no object"
        raise StepError(message)
    for path in files:
        authorization.write(env, step["Name"], role, f"{output_uri}/{path.name}.out", path)
        target = env.s3.to_local(f"{output_uri}/{path.name}.out")
        rows = score_file(scorer, path, target)
        env.log(f"{step['Name']}: scored {rows:,} rows of {path.name}")
    return {
        "TransformJobName": name,
        "TransformJobStatus": "Completed",
        "TransformOutput": {"S3OutputPath": output_uri},
    }


def register_model(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    container = args["InferenceSpecification"]["Containers"][0]
    check_ipinsights(container["Image"], "model package")
    group = args["ModelPackageGroupName"]
    version = len(env.store.model_packages(group)) + 1
    authorization.create(env, step["Name"], "sagemaker:CreateModelPackage", f"model-package/{group}/{version}")
    metrics_uri = args.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    metrics = json.loads(env.s3.to_local(metrics_uri).read_text()) if metrics_uri else None
    package = env.store.register_model_package(
        args["ModelPackageGroupName"],
        args.get("ModelApprovalStatus", "PendingManualApproval"),
        metrics,
        container["ModelDataUrl"],
        env.execution,
        args.get("CustomerMetadataProperties"),
    )
    return {
        "ModelPackageArn": package["arn"],
        "ModelPackageVersion": package["version"],
        "ModelApprovalStatus": package["status"],
    }
