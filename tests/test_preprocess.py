"""The Spark processing step end to end on a generated lake: channels, eval set, quality counts, clear errors."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.local.s3map import hadoop_uri
from pipeline.samplelake.writer import LABELS_FILE, GenerationOptions, GenerationReport
from scripts.ocsf.schemas import Source
from scripts.pairs.mapping import Algorithm, mapping
from scripts.preprocess import Destinations, PreprocessError, Window, parse_end_day, run
from tests.conftest import END_DAY, REAL_V1

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Lake = tuple[GenerationOptions, GenerationReport]
pytestmark = pytest.mark.spark


def _read_csv_dir(folder: Path) -> pd.DataFrame:
    parts = [pd.read_csv(p, header=None, names=["entity", "ip"], dtype=str) for p in sorted(folder.glob("*.csv"))]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def preprocessed(
    spark: SparkSession, lake_v2: Lake, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], GenerationOptions]:
    options, _ = lake_v2
    output = tmp_path_factory.mktemp("preprocessed")
    report = run(
        spark,
        [hadoop_uri(options.root / "s3")],
        Destinations.under(hadoop_uri(output)),
        Window(END_DAY, options.days),
        list(Source),
        mapping("peer"),
        Algorithm.OPEN,
        max_pair_repeats=20,
        seed=3,
    )
    return output, report, options


def test_outputs_are_headerless_pairs_and_aligned_eval(
    preprocessed: tuple[Path, dict[str, Any], GenerationOptions],
) -> None:
    output, report, _ = preprocessed
    train = _read_csv_dir(output / "train")
    validation = _read_csv_dir(output / "validation")
    assert len(train) == report["train_rows"] > 0
    assert len(validation) == report["validation_rows"] > 0
    assert not any(
        name.startswith(".") or name.startswith("_") for name in [p.name for p in (output / "train").iterdir()]
    )
    pairs = pd.read_csv(output / "eval" / "pairs.csv", header=None, names=["entity", "ip"], dtype=str)
    labels = pd.read_csv(output / "eval" / "labels.csv")
    assert len(pairs) == len(labels)
    assert list(labels.columns) == ["label", "kind", "entity_in_training"]
    assert set(labels["kind"]) == {"normal", "random_ipv4", "other_entity_ip"}
    assert (labels.loc[labels["kind"] == "normal", "label"] == 0).all()
    assert (labels.loc[labels["kind"] != "normal", "label"] == 1).all()
    assert (labels.loc[labels["label"] == 1, "entity_in_training"] == 1).all()
    known = set(zip(train["entity"], train["ip"], strict=True)) | set(
        zip(validation["entity"], validation["ip"], strict=True)
    )
    negatives = pairs[labels["label"] == 1]
    assert not any(pair in known for pair in zip(negatives["entity"], negatives["ip"], strict=True))
    other = pairs[labels["kind"] == "other_entity_ip"]
    assert set(other["ip"]) <= set(train["ip"]) | set(validation["ip"])
    assert report["suggested_num_entity_vectors"] == 2 * report["distinct_entities"]


def test_pair_repetitions_are_capped(preprocessed: tuple[Path, dict[str, Any], GenerationOptions]) -> None:
    output, _, _ = preprocessed
    train = _read_csv_dir(output / "train")
    assert train.groupby(["entity", "ip"]).size().max() <= 20 * 2  # both sources may contribute one pair each


def test_drop_counts_add_up(preprocessed: tuple[Path, dict[str, Any], GenerationOptions]) -> None:
    output, report, _ = preprocessed
    stored = json.loads((output / "quality" / "quality.json").read_text())
    assert stored == json.loads(json.dumps(report))
    for key, candidates in report["candidates"].items():
        assert sum(report["drops"][key].values()) == candidates - report["pairs_kept"][key]
    assert report["rows_read"]["VPC_FLOW/2.0"] == report["candidates"]["VPC_FLOW/2.0"]
    assert report["drops"]["VPC_FLOW/2.0"]["rejected"] > 0
    assert report["drops"]["VPC_FLOW/2.0"]["unknown_direction"] > 0
    assert report["drops"]["VPC_FLOW/2.0"]["malformed_ip"] > 0
    assert sum(report["pairs_kept"].values()) == report["train_rows"] + report["validation_rows"]


def test_every_injected_anomaly_reaches_the_eval_set(
    preprocessed: tuple[Path, dict[str, Any], GenerationOptions],
) -> None:
    output, _, options = preprocessed
    with (options.root / LABELS_FILE).open(newline="") as handle:
        labelled = {(row["entity"], row["ip"]) for row in csv.DictReader(handle)}
    pairs = pd.read_csv(output / "eval" / "pairs.csv", header=None, names=["entity", "ip"], dtype=str)
    labels = pd.read_csv(output / "eval" / "labels.csv")
    normal = set(
        zip(pairs.loc[labels["kind"] == "normal", "entity"], pairs.loc[labels["kind"] == "normal", "ip"], strict=True)
    )
    validation = _read_csv_dir(output / "validation")
    train = _read_csv_dir(output / "train")
    assert labelled <= normal
    assert labelled <= set(zip(validation["entity"], validation["ip"], strict=True))
    assert not labelled & set(zip(train["entity"], train["ip"], strict=True))


def test_missing_source_is_a_clear_error(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(PreprocessError, match=r"no VPC_FLOW objects found under .*eventDay=20261126..20261128"):
        run(
            spark,
            [hadoop_uri(tmp_path)],
            Destinations.under(hadoop_uri(tmp_path / "out")),
            Window(END_DAY, 3),
            [Source.VPC_FLOW],
            mapping("peer"),
            Algorithm.OPEN,
            10,
            1,
        )


def test_wrong_schema_under_a_version_folder_is_named(spark: SparkSession, tmp_path: Path) -> None:
    folder = tmp_path / "aws" / "VPC_FLOW" / "2.0" / "region=us-east-1" / "accountId=012345678901" / "eventDay=20261128"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "time": [dt.datetime(2026, 11, 28, tzinfo=dt.UTC).timestamp() * 1000],
                "cloud": [{"account_uid": "012345678901"}],
            }
        ),
        folder / ("0" * 32 + ".gz.parquet"),
    )
    with pytest.raises(PreprocessError, match=r"does not match source version 2: .*missing column"):
        run(
            spark,
            [hadoop_uri(tmp_path)],
            Destinations.under(hadoop_uri(tmp_path / "out")),
            Window(END_DAY, 2),
            [Source.VPC_FLOW],
            mapping("peer"),
            Algorithm.OPEN,
            10,
            1,
        )


def test_every_lake_root_is_read(spark: SparkSession, lake_v2: Lake) -> None:
    """Security Lake keeps one bucket per region: given several roots, the step reads all of them."""
    from scripts.preprocess import find_source

    options, _ = lake_v2
    buckets = sorted(hadoop_uri(p) for p in (options.root / "s3").glob("aws-security-data-lake-*"))
    assert len(buckets) == 2
    together = find_source(spark, [hadoop_uri(options.root / "s3")], Source.VPC_FLOW, Window(END_DAY, 3), None)
    separately = find_source(spark, buckets, Source.VPC_FLOW, Window(END_DAY, 3), None)
    assert together is not None and separately is not None
    assert together.files == separately.files
    assert {f.split("/aws-security-data-lake-")[1][:9] for f in separately.files} == {"us-east-1", "eu-west-1"}


def test_a_scheme_less_path_is_not_the_local_filesystem(spark: SparkSession, lake_v2: Lake, tmp_path: Path) -> None:
    """As in the SageMaker Spark container, where fs.defaultFS is HDFS: a plain path does not reach local disk."""
    options, _ = lake_v2
    with pytest.raises(Exception, match=r"hdfs://127\.0\.0\.1:9|Connection refused|Call From"):
        run(
            spark,
            [hadoop_uri(options.root / "s3")],
            Destinations.under(str(tmp_path / "out")),
            Window(END_DAY, options.days),
            list(Source),
            mapping("peer"),
            Algorithm.OPEN,
            10,
            1,
        )
    assert not (tmp_path / "out").exists()


def test_history_has_no_pandas_parquet_metadata(preprocessed: tuple[Path, dict[str, Any], GenerationOptions]) -> None:
    """Written by Spark (the Spark image has no pyarrow for pandas.to_parquet), one file where the monitor reads it."""
    output, _, _ = preprocessed
    assert sorted(p.name for p in (output / "history").iterdir()) == ["history.parquet"]
    table = pq.read_table(output / "history" / "history.parquet")
    assert b"pandas" not in (table.schema.metadata or {})
    assert str(table.schema.field("first_seen_ms").type) == "int64"


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("20261128", dt.date(2026, 11, 28)),
        ("2026-11-29T03:00:00Z", dt.date(2026, 11, 28)),
        ("2026-11-30T00:00:00Z", dt.date(2026, 11, 29)),
        ("2026-11-29T23:30:00-02:00", dt.date(2026, 11, 29)),
        ("latest", dt.date(2026, 11, 29)),
    ],
)
def test_end_day_forms(text: str, day: dt.date) -> None:
    """A schedule passes its scheduled time: the window ends the last full UTC day before it."""
    assert parse_end_day(text, today=dt.date(2026, 11, 30)) == day


def _dirty_lake(lake: Lake, tmp_path: Path) -> Path:
    """A copy of the v2 lake's last two days with a misfiled v1 object, a truncated one and a duplicate added."""
    import shutil

    options, _ = lake
    root = tmp_path / "dirty"
    shutil.copytree(options.root / "s3", root)
    partitions = sorted(root.rglob("aws/VPC_FLOW/2.0/region=*/accountId=*/eventDay=20261128"))
    target = partitions[0]
    original = sorted(target.glob("*.parquet"))[0]
    shutil.copy(original, target / ("d" * 32 + ".gz.parquet"))  # the same records under another name
    (target / ("t" * 32 + ".gz.parquet")).write_bytes(original.read_bytes()[: original.stat().st_size // 2])
    v1 = pq.read_table(REAL_V1 / "VPC_FLOW" / "example1.gz.parquet")
    day_ms = int(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC).timestamp() * 1000)
    v1 = v1.set_column(v1.schema.get_field_index("time"), "time", pa.array([day_ms] * v1.num_rows, pa.int64()))
    pq.write_table(v1, target / ("1" * 32 + ".gz.parquet"))
    return root


def test_misfiled_truncated_and_duplicate_objects_are_named_and_counted(
    spark: SparkSession, lake_v2: Lake, tmp_path: Path
) -> None:
    options, _ = lake_v2
    clean = run(
        spark,
        [hadoop_uri(options.root / "s3")],
        Destinations.under(hadoop_uri(tmp_path / "clean")),
        Window(END_DAY, options.days),
        [Source.VPC_FLOW],
        mapping("peer"),
        Algorithm.OPEN,
        20,
        3,
    )
    dirty = run(
        spark,
        [hadoop_uri(_dirty_lake(lake_v2, tmp_path))],
        Destinations.under(hadoop_uri(tmp_path / "out")),
        Window(END_DAY, options.days),
        [Source.VPC_FLOW],
        mapping("peer"),
        Algorithm.OPEN,
        20,
        3,
    )
    skipped = dirty["skipped_files"]["VPC_FLOW/2.0"]
    reasons = {name.rsplit("/", 1)[-1][:1]: reason.split(":")[0] for name, reason in skipped.items()}
    assert reasons == {"d": "duplicate_object", "t": "unreadable_or_empty", "1": "schema_mismatch"}
    drops = dirty["drops"]["VPC_FLOW/2.0"]
    assert drops["schema_mismatch"] == 1  # the real v1 sample has one row
    assert drops["duplicate_object"] > 0
    assert dirty["pairs_kept"] == clean["pairs_kept"] and dirty["train_rows"] == clean["train_rows"]
    assert sum(drops.values()) == dirty["candidates"]["VPC_FLOW/2.0"] - dirty["pairs_kept"]["VPC_FLOW/2.0"]


@pytest.mark.parametrize(
    ("end_day", "lookback", "message"),
    [
        (dt.date(2026, 11, 30), 4, r"the validation day 20261130 has no pairs"),
        (dt.date(2026, 11, 26), 3, r"the training days 20261124..20261125 have no pairs"),
    ],
)
def test_an_empty_split_is_named_with_the_days_that_have_data(
    spark: SparkSession, lake_v2: Lake, tmp_path: Path, end_day: dt.date, lookback: int, message: str
) -> None:
    options, _ = lake_v2
    with pytest.raises(PreprocessError, match=message + r".*days with pairs in the window: .*Set --end-day"):
        run(
            spark,
            [hadoop_uri(options.root / "s3")],
            Destinations.under(hadoop_uri(tmp_path / "out")),
            Window(end_day, lookback),
            [Source.VPC_FLOW],
            mapping("peer"),
            Algorithm.OPEN,
            20,
            3,
        )


def test_a_flat_layouts_objects_of_other_days_are_not_called_unreadable(
    spark: SparkSession, lake_v2: Lake, tmp_path: Path
) -> None:
    """Without eventDay partitions every object is listed; those of days outside the window rightly give no rows."""
    import shutil

    options, _ = lake_v2
    flat = tmp_path / "flat" / "aws" / "VPC_FLOW" / "2.0"
    flat.mkdir(parents=True)
    for number, path in enumerate(sorted((options.root / "s3").rglob("aws/VPC_FLOW/2.0/**/*.parquet"))):
        shutil.copy(path, flat / f"{number:04d}.gz.parquet")
    report = run(
        spark,
        [hadoop_uri(tmp_path / "flat")],
        Destinations.under(hadoop_uri(tmp_path / "out")),
        Window(END_DAY, 2),
        [Source.VPC_FLOW],
        mapping("peer"),
        Algorithm.OPEN,
        20,
        3,
    )
    assert report["skipped_files"] == {} and report["train_rows"] > 0
