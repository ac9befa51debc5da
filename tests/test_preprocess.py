"""The Spark processing step end to end on a generated lake: channels, eval set, quality counts, clear errors."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.local.s3map import hadoop_uri
from pipeline.samplelake.writer import LABELS_FILE, GenerationOptions, GenerationReport
from scripts.entity import account_of, base_entity, peer_group, role_of
from scripts.handoff.artifacts import NAMES_COLUMNS
from scripts.handoff.evalset import KIND_ORDER, LABEL_COLUMNS, MODEL_NEGATIVE_KINDS
from scripts.jobs.preprocess import run
from scripts.ocsf.layout import parse_object_key
from scripts.ocsf.schemas import Source
from scripts.pairs import arrow_engine
from scripts.pairs.mapping import (
    ADDRESS_BOOK_COLUMNS,
    ADDRESS_BOOK_RULE,
    ANSWER_ROLE,
    BYTES_OUT,
    QUERY_NAME,
    Algorithm,
    mapping,
)
from scripts.prepare.errors import PreprocessError
from scripts.prepare.injection import eval_set
from scripts.prepare.outputs import Destinations
from scripts.window import Window, parse_end_day
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
    return output, _run_on(spark, options, output), options


def _run_on(
    spark: SparkSession, options: GenerationOptions, output: Path, positives: set[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The whole step on the module's lake, peer mapping, at most 20 events per pair and split."""
    return run(
        spark,
        [hadoop_uri(options.root / "s3")],
        Destinations.under(hadoop_uri(output)),
        Window(END_DAY, options.days),
        list(Source),
        mapping("peer"),
        Algorithm.OPEN,
        max_pair_repeats=20,
        seed=3,
        positives=positives or set(),
    )


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
    assert list(labels.columns) == list(LABEL_COLUMNS)
    assert set(labels["kind"]) == set(KIND_ORDER) - {"new_role"}  # the peer mapping's entities have no role
    assert (labels.loc[labels["kind"] == "normal", "label"] == 0).all()
    assert (labels.loc[labels["kind"] != "normal", "label"] == 1).all()
    assert (labels["model_negative"] == labels["kind"].isin(MODEL_NEGATIVE_KINDS).astype(int)).all()
    injected = labels[labels["label"] == 1]
    assert (injected["entity_in_training"] == (injected["kind"] != "new_role").astype(int)).all()
    known = set(zip(train["entity"], train["ip"], strict=True)) | set(
        zip(validation["entity"], validation["ip"], strict=True)
    )
    negatives = pairs[labels["label"] == 1]
    assert not any(pair in known for pair in zip(negatives["entity"], negatives["ip"], strict=True))
    group_ips: dict[str, set[str]] = {}
    for entity, ip in known:
        group_ips.setdefault(peer_group(entity), set()).add(ip)
    other = pairs[labels["kind"] == "other_group_ip"]
    assert set(other["ip"]) <= set(train["ip"]) | set(validation["ip"])
    assert not any(ip in group_ips[peer_group(e)] for e, ip in zip(other["entity"], other["ip"], strict=True))
    networks = {g: {ip.rsplit(".", 2)[0] for ip in ips if "." in ip} for g, ips in group_ips.items()}
    new_network = pairs[labels["kind"] == "new_network"]
    assert len(new_network) == new_network["entity"].nunique() > 0
    for entity, ip in zip(new_network["entity"], new_network["ip"], strict=True):
        assert ip.rsplit(".", 2)[0] not in networks[peer_group(entity)]
    workloads = {base_entity(e) for e, _ in known}
    for entity, ip in zip(*(pairs.loc[labels["kind"] == "new_role", c] for c in ("entity", "ip")), strict=True):
        assert base_entity(entity) in workloads
        assert entity not in {e for e, _ in known}
        assert ip in group_ips[peer_group(entity)]
    internal = pairs[labels["kind"] == "other_account_internal"]
    owners = {ip: {account_of(e) for e, i in known if i == ip} for ip in set(internal["ip"])}
    for entity, ip in zip(internal["entity"], internal["ip"], strict=True):
        assert owners[ip] - {account_of(entity)}
        assert ip not in group_ips[peer_group(entity)]
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
    from scripts.prepare.objects import find_source

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
    assert sorted(p.name for p in (output / "history").iterdir()) == [
        "address_book.parquet",
        "history.parquet",
        "names.parquet",
    ]
    table = pq.read_table(output / "history" / "history.parquet")
    assert b"pandas" not in (table.schema.metadata or {})
    assert str(table.schema.field("first_seen_ms").type) == "int64"


