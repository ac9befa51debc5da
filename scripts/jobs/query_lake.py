"""QueryLake step: with query access, the window of each Security Lake table UNLOADed by Athena as parquet for the
Spark step; with data access (s3), nothing to do.

    python scripts/jobs/query_lake.py --access athena|s3 --end-day YYYYMMDD|latest|ISO-TIME --lookback-days N \
        --sources vpc_flow,route53 --source-version 1|2 --region R --regions R1,R2 [--accounts A1,A2] \
        --database DB --workgroup WG [--tables vpc_flow=T1,route53=T2] [--results-uri s3://...] --manifest DIR

Each source's rows go to <lake output>/aws/<SOURCE>/<1.0|2.0>/ (the `lake` output's S3 URI, read from the job's own
request as the Spark step reads its outputs, so it stays out of the cache key): the layout the Spark step already
reads. The manifest (query.json) names every statement, its query execution id and the bytes Athena scanned. Runs
in the Spark processing image's python3 (boto3 1.42, no Spark needed); the `scripts` package comes as scripts.zip in
/opt/ml/processing/input/bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # a processing job runs this file: the package is in the bundle, or in the checkout
    _BUNDLES = sorted((Path(__file__).resolve().parent.parent / "bundle").glob("*.zip"))
    sys.path.insert(0, str(_BUNDLES[0]) if _BUNDLES else str(Path(__file__).resolve().parents[2]))

import argparse
import json
from dataclasses import dataclass
from typing import Any

from scripts.handoff.artifacts import LAKE, LAKE_QUERY_FILE
from scripts.jobconfig import job_config_path, output_uris
from scripts.lakequery.athena import AthenaQueryError, QueryTarget, run_statement
from scripts.lakequery.sql import LakeTable, unload, window_select
from scripts.ocsf.layout import glue_table
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source
from scripts.window import END_DAY_HELP, Window, parse_end_day, parse_sources

ACCESS_MODES = ("s3", "athena")


class QueryLakeError(ValueError):
    """The arguments or the job's request cannot give a query; the message says what to change."""


@dataclass(frozen=True)
class QueryPlan:
    """Every statement of one run: the table it reads and the UNLOAD that writes its window."""

    target: QueryTarget
    statements: list[tuple[LakeTable, str]]


def unloaded_prefix(lake_uri: str, source: Source, version: int) -> str:
    """Where one source's rows go: the native-source layout's prefix under the step's output, ending in '/'."""
    return f"{lake_uri.rstrip('/')}/aws/{source.value}/{SOURCE_VERSIONS[version].folder}/"


def table_names(text: str, region: str, sources: list[Source], version: int) -> dict[Source, str]:
    """`vpc_flow=link_a,route53=link_b` over Security Lake's own table names (for the sources not named)."""
    named: dict[str, str] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        if not sep or not value.strip():
            message = f"--tables entry {part!r} is not source=table (e.g. vpc_flow=my_vpc_flow_link)"
            raise QueryLakeError(message)
        named[key.strip().lower()] = value.strip()
    unknown = sorted(set(named) - {s.table_suffix for s in Source})
    if unknown:
        message = f"--tables names unknown sources {unknown}; allowed: {', '.join(s.table_suffix for s in Source)}"
        raise QueryLakeError(message)
    return {s: named.get(s.table_suffix, glue_table(region, s, version)) for s in sources}


def plan(
    lake_uri: str,
    window: Window,
    sources: list[Source],
    version: int,
    tables: dict[Source, str],
    target: QueryTarget,
    regions: list[str],
    accounts: list[str],
) -> QueryPlan:
    """The UNLOAD of each source's window into its prefix."""
    statements = []
    for source in sources:
        table = LakeTable(source, version, target.database, tables[source])
        select = window_select(table, window, regions, accounts)
        statements.append((table, unload(select, unloaded_prefix(lake_uri, source, version))))
    return QueryPlan(target, statements)


