"""Each job in its container's Python and packages only (pipeline/containers.py): preprocess, evaluate, the monitor."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.cli.monitor_cmd import sqs_event
from pipeline.code_bundle import PROJECT_ROOT, scripts_zip
from pipeline.config import load_config
from pipeline.containers import (
    CONTAINERS,
    LAMBDA_MONITOR,
    SKLEARN_PROCESSING,
    SPARK_PROCESSING,
    JobContainer,
    container_for_image,
)
from pipeline.definition import definition_json
from pipeline.local.athena import job_environment, local_athena
from pipeline.local.jobs import SPARK_SUBMIT_ARGS
from pipeline.local.runtimes import ensure_runtime
from pipeline.local.s3map import hadoop_uri
from pipeline.monitor_package import monitor_zip
from pipeline.network_table import network_table_bytes
from pipeline.samplelake.writer import GenerationOptions, GenerationReport
from scripts.detect.artifact import header_of
from scripts.handoff.artifacts import DETECTOR_INDEX_FILE, NETWORKS_FILE, ArtifactLayout
from scripts.handoff.detector_index import ShardIndex
from scripts.handoff.manifest import RunManifest
from scripts.handoff.quality import WindowRecord
from scripts.handoff.verdicts import BENIGN, FORMAT_FILE, TRUE_POSITIVE, Verdict, format_note
from scripts.ipinsights.serve import start_server
from scripts.pairs.mapping import ADDRESS_BOOK_COLUMNS
from tests.conftest import END_DAY, FIXTURES, train_tiny_model
from tests.handoffs import quality, write_detection, write_quality
from tests.steps_of import all_steps
from tests.test_evaluate import _known_rows, _write

pytestmark = [pytest.mark.container, pytest.mark.slow]
Lake = tuple[GenerationOptions, GenerationReport]


def _run(container: JobContainer, command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run in the container's stand-in: its python, no user site, nothing of this project unless given."""
    python = ensure_runtime(container)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYSPARK"))}
    completed = subprocess.run(
        [str(python), *command],
        cwd=cwd,
        env={**clean, "PYTHONNOUSERSITE": "1", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


@pytest.mark.parametrize("container", list(CONTAINERS.values()), ids=list(CONTAINERS))
def test_the_stand_in_has_exactly_the_declared_python_and_packages(container: JobContainer) -> None:
    script = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
        "'packages': {p: m.version(p) for p in sys.argv[1:]}}))"
    )
    names = sorted({**container.packages, **container.local_packages})
    found = json.loads(_run(container, ["-c", script, *names], PROJECT_ROOT, {}))
    assert found == {"python": container.python, "packages": {**container.packages, **container.local_packages}}


def test_every_processing_step_runs_in_a_declared_container_whose_stand_in_is_checked() -> None:
    """The stand-ins above are checked against the declared Python and packages; that proves something about a job
    only if the definition runs it in that very image: every processing step's image is a declared container's,
    in the pipeline's region, and every declared SageMaker container is used by some step."""
    config = load_config("prod", environ={})
    definition = json.loads(definition_json(config))
    images = {
        step["Name"]: step["Arguments"]["AppSpecification"]["ImageUri"]
        for step in all_steps(definition)
        if step["Type"] == "Processing"
    }
    used = {name: container_for_image(image) for name, image in images.items()}
    assert all(container is not None for container in used.values()), images
    for name, container in used.items():
        assert container is not None and images[name] == container.image_uri(config.aws.region), name
    assert {c.name for c in used.values() if c is not None} == {SPARK_PROCESSING.name, SKLEARN_PROCESSING.name}


def test_the_spark_images_boto3_queries_the_local_athena_in_json_11(tmp_path: Path) -> None:
    """The QueryLake job's client is the image's boto3, older than the lock's: the local Athena answers its protocol."""
    script = (
        "import boto3, botocore, json, sys, time; "
        "c = boto3.client('athena', region_name='us-east-1', endpoint_url=sys.argv[1]); "
        "q = c.start_query_execution(QueryString='SELECT 6 * 7 AS answer', WorkGroup='primary')['QueryExecutionId']; "
        "state = c.get_query_execution(QueryExecutionId=q)['QueryExecution']['Status']['State']; "
        "rows = c.get_query_results(QueryExecutionId=q)['ResultSet']['Rows']; "
        "print(json.dumps([botocore.__version__, c.meta.service_model.protocol, state, rows]))"
    )
    with local_athena(tmp_path) as (endpoint, athena):
        out = _run(SPARK_PROCESSING, ["-c", script, endpoint], tmp_path, job_environment(endpoint))
    version, protocol, state, rows = json.loads(out.splitlines()[-1])
    assert version.startswith("1.42.") and protocol == "json" and state == "SUCCEEDED"
    assert rows == [{"Data": [{"VarCharValue": "answer"}]}, {"Data": [{"VarCharValue": "42"}]}]
    assert [(r.operation, r.protocol) for r in athena.requests] == [
        ("StartQueryExecution", "json"),
        ("GetQueryExecution", "json"),
        ("GetQueryResults", "json"),
    ]


@pytest.mark.spark
def test_preprocess_in_the_spark_image_python_writes_every_output_to_its_uri(lake_v2: Lake, tmp_path: Path) -> None:
    """Python 3.12, numpy and pandas only (no pyarrow), Spark's default filesystem unreachable: as in the container."""
    options, _ = lake_v2
    code = tmp_path / "input" / "code"
    code.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "scripts" / "jobs" / "preprocess.py", code / "preprocess.py")
    bundle = tmp_path / "scripts.zip"
    bundle.write_bytes(scripts_zip())
    output = tmp_path / "s3" / "artifacts" / "runs" / "x" / "prepared"
    _run(
        SPARK_PROCESSING,
        [
            str(code / "preprocess.py"),
            "--lake-root",
            hadoop_uri(options.root / "s3"),
            "--output-uri",
            hadoop_uri(output),
            "--end-day",
            END_DAY.strftime("%Y%m%d"),
            "--lookback-days",
            str(options.days),
        ],
        tmp_path,
        {
            "PYTHONPATH": str(bundle),
            "PYSPARK_SUBMIT_ARGS": SPARK_SUBMIT_ARGS,
            "PYSPARK_PYTHON": str(ensure_runtime(SPARK_PROCESSING)),
            "SPARK_LOCAL_IP": "127.0.0.1",
        },
    )
    quality = json.loads((output / "quality" / "quality.json").read_text())
    assert quality["train_rows"] > 0 and quality["validation_rows"] > 0
    assert sorted(p.name for p in (output / "history").iterdir()) == [
        "address_book.parquet",
        "history.parquet",
        "names.parquet",
    ]
    history = pq.read_table(output / "history" / "history.parquet")
    assert history.column_names == ["entity", "ip", "first_seen_ms", "events", "bytes_out"] and history.num_rows > 0
    assert pc.sum(history.column("bytes_out")).as_py() > 0
    book = pq.read_table(output / "history" / "address_book.parquet")
    assert tuple(book.column_names) == ADDRESS_BOOK_COLUMNS and book.num_rows == quality["address_book_rows"] > 0
    pairs = (output / "eval" / "pairs.csv").read_text().splitlines()
    labels = (output / "eval" / "labels.csv").read_text().splitlines()
    assert len(pairs) == len(labels) - 1 == sum(quality["eval_rows"].values())
    assert sum(1 for part in (output / "train").glob("part-*.csv") for _ in part.open()) == quality["train_rows"]


