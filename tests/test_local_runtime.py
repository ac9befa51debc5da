"""The local runtime executes definition JSON as the service would: references, conditions, failures, end to end."""

from __future__ import annotations

import csv
import json
import os
import signal
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.containers import SKLEARN_PROCESSING
from pipeline.local.executor import DefinitionError, LocalExecutor, execution_order
from pipeline.local.expressions import (
    ResolutionContext,
    UnresolvableReferenceError,
    evaluate_condition,
    path_tokens,
    resolve,
)
from pipeline.local.identity import Identity, Principal
from pipeline.local.run_definition import account_identity, execute_locally, lake_parameters, run_output, stage_code
from pipeline.local.state import Store
from pipeline.policy_evaluation import evaluate
from pipeline.samplelake.summary import summarise_lake
from pipeline.samplelake.writer import generate_lake
from scripts.detect.artifact import load_detector
from scripts.handoff.artifacts import DETECTOR_INDEX_FILE
from scripts.handoff.detector_index import ShardIndex
from scripts.handoff.evalset import INJECTED_KINDS
from scripts.handoff.registry import DETECTOR_PROPERTY, EXECUTION_PROPERTY, MODEL_PROPERTY, REGISTERED_AS_PROPERTY
from scripts.pairs.mapping import ANSWER_ROLE
from steps import names
from tests.conftest import small_lake_options

SKLEARN_IMAGE = SKLEARN_PROCESSING.image_uri("us-east-1")
CODE_URI = "s3://artifacts/code/job.py"
JOB = """
import json, sys, pathlib
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if args.get("--fail") == "yes":
    print("something broke in the job", file=sys.stderr)
    sys.exit(3)
out = pathlib.Path(args["--output"])
out.mkdir(parents=True, exist_ok=True)
(out / "result.json").write_text(json.dumps({"metrics": {"auc": {"value": float(args["--auc"])}}}))
if "--runs" in args:
    with open(args["--runs"], "a") as runs:
        print(args["--end-day"], file=runs)
"""


def _context() -> ResolutionContext:
    return ResolutionContext(
        parameters={"Gate": 0.8, "Name": "x"},
        execution={"PipelineExecutionId": "exec-1"},
        properties={
            "Prep": {
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}}]}
            },
            "Tune": {"TrainingJobSummaries": [{"TrainingJobName": "best"}]},
        },
        property_files={"Eval.Report": {"metrics": {"auc": {"value": 0.91}}, "list": [1, 2]}},
    )


def test_references_resolve_as_the_service_does() -> None:
    context = _context()
    assert path_tokens("Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == [
        "Steps",
        "Prep",
        "ProcessingOutputConfig",
        "Outputs",
        "train",
        "S3Output",
        "S3Uri",
    ]
    value = {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                {"Get": "Execution.PipelineExecutionId"},
                {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
                {"Get": "Parameters.Gate"},
            ],
        }
    }
    assert resolve(value, context) == "s3://b/train/exec-1/best/0.8"
    json_get = {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "metrics.auc.value"}
    }
    assert resolve(json_get, context) == 0.91
    condition = {"Type": "GreaterThanOrEqualTo", "LeftValue": json_get, "RightValue": {"Get": "Parameters.Gate"}}
    assert evaluate_condition(condition, context) is True
    assert evaluate_condition({"Type": "Not", "Condition": condition}, context) is False
    assert evaluate_condition({"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["x", "y"]}, context)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Get": "Parameters.Nope"}, "no parameter 'Nope'; parameters: ['Gate', 'Name']"),
        ({"Get": "Steps.Other.ModelName"}, "step 'Other' has not run"),
        ({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['eval'].S3Output.S3Uri"}, "no 'eval' here"),
        (
            {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "metrics.pr.value"}},
            "path 'metrics.pr.value': no 'pr' here (found keys ['auc'])",
        ),
    ],
)
def test_unresolvable_references_are_spelled_out(value: dict[str, Any], message: str) -> None:
    with pytest.raises(UnresolvableReferenceError) as raised:
        resolve(value, _context())
    assert message in str(raised.value)


def test_order_follows_depends_on_and_references() -> None:
    steps = [
        {"Name": "C", "Type": "Processing", "Arguments": {"X": {"Get": "Steps.B.ModelName"}}},
        {"Name": "B", "Type": "Model", "Arguments": {}, "DependsOn": ["A"]},
        {"Name": "A", "Type": "Processing", "Arguments": {}},
    ]
    assert [s["Name"] for s in execution_order(steps)] == ["A", "B", "C"]
    with pytest.raises(DefinitionError, match=r"depends on \['Missing'\]"):
        execution_order([{"Name": "A", "Type": "Processing", "Arguments": {}, "DependsOn": ["Missing"]}])
    with pytest.raises(DefinitionError, match="cycle"):
        execution_order(
            [
                {"Name": "A", "Type": "Model", "Arguments": {}, "DependsOn": ["B"]},
                {"Name": "B", "Type": "Model", "Arguments": {}, "DependsOn": ["A"]},
            ]
        )


def _script_step(name: str, arguments: list[Any]) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": SKLEARN_IMAGE,
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
                "ContainerArguments": arguments,
            },
            "ProcessingInputs": [
                {"InputName": "code", "S3Input": {"S3Uri": CODE_URI, "LocalPath": "/opt/ml/processing/input/code"}}
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "out",
                        "S3Output": {
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": ["s3://artifacts/runs", {"Get": "Execution.PipelineExecutionId"}, name],
                                }
                            },
                            "LocalPath": "/opt/ml/processing/out",
                        },
                    }
                ]
            },
        },
        "PropertyFiles": [{"PropertyFileName": "Result", "OutputName": "out", "FilePath": "result.json"}],
    }


