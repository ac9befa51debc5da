"""Score one day of the local lake through the deployed endpoint and compare the flagged pairs with the labels.

A stand-in for the monitoring Lambda until it lands: the same declared pair mapping (pyarrow engine), boto3's
sagemaker-runtime client pointed at the local endpoint, the threshold from the deployed model's evaluation.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.samplelake.writer import LABELS_FILE
from scripts.ocsf.layout import parse_object_key
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source
from scripts.pairs.arrow_engine import extract
from scripts.pairs.mapping import Algorithm, mapping

BATCH_ROWS = 5_000


@dataclass
class DayScore:
    """What scoring a day found."""

    day: str
    pairs: int
    flagged: list[tuple[str, str, float]]
    threshold: float
    labelled: int
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / len(self.flagged) if self.flagged else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.labelled if self.labelled else 0.0


def day_pairs(lake: Path, day: str, mapping_name: str, algorithm: Algorithm) -> set[tuple[str, str]]:
    """Distinct (entity, ip) pairs of one event day, over every native-source object of that day."""
    pairs: set[tuple[str, str]] = set()
    rules = mapping(mapping_name)
    for path in sorted(lake.rglob(f"eventDay={day}/*.parquet")):
        location = parse_object_key(path.relative_to(lake).as_posix())
        if location is None or location.version not in SOURCE_VERSIONS:
            continue
        source = Source(location.source)
        for batch in pq.ParquetFile(path).iter_batches(batch_size=100_000):
            result = extract(batch, source, location.version, rules.rule(source), algorithm)
            pairs.update(zip(result.pairs["entity"].to_pylist(), result.pairs["ip"].to_pylist(), strict=True))
    return pairs


def score_pairs(endpoint_url: str, endpoint_name: str, pairs: list[tuple[str, str]]) -> list[float]:
    """dot_product per pair through boto3's sagemaker-runtime client, as the monitor calls a real endpoint."""
    import boto3

    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = endpoint_url
    client = boto3.client(
        "sagemaker-runtime",
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    scores: list[float] = []
    for start in range(0, len(pairs), BATCH_ROWS):
        body = "".join(f"{json.dumps(e)[1:-1]},{ip}\n" for e, ip in pairs[start : start + BATCH_ROWS])
        response = client.invoke_endpoint(
            EndpointName=endpoint_name, ContentType="text/csv", Accept="application/jsonlines", Body=body.encode()
        )
        scores.extend(json.loads(line)["dot_product"] for line in response["Body"].read().decode().splitlines())
    return scores


def score_day(
    home: Path, day: str, endpoint: dict[str, Any], threshold: float, mapping_name: str, algorithm: Algorithm
) -> DayScore:
    pairs = sorted(day_pairs(home / "s3", day, mapping_name, algorithm))
    scores = score_pairs(endpoint["url"], endpoint["name"], pairs)
    flagged = [(e, ip, s) for (e, ip), s in zip(pairs, scores, strict=True) if s < threshold]
    labelled: set[tuple[str, str]] = set()
    labels = home / LABELS_FILE
    if labels.exists():
        with labels.open(newline="") as handle:
            labelled = {(row["entity"], row["ip"]) for row in csv.DictReader(handle)}
    hits = sum((e, ip) in labelled for e, ip, _ in flagged)
    return DayScore(day, len(pairs), sorted(flagged, key=lambda f: f[2]), threshold, len(labelled), hits)
