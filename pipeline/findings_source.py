"""The findings as a Security Lake custom source: the CreateCustomLogSource request, and the record of what Security
Lake returned (the location the monitor writes to, the provider role it writes as)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.local.security_lake import provider_role_arn
from scripts.monitor.findings import default_findings_uri
from scripts.ocsf.layout import bucket_region

EVENT_CLASS = "DETECTION_FINDING"  # OCSF class 2004, one class per custom source
RECORD_FILE = "findings-source.json"


@dataclass(frozen=True)
class FindingsSource:
    """What the monitor needs to write findings where Security Lake reads them."""

    source_name: str
    location: str  # s3://.../ext/<source>/..., the partitions region=/accountId=/eventDay= go under it
    provider_role_arn: str  # empty: the writer's own S3 access (the local lake)
    external_id: str
    table_arn: str = ""
    crawler_arn: str = ""

    def monitor_environment(self) -> dict[str, str]:
        """The monitor function's variables (config/cloudformation/monitor.yaml takes them as parameters)."""
        environment = {"FINDINGS_URI": self.location}
        if self.provider_role_arn:
            environment.update({"FINDINGS_ROLE_ARN": self.provider_role_arn, "FINDINGS_EXTERNAL_ID": self.external_id})
        return environment


def crawler_role_arn(config: Config) -> str:
    return f"arn:aws:iam::{config.aws.account_id}:role/{config.findings.crawler_role_name}"


def create_request(config: Config) -> dict[str, Any]:
    """CreateCustomLogSource for the findings: one event class, the crawler's role, the identity that writes."""
    findings = config.findings
    return {
        "sourceName": findings.source_name,
        "sourceVersion": findings.source_version,
        "eventClasses": [EVENT_CLASS],
        "configuration": {
            "crawlerConfiguration": {"roleArn": crawler_role_arn(config)},
            "providerIdentity": {
                "externalId": findings.external_id,
                "principal": findings.provider_principal or config.aws.account_id,
            },
        },
    }


def from_response(config: Config, response: dict[str, Any]) -> FindingsSource:
    """The record of a CreateCustomLogSource response; an error naming what is missing otherwise."""
    source = response.get("source", {})
    provider = source.get("provider", {})
    location = provider.get("location", "")
    if not location.startswith("s3://"):
        message = f"Security Lake returned no provider location for {config.findings.source_name!r}: {response}"
        raise UserError(message)
    attributes = source.get("attributes", {})
    return FindingsSource(
        source_name=source.get("sourceName", config.findings.source_name),
        location=location if location.endswith("/") else f"{location}/",
        provider_role_arn=provider.get("roleArn", ""),
        external_id=config.findings.external_id,
        table_arn=attributes.get("tableArn", ""),
        crawler_arn=attributes.get("crawlerArn", ""),
    )


def create_custom_source(config: Config, client: Any) -> FindingsSource:
    """Register the findings with Security Lake (the caller's credentials need securitylake:CreateCustomLogSource
    and the rights Security Lake's guide lists for it)."""
    return from_response(config, client.create_custom_log_source(**create_request(config)))


def local_source(config: Config) -> FindingsSource:
    """The local lake's equivalent: ext/<source>/ in the local Security Lake bucket of aws.region."""
    buckets = sorted(p.name for p in (config.home / "s3").glob("aws-security-data-lake-*"))
    home = [b for b in buckets if bucket_region(b) == config.aws.region]
    if not home:
        message = (
            f"no local Security Lake bucket for {config.aws.region} under {config.home / 's3'}: run `seclake run` "
            "(or `seclake lake generate`) first"
        )
        raise UserError(message)
    location = default_findings_uri(home[0], config.findings.source_name)
    # the lake is another account's: Security Lake creates the source's provider role there, as it would in AWS
    provider = provider_role_arn(config) if config.lake.subscriber.enabled else ""
    return FindingsSource(config.findings.source_name, location, provider, config.findings.external_id)


def record_path(config: Config) -> Path:
    return config.home / RECORD_FILE


def save_record(config: Config, source: FindingsSource) -> Path:
    path = record_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(source), indent=2, sort_keys=True) + "\n")
    return path


def load_record(config: Config) -> FindingsSource | None:
    """The recorded source, or None when none was registered."""
    path = record_path(config)
    if not path.exists():
        return None
    try:
        return FindingsSource(**json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        message = f"{path} is not a findings-source record ({error}); run `seclake findings-source create` again"
        raise UserError(message) from error