def _definition(auc: str, fail: str = "no") -> dict[str, Any]:
    gate_value = {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Result"}, "Path": "metrics.auc.value"}
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Gate", "Type": "Float", "DefaultValue": 0.9}],
        "Steps": [
            _script_step("Evaluate", ["--output", "/opt/ml/processing/out", "--auc", auc, "--fail", fail]),
            {
                "Name": "Check",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "GreaterThanOrEqualTo",
                            "LeftValue": gate_value,
                            "RightValue": {"Get": "Parameters.Gate"},
                        }
                    ],
                    "IfSteps": [_script_step("Deploy", ["--output", "/opt/ml/processing/out", "--auc", "1"])],
                    "ElseSteps": [
                        {
                            "Name": "TooLow",
                            "Type": "Fail",
                            "Arguments": {
                                "ErrorMessage": {
                                    "Std:Join": {
                                        "On": " ",
                                        "Values": ["AUC", gate_value, "below", {"Get": "Parameters.Gate"}],
                                    }
                                }
                            },
                        }
                    ],
                },
            },
            _script_step("After", ["--output", "/opt/ml/processing/out", "--auc", "0"]) | {"DependsOn": ["Check"]},
        ],
    }


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    runtime = LocalExecutor(tmp_path)
    runtime.s3.put_bytes(CODE_URI, JOB.encode())
    return runtime


def _statuses(runtime: LocalExecutor, execution: str) -> dict[str, str]:
    return {run.step: run.status for run in runtime.store.step_runs(execution)}


def test_true_condition_runs_the_if_branch_and_what_follows(executor: LocalExecutor) -> None:
    result = executor.execute(_definition("0.95"), "p")
    assert result.status == "Succeeded", result.failure
    assert _statuses(executor, result.execution) == {
        "Evaluate": "Succeeded",
        "Check": "Succeeded",
        "Deploy": "Succeeded",
        "After": "Succeeded",
    }
    output = executor.s3.to_local(f"s3://artifacts/runs/{result.execution}/Evaluate/result.json")
    assert json.loads(output.read_text())["metrics"]["auc"]["value"] == 0.95