def test_history_holds_the_bytes_each_entity_sent_to_each_address_each_day(
    preprocessed: tuple[Path, dict[str, Any], GenerationOptions],
) -> None:
    """Spark's history/history.parquet bytes_out equals, per (entity, ip, day), the sum of the pyarrow engine's
    bytes_out over the window's pairs of the same objects: what the large-upload rule learns from."""
    output, _, options = preprocessed
    window = Window(END_DAY, options.days)
    frames = []
    for path in sorted(options.root.glob("s3/*/*/*/*/region=*/accountId=*/eventDay=*/*.parquet")):
        location = parse_object_key(str(path))
        if location is None or location.version is None:
            continue
        source = Source(location.source)
        pairs = arrow_engine.extract(pq.read_table(path), source, location.version, mapping("peer").rule(source)).pairs
        in_window = pc.and_(
            pc.greater_equal(pairs.column("time"), window.start_ms), pc.less(pairs.column("time"), window.end_ms)
        )
        frames.append(pairs.filter(in_window).to_pandas())
    expected = pd.concat(frames)
    expected["day"] = expected["time"] // 86_400_000
    expected = expected.groupby(["entity", "ip", "day"], as_index=False)[BYTES_OUT].sum()
    history = pq.read_table(output / "history" / "history.parquet").to_pandas()
    history["day"] = history["first_seen_ms"] // 86_400_000
    order = ["entity", "ip", "day"]
    pd.testing.assert_frame_equal(
        history[[*order, BYTES_OUT]].sort_values(order).reset_index(drop=True),
        expected[[*order, BYTES_OUT]].sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )
    assert (history[BYTES_OUT] > 0).any()


def test_names_are_each_accounts_route53_names_with_when_and_how_often(
    preprocessed: tuple[Path, dict[str, Any], GenerationOptions],
) -> None:
    """Spark's history/names.parquet equals, per account and name, the pyarrow engine's Route 53 pairs of the window:
    first and last answered, answers, entities that asked."""
    output, _, options = preprocessed
    window = Window(END_DAY, options.days)
    frames = []
    for path in sorted(options.root.glob("s3/*/*/*/*/region=*/accountId=*/eventDay=*/*.parquet")):
        location = parse_object_key(str(path))
        if location is None or location.version is None or location.source != Source.ROUTE53.value:
            continue
        rule = mapping("peer").rule(Source.ROUTE53)
        pairs = arrow_engine.extract(pq.read_table(path), Source.ROUTE53, location.version, rule).pairs
        in_window = pc.and_(
            pc.greater_equal(pairs.column("time"), window.start_ms), pc.less(pairs.column("time"), window.end_ms)
        )
        frames.append(pairs.filter(in_window).to_pandas())
    answers = pd.concat(frames)
    answers["account"] = answers["entity"].map(account_of)
    expected = answers.groupby(["account", QUERY_NAME], as_index=False).agg(
        first_seen_ms=("time", "min"),
        last_seen_ms=("time", "max"),
        answers=("ip", "size"),
        workloads=("entity", "nunique"),
    )
    expected = expected.rename(columns={QUERY_NAME: "name"})
    names = pq.read_table(output / "history" / "names.parquet").to_pandas()
    assert tuple(names.columns) == NAMES_COLUMNS
    order = ["account", "name"]
    pd.testing.assert_frame_equal(
        names.sort_values(order).reset_index(drop=True),
        expected[list(NAMES_COLUMNS)].sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )
    assert len(names) > 0 and not names["name"].str.endswith(".").any()


def test_address_book_is_the_logging_side_of_the_windows_flow_rows(
    preprocessed: tuple[Path, dict[str, Any], GenerationOptions],
) -> None:
    """Spark's history/address_book.parquet equals the pyarrow engine's book of the same objects and window."""
    output, report, options = preprocessed
    window = Window(END_DAY, options.days)
    frames = []
    for path in sorted(options.root.glob("s3/*/*/*/*/region=*/accountId=*/eventDay=*/*.parquet")):
        location = parse_object_key(str(path))
        if location is None or location.source != Source.VPC_FLOW.value or location.version is None:
            continue
        rows = arrow_engine.address_rows(pq.read_table(path), location.version, ADDRESS_BOOK_RULE)
        in_window = pc.and_(
            pc.greater_equal(rows.column("time"), window.start_ms), pc.less(rows.column("time"), window.end_ms)
        )
        frames.append(rows.filter(in_window))
    expected = arrow_engine.address_book_table(pa.concat_tables(frames)).to_pandas()
    book = pq.read_table(output / "history" / "address_book.parquet").to_pandas()
    assert list(book.columns) == list(ADDRESS_BOOK_COLUMNS)
    order = list(ADDRESS_BOOK_COLUMNS)
    pd.testing.assert_frame_equal(
        book.sort_values(order).reset_index(drop=True),
        expected[order].sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )
    assert report["address_book_rows"] == len(book) > 0
    assert book["ip"].map(lambda ip: ip.startswith("10.")).all()  # the generated ENIs' private addresses


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


