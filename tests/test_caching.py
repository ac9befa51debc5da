"""The local runtime's step caching: expiry, ISO 8601 durations, the documented cache keys, failures never reused."""

from __future__ import annotations

import copy
import time
import types
from pathlib import Path
from typing import Any

import pytest

from pipeline.local import executor as executor_module
from pipeline.local.caching import (
    TRAINING_DEFINITION_CHILDREN,
    CacheConfigError,
    cache_key,
    caching,
    expire_after_seconds,
)
from pipeline.local.executor import CACHE_HIT_STATUS, LocalExecutor
from tests.test_local_runtime import CODE_URI, JOB, _scheduled, executor  # noqa: F401

DAY = 86_400.0
WEEK = 7 * DAY


def _shift_the_executors_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The executor reads `time.time()` (its module's `time`) for the start of the expiry window and nothing else;
    the store stamps each cached result with its own `time.time()`, which stays real: so the executor sees a cached
    result as `seconds` old (plus the real seconds since it was stored)."""
    monkeypatch.setattr(executor_module, "time", types.SimpleNamespace(time=lambda: time.time() + seconds))


def _cache_hit_source(runtime: LocalExecutor, execution: str) -> object:
    [run] = runtime.store.step_runs(execution)
    return run.properties.get("CacheHitResult")


def test_a_cached_result_is_reused_within_expire_after_and_not_after_it(
    executor: LocalExecutor,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """P7D: six days and 23 hours after the first run it is reused; seven days and a minute after, the job runs again;
    when both results are within the expiry, the newest is reused."""
    runs = tmp_path / "runs.txt"
    definition = _scheduled(runs)  # CacheConfig Enabled, ExpireAfter P7D
    assert definition["Steps"][0]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}
    day = {"EndDay": "2026-11-29T03:00:00Z"}
    first = executor.execute(definition, "p", day)
    assert first.status == "Succeeded", first.failure
    assert _cache_hit_source(executor, first.execution) is None

    _shift_the_executors_clock(monkeypatch, WEEK - 3600)
    within = executor.execute(definition, "p", day)
    assert within.status == "Succeeded", within.failure
    assert _cache_hit_source(executor, within.execution) == {"SourceExecution": first.execution}
    assert runs.read_text().splitlines() == ["2026-11-29T03:00:00Z"]  # the job ran once

    _shift_the_executors_clock(monkeypatch, WEEK + 60)
    expired = executor.execute(definition, "p", day)
    assert expired.status == "Succeeded", expired.failure
    assert _cache_hit_source(executor, expired.execution) is None
    assert runs.read_text().splitlines() == ["2026-11-29T03:00:00Z"] * 2  # it really ran again

    _shift_the_executors_clock(monkeypatch, 0.0)  # both results are fresh again: the newest is reused
    again = executor.execute(definition, "p", day)
    assert _cache_hit_source(executor, again.execution) == {"SourceExecution": expired.execution}
    assert len(runs.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("P7D", 7 * 86_400.0),
        ("PT12H", 12 * 3_600.0),
        ("P1DT2H30M", 86_400.0 + 2 * 3_600.0 + 30 * 60.0),
        ("PT45S", 45.0),
        ("P2W", 14 * 86_400.0),
    ],
)
def test_expire_after_parses_iso_8601_durations_exactly(duration: str, seconds: float) -> None:
    assert expire_after_seconds(duration) == seconds


@pytest.mark.parametrize("duration", ["7 days", "P", "PT", "7D", "P1H"])
def test_expire_after_refuses_what_is_not_an_iso_8601_duration_naming_it(duration: str) -> None:
    with pytest.raises(CacheConfigError) as raised:
        expire_after_seconds(duration)
    assert str(raised.value) == (
        f"CacheConfig ExpireAfter {duration!r} is not an ISO 8601 duration such as P7D or PT12H"
    )


def test_caching_reads_the_step_cache_config_with_its_default_expiry() -> None:
    assert caching({"Name": "S"}) == (False, 0.0)
    assert caching({"CacheConfig": {"Enabled": False, "ExpireAfter": "P1D"}}) == (False, 0.0)
    assert caching({"CacheConfig": {"Enabled": True}}) == (True, 30 * DAY)
    assert caching({"CacheConfig": {"Enabled": True, "ExpireAfter": "PT12H"}}) == (True, 12 * 3600.0)
    with pytest.raises(CacheConfigError, match="'7 days'"):
        caching({"CacheConfig": {"Enabled": True, "ExpireAfter": "7 days"}})


TRAINING: dict[str, Any] = {
    "TrainingJobName": "train-1",
    "AlgorithmSpecification": {"TrainingImage": "ipinsights:1", "TrainingInputMode": "File"},
    "HyperParameters": {"vector_dim": "16", "epochs": "4"},
    "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train/"}}}],
    "Environment": {"MODE": "a"},
    "CheckpointConfig": {"S3Uri": "s3://b/checkpoints/"},
    "OutputDataConfig": {"S3OutputPath": "s3://b/runs/exec-1/model"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "RoleArn": "arn:aws:iam::1:role/a",
    "Tags": [{"Key": "team", "Value": "a"}],
}
TRANSFORM: dict[str, Any] = {
    "TransformJobName": "transform-1",
    "ModelName": "model-1",
    "TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": "s3://b/in/"}}, "ContentType": "text/csv"},
    "Environment": {"MODE": "a"},
    "DataProcessing": {"InputFilter": "$[1:]"},
    "TransformOutput": {"S3OutputPath": "s3://b/runs/exec-1/out"},
    "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    "Tags": [{"Key": "team", "Value": "a"}],
}
TUNING: dict[str, Any] = {
    "HyperParameterTuningJobName": "tune-1",
    "HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "ResourceLimits": {"MaxNumberOfTrainingJobs": 4}},
    "TrainingJobDefinition": {
        "AlgorithmSpecification": {"TrainingImage": "ipinsights:1", "TrainingInputMode": "File"},
        "HyperParameterRanges": {"IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "4"}]},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train/"}}}],
        "StaticHyperParameters": {"vector_dim": "16"},
        "TuningObjective": {"Type": "Maximize", "MetricName": "validation:discriminator_auc"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/runs/exec-1/tuning"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "RoleArn": "arn:aws:iam::1:role/a",
    },
    "WarmStartConfig": {"WarmStartType": "IdenticalDataAndAlgorithm", "ParentHyperParameterTuningJobs": []},
    "Tags": [{"Key": "team", "Value": "a"}],
}


def _changed(arguments: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(arguments)
    target = changed
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return changed


# (step type, its arguments, the attribute changed, the new value, whether the guide lists it as a key attribute)
KEY_CASES: list[tuple[str, dict[str, Any], tuple[str, ...], object, bool]] = [
    ("Training", TRAINING, ("HyperParameters", "epochs"), "5", True),
    ("Training", TRAINING, ("InputDataConfig",), [{"ChannelName": "train", "S3Uri": "s3://b/other/"}], True),
    ("Training", TRAINING, ("AlgorithmSpecification", "TrainingImage"), "ipinsights:2", True),
    ("Training", TRAINING, ("Environment", "MODE"), "b", True),
    ("Training", TRAINING, ("CheckpointConfig", "S3Uri"), "s3://b/elsewhere/", True),
    ("Training", TRAINING, ("DebugHookConfig",), {"S3OutputPath": "s3://b/debug/"}, True),
    ("Training", TRAINING, ("TrainingJobName",), "train-2", False),
    ("Training", TRAINING, ("OutputDataConfig", "S3OutputPath"), "s3://b/runs/exec-2/model", False),
    ("Training", TRAINING, ("ResourceConfig", "InstanceType"), "ml.c5.xlarge", False),
    ("Training", TRAINING, ("StoppingCondition", "MaxRuntimeInSeconds"), 60, False),
    ("Training", TRAINING, ("Tags",), [{"Key": "team", "Value": "b"}], False),
    ("Transform", TRANSFORM, ("ModelName",), "model-2", True),
    ("Transform", TRANSFORM, ("TransformInput", "ContentType"), "application/json", True),
    ("Transform", TRANSFORM, ("Environment", "MODE"), "b", True),
    ("Transform", TRANSFORM, ("DataProcessing", "InputFilter"), "$", True),
    ("Transform", TRANSFORM, ("TransformJobName",), "transform-2", False),
    ("Transform", TRANSFORM, ("TransformOutput", "S3OutputPath"), "s3://b/runs/exec-2/out", False),
    ("Transform", TRANSFORM, ("TransformResources", "InstanceCount"), 2, False),
    ("Transform", TRANSFORM, ("Tags",), [], False),
    ("Tuning", TUNING, ("TrainingJobDefinition", "StaticHyperParameters", "vector_dim"), "32", True),
    ("Tuning", TUNING, ("TrainingJobDefinition", "HyperParameterRanges"), {}, True),
    ("Tuning", TUNING, ("TrainingJobDefinition", "TuningObjective", "Type"), "Minimize", True),
    ("Tuning", TUNING, ("TrainingJobDefinition", "InputDataConfig"), [], True),
    ("Tuning", TUNING, ("TrainingJobDefinition", "AlgorithmSpecification", "TrainingImage"), "ipinsights:2", True),
    ("Tuning", TUNING, ("HyperParameterTuningJobConfig", "Strategy"), "Random", True),
    ("Tuning", TUNING, ("WarmStartConfig", "WarmStartType"), "TransferLearning", True),
    ("Tuning", TUNING, ("TrainingJobDefinitions",), [{"DefinitionName": "d"}], True),
    ("Tuning", TUNING, ("TrainingJobDefinition", "OutputDataConfig", "S3OutputPath"), "s3://b/runs/x/tuning", False),
    ("Tuning", TUNING, ("TrainingJobDefinition", "ResourceConfig", "InstanceType"), "ml.c5.xlarge", False),
    ("Tuning", TUNING, ("TrainingJobDefinition", "StoppingCondition", "MaxRuntimeInSeconds"), 60, False),
    ("Tuning", TUNING, ("TrainingJobDefinition", "RoleArn"), "arn:aws:iam::1:role/b", False),
    ("Tuning", TUNING, ("HyperParameterTuningJobName",), "tune-2", False),
    ("Tuning", TUNING, ("Tags",), [], False),
]


@pytest.mark.parametrize(
    ("step_type", "arguments", "path", "value", "listed"),
    KEY_CASES,
    ids=[f"{c[0]}-{'.'.join(c[2])}-{'changes' if c[4] else 'keeps'}" for c in KEY_CASES],
)
def test_only_the_attributes_the_guide_lists_change_the_cache_key(
    step_type: str, arguments: dict[str, Any], path: tuple[str, ...], value: object, listed: bool
) -> None:
    before = cache_key(step_type, arguments)
    after = cache_key(step_type, _changed(arguments, path, value))
    assert before is not None and len(before) == 64  # a SHA-256 hex digest
    assert (after != before) is listed


def test_of_a_tuning_training_definition_only_its_listed_children_count() -> None:
    assert TRAINING_DEFINITION_CHILDREN == (
        "AlgorithmSpecification",
        "HyperParameterRanges",
        "InputDataConfig",
        "StaticHyperParameters",
        "TuningObjective",
    )
    children_only = {
        **TUNING,
        "TrainingJobDefinition": {n: TUNING["TrainingJobDefinition"][n] for n in TRAINING_DEFINITION_CHILDREN},
    }
    assert cache_key("Tuning", children_only) == cache_key("Tuning", TUNING)
    assert cache_key("Tuning", {**TUNING, "TrainingJobDefinition": {}}) != cache_key("Tuning", TUNING)


@pytest.mark.parametrize("step_type", ["Model", "RegisterModel", "Condition", "Fail"])
def test_step_types_never_cached_have_no_key(step_type: str) -> None:
    assert cache_key(step_type, TRAINING) is None


def _failing_on_demand(runs: Path) -> dict[str, Any]:
    """_scheduled's cached step, with the JOB script's `--fail` from the parameter Fail."""
    definition = _scheduled(runs)
    definition["Parameters"].append({"Name": "Fail", "Type": "String", "DefaultValue": "no"})
    arguments = definition["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"]
    arguments += ["--fail", {"Get": "Parameters.Fail"}]
    return definition


def test_a_failed_run_of_a_cached_step_is_not_reused(executor: LocalExecutor, tmp_path: Path) -> None:  # noqa: F811
    """`--fail` is a container argument, so part of the key (AppSpecification): the same failing request twice runs
    the job twice, each time failing with the job's own exit code and words, never a cache hit of the failure; the
    succeeding request's key is another, and its result is then reused."""
    runs = tmp_path / "runs.txt"
    definition = _failing_on_demand(runs)
    step = definition["Steps"][0]
    app = step["Arguments"]["AppSpecification"]
    with_flag = {
        flag: {
            **step["Arguments"],
            "AppSpecification": {**app, "ContainerArguments": [*app["ContainerArguments"][:-1], flag]},
        }
        for flag in ("yes", "no")
    }
    assert cache_key("Processing", with_flag["yes"]) != cache_key("Processing", with_flag["no"])

    failures = [executor.execute(definition, "p", {"EndDay": "d1", "Fail": "yes"}) for _ in range(2)]
    for failed in failures:
        assert failed.status == "Failed"
        assert failed.failure is not None and failed.failure.startswith("Prepare: JobFailedError: exit code 3")
        assert "something broke in the job" in failed.failure  # the job itself ran and said so
        [run] = executor.store.step_runs(failed.execution)
        assert (run.status, run.properties) == ("Failed", {})
    assert not runs.exists()

    succeeded = executor.execute(definition, "p", {"EndDay": "d1", "Fail": "no"})
    reused = executor.execute(definition, "p", {"EndDay": "d1", "Fail": "no"})
    assert (succeeded.status, reused.status) == ("Succeeded", "Succeeded")
    assert _cache_hit_source(executor, succeeded.execution) is None
    assert _cache_hit_source(executor, reused.execution) == {"SourceExecution": succeeded.execution}
    assert runs.read_text().splitlines() == ["d1"]


def test_after_a_failure_the_same_cache_key_runs_the_job_again(executor: LocalExecutor, tmp_path: Path) -> None:  # noqa: F811
    """The key holds the code's S3 URI, not its bytes: a job that failed, its code replaced at the same URI, has the
    same key on the next execution; the failure was not remembered, so the job runs and its success is cached."""
    runs = tmp_path / "runs.txt"
    definition = _scheduled(runs)
    failing = "import sys\nsys.argv += ['--fail', 'yes']  # the JOB script's own failure\n" + JOB
    executor.s3.put_bytes(CODE_URI, failing.encode())
    seen: list[tuple[str, str]] = []
    executor.on_step = lambda step, status: seen.append((step, status))

    failed = executor.execute(definition, "p", {"EndDay": "d1"})
    assert failed.status == "Failed"
    assert failed.failure is not None and failed.failure.startswith("Prepare: JobFailedError: exit code 3")
    executor.s3.put_bytes(CODE_URI, JOB.encode())
    fixed = executor.execute(definition, "p", {"EndDay": "d1"})
    reused = executor.execute(definition, "p", {"EndDay": "d1"})

    assert (fixed.status, reused.status) == ("Succeeded", "Succeeded")
    assert runs.read_text().splitlines() == ["d1"]  # the fixed job ran once, the third execution reused it
    assert _cache_hit_source(executor, fixed.execution) is None
    assert _cache_hit_source(executor, reused.execution) == {"SourceExecution": fixed.execution}
    assert seen == [
        ("Prepare", "Executing"),
        ("Prepare", "Failed"),
        ("Prepare", "Executing"),
        ("Prepare", "Succeeded"),
        ("Prepare", "Executing"),
        ("Prepare", CACHE_HIT_STATUS),
    ]
