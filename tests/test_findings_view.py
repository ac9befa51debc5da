"""`seclake findings`: the custom source's table through the Athena API, newest first, filtered, with why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import UserError
from pipeline.findings_view import COLUMNS, findings_sql, recent_findings
from pipeline.local.athena import local_athena, local_client
from scripts.lakequery.athena import QueryTarget
from scripts.monitor.findings import Finding, default_findings_uri, findings_location, ocsf_rows, parquet_bytes
from scripts.ocsf.layout import custom_source_table, glue_database

DAY1, DAY2 = 1_764_374_400_000, 1_764_460_800_000  # 2025-11-29 and 2025-11-30, 00:00 UTC
BUCKET = "aws-security-data-lake-us-east-1-" + "a" * 30
TABLE = custom_source_table("us-east-1", "seclake-ipinsights")
TARGET = QueryTarget("primary", glue_database("us-east-1"))


def _finding(entity: str, ip: str, time_ms: int, account: str = "012345678901") -> Finding:
    return Finding(entity, ip, -9.0, -5.0, "v1", "s3://lake/obj", time_ms, account, "us-east-1", why=f"why {ip}")


def _write(s3_root: Path, findings: list[Finding], source_object: str) -> None:
    for finding in findings:
        bucket, key = findings_location(finding, source_object, default_findings_uri(BUCKET))
        path = s3_root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(parquet_bytes(ocsf_rows([finding], 0)))


@pytest.fixture
def athena(tmp_path: Path) -> Iterator[Any]:
    _write(tmp_path, [_finding("012345678901/i-1#client:web", "1.1.1.1", DAY1 + 5)], "a")
    _write(tmp_path, [_finding("012345678901/i-2#client:web", "2.2.2.2", DAY2 + 7)], "b")
    _write(tmp_path, [_finding("210987654321/i-1#server:admin", "3.3.3.3", DAY2 + 9, "210987654321")], "c")
    with local_athena(tmp_path) as (endpoint, _):
        yield local_client(endpoint, "us-east-1")


def test_newest_first_with_filters(athena: Any) -> None:
    def ips(**filters: Any) -> list[str]:
        return [r.ip for r in recent_findings(athena, TARGET, TABLE, **filters)]

    assert ips() == ["3.3.3.3", "2.2.2.2", "1.1.1.1"]
    assert ips(entity="i-1") == ["3.3.3.3", "1.1.1.1"]
    assert ips(account="012345678901") == ["2.2.2.2", "1.1.1.1"]
    assert ips(day="20251129") == ["1.1.1.1"]
    assert ips(limit=1) == ["3.3.3.3"]
    first = recent_findings(athena, TARGET, TABLE, day="20251129")[0]
    assert first.time == "2025-11-29 00:00:00" and first.region == "us-east-1" and "why 1.1.1.1" in first.why
    assert (first.account, first.model_version, first.severity) == ("012345678901", "v1", "Medium")


def test_the_sql_filters_on_partitions_and_refuses_odd_values() -> None:
    sql = findings_sql("db", "t", "i-1", "012345678901", "20251129", 5)
    assert "\"accountid\" = '012345678901' AND \"eventday\" = '20251129'" in sql
    assert sql.endswith('ORDER BY "time" DESC, "uid" DESC\nLIMIT 5')
    with pytest.raises(ValueError, match="must be 12 digits"):
        findings_sql("db", "t", None, "0123' OR 1=1 --", None, 5)


def test_the_command_prints_them_with_why(tmp_path: Path) -> None:
    _write(tmp_path / "s3", [_finding("012345678901/i-9#client:web", "9.9.9.9", DAY2)], "a")
    result = CliRunner().invoke(app, ["findings", "--entity", "i-9"], env={"SECLAKE_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "9.9.9.9" in result.output and "why 9.9.9.9" in result.output
    empty = CliRunner().invoke(app, ["findings", "--entity", "i-none"], env={"SECLAKE_HOME": str(tmp_path)})
    assert "no findings match entity i-none" in empty.output


def test_without_findings_the_command_says_so_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["findings"], env={"SECLAKE_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"no findings yet under {tmp_path / 's3'}: `seclake run` (or `seclake monitor`) writes them"
    ]


def test_a_missing_table_on_athena_is_an_error_that_says_what_to_run(tmp_path: Path) -> None:
    """On AWS the custom source's table is registered before any finding: its absence is a setup error."""
    from botocore.stub import Stubber

    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    reason = f"TABLE_NOT_FOUND: Table awsdatacatalog.db.{TABLE} does not exist"
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"})
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"QueryExecutionId": "q-1", "Status": {"State": "FAILED", "StateChangeReason": reason}}},
        )
        with mock.patch("pipeline.cli.findings_cmds._athena") as athena:
            athena.return_value.__enter__.return_value = client
            result = CliRunner().invoke(app, ["findings", "--athena"], env={"SECLAKE_HOME": str(tmp_path)})
    assert isinstance(result.exception, UserError)  # main() prints it as one line and exits 2
    assert "`seclake findings-source create`" in str(result.exception) and reason in str(result.exception)


