"""The local Athena reads both protocols Athena clients speak, routed by the installed botocore's service model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import botocore.session
import pytest
from botocore.model import ServiceModel
from botocore.serialize import create_serializer

from pipeline.local.athena import TARGET_PREFIX, local_athena, local_client
from pipeline.local.aws_protocol import (
    JSON_11,
    REST_JSON,
    BadRequestError,
    ServiceProtocol,
    UnsupportedProtocolError,
)
from scripts.lakequery.athena import QueryTarget, run_statement
from scripts.ocsf.layout import glue_database

REGION = "us-east-1"
TARGET = QueryTarget("primary", glue_database(REGION))
# What the project sends Athena (scripts/lakequery/athena.py, pipeline/findings_view.py), member for member.
CALLS: dict[str, dict[str, Any]] = {
    "StartQueryExecution": {
        "QueryString": "SELECT 1",
        "ClientRequestToken": "t" * 64,
        "QueryExecutionContext": {"Database": "db", "Catalog": "AwsDataCatalog"},
        "WorkGroup": "security",
        "ResultConfiguration": {"OutputLocation": "s3://artifacts/athena-results/"},
    },
    "GetQueryExecution": {"QueryExecutionId": "0b1c/2d"},
    "GetQueryResults": {"QueryExecutionId": "q-1", "NextToken": "page 2", "MaxResults": 7},
}


def _installed_model() -> dict[str, Any]:
    loader = botocore.session.get_session().get_component("data_loader")
    return dict(loader.load_service_model("athena", "service-2"))


def _as_json_11(model: dict[str, Any]) -> dict[str, Any]:
    """The same API as a JSON 1.1 model, as the botocore the job images pin has it: one POST / per operation, every
    member in the body."""
    converted = copy.deepcopy(model)
    converted["metadata"].update(protocol=JSON_11, protocols=[JSON_11], jsonVersion="1.1", targetPrefix=TARGET_PREFIX)
    for operation in converted["operations"].values():
        operation["http"] = {"method": "POST", "requestUri": "/"}
    for shape in converted["shapes"].values():
        for member in shape.get("members", {}).values():
            member.pop("location", None)
            member.pop("locationName", None)
    return converted


def _wire(model: dict[str, Any], operation: str, params: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    """The HTTP request botocore's own serializer makes of `params` under `model`."""
    service = ServiceModel(model, "athena")
    request = create_serializer(service.protocol).serialize_to_request(params, service.operation_model(operation))
    query = urlencode(request["query_string"], doseq=True)
    target = request["url_path"] + (f"?{query}" if query else "")
    body = request["body"] if isinstance(request["body"], bytes) else str(request["body"]).encode()
    return request["method"], target, dict(request["headers"]), body


@pytest.mark.parametrize("operation", list(CALLS))
@pytest.mark.parametrize("wire_protocol", ["installed", JSON_11])
def test_every_call_the_project_makes_reads_back_as_sent(operation: str, wire_protocol: str) -> None:
    installed = _installed_model()
    model = installed if wire_protocol == "installed" else _as_json_11(installed)
    received = ServiceProtocol.of("athena", TARGET_PREFIX).read(*_wire(model, operation, CALLS[operation]))
    assert (received.operation, received.params) == (operation, CALLS[operation])
    assert received.protocol == model["metadata"]["protocol"]


def test_the_locked_botocore_reaches_it_in_the_protocol_its_model_declares(tmp_path: Path) -> None:
    with local_athena(tmp_path) as (endpoint, athena):
        client = local_client(endpoint, REGION)
        outcome = run_statement(client, "SELECT 41 + 1 AS answer", TARGET, "scope")
        results = client.get_query_results(QueryExecutionId=outcome.query_execution_id, MaxResults=5)
        with pytest.raises(client.exceptions.InvalidRequestException, match="does not implement ListQueryExecutions"):
            client.list_query_executions()
    assert results["ResultSet"]["Rows"] == [{"Data": [{"VarCharValue": "answer"}]}, {"Data": [{"VarCharValue": "42"}]}]
    assert {request.protocol for request in athena.requests} == {client.meta.service_model.protocol}
    assert athena.requests[-2].params == {"QueryExecutionId": outcome.query_execution_id, "MaxResults": 5}


def test_a_json_11_request_gets_a_json_11_answer(tmp_path: Path) -> None:
    import urllib.request

    method, target, headers, body = _wire(
        _as_json_11(_installed_model()), "StartQueryExecution", CALLS["StartQueryExecution"]
    )
    with local_athena(tmp_path) as (endpoint, athena):
        request = urllib.request.Request(endpoint + target, data=body, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
            content_type = response.headers["Content-Type"]
    assert content_type == "application/x-amz-json-1.1"
    assert list(answer) == ["QueryExecutionId"]
    assert [r.protocol for r in athena.requests] == [JSON_11]
    assert athena.queries[answer["QueryExecutionId"]].execution["WorkGroup"] == "security"


def test_a_protocol_it_does_not_speak_fails_naming_it_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _installed_model()
    model["metadata"] = {**model["metadata"], "protocol": "smithy-rpc-v2-cbor", "protocols": ["smithy-rpc-v2-cbor"]}

    def cbor_model(self: Any, service_name: str, api_version: str | None = None) -> ServiceModel:
        return ServiceModel(model, service_name)

    monkeypatch.setattr(botocore.session.Session, "get_service_model", cbor_model)
    with pytest.raises(UnsupportedProtocolError, match=r"smithy-rpc-v2-cbor.*aws_protocol\.py"):
        ServiceProtocol.of("athena", TARGET_PREFIX)


def test_a_request_no_route_answers_is_refused_with_the_path() -> None:
    protocol = ServiceProtocol.of("athena", TARGET_PREFIX)
    with pytest.raises(BadRequestError, match="PATCH /nowhere"):
        protocol.read("PATCH", "/nowhere", {}, b"")
    with pytest.raises(BadRequestError, match="not an object"):
        protocol.read("POST", "/", {"X-Amz-Target": f"{TARGET_PREFIX}.GetQueryExecution"}, b"[1]")
    if REST_JSON in protocol.protocols:
        assert protocol.read("GET", "/query-executions/q%2F1", {}, b"").params == {"QueryExecutionId": "q/1"}
