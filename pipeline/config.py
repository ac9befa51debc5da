"""Typed configuration: config/default.yaml, a profile overlay, a user's file, then SECLAKE_* environment overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import UserError
from pipeline.samplelake.organisation import DEFAULT_WORKLOADS_PER_VPC, MAX_WORKLOADS_PER_VPC
from scripts.detect.gate import DEFAULT_ALERT_ALLOWANCE
from scripts.detect.settings import DEFAULT_FALSE_POSITIVE_RATE
from scripts.ipinsights.hyperparameters import check_hyperparameter
from scripts.ocsf.layout import FINDINGS_SOURCE_NAME, glue_database

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ENV_PREFIX = "SECLAKE_"
ENV_NESTING = "__"
# Environment variables with the prefix that select how config is loaded rather than override a key.
RESERVED_ENV = {"SECLAKE_PROFILE", "SECLAKE_CONFIG"}
LOCAL_PROFILE = "local"  # this machine: the local runtime, the sample lake
AWS_PROFILE = "prod"  # an AWS account: what upsert, execute, schedule and iam work with
PROFILES = (LOCAL_PROFILE, AWS_PROFILE)
SourceName = Literal["vpc_flow", "route53"]
# ASCII digits only: a pattern's \d would also take other scripts' digits (full-width ones) into ARNs.
Region = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
AccountId = Annotated[str, Field(pattern=r"^[0-9]{12}$")]
ListName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]  # an analyst list: lists/<kind>/<name>.txt
ALL_SOURCES: tuple[SourceName, ...] = ("vpc_flow", "route53")


class Section(BaseModel):
    """A config section: unknown keys are errors, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AwsConfig(Section):
    region: Region = "us-east-1"
    account_id: AccountId = "123456789012"
    # Where code, channels, models and reports go: s3://<artifact_bucket>/<artifact_prefix>/...
    artifact_bucket: str = Field("seclake-ipinsights-artifacts", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    # S3's safe key characters but the quote, which would end the SQL literal the QueryLake step UNLOADs to
    artifact_prefix: str = Field("seclake-ipinsights", pattern=r"^[A-Za-z0-9!_.*()/-]+[^/']$")
    # The pipeline execution role (config/iam/ has its policy); only referenced, never called, while building.
    role_name: str = "SeclakeIpInsightsPipelineRole"
    # The role EventBridge Scheduler assumes to start executions (config/iam/scheduler-*.json).
    scheduler_role_name: str = "SeclakeIpInsightsSchedulerRole"
    # The Security Lake bucket(s) the processing step reads, comma-separated s3:// roots.
    lake_roots: str = "s3://aws-security-data-lake-us-east-1-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    # Customer-managed KMS keys of the lake and artifact buckets, comma-separated key ARNs (empty: S3-managed keys or
    # AWS-managed ones, which need no grant): the pipeline role may use them through S3 only.
    kms_key_arns: str = Field("", pattern=r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+,?)*$")

    @property
    def kms_keys(self) -> list[str]:
        return [arn.strip() for arn in self.kms_key_arns.split(",") if arn.strip()]

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.role_name}"

    @property
    def scheduler_role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.scheduler_role_name}"

    @property
    def artifact_uri(self) -> str:
        return f"s3://{self.artifact_bucket}/{self.artifact_prefix}"