def test_a_relative_home_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SECLAKE_HOME defaults to the relative `.seclake`; jobs run in their own folders, so paths must be absolute."""
    monkeypatch.chdir(tmp_path)
    runtime = LocalExecutor(Path(".seclake"))
    runtime.s3.put_bytes(CODE_URI, JOB.encode())
    result = runtime.execute(_definition("0.95"), "p")
    assert result.status == "Succeeded", result.failure


def test_false_condition_runs_the_fail_step_with_its_message(executor: LocalExecutor) -> None:
    result = executor.execute(_definition("0.7"), "p")
    assert result.status == "Failed"
    assert result.failure == "TooLow: AUC 0.7 below 0.9"
    statuses = _statuses(executor, result.execution)
    assert statuses["TooLow"] == "Failed" and "Deploy" not in statuses and "After" not in statuses
    assert executor.store.execution(result.execution)["status"] == "Failed"  # type: ignore[index]


def test_parameter_override_changes_the_branch(executor: LocalExecutor) -> None:
    assert executor.execute(_definition("0.7"), "p", {"Gate": "0.5"}).status == "Succeeded"
    with pytest.raises(DefinitionError, match="unknown parameter\\(s\\) Gait; the pipeline has: Gate"):
        executor.execute(_definition("0.7"), "p", {"Gait": "0.5"})


def test_failed_step_fails_the_execution_and_stops_downstream(executor: LocalExecutor) -> None:
    result = executor.execute(_definition("0.95", fail="yes"), "p")
    assert result.status == "Failed"
    assert result.failure is not None and "Evaluate: JobFailedError: exit code 3" in result.failure
    assert "something broke in the job" in result.failure
    assert _statuses(executor, result.execution) == {"Evaluate": "Failed"}


def test_unresolvable_reference_fails_the_step_with_the_reference(executor: LocalExecutor) -> None:
    definition = _definition("0.95")
    definition["Steps"][2]["Arguments"]["AppSpecification"]["ContainerArguments"].append(
        {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['missing'].S3Output.S3Uri"}
    )
    result = executor.execute(definition, "p")
    assert result.status == "Failed"
    assert "After: UnresolvableReferenceError: Get Steps.Evaluate.ProcessingOutputConfig.Outputs['missing']" in str(
        result.failure
    )


def test_unknown_image_and_step_type_are_named(executor: LocalExecutor) -> None:
    definition = _definition("0.95")
    definition["Steps"][0]["Arguments"]["AppSpecification"]["ImageUri"] = "1.dkr.ecr/acme-custom:1"
    result = executor.execute(definition, "p")
    assert "processing image '1.dkr.ecr/acme-custom:1' is not a container this project declares" in str(result.failure)
    odd = {"Version": "2020-12-01", "Parameters": [], "Steps": [{"Name": "E", "Type": "EMR", "Arguments": {}}]}
    assert "step type 'EMR' has no local handler" in str(executor.execute(odd, "p").failure)


def _scheduled(runs: Path) -> dict[str, Any]:
    step = _script_step(
        "Prepare",
        [
            "--output",
            "/opt/ml/processing/out",
            "--auc",
            "1",
            "--end-day",
            {"Get": "Parameters.EndDay"},
            "--runs",
            str(runs),
        ],
    ) | {"CacheConfig": {"Enabled": True, "ExpireAfter": "P7D"}}
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "EndDay", "Type": "String", "DefaultValue": "latest"}],
        "Steps": [step],
    }


def test_scheduled_runs_on_different_days_do_not_share_a_cache_hit(executor: LocalExecutor, tmp_path: Path) -> None:
    """The cache key is the resolved AppSpecification, Environment and ProcessingInputs, never the execution id:
    the schedule's time in EndDay makes each day's run its own; a rerun of the same day reuses the first."""
    runs = tmp_path / "runs.txt"
    definition = _scheduled(runs)
    monday = executor.execute(definition, "p", {"EndDay": "2026-11-29T03:00:00Z"})
    tuesday = executor.execute(definition, "p", {"EndDay": "2026-11-30T03:00:00Z"})
    rerun = executor.execute(definition, "p", {"EndDay": "2026-11-30T03:00:00Z"})
    assert [r.status for r in (monday, tuesday, rerun)] == ["Succeeded"] * 3
    assert runs.read_text().splitlines() == ["2026-11-29T03:00:00Z", "2026-11-30T03:00:00Z"]
    reused = executor.store.step_runs(rerun.execution)[0].properties
    assert reused.pop("CacheHitResult") == {"SourceExecution": tuesday.execution}
    first = executor.store.step_runs(tuesday.execution)[0].properties
    assert reused["ProcessingOutputConfig"] == first["ProcessingOutputConfig"]  # the earlier execution's outputs
    assert tuesday.execution in reused["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    other_pipeline = executor.execute(definition, "q", {"EndDay": "2026-11-30T03:00:00Z"})
    assert other_pipeline.status == "Succeeded" and len(runs.read_text().splitlines()) == 3


def test_latest_resolved_in_the_job_would_reuse_yesterdays_window(executor: LocalExecutor, tmp_path: Path) -> None:
    """Why the schedule passes its time: 'latest' is the same key every day, so caching would reuse day one."""
    runs = tmp_path / "runs.txt"
    for _ in range(2):
        assert executor.execute(_scheduled(runs), "p").status == "Succeeded"
    assert runs.read_text().splitlines() == ["latest"]


def test_a_parameter_without_a_default_must_be_given_as_the_service_requires(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    """The project's EndDay has no default, so that no execution reuses a cached window by default: starting one
    without it is refused before anything runs, naming the parameter."""
    definition = _scheduled(tmp_path / "runs.txt")
    definition["Parameters"] = [{"Name": "EndDay", "Type": "String"}]
    with pytest.raises(DefinitionError, match=r"parameter\(s\) EndDay have no default value"):
        executor.execute(definition, "p")
    assert not (tmp_path / "runs.txt").exists()
    assert executor.execute(definition, "p", {"EndDay": "20261128"}).status == "Succeeded"


# Two days of a small lake: too few workloads and days for the product's gates, not for the chain
GATE_FOR_A_TINY_LAKE = {"RecallGate": "0.3", "AlertBudget": "1000"}


ENFORCED: dict[str, Identity] = {}  # the end-to-end run's account: its roles, policies and request trace


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    home = tmp_path_factory.mktemp("seclake-home")
    generate_lake(small_lake_options(home, 2, seed=21))
    config = load_config(
        environ={"SECLAKE_HOME": str(home), "SECLAKE_TUNING__MAX_JOBS": "2", "SECLAKE_PREPROCESS__LOOKBACK_DAYS": "3"}
    )
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    summary = summarise_lake(home)
    ENFORCED["run"] = account_identity(config, str(lake_parameters(summary)["LakeRoots"]))
    result = execute_locally(config, summary, GATE_FOR_A_TINY_LAKE, identity=ENFORCED["run"])
    yield config, result
    endpoint = Store(home / "state.sqlite").endpoint(config.pipeline.endpoint_name)
    if endpoint and endpoint["pid"]:
        os.kill(int(endpoint["pid"]), signal.SIGTERM)


@pytest.mark.spark
@pytest.mark.slow
def test_the_project_definition_runs_end_to_end(end_to_end: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    config, result = end_to_end
    assert result.status == "Succeeded", result.failure
    store = Store(config.home / "state.sqlite")
    runs = {run.step: run for run in store.step_runs(result.execution)}
    assert {run.type for run in runs.values()} == {
        "Processing",
        "Tuning",
        "Model",
        "Transform",
        "RegisterModel",
        "Condition",
        "EndpointConfig",
        "Endpoint",
    }
    assert all(run.status == "Succeeded" for run in runs.values())
    assert len(store.training_jobs(result.execution)) == 2
    best = runs[names.TUNE].properties["TrainingJobSummaries"][0]
    assert best["TrainingJobName"] in runs[names.CREATE_MODEL].properties["PrimaryContainer"]["ModelDataUrl"]
    package = store.model_packages(config.pipeline.model_package_group)[0]
    metrics = json.loads(package["metrics"])
    assert 0.5 <= metrics["binary_classification_metrics"]["auc"]["value"] <= 1.0
    detection = metrics["seclake"]["detection"]
    assert detection["gate"] == "passed" and detection["workloads"] > 0
    assert set(detection["per_kind"]) <= set(INJECTED_KINDS) and "new_network" in detection["per_kind"]
    # s3:// as the job received it in its container (only Spark jobs get file:// URIs locally)
    detector = f"{config.aws.artifact_uri}/runs/{result.execution}/detector/{DETECTOR_INDEX_FILE}"
    manifest = json.loads(run_output(config, result.execution, "evaluation", "manifest.json").read_text())
    assert manifest["detector_uri"] == detector and manifest["mapping"] == config.preprocess.mapping
    assert manifest["threshold"] == metrics["seclake"]["threshold"]["dot_product"]
    assert json.loads(package["customer_metadata"]) == {
        DETECTOR_PROPERTY: detector,
        EXECUTION_PROPERTY: result.execution,
        MODEL_PROPERTY: runs[names.CREATE_MODEL].properties["ModelName"],
        REGISTERED_AS_PROPERTY: "Approved",  # the local profile approves automatically: its execution deployed it
    }
    index_file = run_output(config, result.execution, "detector", DETECTOR_INDEX_FILE)
    index = ShardIndex.from_json(index_file.read_text(), str(index_file))
    lake_accounts = {path.name.split("=", 1)[1] for path in (config.home / "s3").rglob("accountId=*")}
    assert set(index.shards) == {"organisation", *lake_accounts}  # one shard per account of the lake
    account = sorted(lake_accounts)[0]
    loaded, fitted_on = load_detector(index_file.parent / index.file_of(account))
    assert fitted_on["history_pairs"] > 0 and fitted_on["shard"] == account and len(loaded.memory.history) > 0
    assert {e.split("/")[0] for e in loaded.memory.history.entities.tolist()} == {account}
    assert isinstance(metrics["seclake"]["threshold"]["dot_product"], float)
    endpoint = store.endpoint(config.pipeline.endpoint_name)
    assert endpoint is not None and endpoint["url"].startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{endpoint['url']}/ping") as response:
        assert response.status == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint["url"])
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    answer = client.invoke_endpoint(
        EndpointName=config.pipeline.endpoint_name, ContentType="text/csv", Body=b"any/entity,10.0.0.1\n"
    )
    assert "dot_product" in json.loads(answer["Body"].read())["predictions"][0]
    report = run_output(config, result.execution, "evaluation", "report.html")
    assert "<title>IP Insights evaluation</title>" in report.read_text()


# Each statement of the generated pipeline-role policy and of the subscriber role Security Lake created in the lake's
# account, and the step that fails first without it. Those the local run with s3 access never needs say why: a test of
# its own covers them, or AWS runs the job without them.
FIRST_STEP_WITHOUT = {
    "AssumeTheLakeSubscriberRole": names.PREPARE,
    "ReadWriteArtifacts": names.QUERY_LAKE,  # the first job downloads the scripts bundle
    "ListArtifacts": names.QUERY_LAKE,
    "RunThisPipelinesJobs": names.QUERY_LAKE,
    "PassOnlyThisRole": names.QUERY_LAKE,
    "PullAlgorithmImages": names.QUERY_LAKE,
    "EcrTokenHasNoResourceLevelPermission": names.QUERY_LAKE,
    "ModelsOfThisPipeline": names.CREATE_MODEL,
    "RegisterIntoThisGroup": names.REGISTER,
    "DeployThisEndpoint": names.ENDPOINT_CONFIG,
}
SUBSCRIBER_FIRST_STEP_WITHOUT = {
    "ReadSecurityLakeSources": names.PREPARE,
    "ListSecurityLakeSources": names.PREPARE,
}
ATHENA_STATEMENTS = (  # needed with LakeAccess=athena only: test_athena_access_runs_the_query_step_then_spark...
    "QueryLakeInTheWorkgroup",
    "ReadSecurityLakeTables",
    "LakeFormationDataAccessHasNoResourceLevelPermission",
)
NOT_NEEDED_LOCALLY = {
    **dict.fromkeys(ATHENA_STATEMENTS, "Athena access only: the Athena run's own test shows QueryLake needs it"),
    "ReadSharedSecurityLakeTables": "Athena access through resource links to the lake account's tables: Glue checks "
    "the target tables in AWS; the local Athena checks the caller's own catalog only",
    "JobLogs": "CloudWatch Logs: a job runs without them in AWS (its logs are lost); not emulated",
    "JobMetricsHaveNoResourceLevelPermission": "CloudWatch metrics: a job runs without them in AWS; not emulated",
}


def _policy_without(identity: Identity, sid: str, role: str | None = None) -> dict[str, Any]:
    [policy] = identity.principals[role or identity.pipeline_role].policies
    return {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") != sid]}


@pytest.mark.spark
@pytest.mark.slow
def test_the_run_needs_every_statement_of_the_generated_policy_and_names_the_step_without_it(
    end_to_end: tuple[Any, Any],
) -> None:
    """The end-to-end run made every request as the principal that makes it in AWS (the pipeline role; the lake's
    reads as the subscriber role it assumed), under the generated policies, and passed. Without any one statement,
    the first request it no longer allows is made by the named step: the step that would fail with AccessDenied in
    the account (the run is deterministic up to that request, so the trace stands for a rerun)."""
    _, result = end_to_end
    assert result.status == "Succeeded", result.failure
    identity = ENFORCED["run"]
    expected: dict[str, dict[str, str | None]] = {
        identity.pipeline_role: {**FIRST_STEP_WITHOUT, **dict.fromkeys(NOT_NEEDED_LOCALLY)},
        SUBSCRIBER: {**SUBSCRIBER_FIRST_STEP_WITHOUT},
    }
    assert sorted(identity.principals) == sorted(expected)
    trace = identity.trace
    assert {r.request.action for r in trace} >= {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "iam:PassRole"}
    assert {r.principal for r in trace if r.request.resource.startswith(LAKE_BUCKET_ARN)} == {SUBSCRIBER}
    for role, verdicts in expected.items():
        [policy] = identity.principals[role].policies
        sids = [str(s["Sid"]) for s in policy["Statement"]]
        assert sorted(sids) == sorted(verdicts), f"a statement of {role} without a verdict here"
        first_denied: dict[str, str | None] = {}
        for sid in sids:
            reduced = _policy_without(identity, sid, role)
            made = (r for r in trace if r.principal == role)
            denied = next((r for r in made if not evaluate([reduced], r.request).allowed), None)
            first_denied[sid] = denied.step if denied is not None else None
        assert first_denied == verdicts, role


def _without(principal: Principal, sid: str) -> Principal:
    [policy] = principal.policies
    reduced = {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") != sid]}
    return Principal(principal.role_arn, [reduced], principal.account, principal.region, principal.trust)


SUBSCRIBER = "arn:aws:iam::210987654321:role/AmazonSecurityLake-seclake-ipinsights"  # config/local.yaml's
LAKE_BUCKET_ARN = "arn:aws:s3:::aws-security-data-lake-"
# How the Security Lake account refuses a pipeline that does not read it as its subscriber: what changes, and the
# words of the AccessDenied the Spark step fails with.
CROSS_ACCOUNT_REFUSALS = {
    "the subscriber role lacks the listing": (
        "subscriber-list",
        "assumed-role/AmazonSecurityLake-seclake-ipinsights/SageMaker is not authorized to perform: s3:ListBucket on "
        f"resource: {LAKE_BUCKET_ARN}",
    ),
    "the pipeline role may not assume the subscriber role": (
        "pipeline-assume",
        f"assumed-role/SeclakeIpInsightsPipelineRole/SageMaker is not authorized to perform: sts:AssumeRole on "
        f"resource: {SUBSCRIBER} because no identity-based policy allows",
    ),
    "the external id is not the subscriber's": (
        "external-id",
        f"sts:AssumeRole on resource: {SUBSCRIBER} (its trust policy does not allow account 123456789012 with external "
        "id 'guessed'",
    ),
    "the pipeline role reads the other account's lake itself": (
        "no-subscriber",
        f"s3:ListBucket on resource: {LAKE_BUCKET_ARN}",
    ),
}


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CROSS_ACCOUNT_REFUSALS))
def test_the_lake_account_refuses_a_pipeline_that_does_not_read_it_as_its_subscriber(
    case: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Enforced for real, not replayed: the Spark job's driver assumes the subscriber role through the local STS and
    lists the lake with that session; the lake is another account's. Each broken link fails the Spark step with
    AWS's words, and nothing downstream runs."""
    from pipeline.definition import definition_json

    change, words = CROSS_ACCOUNT_REFUSALS[case]
    home = tmp_path_factory.mktemp("seclake-denied")
    generate_lake(small_lake_options(home, 1, seed=29))
    environ = {"SECLAKE_HOME": str(home)}
    config = load_config(environ=environ)
    parameters = {**lake_parameters(summarise_lake(home)), "LookbackDays": 3}
    identity = account_identity(config, str(parameters["LakeRoots"]))  # the accounts as Security Lake set them up
    if change == "external-id":  # the pipeline is configured with another external id than the subscriber's
        config = load_config(environ={**environ, "SECLAKE_LAKE__SUBSCRIBER__EXTERNAL_ID": "guessed"})
    if change == "subscriber-list":
        identity.principals[SUBSCRIBER] = _without(identity.principals[SUBSCRIBER], "ListSecurityLakeSources")
    if change == "pipeline-assume":
        pipeline_role = identity.principals[identity.pipeline_role]
        identity.principals[identity.pipeline_role] = _without(pipeline_role, "AssumeTheLakeSubscriberRole")
    if change == "no-subscriber":  # the roles generated for a lake in this account, run against another's
        in_account = load_config(environ={**environ, "SECLAKE_LAKE__SUBSCRIBER__ROLE_ARN": ""})
        owners = identity.bucket_owners
        identity = account_identity(in_account, str(parameters["LakeRoots"]))
        identity.bucket_owners.update(owners)
        config = in_account
    stage_code(config, home)
    definition = json.loads(definition_json(config))
    definition["Steps"] = [s for s in definition["Steps"] if s["Name"] in {names.QUERY_LAKE, names.PREPARE}]
    result = LocalExecutor(home, identity=identity).execute(definition, config.pipeline.name, parameters)
    assert result.status == "Failed"
    assert result.failure is not None and result.failure.startswith(f"{names.PREPARE}: AccessDeniedError: User: ")
    assert words in result.failure


