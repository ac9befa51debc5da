"""Every step's Arguments against the botocore request shape of the API it becomes; Condition and Fail against the
definition schema; the schedule's StartPipelineExecution input against its shape. Expressions become typed values."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from pipeline import aws_ops
from pipeline.config import load_config
from pipeline.definition import definition_json
from tests.steps_of import all_steps

# Step type -> (API, the name field the service fills in, which the SDK leaves out of the definition).
OPERATIONS = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Model": ("CreateModel", "ModelName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "RegisterModel": ("CreateModelPackage", None),
    "EndpointConfig": ("CreateEndpointConfig", None),
    "Endpoint": ("CreateEndpoint", None),
}
EXPRESSIONS = ("Get", "Std:Join", "Std:JsonGet")
# "Conditions" of a ConditionStep (the published definition schema's BinaryCondition and its step types).
CONDITION_TYPES = {"GreaterThan", "LessThan", "LessThanOrEqualTo", "GreaterThanOrEqualTo", "Equals", "NotEquals"}
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def _is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSIONS


def typed(value: Any, shape: Any) -> Any:
    """The value with every pipeline expression replaced by a placeholder of the type the shape wants there."""
    if _is_expression(value):
        kind = shape.type_name
        if kind == "string":
            enum = shape.enum
            return enum[0] if enum else "s3://placeholder/key" if "Uri" in shape.name or "Url" in shape.name else "x"
        return {"integer": 1, "long": 1, "float": 0.5, "double": 0.5, "boolean": True}.get(kind, "x")
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: typed(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [typed(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: typed(v, shape.value) for k, v in value.items()}
    return value


def _steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return all_steps(definition)


# Query access with accounts and a resource link named: the QueryLake step's optional arguments present
ATHENA_ACCESS = {
    "SECLAKE_LAKE__ACCESS": "athena",
    "SECLAKE_LAKE__ACCOUNTS": "['123456789012', '000011112222']",
    "SECLAKE_LAKE__ATHENA__TABLES": "{route53: my_route53_link}",
}


@pytest.fixture(scope="module", params=["prod", "local", "athena"])
def definition(request: pytest.FixtureRequest) -> dict[str, Any]:
    profile, environ = ("prod", ATHENA_ACCESS) if request.param == "athena" else (request.param, {})
    return dict(json.loads(definition_json(load_config(profile=profile, environ=environ))))


def test_every_step_is_a_valid_request_of_its_api(definition: dict[str, Any]) -> None:
    checked = set()
    for step in _steps(definition):
        if step["Type"] in {"Condition", "Fail"}:
            continue
        operation, name_field = OPERATIONS[step["Type"]]
        shape = SAGEMAKER.operation_model(operation).input_shape
        request = dict(step["Arguments"])
        if name_field:
            request.setdefault(name_field, "placeholder-name")
        report = ParamValidator().validate(typed(request, shape), shape)
        assert not report.has_errors(), f"{step['Name']} as {operation}:\n{report.generate_report()}"
        checked.add(step["Type"])
    assert checked == set(OPERATIONS) - {"Training"}  # tuning is on by default; the next test covers training


def test_the_training_step_is_a_valid_request_when_tuning_is_off() -> None:
    config = load_config(profile="prod", environ={"SECLAKE_TUNING__ENABLED": "false"})
    [training] = [s for s in json.loads(definition_json(config))["Steps"] if s["Type"] == "Training"]
    shape = SAGEMAKER.operation_model("CreateTrainingJob").input_shape
    request = {"TrainingJobName": "placeholder-name", **training["Arguments"]}
    report = ParamValidator().validate(typed(request, shape), shape)
    assert not report.has_errors(), report.generate_report()


def test_a_wrong_request_is_caught() -> None:
    """The check can fail: a string where CreateProcessingJob wants an integer, and an unknown field."""
    shape = SAGEMAKER.operation_model("CreateProcessingJob").input_shape
    request = {
        "ProcessingJobName": "x",
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "AppSpecification": {"ImageUri": "i"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": "two", "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}
        },
        "Unknown": 1,
    }
    report = ParamValidator().validate(typed(request, shape), shape).generate_report()
    assert "InstanceCount" in report and "Unknown" in report


def test_condition_and_fail_steps_follow_the_definition_schema(definition: dict[str, Any]) -> None:
    step_keys = {"Name", "Type", "Arguments", "DependsOn", "DisplayName", "Description"}
    for step in _steps(definition):
        if step["Type"] == "Condition":
            assert set(step) <= step_keys, step["Name"]
            arguments = step["Arguments"]
            assert set(arguments) <= {"Conditions", "IfSteps", "ElseSteps"} and arguments["Conditions"]
            for condition in arguments["Conditions"]:
                assert set(condition) == {"Type", "LeftValue", "RightValue"}
                assert condition["Type"] in CONDITION_TYPES
                for side in (condition["LeftValue"], condition["RightValue"]):
                    assert _is_expression(side) or isinstance(side, str | int | float | bool)
        if step["Type"] == "Fail":
            assert set(step) <= step_keys, step["Name"]
            assert set(step["Arguments"]) <= {"ErrorMessage"}
            message = step["Arguments"]["ErrorMessage"]
            assert isinstance(message, str) or _is_expression(message)


def test_the_schedule_input_is_a_valid_start_pipeline_execution() -> None:
    config = load_config(profile="prod", environ={})
    target = aws_ops.schedule_target(config)
    shape = SAGEMAKER.operation_model("StartPipelineExecution").input_shape
    request = json.loads(target["Input"].replace(aws_ops.SCHEDULED_TIME, "2026-11-30T03:00:00Z"))
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    scheduler = botocore.session.get_session().get_service_model("scheduler")
    schedule_shape = scheduler.operation_model("CreateSchedule").input_shape
    schedule = {
        "Name": aws_ops.SCHEDULE_NAME,
        "ScheduleExpression": "cron(0 3 * * ? *)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": target,
    }
    assert not ParamValidator().validate(schedule, schedule_shape).has_errors()
