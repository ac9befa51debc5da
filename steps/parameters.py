"""Pipeline parameters (PascalCase): what may change per execution; defaults come from config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameters:
    """The SDK Parameter objects of the pipeline."""

    lake_roots: Any
    lake_access: Any
    end_day: Any
    lookback_days: Any
    sources: Any
    mapping: Any
    spark_instance_type: Any
    spark_instance_count: Any
    training_instance_type: Any
    recall_gate: Any
    alert_budget: Any
    alert_allowance: Any
    detector_fpr: Any
    target_fpr: Any
    approval_status: Any

    def all(self) -> list[Any]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


def window_arguments(parameters: Parameters) -> list[Any]:
    """The window a job reads, as arguments: both the QueryLake and the Spark step read exactly this one."""
    from sagemaker.core.workflow.functions import Join

    return [
        "--end-day",
        parameters.end_day,
        "--lookback-days",
        Join(on="", values=[parameters.lookback_days]),
        "--sources",
        parameters.sources,
    ]


def build_parameters(config: Any) -> Parameters:
    """Parameters with defaults from config, but EndDay: every execution names its window's last day (the schedule
    passes its time, `seclake execute` today's start; Studio asks for it). A default ("latest", resolved in the job)
    would give every execution with the defaults one cache key, and so the window of the first for days."""
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

    pipeline = config.pipeline
    return Parameters(
        lake_roots=ParameterString("LakeRoots", default_value=config.aws.lake_roots),
        lake_access=ParameterString("LakeAccess", default_value=config.lake.access, enum_values=["s3", "athena"]),
        end_day=ParameterString("EndDay"),
        lookback_days=ParameterInteger("LookbackDays", default_value=config.preprocess.lookback_days),
        sources=ParameterString("Sources", default_value=",".join(config.lake.sources)),
        mapping=ParameterString(
            "PairMapping", default_value=config.preprocess.mapping, enum_values=["role", "peer", "blog"]
        ),
        spark_instance_type=ParameterString("SparkInstanceType", default_value=pipeline.spark_instance_type),
        spark_instance_count=ParameterInteger("SparkInstanceCount", default_value=pipeline.spark_instance_count),
        training_instance_type=ParameterString("TrainingInstanceType", default_value=pipeline.training_instance_type),
        recall_gate=ParameterFloat("RecallGate", default_value=pipeline.recall_gate),
        alert_budget=ParameterFloat("AlertBudget", default_value=pipeline.alert_budget),
        alert_allowance=ParameterInteger("AlertAllowance", default_value=pipeline.alert_allowance),
        detector_fpr=ParameterFloat("DetectorFpr", default_value=config.detection.false_positive_rate),
        target_fpr=ParameterFloat("TargetFpr", default_value=pipeline.target_fpr),
        approval_status=ParameterString(
            "ModelApprovalStatus",
            default_value=pipeline.approval_status,
            enum_values=["Approved", "PendingManualApproval", "Rejected"],
        ),
    )