def test_eval_set_injects_each_kind_against_the_peer_group(spark: SparkSession) -> None:
    """Each injected kind where the detector must catch it: a new network only from a side that opens connections
    (a web server's next client from a new network is its service), a new role never a DNS answer's (a workload's
    first logged lookup is no new behaviour), another account's internal address."""
    web = [f"111122223333/i-web{n}#server:web" for n in range(3)]
    apps = [f"111122223333/i-app{n}#client:web" for n in range(2)]
    train = [(e, f"73.{n}.{k}.1") for n, e in enumerate(web) for k in range(5)]
    train += [(e, f"52.216.{n}.{k}") for n, e in enumerate(apps) for k in range(5)]
    train += [("111122223333/i-web0#client:db", "10.0.5.5"), ("111122223333/i-app0#client:db", "10.0.5.5")]
    train += [("111122223333/i-app0#client:resolved", "52.216.0.1")]
    train += [("444455556666/i-db#server:db", "10.9.0.7"), ("444455556666/i-db#server:db", "10.9.0.8")]
    validation = [(web[1], "73.0.0.1"), (web[2], "73.9.9.9"), ("444455556666/i-db#server:db", "10.9.0.7")]
    validation += [(apps[0], "52.216.1.1"), (apps[1], "52.216.0.2")]
    frame = eval_set(
        spark.createDataFrame(train, "entity string, ip string"),
        spark.createDataFrame(validation, "entity string, ip string"),
        seed=3,
    ).toPandas()
    rows = {kind: list(zip(group["entity"], group["ip"], strict=True)) for kind, group in frame.groupby("kind")}
    assert sorted(rows["normal"]) == sorted(validation)
    # web1 reaching 73.0.0.1, which only web0 had met, is normal: the web servers are one peer group
    known = train + validation
    assert rows["other_group_ip"]
    for entity, ip in rows["other_group_ip"]:
        assert ip not in {i for e, i in known if peer_group(e) == peer_group(entity)}
    assert {e for e, _ in rows["new_network"]} == set(apps)
    assert all(not ip.startswith("52.216.") for _, ip in rows["new_network"])
    held = {(base_entity(e), role_of(e)) for e, _ in known}
    roles = {role_of(e) for e, _ in known if e.startswith("111122223333/")}
    assert len(rows["new_role"]) == 4  # one per workload of the account with a held-out row
    for entity, _ in rows["new_role"]:
        assert role_of(entity) in roles - {ANSWER_ROLE} and (base_entity(entity), role_of(entity)) not in held
    assert ("444455556666/i-db#server:db", "10.0.5.5") in rows["other_account_internal"]
    by_kind = frame.groupby("kind")
    assert by_kind["model_negative"].max().to_dict() == {
        "new_network": 0,
        "new_role": 0,
        "normal": 0,
        "other_account_internal": 0,
        "other_group_ip": 1,
        "random_ipv4": 1,
    }


def test_a_dns_answer_is_never_injected_as_a_new_role(spark: SparkSession) -> None:
    """The only role web0 lacks in its account is the DNS answer's (web1 has lookups logged): no new role."""
    train = [("111122223333/i-web0#server:web", f"73.0.{k}.1") for k in range(3)]
    train += [("111122223333/i-web1#server:web", "73.1.0.1"), (f"111122223333/i-web1#{ANSWER_ROLE}", "52.216.0.1")]
    validation = [("111122223333/i-web0#server:web", "73.0.9.1")]
    frame = eval_set(
        spark.createDataFrame(train, "entity string, ip string"),
        spark.createDataFrame(validation, "entity string, ip string"),
        seed=3,
    ).toPandas()
    assert "new_role" not in set(frame["kind"])