def test_evaluate_in_the_sklearn_image_python_from_the_bundle(tmp_path: Path) -> None:
    """The EvaluateModel job as its container lays it out (the script in input/code, the `scripts` package only as
    input/bundle/scripts.zip): Python 3.12 with numpy 2.1.0, scikit-learn 1.4.2 and pyarrow 17, no pandas."""
    processing = tmp_path / "opt" / "ml" / "processing"
    (processing / "input" / "code").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "scripts" / "jobs" / "evaluate.py", processing / "input" / "code" / "evaluate.py")
    (processing / "input" / "bundle").mkdir()
    (processing / "input" / "bundle" / "scripts.zip").write_bytes(scripts_zip())
    _write(processing, _known_rows())
    write_quality(processing)
    write_detection(processing)
    arguments = [f"--{name}={processing / name}" for name in ("eval", "scores", "quality")]
    arguments += [f"--detection={processing / 'detector'}", f"--output={processing / 'evaluation'}"]
    out = _run(
        SKLEARN_PROCESSING,
        [str(processing / "input" / "code" / "evaluate.py"), *arguments, "--target-fpr=0.001"],
        tmp_path,
        {},
    )
    assert json.loads(out.splitlines()[-1]) == {
        "status": "ok",
        "auc": pytest.approx((10 * 1000 + 9945) / 20_000),
        "threshold": 1.0,
        "detection_recall": 0.75,
    }
    assert "<svg" in (processing / "evaluation" / "report.html").read_text()
    assert json.loads((processing / "evaluation" / "manifest.json").read_text())["threshold"] == 1.0


