"""The SageMaker pipeline definition: built offline, the right steps and wiring, and a reviewed golden copy."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.definition import definition_json
from pipeline.iam import PIPELINE_ROLE_POLICY, render_policies, wildcard_grants
from scripts.handoff.evaluation import GATE_PATH, JUDGED_ALERTS_PATH, RECALL_PATH
from scripts.handoff.registry import (
    DETECTOR_PROPERTY,
    EXECUTION_PROPERTY,
    MODEL_PROPERTY,
    REGISTERED_AS_PROPERTY,
)
from steps import names
from tests.steps_of import all_steps

# The definition `seclake --profile prod upsert` sends to SageMaker.
GOLDEN = Path(__file__).parent / "golden" / "definition.json"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return dict(json.loads(definition_json(load_config(profile="prod", environ={}))))


def _all_steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in all_steps(definition)}


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_steps_types_and_order(definition: dict[str, Any]) -> None:
    top = [(s["Name"], s["Type"]) for s in definition["Steps"]]
    assert top == [
        (names.QUERY_LAKE, "Processing"),
        (names.PREPARE, "Processing"),
        (names.TUNE, "Tuning"),
        (names.CREATE_MODEL, "Model"),
        (names.SCORE_EVAL, "Transform"),
        (names.FIT_DETECTOR, "Processing"),
        (names.EVALUATE, "Processing"),
        (names.QUALITY_GATE, "Condition"),
    ]
    for step in _all_steps(definition).values():
        assert step.get("DisplayName") and step.get("Description"), step["Name"]


def test_every_reference_names_an_existing_step_property_or_parameter(definition: dict[str, Any]) -> None:
    steps = _all_steps(definition)
    parameters = {p["Name"] for p in definition["Parameters"]}
    outputs = {
        name: {o["OutputName"] for o in s["Arguments"].get("ProcessingOutputConfig", {}).get("Outputs", [])}
        for name, s in steps.items()
    }
    property_files = {name: {f["PropertyFileName"] for f in s.get("PropertyFiles", [])} for name, s in steps.items()}
    roots = {
        "Processing": {"ProcessingOutputConfig", "PropertyFiles"},
        "Tuning": {"TrainingJobSummaries"},
        "Model": {"ModelName"},
        "Transform": {"TransformOutput"},
        "Training": {"ModelArtifacts"},
    }
    references = [v["Get"] for v in _walk(definition) if isinstance(v, dict) and isinstance(v.get("Get"), str)]
    assert references
    for reference in references:
        if reference.startswith("Parameters."):
            assert reference.split(".", 1)[1] in parameters, reference
        elif reference.startswith("Steps."):
            _, step, prop = reference.split(".", 2)
            assert step in steps, reference
            assert prop.split(".")[0].split("[")[0] in roots[steps[step]["Type"]], reference
            output = re.search(r"Outputs\['(\w+)'\]", prop)
            if output:
                assert output.group(1) in outputs[step], reference
            if prop.startswith("PropertyFiles."):
                assert prop.split(".")[1] in property_files[step], reference
        else:
            assert reference.startswith("Execution."), reference


def test_tuning_objective_image_and_hyperparameters(definition: dict[str, Any]) -> None:
    tuning = _all_steps(definition)[names.TUNE]["Arguments"]
    objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"MetricName": "validation:discriminator_auc", "Type": "Maximize"}
    job = tuning["TrainingJobDefinition"]
    assert re.fullmatch(
        r"\d+\.dkr\.ecr\.us-east-1\.amazonaws\.com/ipinsights:1", job["AlgorithmSpecification"]["TrainingImage"]
    )
    static = job["StaticHyperParameters"]
    assert "batch_size" not in static and static["mini_batch_size"] == "1000"
    json_get = static["num_entity_vectors"]["Std:Join"]["Values"][0]["Std:JsonGet"]
    assert json_get["Path"] == "suggested_num_entity_vectors"
    ranges = tuning["HyperParameterTuningJobConfig"]["ParameterRanges"]
    tuned = {r["Name"] for kind in ranges.values() for r in kind}
    assert tuned == {"vector_dim", "epochs", "learning_rate"} and not tuned & set(static)
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation"]


def test_condition_registers_on_the_true_branch_and_deploys_only_what_is_approved(definition: dict[str, Any]) -> None:
    gate = _all_steps(definition)[names.QUALITY_GATE]["Arguments"]
    recall, alerts = gate["Conditions"]
    assert recall["Type"] == "GreaterThanOrEqualTo"
    assert recall["LeftValue"]["Std:JsonGet"]["Path"] == RECALL_PATH
    assert names.EVALUATE in json.dumps(recall["LeftValue"]["Std:JsonGet"]["PropertyFile"])
    assert recall["RightValue"] == {"Get": "Parameters.RecallGate"}
    assert alerts["Type"] == "LessThanOrEqualTo"
    assert alerts["LeftValue"]["Std:JsonGet"]["Path"] == JUDGED_ALERTS_PATH  # beyond the AlertAllowance
    assert alerts["RightValue"] == {"Get": "Parameters.AlertBudget"}
    assert [s["Type"] for s in gate["IfSteps"]] == ["RegisterModel", "Condition"]
    approval = gate["IfSteps"][1]
    assert approval["Name"] == names.APPROVAL_GATE and approval["DependsOn"] == [names.REGISTER]
    assert approval["Arguments"]["Conditions"] == [
        {"Type": "Equals", "LeftValue": {"Get": "Parameters.ModelApprovalStatus"}, "RightValue": "Approved"}
    ]
    assert [s["Type"] for s in approval["Arguments"]["IfSteps"]] == ["EndpointConfig", "Endpoint"]
    assert approval["Arguments"]["ElseSteps"] == []  # a package waiting for approval ends the execution, green
    metadata = gate["IfSteps"][0]["Arguments"]["CustomerMetadataProperties"]
    assert metadata[EXECUTION_PROPERTY] == {"Get": "Execution.PipelineExecutionId"}
    assert metadata[MODEL_PROPERTY] == {"Get": f"Steps.{names.CREATE_MODEL}.ModelName"}
    assert metadata[REGISTERED_AS_PROPERTY] == {"Get": "Parameters.ModelApprovalStatus"}
    assert [s["Type"] for s in gate["ElseSteps"]] == ["Fail"]
    message = json.dumps(gate["ElseSteps"][0]["Arguments"]["ErrorMessage"])
    assert GATE_PATH in message  # the verdict in words: which figure failed, by how much, and the knob
    fit = _all_steps(definition)[names.FIT_DETECTOR]["Arguments"]["AppSpecification"]["ContainerArguments"]
    for flag, parameter in (("--recall-gate", "RecallGate"), ("--alert-budget", "AlertBudget")):
        assert parameter in json.dumps(fit[fit.index(flag) + 1])
    assert "AlertAllowance" in json.dumps(fit[fit.index("--alert-allowance") + 1])
    top_types = {s["Type"] for s in definition["Steps"]}
    assert not top_types & {"RegisterModel", "EndpointConfig", "Endpoint"}  # a model below the gate is not registered


def test_no_sdk_leftovers_in_the_registered_model(definition: dict[str, Any]) -> None:
    steps = _all_steps(definition)
    package = steps[names.REGISTER]["Arguments"]
    assert set(package["ModelMetrics"]) == {"ModelQuality"}
    detector = package["CustomerMetadataProperties"][DETECTOR_PROPERTY]["Std:Join"]
    assert detector["Values"] == [
        {"Get": f"Steps.{names.FIT_DETECTOR}.ProcessingOutputConfig.Outputs['detector'].S3Output.S3Uri"},
        "detector.json",
    ]
    containers = [
        *package["InferenceSpecification"]["Containers"],
        steps[names.CREATE_MODEL]["Arguments"]["PrimaryContainer"],
    ]
    for container in containers:
        assert "" not in container.get("Environment", {}).values()
        assert not {"SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY"} & set(container.get("Environment", {}))


def test_preprocessing_arguments_hold_no_execution_scoped_path(definition: dict[str, Any]) -> None:
    """Outputs reach the job through its request, not its arguments: the cache key must not change per execution,
    and no argument may be a scheme-less path Spark would resolve against HDFS."""
    for step in (names.QUERY_LAKE, names.PREPARE):
        app = _all_steps(definition)[step]["Arguments"]["AppSpecification"]
        arguments = json.dumps(app["ContainerArguments"])
        assert "PipelineExecutionId" not in arguments and "/opt/ml/processing/output" not in arguments


def test_the_spark_step_reads_what_query_lake_unloaded_when_access_is_athena(definition: dict[str, Any]) -> None:
    steps = _all_steps(definition)
    query = steps[names.QUERY_LAKE]["Arguments"]
    assert query["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/ml/processing/input/code/query_lake.py",
    ]
    assert query["AppSpecification"]["ImageUri"].endswith("/sagemaker-spark-processing:3.5-cpu-py312-v1.3")
    arguments = query["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--access") + 1] == {"Get": "Parameters.LakeAccess"}
    assert arguments[arguments.index("--database") + 1] == "amazon_security_lake_glue_db_us_east_1"
    assert arguments[arguments.index("--results-uri") + 1].endswith("/seclake-ipinsights/athena-results/")
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in query["ProcessingOutputConfig"]["Outputs"]}
    assert set(outputs) == {"lake", "lake-query"}
    prepare = steps[names.PREPARE]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert prepare[prepare.index("--access") + 1] == {"Get": "Parameters.LakeAccess"}
    assert prepare[prepare.index("--unloaded") + 1] == {
        "Get": f"Steps.{names.QUERY_LAKE}.ProcessingOutputConfig.Outputs['lake'].S3Output.S3Uri"
    }
    assert steps[names.QUERY_LAKE]["CacheConfig"]["Enabled"] is True


def test_parameters_and_defaults(definition: dict[str, Any]) -> None:
    parameters = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in definition["Parameters"]}
    assert "AucGate" not in parameters  # the gate reads what the product delivers: the detector's figures
    assert parameters["RecallGate"] == ("Float", 0.8)
    assert parameters["AlertBudget"] == ("Float", 50.0)
    assert parameters["DetectorFpr"] == ("Float", 0.0001)
    assert parameters["EndDay"] == ("String", None)  # every execution names its window: no stale cached default
    assert parameters["LakeAccess"] == ("String", "s3")
    assert parameters["PairMapping"] == ("String", "role")
    assert parameters["ModelApprovalStatus"] == ("String", "PendingManualApproval")
    assert parameters["SparkInstanceCount"] == ("Integer", 2)
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", name) for name in parameters)


def test_code_is_content_addressed_and_images_are_pinned(definition: dict[str, Any]) -> None:
    steps = _all_steps(definition)
    prepare = steps[names.PREPARE]["Arguments"]
    assert prepare["AppSpecification"]["ImageUri"].endswith("/sagemaker-spark-processing:3.5-cpu-py312-v1.3")
    evaluate = steps[names.EVALUATE]["Arguments"]
    assert evaluate["AppSpecification"]["ImageUri"].endswith("/sagemaker-scikit-learn:1.4-2-py312-cpu-py3")
    code_uris = [v for v in _walk(definition) if isinstance(v, str) and v.startswith("s3://") and "/code/" in v]
    assert code_uris
    named = r"/code/[0-9a-f]{16}/(preprocess|scripts|evaluate|fit_detector|query_lake|networks)\.(py|zip|npz)$"
    assert all(re.search(named, u) for u in code_uris)
    detector = steps[names.FIT_DETECTOR]["Arguments"]
    assert detector["AppSpecification"]["ImageUri"] == evaluate["AppSpecification"]["ImageUri"]


def test_golden_definition(definition: dict[str, Any]) -> None:
    """Any change to the definition must be reviewed: UPDATE_GOLDEN=1 pytest tests/test_definition.py rewrites it."""
    text = json.dumps(definition, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "the definition changed: review it, then UPDATE_GOLDEN=1 to accept"


def test_definition_command_needs_no_credentials_or_network(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
        }
    )
    command = [
        sys.executable,
        "-c",
        "from pipeline.cli import main; main()",
        "--profile",
        "prod",
        "definition",
        "--out",
        str(tmp_path / "a.json"),
    ]
    subprocess.run(command, env=environment, cwd=ROOT, check=True, capture_output=True, timeout=300)
    produced = (tmp_path / "a.json").read_text()
    difference = difflib.unified_diff(GOLDEN.read_text().splitlines(True), produced.splitlines(True))
    assert produced == GOLDEN.read_text(), "".join(difference)[:3000]


def test_iam_policies_are_least_privilege() -> None:
    policies = render_policies(load_config(profile="prod", environ={}))
    assert set(policies) == {
        "findings-crawler-role-policy.json",
        "findings-crawler-trust-policy.json",
        "pipeline-role-policy.json",
        "pipeline-trust-policy.json",
        "scheduler-role-policy.json",
        "scheduler-trust-policy.json",
    }
    for name, policy in policies.items():
        assert wildcard_grants(policy) == [], name
        assert "{{" not in json.dumps(policy)
    passes = [s for s in policies[PIPELINE_ROLE_POLICY]["Statement"] if s["Action"] == "iam:PassRole"]
    assert passes[0]["Resource"] == "arn:aws:iam::123456789012:role/SeclakeIpInsightsPipelineRole"
    assert wildcard_grants({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


def test_executions_create_no_experiment_the_role_cannot_create(definition: dict[str, Any]) -> None:
    """The SDK's default PipelineExperimentConfig makes SageMaker create an experiment, a trial per execution and a
    trial component per job as the pipeline role, which is granted none of the Experiments actions."""
    assert definition["PipelineExperimentConfig"] is None
    policy = json.dumps(render_policies(load_config(profile="prod", environ={}))[PIPELINE_ROLE_POLICY])
    assert "Experiment" not in policy and "Trial" not in policy


def test_every_lake_bucket_is_granted_to_the_pipeline_role() -> None:
    """A Security Lake has a bucket per region; each of aws.lake_roots is read, so each is granted."""
    roots = "s3://aws-security-data-lake-us-east-1-aaaa,s3://aws-security-data-lake-eu-west-1-bbbb/"
    config = load_config(profile="prod", environ={"SECLAKE_AWS__LAKE_ROOTS": roots})
    statements = {s["Sid"]: s for s in render_policies(config)[PIPELINE_ROLE_POLICY]["Statement"]}
    assert statements["ReadSecurityLakeSources"]["Resource"] == [
        f"arn:aws:s3:::aws-security-data-lake-{bucket}/aws/{source}/*"
        for source in ("VPC_FLOW", "ROUTE53")
        for bucket in ("us-east-1-aaaa", "eu-west-1-bbbb")
    ]
    assert statements["ListSecurityLakeSources"]["Resource"] == [
        "arn:aws:s3:::aws-security-data-lake-us-east-1-aaaa",
        "arn:aws:s3:::aws-security-data-lake-eu-west-1-bbbb",
    ]


def test_the_commands_that_go_to_an_account_default_to_the_aws_profile(tmp_path: Path) -> None:
    """Following the README (`seclake upsert`) must not upsert the local profile's tuning budget to SageMaker."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["definition", "--out", str(tmp_path / "default.json")]).exit_code == 0
    assert (tmp_path / "default.json").read_text() == GOLDEN.read_text()
    local = runner.invoke(app, ["--profile", "local", "definition", "--out", str(tmp_path / "local.json")])
    assert local.exit_code == 0
    assert (tmp_path / "local.json").read_text() != GOLDEN.read_text()
    shown = runner.invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "max_jobs: 3" in shown.output  # what runs here keeps the local profile