@pytest.mark.spark
@pytest.mark.slow
def test_a_rerun_reuses_preprocessing_and_tuning_and_its_failed_gate_registers_and_deploys_nothing(
    end_to_end: tuple[Any, Any],
) -> None:
    """Caching as the service does it: same arguments, same inputs -> the earlier outputs, across executions. The
    rerun's gate asks for more recall than any model has: the definition ends in its FailStep, naming the figure,
    with no package registered and the endpoint still serving what it served."""
    config, first = end_to_end
    store = Store(config.home / "state.sqlite")
    served = store.endpoint(config.pipeline.endpoint_name)
    packages = store.model_packages(config.pipeline.model_package_group)
    again = execute_locally(config, summarise_lake(config.home), {**GATE_FOR_A_TINY_LAKE, "RecallGate": "1.01"})
    assert again.status == "Failed"
    assert str(again.failure).startswith(f"{names.FAIL}: Model not deployed: recall on injected attacks"), again.failure
    assert "below RecallGate 1.01" in str(again.failure)
    steps = {run.step: run.status for run in store.step_runs(again.execution)}
    assert steps[names.FAIL] == "Failed" and names.REGISTER not in steps and names.ENDPOINT not in steps
    assert store.model_packages(config.pipeline.model_package_group) == packages
    assert store.endpoint(config.pipeline.endpoint_name) == served
    before = {run.step: run.properties for run in store.step_runs(first.execution)}
    after = {run.step: run.properties for run in store.step_runs(again.execution)}
    for step in (names.PREPARE, names.TUNE):
        assert after[step].pop("CacheHitResult") == {"SourceExecution": first.execution}
        assert after[step] == before[step]
    assert len(store.training_jobs(again.execution)) == 0
    assert after[names.CREATE_MODEL]["ModelName"] != before[names.CREATE_MODEL]["ModelName"]
    manifest = json.loads(run_output(config, again.execution, "evaluation", "manifest.json").read_text())
    assert f"/runs/{again.execution}/detector/" in manifest["detector_uri"]