def test_on_athena_the_exact_query_and_every_page_of_results() -> None:
    """`seclake findings --athena`: one StartQueryExecution on the custom source's table, then GetQueryResults
    page by page (Athena sends the header row on the first page only)."""
    from botocore.stub import ANY, Stubber

    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    target = QueryTarget("security", glue_database("us-east-1"), results_uri="s3://artifacts/p/athena-results/")
    statement = findings_sql(target.database, TABLE, None, "012345678901", None, 2)
    header = list(COLUMNS)  # the query's columns, in its order

    def row(values: list[str]) -> dict[str, Any]:
        return {"Data": [{"VarCharValue": v} for v in values]}

    first = [str(DAY2 + 7), "u2", "why 2", "012345678901/i-2#client:web", "2.2.2.2", "012345678901"]
    second = [str(DAY1 + 5), "u1", "why 1", "012345678901/i-1#client:web", "1.1.1.1", "012345678901"]
    rest = ["us-east-1", "20251130", "v1", "Medium", "inc-1", "New"]
    with Stubber(client) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-9"},
            {
                "QueryString": statement,
                "ClientRequestToken": ANY,
                "QueryExecutionContext": {"Database": target.database, "Catalog": "AwsDataCatalog"},
                "WorkGroup": "security",
                "ResultConfiguration": {"OutputLocation": "s3://artifacts/p/athena-results/"},
            },
        )
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"QueryExecutionId": "q-9", "Status": {"State": "SUCCEEDED"}}},
            {"QueryExecutionId": "q-9"},
        )
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": [row(header), row(first + rest)]}, "NextToken": "page-2"},
            {"QueryExecutionId": "q-9"},
        )
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": [row(second + rest)]}},
            {"QueryExecutionId": "q-9", "NextToken": "page-2"},
        )
        rows = recent_findings(client, target, TABLE, account="012345678901", limit=2)
        stub.assert_no_pending_responses()
    assert [(r.ip, r.uid, r.day, r.severity, r.incident) for r in rows] == [
        ("2.2.2.2", "u2", "20251130", "Medium", "inc-1"),
        ("1.1.1.1", "u1", "20251130", "Medium", "inc-1"),
    ]
    assert (
        'FROM "amazon_security_lake_glue_db_us_east_1"."amazon_security_lake_table_us_east_1_ext_seclake_ipinsights"'
        in (statement)
    )


def test_a_damaged_findings_file_is_named_not_blamed_on_a_missing_table(tmp_path: Path) -> None:
    """One truncated file among the local findings: the error says the findings could not be read and names the
    file, instead of sending the user to run the pipeline for a table that is there."""
    _write(tmp_path / "s3", [_finding("012345678901/i-9#client:web", "9.9.9.9", DAY2)], "a")
    _write(tmp_path / "s3", [_finding("012345678901/i-8#client:web", "8.8.8.8", DAY2)], "b")
    damaged = sorted((tmp_path / "s3").rglob("*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = CliRunner().invoke(app, ["findings"], env={"SECLAKE_HOME": str(tmp_path)})
    message = str(result.exception)
    assert result.exit_code == 1 and "could not be read" in message and "no findings table" not in message
    assert "--replay-day" in message and damaged.name in message


def test_one_workloads_findings_of_a_day_are_one_incident_and_a_fleet_change_stays_one(tmp_path: Path) -> None:
    """An internal scan's five pairs (two roles of i-5) and a beacon of the same workload that day are one incident,
    High as its worst finding, listed before older ones; the same workload the next day is another; a fleet change
    is its own; every pair is printed beneath its incident."""
    from pipeline.incidents import incidents

    scan = [
        _finding(f"012345678901/i-5#client:{'admin' if n % 2 else 'db'}", f"10.0.0.{n}", DAY1 + n) for n in range(5)
    ]
    scan[2] = Finding(**{**scan[2].__dict__, "severity": "High"})
    other = [
        _finding("012345678901/i-5#client:web", "185.220.101.7", DAY1 + 50),
        _finding("012345678901/i-5#client:web", "185.220.101.8", DAY2 + 1),
        Finding(
            **{**_finding("012345678901/*", "52.94.0.9", DAY1 + 60).__dict__, "evidence": {"workloads": "i-1,i-2"}}
        ),
        Finding(**{**_finding("012345678901/i-6#client:web", "8.8.8.8", DAY1 + 70).__dict__, "status": "Suppressed"}),
    ]
    for index, finding in enumerate([*scan, *other]):
        _write(tmp_path / "s3", [finding], f"object-{index}")
    result = CliRunner().invoke(app, ["findings"], env={"SECLAKE_HOME": str(tmp_path), "COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    from pipeline.findings_view import FindingRow

    rows = [
        FindingRow(f.event_time_ms, f.day, f.account, f.region, f.entity, f.ip, f.why, f.uid, "v1", f.severity)
        for f in [*scan, *other]  # without the monitor's incident uid: findings written before it
    ]
    assert [len(i.findings) for i in incidents(rows)] == [1, 1, 1, 6]
    rows = [
        FindingRow(
            f.event_time_ms, f.day, f.account, f.region, f.entity, f.ip, f.why, f.uid, "v1", f.severity, f.incident_uid
        )
        for f in [*scan, *other]
    ]
    grouped = incidents(rows)
    assert [(i.workload, i.day, len(i.findings), i.severity) for i in grouped] == [
        ("i-5", "20251130", 1, "Medium"),
        ("i-6", "20251129", 1, "Medium"),
        ("012345678901/*", "20251129", 1, "Medium"),
        ("i-5", "20251129", 6, "High"),
    ]
    assert grouped[3].addresses == "10.0.0.0, 10.0.0.1, 10.0.0.2 and 3 more"
    assert "i-5 on 20251129 (High):" in result.output
    assert result.output.count("  - ") == 9 and "10.0.0.0, 10.0.0.1, 10.0.0.2 and 3 more" in result.output
    assert "012345678901/i-6#client:web -> 8.8.8.8 [Suppressed]: i-6 talked to 8.8.8.8" in result.output