def test_the_spark_job_lists_only_what_the_pipeline_role_may_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The role's s3:ListBucket on the lake is conditioned on s3:prefix aws/<SOURCE>*: a glob that lists the bucket's
    root (as `<bucket>/*/aws/...` does) is AccessDenied in AWS. Every pattern the job lists under an S3 root stays
    inside a prefix the generated policy allows; only a local folder of buckets is globbed above aws/."""
    import fnmatch

    from scripts.ocsf.schemas import Source
    from scripts.prepare import objects
    from scripts.window import Window

    listed: list[str] = []

    def record(spark: object, pattern: str) -> list[str]:
        listed.append(pattern)
        return []

    monkeypatch.setattr(objects, "glob_files", record)
    bucket = "aws-security-data-lake-us-east-1-aaaa"
    config = load_config(profile="prod", environ={"SECLAKE_AWS__LAKE_ROOTS": f"s3://{bucket}"})
    statements = {s["Sid"]: s for s in render_policies(config)[PIPELINE_ROLE_POLICY]["Statement"]}
    allowed = statements["ListSecurityLakeSources"]["Condition"]["StringLike"]["s3:prefix"]
    window = Window(dt.date(2026, 11, 28), 3)
    for source in Source:
        assert objects.find_source(None, [f"s3://{bucket}"], source, window, None) is None  # type: ignore[arg-type]
    assert listed
    for pattern in listed:
        key = pattern.removeprefix(f"s3://{bucket}/")
        listed_prefix = key.split("*", 1)[0]  # S3 lists from the literal part of a glob
        assert any(fnmatch.fnmatchcase(listed_prefix, rule) for rule in allowed), pattern
    listed.clear()
    objects.find_source(None, ["file:///home/lake/s3"], Source.VPC_FLOW, window, None)  # type: ignore[arg-type]
    assert any(pattern.startswith("file:///home/lake/s3/*/aws/VPC_FLOW/") for pattern in listed)


def test_customer_managed_keys_are_granted_to_the_pipeline_role_through_s3_only() -> None:
    """A lake or artifact bucket under a customer-managed key cannot be read or written without the key: the keys in
    aws.kms_key_arns are granted (through S3 only); with none, the policy has no KMS statement at all."""
    keys = "arn:aws:kms:us-east-1:111122223333:key/1111-aaaa,arn:aws:kms:eu-west-1:111122223333:key/2222-bbbb"
    config = load_config(profile="prod", environ={"SECLAKE_AWS__KMS_KEY_ARNS": keys})
    statements = {s["Sid"]: s for s in render_policies(config)[PIPELINE_ROLE_POLICY]["Statement"]}
    grant = statements["DecryptAndEncryptThroughS3UnderCustomerKeys"]
    assert grant["Resource"] == keys.split(",")
    assert grant["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert grant["Condition"] == {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
    plain = render_policies(load_config(profile="prod", environ={}))[PIPELINE_ROLE_POLICY]
    assert "kms:" not in json.dumps(plain)
    with pytest.raises(ConfigError, match="kms_key_arns"):
        load_config(profile="prod", environ={"SECLAKE_AWS__KMS_KEY_ARNS": "alias/aws/s3"})
