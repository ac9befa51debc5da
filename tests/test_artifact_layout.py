"""The run's artifact layout is declared once (scripts/handoff/artifacts.py): the definition, the monitor's IAM and the
evaluation job agree with it."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import load_config
from pipeline.definition import definition_json
from scripts.handoff.artifacts import (
    EVALUATION_FILE,
    ArtifactLayout,
    endpoint_config_name,
    execution_of,
    execution_of_endpoint_config,
    iam_object_patterns,
)
from tests.cfn import load_template
from tests.steps_of import all_steps

ROOT = Path(__file__).resolve().parent.parent


def test_uris_and_execution_ids() -> None:
    layout = ArtifactLayout("s3://b/p/")
    assert layout.history("e1") == "s3://b/p/runs/e1/prepared/history/history.parquet"
    assert layout.evaluation("e1") == "s3://b/p/runs/e1/evaluation/evaluation.json"
    assert layout.manifest("e1") == "s3://b/p/runs/e1/evaluation/manifest.json"
    assert layout.code("abc", "x.py") == "s3://b/p/code/abc/x.py" and layout.models == "s3://b/p/models"
    assert execution_of(layout.history("local-1")) == "local-1"
    assert execution_of("s3://b/p/elsewhere/x") is None


def test_the_monitor_template_grants_exactly_the_layouts_objects() -> None:
    text = json.dumps(load_template())
    for pattern in iam_object_patterns().values():
        assert f"${{ArtifactBucket}}/${{ArtifactPrefix}}/{pattern}" in text, pattern


def test_the_definition_reads_the_evaluation_where_the_layout_puts_it() -> None:
    definition = definition_json(load_config(profile="prod", environ={}))
    assert f'"Path": "{EVALUATION_FILE}"' in definition or f'"FilePath": "{EVALUATION_FILE}"' in definition


def test_the_endpoint_config_names_the_execution_it_deploys() -> None:
    name = endpoint_config_name("seclake-ipinsights", "local-7f3a")
    assert name == "seclake-ipinsights-local-7f3a"
    assert execution_of_endpoint_config("seclake-ipinsights", name) == "local-7f3a"
    assert execution_of_endpoint_config("seclake-ipinsights", "hand-made-config") is None
    assert execution_of_endpoint_config("seclake-ipinsights", "seclake-ipinsights-") is None
    definition = json.loads(definition_json(load_config(profile="prod", environ={})))
    joined = [
        step["Arguments"]["EndpointConfigName"] for step in all_steps(definition) if step["Type"] == "EndpointConfig"
    ]
    assert joined == [
        {"Std:Join": {"On": "-", "Values": ["seclake-ipinsights", {"Get": "Execution.PipelineExecutionId"}]}}
    ]