@pytest.mark.spark
@pytest.mark.slow
def test_a_package_registered_for_manual_approval_waits_and_approving_it_deploys_it(
    end_to_end: tuple[Any, Any],
) -> None:
    """The lifecycle a SageMaker team runs: with manual approval the execution registers its package and deploys
    nothing (the endpoint keeps serving the earlier run); approving the package deploys it under its execution's
    endpoint config, where the monitor finds that run's manifest."""
    from pipeline.local.approval import approve_and_deploy
    from pipeline.local.monitor_identity import deployer_identity
    from scripts.handoff.artifacts import endpoint_config_name

    config, _ = end_to_end
    manual = execute_locally(
        config, summarise_lake(config.home), {**GATE_FOR_A_TINY_LAKE, "ModelApprovalStatus": "PendingManualApproval"}
    )
    assert manual.status == "Succeeded", manual.failure
    store = Store(config.home / "state.sqlite")
    runs = {run.step: run for run in store.step_runs(manual.execution)}
    assert runs[names.APPROVAL_GATE].properties == {"Outcome": "false"}
    assert names.ENDPOINT not in runs
    endpoint = store.endpoint(config.pipeline.endpoint_name)
    assert endpoint is not None and endpoint["config_name"] != endpoint_config_name(
        config.pipeline.endpoint_name, manual.execution
    )
    [package] = [
        p for p in store.model_packages(config.pipeline.model_package_group) if p["execution"] == manual.execution
    ]
    assert package["status"] == "PendingManualApproval"
    identity, deployer = deployer_identity(config, str(lake_parameters(summarise_lake(config.home))["LakeRoots"]))
    outcome = approve_and_deploy(
        config.home,
        config.pipeline.model_package_group,
        package["version"],
        config.pipeline.endpoint_name,
        config.pipeline.endpoint_instance_type,
        identity,
        deployer,
    )
    assert outcome.action == "updated", outcome
    # as the deploy-on-approval function's role the monitor template grants; the model read as the pipeline role
    made = {(r.principal.rsplit("/", 1)[-1], r.request.action) for r in identity.trace}
    assert {
        ("DeployOnApprovalRole", a) for a in ("sagemaker:DescribeModelPackage", "sagemaker:CreateEndpointConfig")
    } <= made
    assert ("DeployOnApprovalRole", "sagemaker:UpdateEndpoint") in made
    assert ("SeclakeIpInsightsPipelineRole", "s3:GetObject") in made
    served = store.endpoint(config.pipeline.endpoint_name)
    assert served is not None
    assert served["config_name"] == endpoint_config_name(config.pipeline.endpoint_name, manual.execution)
    with urllib.request.urlopen(f"{served['url']}/ping") as response:
        assert response.status == 200
    again = approve_and_deploy(
        config.home,
        config.pipeline.model_package_group,
        package["version"],
        config.pipeline.endpoint_name,
        config.pipeline.endpoint_instance_type,
    )
    assert again.action == "serving"  # approving twice changes nothing


