"""QueryLake: scripts/jobs/query_lake.py on the Spark image's python3 -> the window UNLOADed by Athena (athena
access)."""

from __future__ import annotations

from typing import Any

from pipeline.containers import SPARK_PROCESSING
from scripts.handoff.artifacts import BUNDLE, LAKE, LAKE_QUERY, ArtifactLayout, processing_input_path, processing_path
from steps.context import StepContext
from steps.names import QUERY_LAKE, TEXT
from steps.parameters import window_arguments
from steps.script_jobs import processing_input, processing_output, script_processor


def query_lake_step(ctx: StepContext) -> Any:
    """The step's `lake` output is where Athena's UNLOADs write (the job reads its URI from its own request, so it
    stays out of the cache key); `lake-query` carries query.json."""
    from sagemaker.mlops.workflow.steps import ProcessingStep

    config = ctx.config
    p = ctx.parameters
    processor = script_processor(ctx, "query-lake", SPARK_PROCESSING)
    tables = ",".join(f"{source}={name}" for source, name in sorted(config.lake.athena.tables.items()))
    arguments = [
        "--access",
        p.lake_access,
        *window_arguments(p),
        "--source-version",
        str(config.lake.source_version),
        "--region",
        config.aws.region,
        "--regions",
        ",".join(config.lake.regions),
        "--database",
        config.athena_database,
        "--workgroup",
        config.lake.athena.workgroup,
        "--catalog",
        config.lake.athena.catalog,
        "--results-uri",
        ArtifactLayout(ctx.artifact_uri).athena_results,
        "--manifest",
        processing_path(LAKE_QUERY),
    ]
    if config.lake.accounts:  # no empty arguments: absent means every account, and Security Lake's table names
        arguments += ["--accounts", ",".join(config.lake.accounts)]
    if tables:
        arguments += ["--tables", tables]
    step_args = processor.run(
        code=ctx.code.query_lake_script,
        inputs=[processing_input(BUNDLE, ctx.code.scripts_zip, processing_input_path(BUNDLE))],
        outputs=[processing_output(ctx, LAKE), processing_output(ctx, LAKE_QUERY)],
        arguments=arguments,
    )
    return ProcessingStep(
        name=QUERY_LAKE,
        step_args=step_args,
        display_name=TEXT[QUERY_LAKE].display_name,
        description=TEXT[QUERY_LAKE].description,
        cache_config=ctx.cache(),
    )
