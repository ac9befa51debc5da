"""The run's artifact layout under s3://<artifacts>/: one place for every step, job, the monitor, the CLI and the IAM.

    code/<sha256[:16]>/<file>                     content-addressed job code (uploaded by `seclake upsert`)
    models/<training job>/output/model.tar.gz     what SageMaker training writes
    athena-results/                               Athena's result metadata and UNLOAD manifests (athena access)
    runs/<execution id>/lake/aws/<SOURCE>/<ver>/  the window UNLOADed from the Security Lake tables (athena access)
    runs/<execution id>/lake-query/query.json     the QueryLake step's statements and query ids
    runs/<execution id>/prepared/<output>/        the preprocessing step's outputs (train, validation, eval, history,
                                                  quality); history/history.parquet, quality/quality.json
    runs/<execution id>/scores/                   the batch transform of the eval set
    runs/<execution id>/detector/                 detector.npz (what the monitor loads) and detection.json
    runs/<execution id>/evaluation/               evaluation.json (the gate's PropertyFile) and report.html
After a cache hit, a step's outputs are the earlier execution's: read a run's history and detector from its
evaluation.json (seclake.history_uri, seclake.detector_uri), not from this layout.
"""

from __future__ import annotations

from dataclasses import dataclass

CODE = "code"
MODELS = "models"
RUNS = "runs"
PREPARED = "prepared"
ATHENA_RESULTS = "athena-results"
LAKE = "lake"  # the QueryLake step's output: Athena UNLOADs the window here, the Spark step reads it
LAKE_QUERY = "lake-query"  # the QueryLake step's manifest (query.json)
SCORES = "scores"
EVALUATION = "evaluation"
DETECTOR = "detector"
DETECTOR_FILE = "detector.npz"
DETECTION_FILE = "detection.json"
NETWORKS = "networks"  # where the FitDetector job finds the network table: /opt/ml/processing/input/networks
NETWORKS_FILE = "networks.npz"
BUNDLE = "bundle"  # where a script-processing job finds scripts.zip: /opt/ml/processing/input/bundle
PREPARED_OUTPUTS = ("train", "validation", "eval", "quality", "history")
HISTORY_OUTPUT = "history"
HISTORY_FILE = "history.parquet"
ADDRESS_BOOK_FILE = "address_book.parquet"  # next to the history: who had each address (scripts.pairs.mapping)
QUALITY_OUTPUT = "quality"
QUALITY_FILE = "quality.json"
EVALUATION_FILE = "evaluation.json"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class ArtifactLayout:
    """URIs under one artifact root (s3://bucket/prefix)."""

    root: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", self.root.rstrip("/"))

    def code(self, digest: str, name: str) -> str:
        return f"{self.root}/{CODE}/{digest}/{name}"

    @property
    def athena_results(self) -> str:
        return f"{self.root}/{ATHENA_RESULTS}/"

    @property
    def models(self) -> str:
        return f"{self.root}/{MODELS}"

    def run(self, execution: str, *parts: str) -> str:
        return "/".join([self.root, RUNS, execution, *parts])

    def prepared(self, execution: str, output: str) -> str:
        return self.run(execution, PREPARED, output)

    def history(self, execution: str) -> str:
        return f"{self.prepared(execution, HISTORY_OUTPUT)}/{HISTORY_FILE}"

    def detector(self, execution: str) -> str:
        return self.run(execution, DETECTOR, DETECTOR_FILE)

    def evaluation(self, execution: str) -> str:
        return self.run(execution, EVALUATION, EVALUATION_FILE)

    def report(self, execution: str) -> str:
        return self.run(execution, EVALUATION, REPORT_FILE)


def execution_of(uri: str) -> str | None:
    """The execution id in a runs/<id>/... URI, or None."""
    _, found, rest = uri.partition(f"/{RUNS}/")
    return rest.split("/", 1)[0] or None if found else None


def iam_object_patterns() -> dict[str, str]:
    """The key patterns (under the artifact prefix) the monitoring Lambda reads: its CloudFormation grants these."""
    return {
        "evaluation": f"{RUNS}/*/{EVALUATION}/{EVALUATION_FILE}",
        "detector": f"{RUNS}/*/{DETECTOR}/{DETECTOR_FILE}",
    }
