"""A local Athena: the Athena API (over HTTP on 127.0.0.1) answered by DuckDB over the local lake.

Jobs and the CLI call it with boto3, exactly as they call Athena (the endpoint comes from AWS_ENDPOINT_URL_ATHENA), so
the statements they send are the ones Athena gets. It reads both protocols Athena clients speak, as the installed
botocore's service model lays them out (`pipeline/local/aws_protocol.py`): JSON 1.1, which the job images' older boto3
sends, and REST JSON, which newer botocore sends. The catalog is what Security Lake creates: per region bucket, the
database `amazon_security_lake_glue_db_<region>` with a table per native source and version
(`..._vpc_flow_2_0`, reading every local lake bucket, as the rollup region's table holds every region) and one per
custom source (`..._ext_<name>`). v1 tables are Hive-partitioned (region, accountid, eventday from the object keys);
v2 rows carry region, accountid and time_dt themselves. UNLOAD runs as DuckDB's COPY into local S3 and, as on Athena,
fails when the destination already holds objects.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol

from pipeline.local.aws_protocol import (
    CONTENT_TYPES,
    ERROR_TYPE_HEADER,
    BadRequestError,
    ReceivedRequest,
    ServiceProtocol,
)
from pipeline.local.identity import AccessDeniedError
from pipeline.local.loopback import serving
from pipeline.local.s3map import S3Map, local_lake_buckets
from scripts.lakequery.sql import literal, parse_unload, quoted
from scripts.ocsf.layout import CUSTOM_SOURCE_PREFIX, custom_source_table, glue_database, glue_table
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source

TARGET_PREFIX = "AmazonAthena"  # Athena's JSON 1.1 target prefix (X-Amz-Target: AmazonAthena.<Operation>)
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # the local Athena checks none
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_ATHENA"
MAX_RESULT_ROWS = 1000


@dataclass(frozen=True)
class LocalTable:
    """A table of the local catalog: its parquet globs and whether its partitions come from the object keys."""

    database: str
    name: str
    globs: tuple[str, ...]
    hive_partitions: bool


def local_catalog(s3_root: Path) -> list[LocalTable]:
    """The tables Security Lake would have created for what the local lake holds."""
    buckets = local_lake_buckets(s3_root)
    tables = []
    for region, _ in buckets:
        database = glue_database(region)
        for source in Source:
            for version, info in SOURCE_VERSIONS.items():
                globs = tuple(
                    str(folder / "aws" / source.value / info.folder / "**" / "*.parquet")
                    for _, folder in buckets
                    if (folder / "aws" / source.value / info.folder).is_dir()
                )
                if globs:
                    tables.append(LocalTable(database, glue_table(region, source, version), globs, version == 1))
        names = sorted({p.name for _, folder in buckets for p in (folder / CUSTOM_SOURCE_PREFIX).glob("*/")})
        for name in names:
            globs = tuple(
                str(folder / CUSTOM_SOURCE_PREFIX / name / "**" / "*.parquet")
                for _, folder in buckets
                if any((folder / CUSTOM_SOURCE_PREFIX / name).rglob("*.parquet"))
            )
            if globs:
                tables.append(LocalTable(database, custom_source_table(region, name), globs, True))
    return tables


def _view_sql(table: LocalTable) -> str:
    files = "[" + ", ".join(literal(g) for g in table.globs) + "]"
    if not table.hive_partitions:
        source = f"read_parquet({files})"
        return f"CREATE VIEW {quoted(table.database)}.{quoted(table.name)} AS SELECT * FROM {source}"
    types = "{'region': VARCHAR, 'accountId': VARCHAR, 'eventDay': VARCHAR}"
    source = f"read_parquet({files}, hive_partitioning = true, hive_types = {types}, union_by_name = true)"
    # Glue lower-cases partition keys: accountId=... and eventDay=... become the columns accountid and eventday
    return (
        f"CREATE VIEW {quoted(table.database)}.{quoted(table.name)} AS SELECT * EXCLUDE (accountId, eventDay), "
        f"accountId AS accountid, eventDay AS eventday FROM {source}"
    )


class QueryFailedError(RuntimeError):
    """A statement failed as Athena would report it (the message is its StateChangeReason)."""


@dataclass
class LocalQueryEngine:
    """DuckDB with the local catalog's views; runs SELECT and UNLOAD."""

    s3: S3Map
    connection: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    unavailable: dict[str, str] = field(default_factory=dict)  # table -> why it could not be declared
    tables: list[LocalTable] = field(default_factory=list)

    def __post_init__(self) -> None:
        import duckdb

        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        self.tables = local_catalog(self.s3.root)
        for table in self.tables:
            self.connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(table.database)}")
            try:
                self.connection.execute(_view_sql(table))
            except duckdb.Error as error:  # one unreadable table leaves the others usable; queries on it say why
                self.unavailable[f"{table.database}.{table.name}"] = str(error).splitlines()[0]

    def run(self, statement: str, query_id: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a SELECT; an UNLOAD writes its parquet and returns no rows."""
        import duckdb

        with self.lock:
            try:
                parsed = parse_unload(statement)
                if parsed is None:
                    cursor = self.connection.execute(statement)
                    names = [d[0] for d in cursor.description or []]
                    return names, cursor.fetchmany(MAX_RESULT_ROWS)
                destination = self.s3.to_local(parsed.destination)
                if destination.exists() and any(p.is_file() for p in destination.rglob("*")):
                    message = (
                        f"HIVE_PATH_ALREADY_EXISTS: Target directory for UNLOAD already exists: {parsed.destination}. "
                        "UNLOAD writes only to an empty location"
                    )
                    raise QueryFailedError(message)
                destination.mkdir(parents=True, exist_ok=True)
                codec = parsed.properties.get("compression", "SNAPPY").upper()
                # Athena names UNLOAD's files after the query, without an extension
                target = destination / f"{query_id}_00000"
                self.connection.execute(
                    f"COPY ({parsed.select}) TO {literal(str(target))} (FORMAT PARQUET, COMPRESSION {codec})"
                )
                return [], []
            except duckdb.Error as error:
                reason = str(error).splitlines()[0]
                if self.unavailable:
                    reason += f" (tables the local catalog could not declare: {self.unavailable})"
                raise QueryFailedError(reason) from error


@dataclass
class _Query:
    execution: dict[str, Any]
    columns: list[str]
    rows: list[tuple[Any, ...]]


class Caller(Protocol):
    """Who calls the local Athena, as the identity checks it (pipeline/local/authorization.py builds one)."""

    def authorize(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> None: ...

    def arn(self, service: str, resource: str) -> str: ...


class LocalAthena:
    """The state behind the API: queries by id, idempotency tokens; each call checked as its caller when known."""

    def __init__(self, engine: LocalQueryEngine, caller: Caller | None = None) -> None:
        self.engine = engine
        self.caller = caller
        self.queries: dict[str, _Query] = {}
        self.tokens: dict[str, str] = {}
        self.requests: list[ReceivedRequest] = []

    def _authorize_query(self, request: dict[str, Any], query_id: str) -> None:
        """What Athena does as the caller: read the catalog (Glue), get the data (Lake Formation), write the UNLOAD's
        files and the results."""
        caller = self.caller
        if caller is None:
            return
        statement = request["QueryString"]
        for table in self.engine.tables:
            if f"{table.database}.{table.name}" not in statement.replace('"', ""):
                continue
            on_table = [
                caller.arn("glue", "catalog"),
                caller.arn("glue", f"database/{table.database}"),
                caller.arn("glue", f"table/{table.database}/{table.name}"),
            ]
            for action in ("glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"):
                for resource in on_table[: 2 if action == "glue:GetDatabase" else 3]:
                    caller.authorize(action, resource)
            caller.authorize("lakeformation:GetDataAccess", "*")
        parsed = parse_unload(statement)
        if parsed is not None:
            bucket, _, key = parsed.destination.removeprefix("s3://").partition("/")
            caller.authorize("s3:PutObject", f"arn:aws:s3:::{bucket}/{key.rstrip('/')}/{query_id}_00000")
        output = request.get("ResultConfiguration", {}).get("OutputLocation")
        if output:
            bucket, _, key = output.removeprefix("s3://").partition("/")
            caller.authorize("s3:PutObject", f"arn:aws:s3:::{bucket}/{key.rstrip('/')}/{query_id}.csv")

    def start_query_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        token = request.get("ClientRequestToken")
        if token and token in self.tokens:
            return {"QueryExecutionId": self.tokens[token]}
        query_id = str(uuid.uuid4())
        self._authorize_query(request, query_id)
        submitted = dt.datetime.now(dt.UTC).timestamp()
        status: dict[str, Any] = {"State": "SUCCEEDED", "SubmissionDateTime": submitted}
        columns: list[str] = []
        rows: list[tuple[Any, ...]] = []
        try:
            columns, rows = self.engine.run(request["QueryString"], query_id)
        except QueryFailedError as error:
            status.update({"State": "FAILED", "StateChangeReason": str(error)})
        status["CompletionDateTime"] = dt.datetime.now(dt.UTC).timestamp()
        execution = {
            "QueryExecutionId": query_id,
            "Query": request["QueryString"],
            "StatementType": "DML",
            "QueryExecutionContext": request.get("QueryExecutionContext", {}),
            "WorkGroup": request.get("WorkGroup", "primary"),
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": int((status["CompletionDateTime"] - submitted) * 1000),
                "DataScannedInBytes": 0,
            },
        }
        self.queries[query_id] = _Query(execution, columns, rows)
        if token:
            self.tokens[token] = query_id
        return {"QueryExecutionId": query_id}

    def _query(self, request: dict[str, Any]) -> _Query:
        query_id = request.get("QueryExecutionId", "")
        if query_id not in self.queries:
            message = f"QueryExecution {query_id} was not found"
            raise KeyError(message)
        return self.queries[query_id]

    def get_query_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"QueryExecution": self._query(request).execution}

    def get_query_results(self, request: dict[str, Any]) -> dict[str, Any]:
        query = self._query(request)
        header = {"Data": [{"VarCharValue": name} for name in query.columns]}
        body = [{"Data": [{} if v is None else {"VarCharValue": str(v)} for v in row]} for row in query.rows]
        return {
            "ResultSet": {
                "Rows": [header, *body] if query.columns else [],
                "ResultSetMetadata": {"ColumnInfo": [{"Name": n, "Type": "varchar"} for n in query.columns]},
            }
        }

    def handle(self, request: ReceivedRequest) -> dict[str, Any]:
        self.requests.append(request)
        if self.caller is not None:
            query = self.queries.get(request.params.get("QueryExecutionId", ""))
            workgroup = query.execution["WorkGroup"] if query else request.params.get("WorkGroup", "primary")
            self.caller.authorize(f"athena:{request.operation}", self.caller.arn("athena", f"workgroup/{workgroup}"))
        handlers = {
            "StartQueryExecution": self.start_query_execution,
            "GetQueryExecution": self.get_query_execution,
            "GetQueryResults": self.get_query_results,
        }
        if request.operation not in handlers:
            message = (
                f"the local Athena does not implement {request.operation}; it answers {', '.join(sorted(handlers))}"
            )
            raise NotImplementedError(message)
        return handlers[request.operation](request.params)


def _handler_class(athena: LocalAthena, protocol: ServiceProtocol) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = CONTENT_TYPES[protocol.protocols[0]]
            try:
                request = protocol.read(self.command, self.path, dict(self.headers.items()), raw)
                content_type = CONTENT_TYPES[request.protocol]
                status, body = 200, athena.handle(request)
            except KeyError as error:
                status, body = 400, {"__type": "InvalidRequestException", "Message": str(error.args[0])}
            except AccessDeniedError as error:
                status, body = 400, {"__type": "AccessDeniedException", "Message": str(error)}
            except (NotImplementedError, BadRequestError) as error:
                status, body = 400, {"__type": "InvalidRequestException", "Message": str(error)}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if status != 200:
                self.send_header(ERROR_TYPE_HEADER, body["__type"])
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            self._answer()

        def do_GET(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextlib.contextmanager
def local_athena(s3_root: Path, caller: Caller | None = None) -> Iterator[tuple[str, LocalAthena]]:
    """A local Athena on 127.0.0.1 (a free port) for the duration of the block: its endpoint URL and state."""
    protocol = ServiceProtocol.of("athena", TARGET_PREFIX)
    athena = LocalAthena(LocalQueryEngine(S3Map(s3_root)), caller)
    try:
        with serving(_handler_class(athena, protocol)) as endpoint:
            yield endpoint, athena
    finally:
        athena.engine.connection.close()


def job_environment(endpoint: str) -> dict[str, str]:
    """What a job needs to reach the local Athena with boto3: the endpoint and placeholder credentials (the job
    names its region, as in its container)."""
    return {ENDPOINT_VARIABLE: endpoint, **LOCAL_CREDENTIALS}


def local_client(endpoint: str, region: str) -> Any:
    """A boto3 Athena client of the local Athena (placeholder credentials: it checks none)."""
    import boto3

    return boto3.client(
        "athena",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
