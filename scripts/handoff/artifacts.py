"""The run's artifact layout under s3://<artifacts>/: one place for every step, job, the monitor, the CLI and the IAM.

    code/<sha256[:16]>/<file>                     content-addressed job code (uploaded by `seclake upsert`)
    lists/<trusted|threat>/<name>.txt             analysts' lists the monitor applies
    feedback/verdicts/<finding uid>/<time>.json   analysts' verdicts (scripts/handoff/verdicts.py); FitDetector reads
                                                  the folder; _format.json, put with the code, keeps it never empty
    models/<training job>/output/model.tar.gz     what SageMaker training writes
    athena-results/                               Athena's result metadata and UNLOAD manifests (athena access)
    runs/<execution id>/lake/aws/<SOURCE>/<ver>/  the window UNLOADed from the Security Lake tables (athena access)
    runs/<execution id>/lake-query/query.json     the QueryLake step's statements and query ids
    runs/<execution id>/prepared/<output>/        the preprocessing step's outputs (train, validation, eval, history,
                                                  quality); history/history.parquet, quality/quality.json
    runs/<execution id>/scores/                   the batch transform of the eval set
    runs/<execution id>/detector/                 detector.npz (what the monitor loads) and detection.json
    runs/<execution id>/evaluation/               evaluation.json (the gate's PropertyFile), manifest.json (what the
                                                  monitor reads) and report.html
After a cache hit, a step's outputs are the earlier execution's: read a run's detector from its manifest.json
(detector_uri), not from this layout. Inside a processing job, input and output <name> is /opt/ml/processing/<name>;
the endpoint config a run deploys is named <endpoint>-<execution id>.
"""

from __future__ import annotations

from dataclasses import dataclass

CODE = "code"
MODELS = "models"
LISTS = "lists"  # analyst lists: lists/<trusted|threat>/<name>.txt, in GuardDuty's plain-text format
LIST_SUFFIX = ".txt"
FEEDBACK = "feedback"  # where a FitDetector job finds the verdicts: /opt/ml/processing/input/feedback
VERDICTS = "verdicts"  # feedback/verdicts/<finding uid>/<decided at>-<source>.json: each decision; the latest counts
RUNS = "runs"
PREPARED = "prepared"
ATHENA_RESULTS = "athena-results"
LAKE = "lake"  # the QueryLake step's output: Athena UNLOADs the window here, the Spark step reads it
LAKE_QUERY = "lake-query"  # the QueryLake step's record of its statements: LAKE_QUERY_FILE
LAKE_QUERY_FILE = "query.json"
SCORES = "scores"  # the batch transform of the eval set; a job receives it as input `scores`
EVALUATION = "evaluation"
DETECTOR = "detector"
DETECTOR_FILE = "detector.npz"  # a run before shards: the whole detector in one file
DETECTOR_INDEX_FILE = "detector.json"  # the index of the detector's shards (scripts/detect/shards.py)
DETECTOR_SHARDS = "shards"  # detector/shards/<account>.npz and organisation.npz
DETECTION_FILE = "detection.json"
NETWORKS = "networks"  # where the FitDetector job finds the network table: /opt/ml/processing/input/networks
NETWORKS_FILE = "networks.npz"
BUNDLE = "bundle"  # where a script-processing job finds scripts.zip: /opt/ml/processing/input/bundle
BUNDLE_FILE = "scripts.zip"  # the `scripts` package, zipped (pipeline/code_bundle.py builds it)
HISTORY_OUTPUT = "history"
HISTORY_FILE = "history.parquet"
ADDRESS_BOOK_FILE = "address_book.parquet"  # next to the history: who had each address (scripts.pairs.mapping)
NAMES_FILE = "names.parquet"  # next to the history: which names each account's workloads asked Route 53 for
NAMES_COLUMNS = ("account", "name", "first_seen_ms", "last_seen_ms", "answers", "workloads")
QUALITY_OUTPUT = "quality"
QUALITY_FILE = "quality.json"
EVALUATION_FILE = "evaluation.json"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"
EVAL_OUTPUT = "eval"  # the eval set: prepared/eval/pairs.csv and labels.csv (scripts/handoff/evalset.py)
TRAIN_OUTPUT = "train"
VALIDATION_OUTPUT = "validation"
PROCESSING_ROOT = "/opt/ml/processing"  # a processing job's inputs and outputs live below it
ENDPOINT_CONFIG_JOIN = "-"  # <endpoint>-<execution id>: which run an endpoint serves is in its config's name
PREPARED_OUTPUTS = (TRAIN_OUTPUT, VALIDATION_OUTPUT, EVAL_OUTPUT, QUALITY_OUTPUT, HISTORY_OUTPUT)


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
        """A run's single detector file, as runs before shards wrote it (a manifest names the index otherwise)."""
        return self.run(execution, DETECTOR, DETECTOR_FILE)

    def evaluation(self, execution: str) -> str:
        return self.run(execution, EVALUATION, EVALUATION_FILE)

    def manifest(self, execution: str) -> str:
        return self.run(execution, EVALUATION, MANIFEST_FILE)

    def report(self, execution: str) -> str:
        return self.run(execution, EVALUATION, REPORT_FILE)

    def analyst_list(self, kind: str, name: str) -> str:
        """A trusted or threat list (scripts/monitor/iplists.py) the monitor applies: lists/<kind>/<name>.txt."""
        return f"{self.root}/{LISTS}/{kind}/{name}{LIST_SUFFIX}"

    @property
    def verdicts(self) -> str:
        """The folder of analysts' verdicts (scripts/handoff/verdicts.py), the FitDetector step's `feedback` input."""
        return f"{self.root}/{FEEDBACK}/{VERDICTS}"

    def verdict(self, name: str) -> str:
        """One file of the verdicts' folder: a verdict (Verdict.file_name) or the format note."""
        return f"{self.verdicts}/{name}"


def execution_of(uri: str) -> str | None:
    """The execution id in a runs/<id>/... URI, or None."""
    _, found, rest = uri.partition(f"/{RUNS}/")
    return rest.split("/", 1)[0] or None if found else None


def processing_path(name: str) -> str:
    """Where a processing job finds input `name` or leaves output `name`: /opt/ml/processing/<name>."""
    return f"{PROCESSING_ROOT}/{name}"


def processing_input_path(name: str) -> str:
    """Where a processing job finds the job code's companions (the scripts bundle, the network table)."""
    return f"{PROCESSING_ROOT}/input/{name}"


def endpoint_config_name(endpoint: str, execution: str) -> str:
    """The endpoint config a run deploys (the pipeline joins the same two values with ENDPOINT_CONFIG_JOIN)."""
    return f"{endpoint}{ENDPOINT_CONFIG_JOIN}{execution}"


def execution_of_endpoint_config(endpoint: str, config_name: str) -> str | None:
    """The execution whose model an endpoint config serves, or None when the config was not made by the pipeline."""
    prefix = f"{endpoint}{ENDPOINT_CONFIG_JOIN}"
    return config_name.removeprefix(prefix) or None if config_name.startswith(prefix) else None


def iam_object_patterns() -> dict[str, str]:
    """The key patterns (under the artifact prefix) the monitoring Lambda reads: its CloudFormation grants these.
    evaluation.json stays readable for a run deployed before manifests."""
    return {
        "manifest": f"{RUNS}/*/{EVALUATION}/{MANIFEST_FILE}",
        "evaluation": f"{RUNS}/*/{EVALUATION}/{EVALUATION_FILE}",
        "detector": f"{RUNS}/*/{DETECTOR}/*",  # the index and its shards, or a run's older single file
    }