def execute(query_plan: QueryPlan, client: Any, scope: str) -> list[dict[str, Any]]:
    """Run each statement in turn; what the manifest records of each."""
    done = []
    for table, statement in query_plan.statements:
        outcome = run_statement(client, statement, query_plan.target, scope)
        print(
            f"{table.source.value}: {query_plan.target.database}.{table.table} unloaded by query "
            f"{outcome.query_execution_id}, {outcome.data_scanned_bytes:,} bytes scanned"
        )
        done.append(
            {
                "source": table.source.value,
                "table": f"{query_plan.target.database}.{table.table}",
                "query_execution_id": outcome.query_execution_id,
                "data_scanned_bytes": outcome.data_scanned_bytes,
                "engine_milliseconds": outcome.engine_milliseconds,
                "statement": statement,
            }
        )
    return done


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--access", required=True, help="s3 (nothing to do) or athena")
    parser.add_argument("--end-day", required=True, help="YYYYMMDD, an ISO-8601 time or 'latest', as the Spark step")
    parser.add_argument("--lookback-days", type=int, required=True)
    parser.add_argument("--sources", default="vpc_flow,route53")
    parser.add_argument("--source-version", type=int, choices=sorted(SOURCE_VERSIONS), default=2)
    parser.add_argument("--region", required=True, help="The region of the Security Lake tables and of Athena")
    parser.add_argument("--regions", default="", help="Regions whose rows to read (the `region` partition)")
    parser.add_argument("--accounts", default="", help="Accounts whose rows to read (empty: every account)")
    parser.add_argument("--database", required=True, help="Glue database or resource link holding the tables")
    parser.add_argument("--workgroup", default="primary")
    parser.add_argument("--catalog", default="AwsDataCatalog")
    parser.add_argument("--tables", default="", help="source=table for tables not named as Security Lake names them")
    parser.add_argument("--results-uri", default="", help="Athena's result location (default: the workgroup's)")
    parser.add_argument("--manifest", type=Path, required=True, help=f"Folder for {LAKE_QUERY_FILE}")
    parser.add_argument("--job-config", type=Path, default=job_config_path())
    return parser.parse_args(argv)


def job_request(job_config: Path) -> tuple[str, str]:
    """The job's name (the scope of Athena's idempotency tokens) and its `lake` output's S3 URI."""
    if not job_config.exists():
        message = f"no processing job config at {job_config}: this step runs as a processing job with a `lake` output"
        raise QueryLakeError(message)
    request = json.loads(job_config.read_text())
    uris = output_uris(request)
    if LAKE not in uris:
        message = f"the processing job declares outputs {sorted(uris)} but not {LAKE!r}"
        raise QueryLakeError(message)
    return str(request.get("ProcessingJobName", "")), uris[LAKE]


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    arguments.manifest.mkdir(parents=True, exist_ok=True)
    manifest_path = arguments.manifest / LAKE_QUERY_FILE
    if arguments.access not in ACCESS_MODES:
        print(f"error: --access {arguments.access!r} must be one of {', '.join(ACCESS_MODES)}", file=sys.stderr)
        return 2
    if arguments.access == "s3":
        manifest_path.write_text(json.dumps({"access": "s3", "statements": []}, indent=2) + "\n")
        print("access s3: the Spark step reads the lake roots; no query to run")
        return 0
    try:
        end_day = parse_end_day(arguments.end_day)
    except ValueError:
        print(f"error: --end-day {arguments.end_day!r} {END_DAY_HELP}", file=sys.stderr)
        return 2
    try:
        sources = parse_sources(arguments.sources)
        version = arguments.source_version
        target = QueryTarget(arguments.workgroup, arguments.database, arguments.catalog, arguments.results_uri or None)
        job_name, lake_uri = job_request(arguments.job_config)
        query_plan = plan(
            lake_uri,
            Window(end_day, arguments.lookback_days),
            sources,
            version,
            table_names(arguments.tables, arguments.region, sources, version),
            target,
            _split(arguments.regions),
            _split(arguments.accounts),
        )
        import boto3

        client = boto3.client("athena", region_name=arguments.region)
        statements = execute(query_plan, client, job_name)
    except (QueryLakeError, ValueError, AthenaQueryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    document = {
        "access": "athena",
        "workgroup": target.workgroup,
        "database": target.database,
        "window": {"end_day": end_day.strftime("%Y%m%d"), "lookback_days": arguments.lookback_days},
        "statements": statements,
    }
    manifest_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