@pytest.mark.spark
@pytest.mark.slow
def test_athena_access_runs_the_query_step_then_spark_on_what_it_unloaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The project's own QueryLake and Prepare steps with LakeAccess=athena, on a v1 lake: the query job (the Spark
    image's python3 and boto3) asks the local Athena, which UNLOADs into the step's `lake` output; Spark reads that."""
    from pipeline.definition import definition_json

    home = tmp_path_factory.mktemp("seclake-athena")
    generate_lake(small_lake_options(home, 1, seed=23))
    config = load_config(environ={"SECLAKE_HOME": str(home), "SECLAKE_LAKE__SOURCE_VERSION": "1"})
    stage_code(config, home)
    definition = json.loads(definition_json(config))
    definition["Steps"] = [s for s in definition["Steps"] if s["Name"] in {names.QUERY_LAKE, names.PREPARE}]
    parameters = {**lake_parameters(summarise_lake(home)), "LakeAccess": "athena", "LookbackDays": 3}
    identity = account_identity(config, str(parameters["LakeRoots"]))
    result = LocalExecutor(home, identity=identity).execute(definition, config.pipeline.name, parameters)
    assert result.status == "Succeeded", result.failure
    for sid in ATHENA_STATEMENTS:  # what QueryLake asked Athena, Glue and Lake Formation for, as the pipeline role
        reduced = _policy_without(identity, sid)
        denied = next((r for r in identity.trace if not evaluate([reduced], r.request).allowed), None)
        assert denied is not None and denied.step == names.QUERY_LAKE, sid
    manifest = json.loads(run_output(config, result.execution, "lake-query", "query.json").read_text())
    assert manifest["access"] == "athena"
    assert [s["source"] for s in manifest["statements"]] == ["VPC_FLOW", "ROUTE53"]
    assert all('"eventday" BETWEEN' in s["statement"] for s in manifest["statements"])
    unloaded = run_output(config, result.execution, "lake", "aws", "VPC_FLOW", "1.0")
    assert [p.name.endswith("_00000") for p in unloaded.iterdir()] == [True]
    quality = json.loads(run_output(config, result.execution, "prepared", "quality", "quality.json").read_text())
    assert quality["access"] == "athena"
    assert quality["pairs_kept"]["VPC_FLOW/1.0"] > 0 and quality["pairs_kept"]["ROUTE53/1.0"] > 0


@pytest.mark.spark
@pytest.mark.slow
def test_a_lake_without_route53_runs_end_to_end_on_its_flows_and_its_summary_stays_clean(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Route 53 resolver logging is optional in Security Lake: with the defaults, a lake of flow logs alone is read
    for its flows (the plan says what is lost), the pipeline runs through, and the summary of the lake afterwards
    counts no file of the pipeline's own (its history, address book and findings)."""
    import shutil

    home = tmp_path_factory.mktemp("seclake-no-route53")
    generate_lake(small_lake_options(home, 2, seed=23))
    for folder in (home / "s3").glob("*/aws/ROUTE53"):
        shutil.rmtree(folder)
    config = load_config(
        environ={"SECLAKE_HOME": str(home), "SECLAKE_TUNING__MAX_JOBS": "1", "SECLAKE_PREPROCESS__LOOKBACK_DAYS": "3"}
    )
    summary = summarise_lake(home)
    try:
        result = execute_locally(config, summary, GATE_FOR_A_TINY_LAKE)
        assert result.status == "Succeeded", result.failure
        quality = json.loads(run_output(config, result.execution, "prepared", "quality", "quality.json").read_text())
        assert list(quality["pairs_kept"]) == ["VPC_FLOW/2.0"] and quality["pairs_kept"]["VPC_FLOW/2.0"] > 0
        again = summarise_lake(home)
        assert again.other_files == {} and [s.source for s in again.sources] == ["VPC_FLOW"]
    finally:
        endpoint = Store(home / "state.sqlite").endpoint(config.pipeline.endpoint_name)
        if endpoint and endpoint["pid"]:
            os.kill(int(endpoint["pid"]), signal.SIGTERM)


