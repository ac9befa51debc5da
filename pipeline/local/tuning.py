"""A tuning step run locally: Optuna over the definition's ranges, each trial a recorded training job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SCALING_LOG = {"Logarithmic"}


def _suggest(trial: Any, ranges: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in ranges.get("IntegerParameterRanges", []):
        values[item["Name"]] = str(
            trial.suggest_int(
                item["Name"], int(item["MinValue"]), int(item["MaxValue"]), log=item.get("ScalingType") in SCALING_LOG
            )
        )
    for item in ranges.get("ContinuousParameterRanges", []):
        values[item["Name"]] = repr(
            trial.suggest_float(
                item["Name"],
                float(item["MinValue"]),
                float(item["MaxValue"]),
                log=item.get("ScalingType") in SCALING_LOG,
            )
        )
    for item in ranges.get("CategoricalParameterRanges", []):
        values[item["Name"]] = str(trial.suggest_categorical(item["Name"], list(item["Values"])))
    return values


def _sampler(strategy: str, seed: int) -> Any:
    import optuna

    if strategy == "Random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)  # Bayesian, and the closest local match for Hyperband / Grid


def tune(
    step: str,
    tuning_job: str,
    config: dict[str, Any],
    definition: dict[str, Any],
    env: Any,
    train_one: Callable[..., tuple[float | None, str]],
) -> dict[str, Any]:
    """Run MaxNumberOfTrainingJobs trials (sequentially) and describe them as the service would."""
    import optuna

    objective = config["HyperParameterTuningJobObjective"]
    maximize = objective["Type"] == "Maximize"
    static = {k: str(v) for k, v in definition.get("StaticHyperParameters", {}).items()}
    jobs: list[dict[str, Any]] = []

    def run_trial(trial: Any) -> float:
        values = _suggest(trial, config.get("ParameterRanges", {}))
        name = f"{tuning_job}-{trial.number + 1:03d}"
        env.log(f"{step}: trial {trial.number + 1} {values}")
        metric, _ = train_one(
            env,
            step,
            name,
            {**static, **values},
            definition["InputDataConfig"],
            definition["OutputDataConfig"]["S3OutputPath"],
            definition.get("RoleArn", ""),
        )
        if metric is None:
            message = f"training job {name} reported no {objective['MetricName']}"
            raise RuntimeError(message)
        jobs.append(
            {
                "TrainingJobName": name,
                "TunedHyperParameters": values,
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": objective["MetricName"], "Value": metric},
                "TrainingJobStatus": "Completed",
            }
        )
        return metric

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize", sampler=_sampler(config.get("Strategy", "Bayesian"), seed=0)
    )
    study.optimize(run_trial, n_trials=int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"]), catch=(RuntimeError,))
    if not jobs:
        message = f"{step}: every training job failed; see the job logs under {env.home / 'jobs' / env.execution}"
        raise RuntimeError(message)
    ranked = sorted(jobs, key=lambda j: j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=maximize)
    return {
        "HyperParameterTuningJobName": tuning_job,
        "HyperParameterTuningJobStatus": "Completed",
        "BestTrainingJob": ranked[0],
        "TrainingJobSummaries": ranked,
    }
