"""One handler per step type: each runs the step's resolved arguments locally and returns its properties."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.containers import CONTAINERS, JobContainer, container_for_image
from pipeline.local.athena import job_environment, local_athena
from pipeline.local.jobs import SPARK_SUBMIT_ARGS, JobFolder, pack_model, python, run_job, unpack_model
from pipeline.local.runtimes import ensure_runtime
from pipeline.local.s3map import S3Map, hadoop_uri
from pipeline.local.state import Store
from scripts.jobconfig import LOCATION_VARIABLE, PROCESSING_JOB_CONFIG

SPARK_IMAGE = "sagemaker-spark-processing"
IPINSIGHTS_IMAGE = "/ipinsights:"


class StepError(RuntimeError):
    """A step cannot run locally as defined; the message says what and why."""


@dataclass
class StepEnvironment:
    """Where a step runs and what it can reach."""

    execution: str
    home: Path
    s3: S3Map
    store: Store
    property_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: Callable[[str], None] = lambda line: None

    def job_folder(self, name: str) -> JobFolder:
        folder = self.home / "jobs" / self.execution / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return JobFolder(folder)


def _job_name(env: StepEnvironment, step: str) -> str:
    return f"{env.execution}-{step}"[:63]


# --- Processing -------------------------------------------------------------------------------------------------


def _spark_command(
    python: Path, entrypoint: list[str], folder: JobFolder, env: StepEnvironment
) -> tuple[list[str], list[Path]]:
    """smspark-submit [--py-files A,B] [--jars ..] [--files ..] APP -> python APP, with py-files on PYTHONPATH."""
    if not entrypoint or entrypoint[0] != "smspark-submit":
        message = f"Spark processing entrypoint {entrypoint!r} does not start with smspark-submit"
        raise StepError(message)
    py_files: list[Path] = []
    position = 1
    while position < len(entrypoint) - 1 and entrypoint[position].startswith("--"):
        option, value = entrypoint[position], entrypoint[position + 1]
        if option == "--py-files":
            for uri in value.split(","):
                local = env.s3.to_local(uri) if uri.startswith("s3://") else folder.local(uri)
                if not local.exists():
                    message = f"--py-files {uri}: {local} does not exist (was the code uploaded?)"
                    raise StepError(message)
                py_files.append(local)
        position += 2
    app = entrypoint[position]
    return [str(python), str(folder.local(app))], py_files


def _job_python(image: str) -> tuple[Path, JobContainer]:
    """The stand-in environment of the image's declared container: its Python and packages only."""
    container = container_for_image(image)
    if container is None:
        declared = ", ".join(f"{c.repository}:{c.tag}" for c in CONTAINERS.values())
        message = (
            f"processing image {image!r} is not a container this project declares (pipeline/containers.py: "
            f"{declared}); pin the image there, with its Python and packages from its build files"
        )
        raise StepError(message)
    return ensure_runtime(container), container


def _write_job_config(
    step: dict[str, Any], args: dict[str, Any], folder: JobFolder, env: StepEnvironment, spark: bool
) -> None:
    """/opt/ml/config/processingjobconfig.json as SageMaker writes it: the job's request. For a Spark job local S3 is
    given as file:// URIs, where local Spark reads and writes what EMRFS would; other jobs see the s3:// URIs."""

    def local_uris(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: local_uris(v) for k, v in value.items()}
        if isinstance(value, list):
            return [local_uris(v) for v in value]
        if isinstance(value, str) and value.startswith("s3://"):
            return hadoop_uri(env.s3.to_local(value))
        return value

    path = folder.local(str(PROCESSING_JOB_CONFIG))
    path.parent.mkdir(parents=True, exist_ok=True)
    request = {"ProcessingJobName": _job_name(env, step["Name"]), **(local_uris(args) if spark else args)}
    path.write_text(json.dumps(request, indent=2, sort_keys=True))


