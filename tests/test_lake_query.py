"""Query access: the SQL, the exact Athena requests, and the athena path giving the pairs the s3 path gives."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from pipeline.local.athena import local_athena, local_client
from pipeline.local.s3map import S3Map, hadoop_uri
from pipeline.samplelake.writer import GenerationOptions, GenerationReport
from scripts.jobs.preprocess import run
from scripts.jobs.query_lake import QueryLakeError, execute, main, plan, table_names, unloaded_prefix
from scripts.lakequery.athena import AthenaQueryError, QueryTarget, request_token, run_statement
from scripts.lakequery.sql import LakeTable, parse_unload, unload, window_select
from scripts.ocsf.layout import glue_database, glue_table
from scripts.ocsf.schemas import Source
from scripts.pairs.mapping import Algorithm, mapping
from scripts.prepare.outputs import Destinations
from scripts.window import Window
from tests.conftest import END_DAY

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Lake = tuple[GenerationOptions, GenerationReport]
REGION = "us-east-1"
LAKE_URI = "s3://artifacts/seclake/runs/exec-1/lake"
WINDOW = Window(dt.date(2026, 11, 28), 3)


def _table(source: Source, version: int) -> LakeTable:
    return LakeTable(source, version, glue_database(REGION), glue_table(REGION, source, version))


def test_v1_prunes_eventday_partitions_and_v2_time_dt() -> None:
    v1 = window_select(_table(Source.VPC_FLOW, 1), WINDOW, ["us-east-1"], ["123456789012"])
    v2 = window_select(_table(Source.VPC_FLOW, 2), WINDOW, ["us-east-1", "eu-west-1"], [])
    assert v1 == (
        'SELECT "cloud", "src_endpoint", "dst_endpoint", "connection_info", "traffic", "time", "disposition"\n'
        'FROM "amazon_security_lake_glue_db_us_east_1"."amazon_security_lake_table_us_east_1_vpc_flow_1_0"\n'
        "WHERE \"region\" IN ('us-east-1')\n"
        "  AND \"accountid\" IN ('123456789012')\n"
        "  AND \"eventday\" BETWEEN '20261126' AND '20261128'\n"
        '  AND "time" >= 1795651200000\n'
        '  AND "time" < 1795910400000'
    )
    assert "\"region\" IN ('us-east-1', 'eu-west-1')" in v2
    assert "\"time_dt\" >= TIMESTAMP '2026-11-26 00:00:00'" in v2
    assert "\"time_dt\" < TIMESTAMP '2026-11-29 00:00:00'" in v2
    assert '"action"' in v2 and "accountid" not in v2 and "eventday" not in v2


def test_route53_reads_the_answers_and_the_query() -> None:
    select = window_select(_table(Source.ROUTE53, 2), WINDOW, [], [])
    columns = select.split("\n", 1)[0].removeprefix("SELECT ").split(", ")
    assert sorted(columns) == sorted(
        ['"time"', '"cloud"', '"src_endpoint"', '"dst_endpoint"', '"connection_info"', '"query"', '"answers"']
    )
    assert "region" not in select  # no regions given: no region predicate


def test_unload_round_trips_and_rejects_what_athena_would() -> None:
    statement = unload("SELECT 1", "s3://b/p/")
    assert statement == "UNLOAD (SELECT 1)\nTO 's3://b/p/'\nWITH (format = 'PARQUET', compression = 'SNAPPY')"
    parsed = parse_unload(statement)
    assert parsed is not None
    assert (parsed.select, parsed.destination, parsed.properties["format"]) == ("SELECT 1", "s3://b/p/", "PARQUET")
    with pytest.raises(ValueError, match="must be an s3:// prefix ending in '/'"):
        unload("SELECT 1", "s3://b/p")
    with pytest.raises(ValueError, match="not a plain Glue name"):
        LakeTable(Source.VPC_FLOW, 2, "db; DROP TABLE x", "t")


def test_table_names_default_to_security_lakes_and_take_resource_links() -> None:
    names = table_names("route53=my_dns_link", REGION, list(Source), 2)
    assert names == {
        Source.VPC_FLOW: "amazon_security_lake_table_us_east_1_vpc_flow_2_0",
        Source.ROUTE53: "my_dns_link",
    }
    with pytest.raises(QueryLakeError, match="unknown sources \\['cloudtrail'\\]"):
        table_names("cloudtrail=x", REGION, list(Source), 2)


def test_the_exact_athena_calls_of_one_unload() -> None:
    client = boto3.client("athena", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    query_plan = plan(
        LAKE_URI,
        WINDOW,
        [Source.VPC_FLOW],
        2,
        {Source.VPC_FLOW: glue_table(REGION, Source.VPC_FLOW, 2)},
        QueryTarget("security", glue_database(REGION), results_uri="s3://artifacts/seclake/athena-results/"),
        ["us-east-1"],
        [],
    )
    (_, statement), *_ = query_plan.statements
    assert statement.startswith("UNLOAD (SELECT ")
    assert statement.endswith(f"TO '{LAKE_URI}/aws/VPC_FLOW/2.0/'\nWITH (format = 'PARQUET', compression = 'SNAPPY')")
    with Stubber(client) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {
                "QueryString": statement,
                "ClientRequestToken": request_token(statement, "job-1"),
                "QueryExecutionContext": {
                    "Database": "amazon_security_lake_glue_db_us_east_1",
                    "Catalog": "AwsDataCatalog",
                },
                "WorkGroup": "security",
                "ResultConfiguration": {"OutputLocation": "s3://artifacts/seclake/athena-results/"},
            },
        )
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"QueryExecutionId": "q-1", "Status": {"State": "RUNNING"}}},
            {"QueryExecutionId": "q-1"},
        )
        stub.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "QueryExecutionId": "q-1",
                    "Status": {"State": "SUCCEEDED"},
                    "Statistics": {"DataScannedInBytes": 2048, "EngineExecutionTimeInMillis": 900},
                }
            },
            {"QueryExecutionId": "q-1"},
        )
        done = execute(query_plan, client, "job-1")
        stub.assert_no_pending_responses()
    assert done[0]["query_execution_id"] == "q-1"
    assert done[0]["data_scanned_bytes"] == 2048


def test_a_failed_query_says_why_and_which() -> None:
    client = boto3.client("athena", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        stub.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "QueryExecutionId": "q-2",
                    "Status": {
                        "State": "FAILED",
                        "StateChangeReason": "Insufficient Lake Formation permission(s) on vpc_flow_2_0",
                    },
                }
            },
        )
        with pytest.raises(AthenaQueryError, match="q-2 in workgroup 'primary' ended FAILED: Insufficient Lake"):
            run_statement(client, "SELECT 1", QueryTarget("primary", "db"), "job", sleep=lambda _: None)


def test_s3_access_runs_no_query(tmp_path: Path) -> None:
    code = main(
        [
            *("--access", "s3", "--end-day", "latest", "--lookback-days", "3", "--region", REGION),
            *("--database", "db", "--manifest", str(tmp_path)),
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "query.json").read_text()) == {"access": "s3", "statements": []}


def test_the_local_athena_refuses_an_unload_into_a_location_with_data(lake_v2: Lake) -> None:
    options, _ = lake_v2
    target = QueryTarget("primary", glue_database(REGION))
    statement = unload("SELECT 1 AS one", "s3://scratch-bucket/once/")
    with local_athena(options.root / "s3") as (endpoint, athena):
        client = local_client(endpoint, REGION)
        run_statement(client, statement, target, "first")
        with pytest.raises(AthenaQueryError, match="HIVE_PATH_ALREADY_EXISTS"):
            run_statement(client, statement, target, "second")
        assert [request.operation for request in athena.requests].count("StartQueryExecution") == 2
    assert len(list(S3Map(options.root / "s3").to_local("s3://scratch-bucket/once/").iterdir())) == 1


def _read_pairs(folder: Path) -> set[tuple[str, str]]:
    frames = [pd.read_csv(p, header=None, names=["entity", "ip"], dtype=str) for p in sorted(folder.glob("*.csv"))]
    both = pd.concat(frames, ignore_index=True)
    return set(zip(both["entity"], both["ip"], strict=True))


COUNTS = ("rows_read", "candidates", "drops", "pairs_kept", "skipped_files", "train_rows", "validation_rows")


@pytest.mark.spark
@pytest.mark.parametrize("lake_fixture", ["lake_v1", "lake_v2"])
def test_athena_access_gives_the_pairs_and_counts_of_s3_access(
    spark: SparkSession, lake_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    options, _ = request.getfixturevalue(lake_fixture)
    s3_root = options.root / "s3"
    window = Window(END_DAY, options.days)
    tables = {s: glue_table(REGION, s, options.source_version) for s in Source}
    target = QueryTarget("primary", glue_database(REGION))
    lake_uri = f"s3://artifacts-{lake_fixture.replace('_', '-')}/runs/{tmp_path.name}/lake"
    query_plan = plan(lake_uri, window, list(Source), options.source_version, tables, target, list(options.regions), [])
    with local_athena(s3_root) as (endpoint, _):
        execute(query_plan, local_client(endpoint, REGION), tmp_path.name)
    assert list(S3Map(s3_root).to_local(unloaded_prefix(lake_uri, Source.VPC_FLOW, options.source_version)).iterdir())

    reports = {}
    for access in ("s3", "athena"):
        unloaded = access == "athena"
        roots = [hadoop_uri(S3Map(s3_root).to_local(lake_uri))] if unloaded else [hadoop_uri(s3_root)]
        reports[access] = run(
            spark,
            roots,
            Destinations.under(hadoop_uri(tmp_path / access)),
            window,
            list(Source),
            mapping("role"),
            Algorithm.BUILTIN,
            max_pair_repeats=20,
            seed=3,
            unloaded=unloaded,
        )
    for count in COUNTS:
        assert reports["athena"][count] == reports["s3"][count], count
    assert reports["s3"]["pairs_kept"] and reports["s3"]["drops"]
    assert reports["athena"]["access"] == "athena"
    for split in ("train", "validation"):
        assert _read_pairs(tmp_path / "athena" / split) == _read_pairs(tmp_path / "s3" / split)
    for name in ("pairs.csv", "labels.csv"):
        assert (tmp_path / "athena" / "eval" / name).read_text() == (tmp_path / "s3" / "eval" / name).read_text()


def test_the_role_may_query_only_its_workgroup_and_database_and_write_where_athena_writes() -> None:
    from fnmatch import fnmatch

    from pipeline.config import load_config
    from pipeline.iam import PIPELINE_ROLE_POLICY, render_policies, wildcard_grants
    from scripts.handoff.artifacts import LAKE, ArtifactLayout

    config = load_config(
        profile="prod",
        environ={"SECLAKE_LAKE__ACCESS": "athena", "SECLAKE_LAKE__ATHENA__DATABASE": "security_lake_link"},
    )
    policy = render_policies(config)[PIPELINE_ROLE_POLICY]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert wildcard_grants(policy) == []
    assert (
        statements["QueryLakeInTheWorkgroup"]["Resource"] == "arn:aws:athena:us-east-1:123456789012:workgroup/primary"
    )
    assert statements["ReadSecurityLakeTables"]["Resource"] == [
        "arn:aws:glue:us-east-1:123456789012:catalog",
        "arn:aws:glue:us-east-1:123456789012:database/security_lake_link",
        "arn:aws:glue:us-east-1:123456789012:table/security_lake_link/*",
    ]
    layout = ArtifactLayout(config.aws.artifact_uri)
    writable = statements["ReadWriteArtifacts"]["Resource"]
    for uri in (layout.athena_results + "q.csv", layout.run("exec", LAKE, "aws", "VPC_FLOW", "2.0", "q_00000")):
        assert fnmatch("arn:aws:s3:::" + uri.removeprefix("s3://"), writable), uri
