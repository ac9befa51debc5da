"""Shared fixtures: paths to the real Security Lake samples and a small generated lake per source version."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipeline.local.jobs import SPARK_SUBMIT_ARGS
from pipeline.samplelake.writer import GenerationOptions, GenerationReport, generate_lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FIXTURES = Path(__file__).parent / "fixtures"
REAL_V1 = FIXTURES / "security-lake-v1"
END_DAY = dt.date(2026, 11, 28)


def small_lake_options(root: Path, version: int, seed: int = 11) -> GenerationOptions:
    return GenerationOptions(
        root=root,
        days=3,
        events_per_day=12_000,
        end_day=END_DAY,
        source_version=version,
        seed=seed,
        files_per_partition=2,
        row_group_rows=5_000,
        malformed_ip_fraction=0.002,
    )


def train_tiny_model(root: Path, epochs: int = 2) -> Path:
    """A small open IP Insights model of one workload talking to 200 addresses: what endpoint tests serve."""
    import json

    from scripts.ipinsights.train import main as train_main

    folder = root / "input" / "data" / "train"
    folder.mkdir(parents=True)
    rows = [f"123456789012/i-000000000000000000,172.31.2.{n % 200 + 1}" for n in range(2000)]
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"num_entity_vectors": "20", "vector_dim": "8", "epochs": str(epochs), "mini_batch_size": "200"})
    )
    assert train_main(["--root", str(root), "--threads", "1"]) == 0
    return root / "model"


@pytest.fixture(scope="session")
def lake_v2(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationOptions, GenerationReport]:
    options = small_lake_options(tmp_path_factory.mktemp("lake-v2"), 2)
    return options, generate_lake(options)


@pytest.fixture(scope="session")
def lake_v1(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationOptions, GenerationReport]:
    options = small_lake_options(tmp_path_factory.mktemp("lake-v1"), 1)
    return options, generate_lake(options)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from scripts.jobs.preprocess import build_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the test Spark binds loopback only
    # as in the SageMaker Spark container, the default filesystem is not the local one: a scheme-less path fails
    os.environ["PYSPARK_SUBMIT_ARGS"] = SPARK_SUBMIT_ARGS
    session = build_session("seclake-tests")
    yield session
    session.stop()
