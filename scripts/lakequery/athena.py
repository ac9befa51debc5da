"""Run one statement on Athena and wait for it: StartQueryExecution, then GetQueryExecution until it ends."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_CATALOG = "AwsDataCatalog"
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaQueryError(RuntimeError):
    """A statement did not succeed; the message carries Athena's reason and the query execution id."""


@dataclass(frozen=True)
class QueryTarget:
    """Where statements run: the workgroup, the catalog and database they resolve names in, and where Athena writes
    its result metadata and manifests (None: the workgroup's own result location)."""

    workgroup: str
    database: str
    catalog: str = DEFAULT_CATALOG
    results_uri: str | None = None


@dataclass(frozen=True)
class QueryOutcome:
    """A finished statement."""

    query_execution_id: str
    data_scanned_bytes: int
    engine_milliseconds: int


def request_token(statement: str, scope: str) -> str:
    """Athena's idempotency token: a retried job with the same statement and scope gets the same query back."""
    return hashlib.sha256(f"{scope}\n{statement}".encode()).hexdigest()[:64]


def start_request(statement: str, target: QueryTarget, scope: str) -> dict[str, Any]:
    """The StartQueryExecution request for a statement."""
    request: dict[str, Any] = {
        "QueryString": statement,
        "ClientRequestToken": request_token(statement, scope),
        "QueryExecutionContext": {"Database": target.database, "Catalog": target.catalog},
        "WorkGroup": target.workgroup,
    }
    if target.results_uri:
        request["ResultConfiguration"] = {"OutputLocation": target.results_uri}
    return request


def run_statement(
    client: Any,
    statement: str,
    target: QueryTarget,
    scope: str,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> QueryOutcome:
    """Start the statement and poll until it ends; AthenaQueryError unless it succeeded."""
    query_id = client.start_query_execution(**start_request(statement, target, scope))["QueryExecutionId"]
    while True:
        execution = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        status = execution.get("Status", {})
        state = status.get("State")
        if state in FINISHED:
            break
        sleep(poll_seconds)
    if state != "SUCCEEDED":
        error = status.get("AthenaError", {}).get("ErrorMessage")
        reason = status.get("StateChangeReason") or error or "no reason given"
        message = (
            f"Athena query {query_id} in workgroup {target.workgroup!r} ended {state}: {reason}. Check that this "
            f"role may read {target.catalog}.{target.database} (Lake Formation SELECT on the tables, DESCRIBE on "
            "resource links) and use the workgroup; an UNLOAD also needs its destination empty and writable."
        )
        raise AthenaQueryError(message)
    statistics = execution.get("Statistics", {})
    return QueryOutcome(
        query_id,
        int(statistics.get("DataScannedInBytes", 0)),
        int(statistics.get("EngineExecutionTimeInMillis", 0)),
    )