def test_fit_detector_in_the_sklearn_image_python_from_the_bundle(tmp_path: Path) -> None:
    """The FitDetector job as its container lays it out: the script in input/code, the `scripts` package only as
    input/bundle/scripts.zip, Python 3.12 with numpy 2.1.0 and pyarrow 17 (no pandas)."""
    import pyarrow as pa

    processing = tmp_path / "opt" / "ml" / "processing"
    (processing / "input" / "code").mkdir(parents=True)
    shutil.copy(
        PROJECT_ROOT / "scripts" / "jobs" / "fit_detector.py", processing / "input" / "code" / "fit_detector.py"
    )
    (processing / "input" / "bundle").mkdir()
    (processing / "input" / "bundle" / "scripts.zip").write_bytes(scripts_zip())
    day, web = 86_400_000, [f"111122223333/i-web{n}#server:web" for n in range(3)]
    start = 1_764_288_000_000  # 2025-11-28
    rows = [(w, f"73.{d}.{n}.{k}", start + d * day + k) for d in range(5) for n, w in enumerate(web) for k in range(9)]
    (processing / "history").mkdir()
    columns = list(zip(*rows, strict=True))
    table = pa.table({"entity": columns[0], "ip": columns[1], "first_seen_ms": columns[2], "events": [1] * len(rows)})
    pq.write_table(table, processing / "history" / "history.parquet")
    held_out = [(e, ip) for e, ip, t in rows if t >= start + 4 * day]
    injected = [(web[0], "185.220.101.7", "new_network"), (web[1], "10.9.9.9", "other_account_internal")]
    (processing / "eval").mkdir()
    (processing / "eval" / "pairs.csv").write_text(
        "".join(f"{e},{ip}\n" for e, ip in held_out) + "".join(f"{e},{ip}\n" for e, ip, _ in injected)
    )
    (processing / "eval" / "labels.csv").write_text(
        "label,kind,entity_in_training,model_negative\n"
        + "0,normal,1,0\n" * len(held_out)
        + "".join(f"1,{kind},1,0\n" for _, _, kind in injected)
    )
    (processing / "scores").mkdir()
    (processing / "scores" / "pairs.csv.out").write_text(
        '{"dot_product": 1.0}\n' * len(held_out) + '{"dot_product": -5.0}\n' * len(injected)
    )
    write_quality(processing, quality(window=WindowRecord("20251202", 5, "20251202")))
    arguments = [f"--{name}={processing / name}" for name in ("history", "eval", "scores", "quality")]
    arguments.append("--false-positive-rate=0.01")  # five days of three workloads cannot show rarer than that
    (processing / "input" / "networks").mkdir()
    (processing / "input" / "networks" / NETWORKS_FILE).write_bytes(network_table_bytes())  # what the step ships
    arguments.append(f"--networks={processing / 'input' / 'networks' / NETWORKS_FILE}")
    feedback = processing / "input" / "feedback"  # the verdicts' prefix as the job receives it, format note included
    decided = dt.datetime(2025, 12, 3, 9, tzinfo=dt.UTC)
    for verdict in (
        Verdict.of("ab" * 16, TRUE_POSITIVE, "20251201", "111122223333", [(web[2], "73.3.2.8")], decided),
        Verdict.of("cd" * 16, BENIGN, "20251203", "111122223333", [(web[0], "198.51.100.9")], decided),
    ):
        (feedback / verdict.file_name).parent.mkdir(parents=True, exist_ok=True)
        (feedback / verdict.file_name).write_text(verdict.dumps())
    (feedback / FORMAT_FILE).write_bytes(format_note())
    arguments.append(f"--feedback={feedback}")
    out = _run(
        SKLEARN_PROCESSING,
        [str(processing / "input" / "code" / "fit_detector.py"), *arguments, f"--output={processing / 'detector'}"],
        tmp_path,
        {},
    )
    summary = json.loads(out.splitlines()[-1])
    learnt = summary.pop("feedback")
    assert summary == {
        "recall": 1.0,
        "alerts_per_1000_workloads": 0.0,
        "alerts_judged_per_1000_workloads": 0.0,
        "workloads": 3,
        "gate": "passed",  # no thresholds given: nothing to refuse
    }
    assert learnt["verdicts"] == 2 and learnt["skipped"] == [] and learnt["production_precision"] == 0.5
    assert (learnt["history_rows_removed"], learnt["benign_pairs"]) == (1, 1)
    detection = json.loads((processing / "detector" / "detection.json").read_text())
    assert detection["per_kind"]["new_network"]["recall"] == 1.0
    index = ShardIndex.from_json((processing / "detector" / DETECTOR_INDEX_FILE).read_text(), "detector.json")
    assert index.cut == "account" and len(index.shards) >= 2  # the organisation's part and each account's
    for account, entry in index.shards.items():  # written in parallel by the job, each a detector of its own
        header = header_of(processing / "detector" / entry["file"])
        assert header["metadata"]["shard"] == account and header["metadata"]["acknowledged_pairs"] == 1
        assert "GeoLite2" in header["metadata"]["networks"]


