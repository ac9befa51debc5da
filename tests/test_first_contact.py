"""A real lake's first run: the sources it has (Route 53 logging is optional), and a summary that counts the native
sources and the custom sources it knows and names any other file by its prefix, not the pipeline's own files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.samplelake.summary import summarise_lake
from pipeline.samplelake.writer import generate_lake
from pipeline.source_plan import MissingSourceError, plan_sources
from scripts.ocsf.schemas import Source
from tests.conftest import small_lake_options


def test_a_lake_without_route53_is_read_for_its_flows_and_says_what_is_lost() -> None:
    plan = plan_sources([Source.VPC_FLOW, Source.ROUTE53], {Source.VPC_FLOW}, explicit=False)
    assert (plan.used, plan.missing, plan.parameter) == ([Source.VPC_FLOW], [Source.ROUTE53], "vpc_flow")
    assert plan.line() == (
        "sources: VPC_FLOW (ROUTE53 is not in this lake: no DNS-answer pairs (instance -> resolved address) and no "
        "queried names in findings)"
    )
    both = plan_sources([Source.VPC_FLOW, Source.ROUTE53], {Source.VPC_FLOW, Source.ROUTE53}, explicit=False)
    assert both.parameter == "vpc_flow,route53" and both.line() == "sources: VPC_FLOW, ROUTE53"


def test_a_source_asked_for_by_name_is_required_and_a_lake_with_none_is_an_error() -> None:
    with pytest.raises(
        MissingSourceError,
        match=r"--sources asked for ROUTE53, which this lake does not have \(it "
        r"has VPC_FLOW\); leave it out of --sources",
    ):
        plan_sources([Source.ROUTE53], {Source.VPC_FLOW}, explicit=True)
    with pytest.raises(
        MissingSourceError, match="the lake has none of the configured sources \\(ROUTE53\\); it has no native source"
    ):
        plan_sources([Source.ROUTE53], set(), explicit=False)


def _parquet(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"x": [1]}), path)


def test_the_summary_counts_lake_sources_and_names_other_files_but_never_reads_the_pipelines_own(
    tmp_path: Path,
) -> None:
    generate_lake(small_lake_options(tmp_path, 2))
    clean = summarise_lake(tmp_path)
    assert (clean.custom_sources, clean.other_files) == ({}, {})
    lake = next(p for p in (tmp_path / "s3").iterdir() if p.name.startswith("aws-security-data-lake-"))
    # what reruns leave: the pipeline's history and address book in the artifacts bucket, findings under ext/
    _parquet(tmp_path / "s3" / "seclake-ipinsights-artifacts" / "seclake-ipinsights" / "runs" / "x" / "h.parquet")
    findings = "ext/seclake-ipinsights/region=us-east-1/accountId=111122223333/eventDay=20261128/f.parquet"
    _parquet(lake / findings)
    _parquet(lake / "exports" / "2026" / "11" / "dump.parquet")  # something else in the lake bucket
    summary = summarise_lake(tmp_path)
    assert summary.custom_sources == {"seclake-ipinsights": 1}
    assert summary.other_files == {f"s3://{lake.name}/exports/2026/": 1}
    assert [(s.source, s.files) for s in summary.sources] == [(s.source, s.files) for s in clean.sources]


def test_the_local_run_plans_its_sources_from_the_lake(tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.local.run_definition import source_plan

    generate_lake(small_lake_options(tmp_path, 2))
    for folder in (tmp_path / "s3").glob("*/aws/ROUTE53"):
        shutil.rmtree(folder)
    config = load_config(environ={"SECLAKE_HOME": str(tmp_path)})
    plan = source_plan(config, summarise_lake(tmp_path))
    assert plan.parameter == "vpc_flow" and plan.missing == [Source.ROUTE53]
    with pytest.raises(MissingSourceError, match="ROUTE53"):
        source_plan(config, summarise_lake(tmp_path), [Source.ROUTE53])