class PipelineConfig(Section):
    name: str = Field("seclake-ipinsights", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
    model_package_group: str = Field("seclake-ipinsights", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    endpoint_name: str = Field("seclake-ipinsights", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    job_prefix: str = Field("seclake-ipi", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,20}$")
    spark_instance_type: str = "ml.m5.xlarge"
    spark_instance_count: int = Field(2, ge=1, le=100)
    training_instance_type: str = "ml.m5.xlarge"
    processing_instance_type: str = "ml.m5.large"
    transform_instance_type: str = "ml.m5.large"
    endpoint_instance_type: str = "ml.m5.large"
    recall_gate: float = Field(0.8, ge=0.0, le=1.0)
    alert_budget: float = Field(50.0, ge=0.0)  # alerts per 1,000 workloads on the held-out day, beyond the allowance
    # alerts any fleet may raise on the held-out day before the budget applies: a fleet of a few workloads can meet it
    alert_allowance: int = Field(DEFAULT_ALERT_ALLOWANCE, ge=0)
    approval_status: Literal["Approved", "PendingManualApproval", "Rejected"] = "PendingManualApproval"
    cache_expire_after: str = Field("P7D", pattern=r"^P")
    target_fpr: float = Field(0.001, gt=0.0, lt=1.0)
    max_runtime_seconds: int = Field(3600, ge=60)
    tags: dict[str, str] = Field(default_factory=lambda: {"project": "seclake-ipinsights"})


class IntegerRange(Section):
    min: int
    max: int
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"


class ContinuousRange(Section):
    min: float
    max: float
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"


class TuningConfig(Section):
    enabled: bool = True
    strategy: Literal["Bayesian", "Random", "Hyperband", "Grid"] = "Bayesian"
    max_jobs: int = Field(6, ge=1, le=500)
    max_parallel_jobs: int = Field(2, ge=1, le=100)
    integer_ranges: dict[str, IntegerRange] = Field(default_factory=dict)
    continuous_ranges: dict[str, ContinuousRange] = Field(default_factory=dict)

    @field_validator("integer_ranges", "continuous_ranges")
    @classmethod
    def _known_and_in_range(cls, ranges: dict[str, Any]) -> dict[str, Any]:
        for name, bounds in ranges.items():
            for end in (bounds.min, bounds.max):
                check_hyperparameter(name, end)
            if bounds.min > bounds.max:
                message = f"range of {name}: min {bounds.min} is above max {bounds.max}"
                raise ValueError(message)
        return ranges


class TrainingConfig(Section):
    # Fixed hyperparameters, numbers or strings, checked against IP Insights' names and ranges and passed to
    # SageMaker as strings; tuned ones override these.
    hyperparameters: dict[str, str] = Field(default_factory=dict)

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _known_and_valid(cls, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict):
            message = f"hyperparameters must be a mapping of name to value, found {type(raw).__name__}"
            raise ValueError(message)
        return {str(name): check_hyperparameter(str(name), value) for name, value in raw.items()}


class AthenaConfig(Section):
    """Query access: where the Security Lake tables are reached. Empty names mean Security Lake's own naming in
    aws.region (database amazon_security_lake_glue_db_<region>, tables amazon_security_lake_table_<region>_...)."""

    workgroup: str = Field("primary", pattern=r"^[a-zA-Z0-9._-]{1,128}$")
    catalog: str = Field("AwsDataCatalog", pattern=r"^[A-Za-z0-9_-]{1,256}$")
    database: str = Field("", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    # source -> table (or resource link) name, for tables a subscriber's resource links name otherwise
    tables: dict[SourceName, str] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _plain_names(cls, tables: dict[str, str]) -> dict[str, str]:
        for source, name in tables.items():
            if not name.replace("_", "a").isalnum() or name[0].isdigit():
                message = f"lake.athena.tables.{source}: {name!r} is not a Glue table name (letters, digits, _)"
                raise ValueError(message)
        return tables


class SubscriberConfig(Section):
    """The lake read as a Security Lake data-access subscriber from this account (aws.account_id): the role Security
    Lake created in the lake's account (CreateSubscriber's roleArn), assumed with the external id given at
    CreateSubscriber, and the queue that announces new objects. An empty role_arn: the lake is in this account and
    the pipeline's and the monitor's own roles read it."""

    role_arn: str = Field("", pattern=r"^(arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,128})?$")
    external_id: str = Field("", max_length=1224, pattern=r"^[\w+=,.@:/-]*$")
    queue_arn: str = Field("", pattern=r"^(arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80})?$")

    @property
    def enabled(self) -> bool:
        return bool(self.role_arn)

    @property
    def lake_account(self) -> str:
        """The Security Lake account: the one that owns the subscriber role."""
        return self.role_arn.split(":")[4] if self.role_arn else ""

    @model_validator(mode="after")
    def _complete(self) -> SubscriberConfig:
        if self.role_arn and len(self.external_id) < 2:
            message = (
                f"lake.subscriber.role_arn is {self.role_arn} but external_id is {self.external_id!r}: set it to the "
                "external id given to `aws securitylake create-subscriber` (2 characters at least)"
            )
            raise ValueError(message)
        queue_account = self.queue_arn.split(":")[4] if self.queue_arn else ""
        if queue_account and self.role_arn and queue_account != self.lake_account:
            message = (
                f"lake.subscriber.queue_arn {self.queue_arn} is in account {queue_account}, the role in "
                f"{self.lake_account}: both come from the same CreateSubscriber in the lake's account"
            )
            raise ValueError(message)
        return self


class LakeConfig(Section):
    source_version: Literal[1, 2] = 2
    regions: list[Region] = Field(default_factory=lambda: ["us-east-1", "eu-west-1"], min_length=1)
    sources: list[SourceName] = Field(default_factory=lambda: list(ALL_SOURCES), min_length=1)
    # s3: read the objects (a data-access subscriber); athena: query the tables (a query-access subscriber), the
    # QueryLake step UNLOADs the window for the Spark step. The LakeAccess parameter's default.
    access: Literal["s3", "athena"] = "s3"
    # Accounts whose rows to read with athena access (the accountid partition); empty: every account.
    accounts: list[AccountId] = Field(default_factory=list)
    athena: AthenaConfig = AthenaConfig()
    subscriber: SubscriberConfig = SubscriberConfig()


def _default_anomaly_kinds() -> tuple[str, ...]:
    from pipeline.samplelake.anomalies import ANOMALY_KINDS

    return ANOMALY_KINDS


class SampleLakeConfig(Section):
    days: int = Field(8, ge=2, le=366)
    events_per_day: int = Field(200_000, ge=1_000)
    seed: int = 7
    accounts: int = Field(3, ge=2, le=50)
    # one VPC per (account, region), each with this many workloads (organisation.role_counts)
    workloads_per_vpc: int = Field(DEFAULT_WORKLOADS_PER_VPC, ge=DEFAULT_WORKLOADS_PER_VPC, le=MAX_WORKLOADS_PER_VPC)
    nodata_fraction: float = Field(0.005, ge=0.0, le=0.5)
    reject_scan_fraction: float = Field(0.04, ge=0.0, le=0.5)
    ipv6_client_fraction: float = Field(0.05, ge=0.0, le=1.0)
    malformed_ip_fraction: float = Field(0.0002, ge=0.0, le=0.1)
    anomalies_per_kind: int = Field(2, ge=0, le=20)
    anomaly_kinds: list[str] = Field(default_factory=lambda: list(_default_anomaly_kinds()))
    autoscaling_churn: float = Field(0.0, ge=0.0, le=0.9)
    s3_rotation: bool = False
    cross_account_calls: bool = False
    ipam_subnets: bool = False
    db_failover: float = Field(0.0, ge=0.0, le=0.9)
    nightly_backups: bool = False  # database and batch servers upload their backups to S3 every night
    benign_changes: list[str] = Field(default_factory=list)
    files_per_partition: int = Field(4, ge=1, le=24)
    row_group_rows: int = Field(200_000, ge=1_000)

    @field_validator("anomaly_kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        from pipeline.samplelake.anomalies import ALL_ANOMALY_KINDS, ANOMALY_KINDS_NAME
        from pipeline.samplelake.choices import refuse_unknown

        refuse_unknown(value, ALL_ANOMALY_KINDS, ANOMALY_KINDS_NAME)
        return value

    @field_validator("benign_changes")
    @classmethod
    def _known_changes(cls, value: list[str]) -> list[str]:
        from pipeline.samplelake.changes import BENIGN_CHANGES, BENIGN_CHANGES_NAME
        from pipeline.samplelake.choices import refuse_unknown

        refuse_unknown(value, BENIGN_CHANGES, BENIGN_CHANGES_NAME)
        return value


class PreprocessConfig(Section):
    mapping: Literal["role", "peer", "blog"] = "role"
    lookback_days: int = Field(8, ge=2, le=366)
    max_pair_repeats: int = Field(100, ge=1)
    seed: int = 17


class FindingsConfig(Section):
    """The findings as a Security Lake custom source (`seclake findings-source create`): its name (Security Lake
    allows 20 characters), the Glue crawler's role (in aws.account_id) and the identity allowed to write to it."""

    source_name: str = Field(FINDINGS_SOURCE_NAME, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.:-]+$")
    source_version: str = Field("1.0", pattern=r"^[A-Za-z0-9._-]{1,32}$")
    crawler_role_name: str = Field("SeclakeIpInsightsFindingsCrawler", pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")
    # the account (or service principal) that writes findings: empty means aws.account_id
    provider_principal: str = Field("", pattern=r"^([0-9]{12}|[a-z0-9.-]*\.(amazonaws|amazon)\.com)?$")
    external_id: str = Field("seclake-ipinsights", min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]*$")


class DetectionConfig(Section):
    """The monitor's detector: novelty and the model's score, calibrated per entity (scripts/detect)."""

    enabled: bool = True
    false_positive_rate: float = Field(DEFAULT_FALSE_POSITIVE_RATE, gt=0.0, lt=1.0)
    # analyst lists the monitor applies (`seclake lists put`): a trusted address never makes a finding, a
    # threat-listed one is High even when the pair is not new; each a name under the artifacts' lists/<kind>/
    trusted_lists: list[ListName] = Field(default_factory=list)
    threat_lists: list[ListName] = Field(default_factory=list)
    # the monitor template's SuppressionRulesTable (its output SuppressionRulesTableName): where
    # `seclake suppress ... --aws` writes rules; locally they live in SECLAKE_HOME/suppressions.sqlite
    suppression_table: str = Field("", pattern=r"^([A-Za-z0-9_.-]{3,255})?$")


class Config(Section):
    """The whole merged configuration."""

    home: Path = Path(".seclake")
    aws: AwsConfig = AwsConfig()
    lake: LakeConfig = LakeConfig()
    sample_lake: SampleLakeConfig = SampleLakeConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    detection: DetectionConfig = DetectionConfig()
    findings: FindingsConfig = FindingsConfig()
    pipeline: PipelineConfig = PipelineConfig()
    tuning: TuningConfig = TuningConfig()
    training: TrainingConfig = TrainingConfig()

    @property
    def athena_database(self) -> str:
        """The database (or resource link) holding the Security Lake tables: configured, or Security Lake's own."""
        return self.lake.athena.database or glue_database(self.aws.region)

    @property
    def lake_account(self) -> str:
        """The account that owns the lake's buckets and tables: the subscriber role's, else this one."""
        return self.lake.subscriber.lake_account or self.aws.account_id


class ConfigError(UserError, ValueError):
    """A config value or key is wrong; the message names it, where it came from, and what is allowed."""


SECTION_KEYS = tuple(
    name
    for name, field in Config.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
)
SCALAR_KEYS = tuple(name for name in Config.model_fields if name not in SECTION_KEYS)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        message = f"config file {path} does not exist; pass an existing YAML file to --config"
        raise ConfigError(message) from error
    except yaml.YAMLError as error:
        message = f"config file {path} is not valid YAML: {error}"
        raise ConfigError(message) from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        message = f"config file {path} must hold a mapping of sections, found {type(loaded).__name__}"
        raise ConfigError(message)
    return loaded


def _is_config_override(name: str) -> bool:
    """SECLAKE_HOME and SECLAKE_<SECTION>__<KEY> override config. Every other SECLAKE_* variable belongs to a job or
    the monitoring Lambda (SECLAKE_DETECTOR_FPR, SECLAKE_RUNTIMES, ...) and is never read as config, unless it
    looks like a section key with one underscore too few, which is an error that shows the right spelling."""
    if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
        return False
    rest = name[len(ENV_PREFIX) :].lower()
    if ENV_NESTING in rest or rest in SCALAR_KEYS:
        return True
    section = next((s for s in SECTION_KEYS if rest.startswith(f"{s}_")), None)
    if section is not None:
        suggestion = f"{ENV_PREFIX}{section.upper()}{ENV_NESTING}{rest[len(section) + 1 :].upper()}"
        message = f"environment variable {name} looks like a config override; write it as {suggestion}"
        raise ConfigError(message)
    return False


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Nested overrides from SECLAKE_<SECTION>__<KEY>=value (YAML-parsed), and the variable behind each key."""
    overrides: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name, raw in sorted(environ.items()):
        if not _is_config_override(name):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split(ENV_NESTING)]
        target = overrides
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = _env_value(name, raw, tuple(path))
        names[tuple(path)] = f"environment variable {name}"
    return overrides, names


def _env_value(name: str, raw: str, path: tuple[str, ...]) -> Any:
    """A variable's value: as it is for a text key (an account id keeps its leading zeros and stays text), else read
    as YAML (numbers, lists, booleans); YAML that does not parse is an error naming the variable."""
    if not raw.strip() or _annotation(path) is str:
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0]
        message = (
            f"environment variable {name}={raw!r} is not a YAML value ({problem}); quote text, e.g. '[1]' for a list"
        )
        raise ConfigError(message) from None


def _annotation(path: tuple[str, ...]) -> Any:
    """The declared type of a config key (str for text keys, whatever their pattern), or None for an unknown key."""
    model: type[BaseModel] = Config
    for position, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        if position == len(path) - 1:
            return annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return None


def _merge(
    base: dict[str, Any],
    overlay: Mapping[str, Any],
    origin: str,
    origins: dict[tuple[str, ...], str],
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value, origin, origins, path)
        else:
            merged[key] = value
            origins[path] = origin
    return merged


def _origin_of(path: tuple[str, ...], origins: Mapping[tuple[str, ...], str], ranks: Mapping[str, int]) -> str:
    """Where a key's value came from: of the layers that set it, a key above it, or a key inside it (a check on a
    whole mapping is about the keys set inside it), the last one applied."""
    related = [origin for key, origin in origins.items() if key[: len(path)] == path or path[: len(key)] == key]
    return max(related, key=lambda origin: ranks.get(origin, len(ranks)), default="defaults")


def _allowed_keys(path: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = Config
    for part in path:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _explain(error: ValidationError, origins: Mapping[tuple[str, ...], str], ranks: Mapping[str, int]) -> str:
    lines = []
    for problem in error.errors():
        path = tuple(str(part) for part in problem["loc"])
        key = ".".join(path)
        origin = _origin_of(path, origins, ranks)
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(path[:-1]))
            lines.append(f"unknown config key '{key}' (from {origin}); allowed keys here: {allowed}")
        else:
            lines.append(f"config key '{key}' = {problem['input']!r} (from {origin}): {problem['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_config(
    profile: str = "local",
    user_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> Config:
    """Merge default.yaml, the profile overlay, the user's file and the environment, then validate."""
    if profile not in PROFILES:
        message = f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)} (config/<profile>.yaml)"
        raise ConfigError(message)
    environ = os.environ if environ is None else environ
    origins: dict[tuple[str, ...], str] = {}
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (str(config_dir / "default.yaml"), _read_yaml(config_dir / "default.yaml"))
    ]
    profile_file = config_dir / f"{profile}.yaml"
    if profile_file.exists():
        layers.append((str(profile_file), _read_yaml(profile_file)))
    if user_file is not None:
        layers.append((str(user_file), _read_yaml(user_file)))
    environment, variable_names = env_overrides(environ)
    layers.append(("environment", environment))
    merged: dict[str, Any] = {}
    for origin, layer in layers:
        merged = _merge(merged, layer, origin, origins)
    origins.update(variable_names)
    try:
        return Config.model_validate(merged)
    except ValidationError as error:
        ranks = {origin: rank for rank, (origin, _) in enumerate(layers)}  # environment variables rank last
        raise ConfigError(_explain(error, origins, ranks)) from None