def test_bad_objects_that_sort_first_are_named_not_fatal(spark: SparkSession, lake_v2: Lake, tmp_path: Path) -> None:
    """A truncated object, a v1 object and a Route 53 object filed under VPC_FLOW/2.0, named to sort before every
    good one: the job reads the rest and names each with why, wherever it sorts. An object whose clock put three rows
    at null, epoch 0 and 2100 keeps its other rows; those three are dropped and counted, as nothing is lost unsaid."""
    import shutil

    options, _ = lake_v2
    root = tmp_path / "first"
    shutil.copytree(options.root / "s3", root)
    target = sorted(root.rglob("aws/VPC_FLOW/2.0/region=*/accountId=*/eventDay=20261128"))[0]
    original = sorted(target.glob("*.parquet"))[0]
    (target / ("0" * 32 + ".gz.parquet")).write_bytes(original.read_bytes()[: original.stat().st_size // 2])
    day_ms = int(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC).timestamp() * 1000)
    route53 = sorted(root.rglob("aws/ROUTE53/2.0/region=*/accountId=*/eventDay=20261128/*.parquet"))[0]
    for prefix, sample in (("01", REAL_V1 / "VPC_FLOW" / "example1.gz.parquet"), ("02", route53)):
        table = pq.read_table(sample)
        times = pa.array([day_ms] * table.num_rows, pa.int64())
        table = table.set_column(table.schema.get_field_index("time"), "time", times)
        pq.write_table(table, target / (prefix + "0" * 30 + ".gz.parquet"))
    drifting = pq.read_table(original)
    times = [None, 0, 4_102_444_800_000] + [day_ms] * (drifting.num_rows - 3)
    drifting = drifting.set_column(drifting.schema.get_field_index("time"), "time", pa.array(times, pa.int64()))
    pq.write_table(drifting, target / ("03" + "0" * 30 + ".gz.parquet"))
    report = run(
        spark,
        [hadoop_uri(root)],
        Destinations.under(hadoop_uri(tmp_path / "out")),
        Window(END_DAY, options.days),
        [Source.VPC_FLOW],
        mapping("peer"),
        Algorithm.OPEN,
        20,
        3,
    )
    skipped = report["skipped_files"]["VPC_FLOW/2.0"]
    reasons = {name.rsplit("/", 1)[-1][:2]: reason for name, reason in skipped.items()}
    assert reasons["00"].startswith("unreadable_or_empty")
    assert reasons["01"].startswith("schema_mismatch")
    assert reasons["02"].startswith("schema_mismatch") and "not of OCSF class 4001" in reasons["02"]
    assert "03" not in reasons
    drops = report["drops"]["VPC_FLOW/2.0"]
    assert drops["time_outside_window"] == 3
    assert report["rows_read"]["VPC_FLOW/2.0"] == report["candidates"]["VPC_FLOW/2.0"]
    assert sum(drops.values()) == report["candidates"]["VPC_FLOW/2.0"] - report["pairs_kept"]["VPC_FLOW/2.0"]
    assert report["train_rows"] > 0


def test_a_confirmed_true_positive_is_left_out_of_every_output(
    spark: SparkSession, preprocessed: tuple[Path, dict[str, Any], GenerationOptions], tmp_path: Path
) -> None:
    """An analyst's true-positive verdict: the pair is in no channel, not in the history nor the eval set's normal
    pairs, and its rows are counted as dropped for that reason (the rest of the window is untouched)."""
    from scripts.prepare.outputs import TRUE_POSITIVE_VERDICT

    output, report, options = preprocessed
    history = pq.read_table(output / "history" / "history.parquet").to_pandas()
    counts = history.groupby(["entity", "ip"]).size().sort_values(ascending=False)
    confirmed = counts.index[0]  # the pair seen on the most days
    again = _run_on(spark, options, tmp_path, {confirmed, ("111122223333/i-nowhere#client:web", "203.0.113.9")})
    pairs = {tuple(pair) for name in ("train", "validation") for pair in _read_csv_dir(tmp_path / name).to_numpy()}
    assert confirmed not in pairs and len(pairs) > 0
    left = pq.read_table(tmp_path / "history" / "history.parquet").to_pandas()
    assert confirmed not in set(zip(left["entity"], left["ip"], strict=True))
    assert len(left) == len(history) - counts.iloc[0]
    dropped = sum(reasons.get(TRUE_POSITIVE_VERDICT, 0) for reasons in again["drops"].values())
    assert dropped >= counts.iloc[0] and TRUE_POSITIVE_VERDICT not in str(report["drops"])
    for key, candidates in again["candidates"].items():
        assert sum(again["drops"][key].values()) == candidates - again["pairs_kept"][key]


def test_shuffles_are_cut_by_the_jobs_cores_not_a_fixed_count(spark: SparkSession) -> None:
    """Four partitions per core of the job (at least 8): one ml.m5.4xlarge's 16 cores get 64, four of them 256."""
    from scripts.jobs.preprocess import shuffle_partitions

    assert [shuffle_partitions(cores) for cores in (1, 2, 16, 64)] == [8, 8, 64, 256]
    cores = spark.sparkContext.defaultParallelism
    assert spark.conf.get("spark.sql.shuffle.partitions") == str(shuffle_partitions(cores))
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"
