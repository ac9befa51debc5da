"""Step names, display names and descriptions: one place, shared by the definition, the tests and the local runtime."""

from __future__ import annotations

from dataclasses import dataclass

from scripts.handoff.artifacts import DETECTION_FILE, DETECTOR_INDEX_FILE, EVAL_OUTPUT, EVALUATION_FILE
from scripts.handoff.evalset import PAIRS_FILE

QUERY_LAKE = "QueryLake"
PREPARE = "PrepareSecurityLakeData"
TUNE = "TuneIPInsights"
TRAIN = "TrainIPInsights"
CREATE_MODEL = "CreateModel"
SCORE_EVAL = "ScoreEvalSet"
FIT_DETECTOR = "FitDetector"
EVALUATE = "EvaluateModel"
REGISTER = "RegisterModel"
QUALITY_GATE = "CheckDetectionQuality"
ENDPOINT_CONFIG = "CreateEndpointConfig"
ENDPOINT = "DeployEndpoint"
FAIL = "DetectionQualityTooLow"
APPROVAL_GATE = "DeployIfApproved"

QUALITY_PROPERTY_FILE = "DataQuality"
EVALUATION_PROPERTY_FILE = "EvaluationReport"


@dataclass(frozen=True)
class StepText:
    """What Studio's pipeline graph shows for a step."""

    display_name: str
    description: str


TEXT = {
    QUERY_LAKE: StepText(
        "Query Security Lake",
        "With LakeAccess=athena: Athena UNLOADs the window of each Security Lake table (the columns the pairs need, "
        "partitions pruned) as parquet for the Spark step; with LakeAccess=s3 there is nothing to do.",
    ),
    PREPARE: StepText(
        "Prepare Security Lake data",
        "Spark over Security Lake VPC flow and Route 53 OCSF parquet (the objects, or what QueryLake unloaded): "
        "(entity, ip) pairs, train and "
        "validation channels split by time, the eval set, and data-quality counts.",
    ),
    TUNE: StepText(
        "Tune IP Insights",
        "Hyperparameter tuning of the built-in IP Insights algorithm on validation:discriminator_auc.",
    ),
    TRAIN: StepText("Train IP Insights", "IP Insights training with fixed hyperparameters (tuning disabled)."),
    CREATE_MODEL: StepText("Create model", "A SageMaker model from the best training job's artifact."),
    SCORE_EVAL: StepText("Score the eval set", f"Batch transform of {EVAL_OUTPUT}/{PAIRS_FILE}: dot_product per pair."),
    FIT_DETECTOR: StepText(
        "Fit detector",
        "Known networks per entity and peer group and calibration tables from the history and the held-out day's "
        f"scores ({DETECTOR_INDEX_FILE} and one shard per account); its alerts on that day and its recall on attacks "
        f"injected into it ({DETECTION_FILE}).",
    ),
    EVALUATE: StepText(
        "Evaluate model",
        f"The detector's alerts and recall, the model's ROC AUC per negative kind and threshold: {EVALUATION_FILE} "
        "and an HTML report.",
    ),
    REGISTER: StepText(
        "Register model",
        "A model package in the group naming its detector, with the evaluation (detection figures too) as metrics.",
    ),
    QUALITY_GATE: StepText(
        "Check detection quality",
        "Deploy only when the detector's recall on injected attacks reaches the RecallGate and its alerts per 1,000 "
        "workloads on the held-out day, beyond the AlertAllowance, stay within the AlertBudget.",
    ),
    APPROVAL_GATE: StepText(
        "Deploy if approved",
        "Deploy now when ModelApprovalStatus is Approved; otherwise the package waits for approval in Studio or "
        "`seclake models approve`, and approving it deploys it.",
    ),
    ENDPOINT_CONFIG: StepText("Create endpoint config", "One production variant serving the new model."),
    ENDPOINT: StepText("Deploy endpoint", "Creates the endpoint, or updates it when it exists."),
    FAIL: StepText(
        "Detection quality too low", "Stops the execution: the detector missed the RecallGate or the AlertBudget."
    ),
}
