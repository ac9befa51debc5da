"""Step names, display names and descriptions: one place, shared by the definition, the tests and the local runtime."""

from __future__ import annotations

from dataclasses import dataclass

PREPARE = "PrepareSecurityLakeData"
TUNE = "TuneIPInsights"
TRAIN = "TrainIPInsights"
CREATE_MODEL = "CreateModel"
SCORE_EVAL = "ScoreEvalSet"
EVALUATE = "EvaluateModel"
REGISTER = "RegisterModel"
QUALITY_GATE = "CheckModelQuality"
ENDPOINT_CONFIG = "CreateEndpointConfig"
ENDPOINT = "DeployEndpoint"
FAIL = "ModelQualityTooLow"

QUALITY_PROPERTY_FILE = "DataQuality"
EVALUATION_PROPERTY_FILE = "EvaluationReport"


@dataclass(frozen=True)
class StepText:
    """What Studio's pipeline graph shows for a step."""

    display_name: str
    description: str


TEXT = {
    PREPARE: StepText(
        "Prepare Security Lake data",
        "Spark over Security Lake VPC flow and Route 53 OCSF parquet: (entity, ip) pairs, train and "
        "validation channels split by time, the eval set, and data-quality counts.",
    ),
    TUNE: StepText(
        "Tune IP Insights",
        "Hyperparameter tuning of the built-in IP Insights algorithm on validation:discriminator_auc.",
    ),
    TRAIN: StepText("Train IP Insights", "IP Insights training with fixed hyperparameters (tuning disabled)."),
    CREATE_MODEL: StepText("Create model", "A SageMaker model from the best training job's artifact."),
    SCORE_EVAL: StepText("Score the eval set", "Batch transform of eval/pairs.csv: dot_product per pair."),
    EVALUATE: StepText(
        "Evaluate model",
        "ROC AUC overall and per negative kind, the calibrated threshold, evaluation.json and an HTML report.",
    ),
    REGISTER: StepText("Register model", "A model package in the group, with the evaluation as model metrics."),
    QUALITY_GATE: StepText("Check model quality", "Deploy only when the eval-set ROC AUC reaches the AucGate."),
    ENDPOINT_CONFIG: StepText("Create endpoint config", "One production variant serving the new model."),
    ENDPOINT: StepText("Deploy endpoint", "Creates the endpoint, or updates it when it exists."),
    FAIL: StepText("Model quality too low", "Stops the execution: the model did not reach the AUC gate."),
}