def test_monitor_handler_in_the_lambda_runtime_python(tmp_path: Path) -> None:
    """The deployment zip on Python 3.11 with the AWS SDK for pandas layer's packages only, one real object, the
    handler's logic with the resources local replay builds (a folder as S3, the local endpoint)."""
    lake_bucket = "aws-security-data-lake-us-east-1-" + "a" * 30
    key = "aws/VPC_FLOW/1.0/region=us-east-1/accountId=123456789012/eventDay=20220412/" + "b" * 32 + ".gz.parquet"
    store = tmp_path / "store"
    (store / lake_bucket / key).parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "security-lake-v1" / "VPC_FLOW" / "example1.gz.parquet", store / lake_bucket / key)
    manifest = RunManifest(threshold=1000.0, detector_uri=None, mapping="role", algorithm="builtin")
    manifest_path = store / ArtifactLayout("s3://artifacts/a").manifest("x").removeprefix("s3://")
    manifest_path.parent.mkdir(parents=True)
    manifest_path.write_text(manifest.dumps())
    (tmp_path / "monitor.zip").write_bytes(monitor_zip())
    server, _ = start_server(train_tiny_model(tmp_path / "model", epochs=1), "127.0.0.1", 0, "seclake-ipinsights")
    script = (
        "import json, sys; from pathlib import Path\n"
        "from scripts.monitor.events import parse_batch\n"
        "from scripts.monitor.handler import handle_messages\n"
        "from scripts.monitor.resources import folder_resources\n"
        "from scripts.monitor.settings import Settings\n"
        "settings = Settings('seclake-ipinsights', 's3://artifacts/a', 's3://findings/ext/seclake-ipinsights/')\n"
        "resources = folder_resources(settings, Path(sys.argv[2]), sys.argv[3], lambda: 'seclake-ipinsights-x')\n"
        "failures, _ = handle_messages(parse_batch(json.load(open(sys.argv[1]))), resources)\n"
        "print(json.dumps({'batchItemFailures': failures}))"
    )
    try:
        event: dict[str, Any] = sqs_event([(lake_bucket, key)])
        (tmp_path / "event.json").write_text(json.dumps(event))
        out = _run(
            LAMBDA_MONITOR,
            ["-c", script, str(tmp_path / "event.json"), str(store), server.url],
            tmp_path,
            {"PYTHONPATH": str(tmp_path / "monitor.zip")},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert json.loads(out.splitlines()[-1]) == {"batchItemFailures": []}
    [written] = list((store / "findings").rglob("*.parquet"))
    rows = pq.read_table(written).to_pylist()
    assert [(r["observables"][0]["value"], r["observables"][1]["value"]) for r in rows] == [
        ("123456789012/i-000000000000000000#client:other", "172.31.2.52")
    ]