def processing(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    image = args["AppSpecification"]["ImageUri"]
    python, container = _job_python(image)
    folder = env.job_folder(step["Name"])
    for item in args.get("ProcessingInputs", []):
        source = item["S3Input"]
        destination = folder.local(source["LocalPath"])
        env.s3.download(source["S3Uri"], destination)
    entrypoint = list(args["AppSpecification"].get("ContainerEntrypoint", []))
    spark = container.repository == SPARK_IMAGE and entrypoint[:1] == ["smspark-submit"]
    _write_job_config(step, args, folder, env, spark)
    arguments = [
        folder.map_argument(a, env.s3, as_uri=spark) for a in args["AppSpecification"].get("ContainerArguments", [])
    ]
    for item in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        folder.local(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    job_env = {
        **args.get("Environment", {}),
        "PYTHONNOUSERSITE": "1",
        LOCATION_VARIABLE: str(folder.local(str(PROCESSING_JOB_CONFIG))),
    }
    if spark:
        command, py_files = _spark_command(python, entrypoint, folder, env)
        env.log(f"{step['Name']}: local pyspark (Python {container.python}) runs {Path(command[1]).name}")
        job_env.update({"PYSPARK_SUBMIT_ARGS": SPARK_SUBMIT_ARGS, "PYSPARK_PYTHON": str(python)})
        run_job(command + arguments, folder.root, extra_path=py_files, environment=job_env, project_on_path=False)
    else:
        if not entrypoint or entrypoint[0] not in {"python3", "python"}:
            message = f"script processing entrypoint {entrypoint!r} is not a python command"
            raise StepError(message)
        command = [str(python), *[folder.map_argument(a, env.s3) for a in entrypoint[1:]]]
        env.log(f"{step['Name']}: local Python {container.python} runs {Path(command[-1]).name}")
        # the job reaches AWS APIs as in its container; the local Athena answers for Athena
        with local_athena(env.s3.root) as (endpoint, _):
            job_env.update(job_environment(endpoint))
            run_job(command + arguments, folder.root, environment=job_env, project_on_path=False)
    outputs = []
    for item in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        output = item["S3Output"]
        env.s3.upload(folder.local(output["LocalPath"]), output["S3Uri"])
        outputs.append({"OutputName": item["OutputName"], "S3Output": {"S3Uri": output["S3Uri"]}})
    properties = {
        "ProcessingJobName": _job_name(env, step["Name"]),
        "ProcessingJobStatus": "Completed",
        "ProcessingOutputConfig": {"Outputs": outputs},
    }
    load_property_files(step, properties, env)
    return properties


def load_property_files(step: dict[str, Any], properties: dict[str, Any], env: StepEnvironment) -> None:
    """Read the step's property files from its outputs' S3 locations, as the service does (also on a cache hit)."""
    for property_file in step.get("PropertyFiles", []):
        output = next(
            (
                o
                for o in properties["ProcessingOutputConfig"]["Outputs"]
                if o["OutputName"] == property_file["OutputName"]
            ),
            None,
        )
        if output is None:
            message = f"property file {property_file['PropertyFileName']}: no output {property_file['OutputName']!r}"
            raise StepError(message)
        uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/{property_file['FilePath']}"
        path = env.s3.to_local(uri)
        if not path.exists():
            message = f"property file {property_file['PropertyFileName']}: {uri} was not written"
            raise StepError(message)
        env.property_files[f"{step['Name']}.{property_file['PropertyFileName']}"] = json.loads(path.read_text())


# --- Training and tuning -------------------------------------------------------------------------------------------


def _check_ipinsights(image: str, what: str) -> None:
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
        env.s3.download(uri, folder.root / "input" / "data" / channel["ChannelName"])
    try:
        output = run_job([python(), "-m", "scripts.ipinsights.train", "--root", str(folder.root)], folder.root)
    except Exception as error:
        env.store.record_training_job(job_name, env.execution, step, "Failed", hyperparameters, failure=str(error))
        raise
    matches = re.findall(METRIC_REGEX, output)
    metric = float(matches[-1]) if matches else None
    artifact = f"{output_path.rstrip('/')}/{job_name}/output/model.tar.gz"
    pack_model(folder.root / "model", env.s3.to_local(artifact))
    env.store.record_training_job(job_name, env.execution, step, "Completed", hyperparameters, metric, artifact)
    return metric, artifact


def training(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    _check_ipinsights(args["AlgorithmSpecification"]["TrainingImage"], "training")
    name = _job_name(env, step["Name"])
    hyperparameters = {k: str(v) for k, v in args.get("HyperParameters", {}).items()}
    metric, artifact = train_one(
        env, step["Name"], name, hyperparameters, args["InputDataConfig"], args["OutputDataConfig"]["S3OutputPath"]
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
    _check_ipinsights(definition["AlgorithmSpecification"]["TrainingImage"], "tuning")
    return tune(
        step["Name"],
        _job_name(env, step["Name"])[:32],
        args["HyperParameterTuningJobConfig"],
        definition,
        env,
        train_one,
    )


# --- Models, transform, registry ------------------------------------------------------------------------------------


def create_model(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    container = args.get("PrimaryContainer") or args["Containers"][0]
    _check_ipinsights(container["Image"], "model")
    name = _job_name(env, step["Name"])
    if not env.s3.to_local(container["ModelDataUrl"]).exists():
        message = f"ModelDataUrl {container['ModelDataUrl']} does not exist locally"
        raise StepError(message)
    env.store.create_model(name, env.execution, container["Image"], container["ModelDataUrl"])
    return {"ModelName": name, "PrimaryContainer": {"ModelDataUrl": container["ModelDataUrl"]}}


def _model_dir(env: StepEnvironment, model_name: str, folder: Path) -> Path:
    record = env.store.model(model_name)
    if record is None:
        message = f"model {model_name!r} does not exist in the local runtime"
        raise StepError(message)
    return unpack_model(env.s3.to_local(record["model_data_url"]), folder / "model")


def transform(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    from scripts.ipinsights.batch import score_file
    from scripts.ipinsights.scoring import Scorer

    folder = env.job_folder(step["Name"])
    scorer = Scorer.from_model_dir(_model_dir(env, args["ModelName"], folder.root))
    source = args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    output_uri = args["TransformOutput"]["S3OutputPath"].rstrip("/")
    files = env.s3.objects(source)
    if not files:
        message = f"transform input {source} matches no object"
        raise StepError(message)
    for path in files:
        target = env.s3.to_local(f"{output_uri}/{path.name}.out")
        rows = score_file(scorer, path, target)
        env.log(f"{step['Name']}: scored {rows:,} rows of {path.name}")
    return {
        "TransformJobName": _job_name(env, step["Name"]),
        "TransformJobStatus": "Completed",
        "TransformOutput": {"S3OutputPath": output_uri},
    }


def register_model(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    container = args["InferenceSpecification"]["Containers"][0]
    _check_ipinsights(container["Image"], "model package")
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


# --- Endpoints ------------------------------------------------------------------------------------------------------


def endpoint_config(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    variant = args["ProductionVariants"][0]
    if env.store.model(variant["ModelName"]) is None:
        message = f"endpoint config {args['EndpointConfigName']}: model {variant['ModelName']!r} does not exist"
        raise StepError(message)
    env.store.create_endpoint_config(args["EndpointConfigName"], variant["ModelName"])
    return {
        "EndpointConfigName": args["EndpointConfigName"],
        "EndpointConfigArn": f"arn:aws:sagemaker:local:000000000000:endpoint-config/{args['EndpointConfigName']}",
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_endpoint(env: StepEnvironment, name: str) -> None:
    """Stop the local server of an endpoint, if one runs."""
    import contextlib
    import signal

    current = env.store.endpoint(name)
    if current and current["pid"]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(current["pid"]), signal.SIGTERM)


def endpoint(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    """Create or update: start a server for the config's model under the endpoint's name, then stop the old one."""
    name, config_name = args["EndpointName"], args["EndpointConfigName"]
    config = env.store.endpoint_config(config_name)
    if config is None:
        message = f"endpoint {name}: endpoint config {config_name!r} does not exist"
        raise StepError(message)
    folder = env.home / "endpoints" / name / config_name
    model_dir = _model_dir(env, config["model_name"], folder)
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            python(),
            "-m",
            "scripts.ipinsights.serve",
            "--model-dir",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--endpoint-name",
            name,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            message = f"endpoint {name}: the server exited ({folder / 'server.log'})"
            raise StepError(message)
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        message = f"endpoint {name}: no answer on {url}/ping within 120 s"
        raise StepError(message)
    stop_endpoint(env, name)
    env.store.upsert_endpoint(name, config_name, config["model_name"], url, process.pid)
    env.log(f"{step['Name']}: endpoint {name} serves {config['model_name']} at {url}")
    return {
        "EndpointName": name,
        "EndpointStatus": "InService",
        "EndpointArn": f"arn:aws:sagemaker:local:000000000000:endpoint/{name}",
    }


HANDLERS: dict[str, Callable[[dict[str, Any], dict[str, Any], StepEnvironment], dict[str, Any]]] = {
    "Processing": processing,
    "Training": training,
    "Tuning": tuning,
    "Model": create_model,
    "Transform": transform,
    "RegisterModel": register_model,
    "EndpointConfig": endpoint_config,
    "Endpoint": endpoint,
}