def _written_findings(config: Any, day: str) -> list[dict[str, Any]]:
    """The findings the monitor wrote into the local lake's custom source for `day`, as rows."""
    from scripts.ocsf.layout import CUSTOM_SOURCE_PREFIX

    source = f"{CUSTOM_SOURCE_PREFIX}/{config.findings.source_name}"
    files = sorted((config.home / "s3").glob(f"*/{source}/**/eventDay={day}/*.parquet"))
    return [row for path in files for row in pq.read_table(path).to_pylist()]


@pytest.mark.spark
@pytest.mark.slow
def test_the_cli_shows_the_run_and_its_last_day_is_scored_against_the_labels(end_to_end: tuple[Any, Any]) -> None:
    """What `seclake run` does after the pipeline, and the commands its last line names: the last day's objects go
    through the monitor's handler, the findings it writes are judged against the generator's labels (the injected
    new-network pairs of that day are found), and a replay of the same day writes no finding twice."""
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.cli.run import score_last_day
    from pipeline.local.run_definition import lake_days
    from pipeline.samplelake.writer import LABELS_FILE
    from scripts.detect.fleet import SERVICE_MOVING_SEVERITY
    from scripts.entity import base_entity

    config, result = end_to_end
    runner = CliRunner()
    env = {"SECLAKE_HOME": str(config.home), "COLUMNS": "200"}
    listed = runner.invoke(app, ["executions"], env=env)
    assert listed.exit_code == 0 and f"{result.execution}" in listed.output and "Succeeded" in listed.output
    shown = runner.invoke(app, ["execution", "show", result.execution[:12]], env=env)
    assert shown.exit_code == 0, shown.output
    for step in (names.PREPARE, names.TUNE, names.REGISTER, names.ENDPOINT):
        assert any(step in line and "Succeeded" in line for line in shown.output.splitlines()), step
    models = runner.invoke(app, ["models", "list"], env=env)
    assert models.exit_code == 0 and "Approved" in models.output, models.output
    endpoints = runner.invoke(app, ["endpoints", "list"], env=env)
    assert endpoints.exit_code == 0 and config.pipeline.endpoint_name in endpoints.output
    assert "http://127.0.0.1:" in endpoints.output

    day = lake_days(summarise_lake(config.home))[-1]
    judged = score_last_day(config, day)
    written = _written_findings(config, day)
    alerts = {
        (base_entity(row["observables"][0]["value"]), row["observables"][1]["value"])
        for row in written
        if row["severity"] != SERVICE_MOVING_SEVERITY
    }
    with (config.home / LABELS_FILE).open(newline="") as handle:
        labels = list(csv.DictReader(handle))
    assert judged.alerts == alerts and judged.labelled == {(row["entity"], row["ip"]) for row in labels}
    injected = [row for row in labels if row["first_seen"][:10].replace("-", "") == day]
    found = {
        kind: (sum((r["entity"], r["ip"]) in judged.alerts for r in injected if r["kind"] == kind), count)
        for kind, count in Counter(row["kind"] for row in injected).items()
    }
    egress = {(row["entity"], row["ip"]) for row in injected if row["kind"] == "egress_new_network"}
    assert egress and egress <= judged.alerts, found  # a workload's first reach into a network nobody knew
    assert judged.recall >= len(egress) / len(judged.labelled) and judged.precision > 0
    # a DNS answer's finding names what was asked: the injected egress's pool names nobody asked for before
    answers = [dict(r["unmapped"]) for r in written if r["observables"][0]["value"].endswith(f"#{ANSWER_ROLE}")]
    assert answers and all(a.get("query_name") for a in answers)
    assert any(a["name_new_to_organisation"] == "true" for a in answers)

    again = runner.invoke(app, ["monitor", "--replay-day", day], env=env)
    assert again.exit_code == 0, again.output
    assert "objects scored" in again.output and "failed" not in again.output
    # the same day again (SQS delivers at least once): no finding is written twice, none is new
    uids = [row["finding_info"]["uid"] for row in _written_findings(config, day)]
    assert len(set(uids)) == len(uids) and set(uids) <= {row["finding_info"]["uid"] for row in written}
    # Not yet asserted (named in issue 31's note): that none is lost. An object's file is rewritten on redelivery, and
    # a pair whose address crossed the fleet-change rule in a later object is then left out of it.
    bad = runner.invoke(app, ["monitor", "--replay-day", "2026-12-05"], env=env)
    assert bad.exit_code != 0 and "is not a day: give it as YYYYMMDD" in str(bad.exception)

    # the registry: a package rejected, then approved again, goes back to serving what the endpoint serves
    store = Store(config.home / "state.sqlite")
    group = config.pipeline.model_package_group
    served = store.endpoint(config.pipeline.endpoint_name)
    [package] = [p for p in store.model_packages(group) if p["execution"] == result.execution]
    rejected = runner.invoke(app, ["models", "reject", group, str(package["version"])], env=env)
    assert rejected.exit_code == 0 and f"{group}/{package['version']}: Rejected" in rejected.output
    assert [p["status"] for p in store.model_packages(group) if p["version"] == package["version"]] == ["Rejected"]
    approved = runner.invoke(app, ["models", "approve", group, str(package["version"])], env=env)
    assert approved.exit_code == 0 and f"{group}/{package['version']}: Approved" in approved.output, approved.output
    assert [p["status"] for p in store.model_packages(group) if p["version"] == package["version"]] == ["Approved"]
    unknown = runner.invoke(app, ["models", "reject", group, "999"], env=env)
    assert unknown.exit_code != 0 and "999" in str(unknown.exception)
    assert store.endpoint(config.pipeline.endpoint_name) is not None and served is not None


