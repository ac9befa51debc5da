"""Processing steps: Spark jobs under local pyspark, script jobs in their image's Python, property files read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.containers import CONTAINERS, JobContainer, container_for_image
from pipeline.local import authorization
from pipeline.local.athena import job_environment as athena_environment
from pipeline.local.athena import local_athena
from pipeline.local.identity import AccessDeniedError
from pipeline.local.jobs import SPARK_SUBMIT_ARGS, JobFolder, run_job
from pipeline.local.runtimes import ensure_runtime
from pipeline.local.s3map import hadoop_uri
from pipeline.local.step_environment import StepEnvironment, StepError, job_name
from pipeline.local.sts import job_environment, local_sts
from scripts.jobconfig import LOCATION_VARIABLE, PROCESSING_JOB_CONFIG
from scripts.prepare.request_log import REQUEST_LOG_VARIABLE

SPARK_IMAGE = "sagemaker-spark-processing"


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
    request = {"ProcessingJobName": job_name(env, step["Name"]), **(local_uris(args) if spark else args)}
    path.write_text(json.dumps(request, indent=2, sort_keys=True))


def processing(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    image = args["AppSpecification"]["ImageUri"]
    python, container = _job_python(image)
    name, role = job_name(env, step["Name"]), args.get("RoleArn", "")
    authorization.create(env, step["Name"], "sagemaker:CreateProcessingJob", f"processing-job/{name}", role)
    authorization.pull(env, step["Name"], role, image)
    folder = env.job_folder(step["Name"])
    for item in args.get("ProcessingInputs", []):
        source = item["S3Input"]
        destination = folder.local(source["LocalPath"])
        authorization.read(env, step["Name"], role, source["S3Uri"], env.s3.objects(source["S3Uri"]))
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
        requests = folder.root / "driver-requests.json"
        job_env.update(
            {
                "PYSPARK_SUBMIT_ARGS": SPARK_SUBMIT_ARGS,
                "PYSPARK_PYTHON": str(python),
                REQUEST_LOG_VARIABLE: str(requests),
            }
        )
        # the driver assumes the lake's subscriber role through the local STS, which decides as IAM would
        with local_sts(env.identity, step["Name"]) as (endpoint, sts):
            job_env.update(
                job_environment(endpoint, sts.caller_key(role), authorization.region(env, step["Name"], role))
            )
            try:
                run_job(
                    command + arguments, folder.root, extra_path=py_files, environment=job_env, project_on_path=False
                )
            finally:  # a refused AssumeRole, then what the driver listed and read, judged as S3 would have
                if sts.refusals:
                    raise AccessDeniedError(sts.refusals[0])
                authorization.driver_requests(env, step["Name"], role, requests)
    else:
        if not entrypoint or entrypoint[0] not in {"python3", "python"}:
            message = f"script processing entrypoint {entrypoint!r} is not a python command"
            raise StepError(message)
        command = [str(python), *[folder.map_argument(a, env.s3) for a in entrypoint[1:]]]
        env.log(f"{step['Name']}: local Python {container.python} runs {Path(command[-1]).name}")
        # the job reaches AWS APIs as in its container; the local Athena answers for Athena
        with local_athena(env.s3.root, authorization.caller(env, step["Name"], role)) as (endpoint, _):
            job_env.update(athena_environment(endpoint))
            run_job(command + arguments, folder.root, environment=job_env, project_on_path=False)
    outputs = []
    for item in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
        output = item["S3Output"]
        authorization.write(env, step["Name"], role, output["S3Uri"], folder.local(output["LocalPath"]))
        env.s3.upload(folder.local(output["LocalPath"]), output["S3Uri"])
        outputs.append({"OutputName": item["OutputName"], "S3Output": {"S3Uri": output["S3Uri"]}})
    properties = {
        "ProcessingJobName": name,
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