def _plain_alerts(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The written findings of one pair each (no fleet, sweep nor tunnel), above Low, by (entity, ip)."""
    from scripts.entity import is_fleet
    from scripts.monitor.findings import PAIR_EVIDENCE

    plain = {}
    for row in rows:
        entity, ip = row["observables"][0]["value"], row["observables"][1]["value"]
        evidence = dict(row["unmapped"])
        if row["severity"] != "Low" and not is_fleet(entity) and not any(k in evidence for k in PAIR_EVIDENCE):
            plain[(entity, ip)] = row
    return plain


def _raised_pairs(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every pair the written findings above Low stand for (a grouped finding's too), with its finding's row."""
    from scripts.monitor.findings import finding_pairs

    raised = {}
    for row in rows:
        if row["severity"] != "Low":
            entity, ip = row["observables"][0]["value"], row["observables"][1]["value"]
            raised.update(dict.fromkeys(finding_pairs(entity, ip, dict(row["unmapped"])), row))
    return raised


@pytest.mark.spark
@pytest.mark.slow
def test_an_analysts_verdicts_and_rules_change_the_next_run_and_its_replay(end_to_end: tuple[Any, Any]) -> None:
    """The analyst loop end to end: the last day scored; `seclake suppress add` for one pair, `seclake findings
    verdict` benign for another and true-positive for a third; the pipeline again on the same lake; then `seclake
    monitor --replay-day`. The benign pair is no longer raised, the true positive still is, the suppressed pair is
    written Suppressed, and the evaluation reports the production precision of the two verdicts."""
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.cli.run import score_last_day
    from pipeline.local.run_definition import lake_days

    config, _ = end_to_end
    runner = CliRunner()
    env = {"SECLAKE_HOME": str(config.home), "COLUMNS": "250"}
    day = lake_days(summarise_lake(config.home))[-1]
    score_last_day(config, day)  # idempotent: the findings of the last day, as `seclake run` leaves them
    before = _plain_alerts(_written_findings(config, day))
    # three findings of three workloads and three /24s: a benign verdict never teaches a true positive's network
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for pair, row in sorted(before.items()):
        if all(pair[0] != e and pair[1].rsplit(".", 1)[0] != ip.rsplit(".", 1)[0] for e, ip in chosen):
            chosen[pair] = row
    assert len(chosen) >= 3, sorted(before)
    (benign, benign_row), (positive, positive_row), (quiet, _) = list(chosen.items())[:3]
    listing = runner.invoke(app, ["findings", "--day", day, "--limit", "200"], env=env)
    assert listing.exit_code == 0, listing.output
    assert benign_row["finding_info"]["uid"][:12] in listing.output  # the id an analyst copies into `verdict`
    for uid, decision in (
        (benign_row["finding_info"]["uid"], "benign"),
        (positive_row["finding_info"]["uid"], "true-positive"),
    ):
        said = runner.invoke(app, ["findings", "verdict", uid[:12], decision, "--note", "checked"], env=env)
        assert said.exit_code == 0, said.output
        assert f"finding {uid}" in said.output and decision in said.output
    marked = runner.invoke(app, ["findings", "--day", day, "--limit", "200"], env=env)
    line = next(line for line in marked.output.splitlines() if benign_row["finding_info"]["uid"][:12] in line)
    assert "[benign: checked]" in line  # the listing shows what the analyst decided
    unknown = runner.invoke(app, ["findings", "verdict", "0123456789ab", "benign"], env=env)
    assert unknown.exit_code != 0 and "matches no finding" in str(unknown.exception)
    workload = quiet[0].split("/", 1)[1].split("#", 1)[0]
    rule = ["suppress", "add", "--workload", workload, "--ip", quiet[1], "--reason", "jump host", "--expires", "7d"]
    added = runner.invoke(app, rule, env=env)
    assert added.exit_code == 0, added.output

    again = execute_locally(config, summarise_lake(config.home), GATE_FOR_A_TINY_LAKE)
    assert again.status == "Succeeded", again.failure
    evaluation = json.loads(run_output(config, again.execution, "evaluation", "evaluation.json").read_text())
    feedback = evaluation["seclake"]["detection"]["feedback"]
    assert feedback["verdicts"] == 2 and feedback["benign_pairs"] >= 1 and feedback["true_positive_pairs"] >= 1
    assert feedback["production_precision"] == 0.5 and feedback["skipped"] == []
    assert "Production precision" in run_output(config, again.execution, "evaluation", "report.html").read_text()

    replayed = runner.invoke(app, ["monitor", "--replay-day", day], env=env)
    assert replayed.exit_code == 0, replayed.output
    models = {row["finding_info"]["analytic"]["version"] for row in _written_findings(config, day)}
    assert len(models) == 2  # the first run's findings, and the redeployed model's
    newest = [
        row
        for row in _written_findings(config, day)
        if row["finding_info"]["analytic"]["version"] != benign_row["finding_info"]["analytic"]["version"]
    ]
    after = _raised_pairs(newest)
    assert benign not in after, after.get(benign)
    assert positive in after and after[positive]["status"] == "New"
    assert (
        after[quiet]["status"] == "Suppressed" and dict(after[quiet]["unmapped"])["suppression_reason"] == "jump host"
    )
