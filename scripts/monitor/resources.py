"""What the monitor works with, built by its environment (Dagster's resources): the settings, the object store, the
endpoint's runtime client, the state table, the deployment lookup, where findings go and who is told. The Lambda
builds them for AWS (`aws_resources`), local replay for a folder and the local endpoint (`folder_resources`); the
handler's logic is the same for both and reads no environment variable."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.assumed_role import RoleSession, RoleToAssume, SessionCredentials
from scripts.monitor.deployment import Deployment
from scripts.monitor.findings import SUPPRESSED, Finding, asff
from scripts.monitor.iplists import AnalystLists
from scripts.monitor.ledger import FindingLedger, NoLedger, SqliteLedger, ledger
from scripts.monitor.list_loader import ListLoader
from scripts.monitor.rule_store import CachedRules, rule_store
from scripts.monitor.settings import Settings
from scripts.monitor.store import ObjectStore
from scripts.monitor.suppression import SuppressionRule

LOG = logging.getLogger("seclake.monitor")
ROLE_SESSION_NAME = "seclake-ipinsights-monitor"
LAKE_SESSION_NAME = "seclake-ipinsights-monitor-lake"
SNS_LINES = 50
SECURITY_HUB_BATCH = 100


@dataclass
class Notifier:
    """Security Hub (ASFF, in batches of 100) and an SNS summary, each only when its client is given."""

    security_hub: Any = None
    sns: Any = None
    sns_topic: str | None = None
    account_id: Callable[[], str] = field(default=lambda: "")

    def notify(self, findings: list[Finding]) -> int:
        """Import to Security Hub and publish the summary; returns the findings Security Hub did not take (its
        refusals are in the response, not raised; a Security Hub that is not enabled refuses them all, with a log
        line naming the fix). The findings are already in the lake: nothing here fails the message."""
        findings = [f for f in findings if f.status != SUPPRESSED]  # in the lake, marked; never notified
        if not findings:
            return 0
        refused = self._import(findings) if self.security_hub is not None else 0
        if self.sns is not None and self.sns_topic:
            lines = [f"{f.entity} -> {f.ip} (dot_product {f.score:.3f} < {f.threshold:.3f})" for f in findings]
            self.sns.publish(
                TopicArn=self.sns_topic,
                Subject="seclake-ipinsights findings",
                Message=f"{len(findings)} new findings\n" + "\n".join(lines[:SNS_LINES]),
            )
        return refused

    def _import(self, findings: list[Finding]) -> int:
        documents = asff(findings, self.account_id(), self.security_hub.meta.region_name, dt.datetime.now(dt.UTC))
        refused = 0
        for start in range(0, len(documents), SECURITY_HUB_BATCH):
            batch = documents[start : start + SECURITY_HUB_BATCH]
            try:
                response = self.security_hub.batch_import_findings(Findings=batch)
            except Exception as error:  # botocore's ClientError: Security Hub not enabled, access denied, throttled
                LOG.error(
                    "Security Hub refused %d findings: %s: %s; enable Security Hub in this account and region, or set "
                    "SECURITY_HUB=false (the findings are in the lake either way)",
                    len(batch),
                    type(error).__name__,
                    error,
                )
                refused += len(batch)
                continue
            failed = response.get("FailedFindings", [])
            if response.get("FailedCount", 0):
                reasons = sorted({f"{item.get('ErrorCode')}: {item.get('ErrorMessage')}" for item in failed})
                LOG.error("Security Hub refused %d findings: %s", response["FailedCount"], "; ".join(reasons[:3]))
                refused += int(response["FailedCount"])
        return refused


@dataclass
class MonitorResources:
    """Everything the handler's logic uses. `findings_store` is called once, when the first finding is written."""

    settings: Settings
    objects: ObjectStore
    runtime: Any  # a sagemaker-runtime client: invoke_endpoint
    ledger: FindingLedger
    deployment: Deployment
    findings_store: Callable[[], ObjectStore]
    notifier: Notifier = field(default_factory=Notifier)
    lake_objects: ObjectStore | None = None  # the lake's objects when read as another role; None: `objects`
    lists: ListLoader | None = None  # the analyst lists; None: the settings' lists read through `objects`
    suppressions: CachedRules | None = None  # the suppression rules; None: the settings' store

    def suppression_rules(self) -> list[SuppressionRule]:
        """The suppression rules as they stand (re-read every minute)."""
        if self.suppressions is None:
            store = rule_store(self.settings.suppression_table, self.settings.suppression_db)
            self.suppressions = CachedRules(store)
        return self.suppressions.rules()

    def analyst_lists(self) -> AnalystLists:
        """The trusted and threat lists the settings name, as they stand (re-read every few minutes)."""
        if self.lists is None:
            self.lists = ListLoader(self.settings, self.objects)
        return self.lists.current()

    @property
    def lake(self) -> ObjectStore:
        return self.lake_objects if self.lake_objects is not None else self.objects


class AssumedRoleObjects(ObjectStore):
    """S3 as an assumed role: the client is made again whenever the session is (a warm container outlives the hour
    of a chained role session; each object is read with credentials that have at least the margin left)."""

    def __init__(self, session: RoleSession, s3_client: Callable[..., Any]) -> None:
        super().__init__()
        self.session = session
        self.s3_client = s3_client
        self._credentials: SessionCredentials | None = None

    @property
    def client(self) -> Any:
        credentials = self.session.credentials()
        if credentials is not self._credentials:
            self._client = self.s3_client(**credentials.client_keys())
            self._credentials = credentials
        return self._client


def assumed_role_store(settings: Settings, sts: Any, s3_client: Callable[..., Any]) -> ObjectStore:
    """S3 with the custom source's provider role's credentials (Security Lake grants it the source's location; the
    external id is the one given at registration)."""
    role = RoleToAssume(settings.findings_role_arn or "", settings.findings_external_id or "", ROLE_SESSION_NAME)
    return AssumedRoleObjects(RoleSession(sts, role), s3_client)


def subscriber_store(settings: Settings, sts: Any, s3_client: Callable[..., Any]) -> ObjectStore | None:
    """The lake's objects as its subscriber role (the lake is another account's), or None: the function's own role."""
    if settings.lake_role_arn is None:
        return None
    role = RoleToAssume(settings.lake_role_arn, settings.lake_external_id or "", LAKE_SESSION_NAME)
    return AssumedRoleObjects(RoleSession(sts, role), s3_client)


def aws_resources(settings: Settings) -> MonitorResources:
    """The Lambda's: boto3 clients of the function's role; findings written as the provider role when one is named."""
    import boto3

    objects = ObjectStore(client=boto3.client("s3"))
    sagemaker = boto3.client("sagemaker")

    def current_config() -> str:
        return str(sagemaker.describe_endpoint(EndpointName=settings.endpoint)["EndpointConfigName"])

    def findings_store() -> ObjectStore:
        if settings.findings_role_arn is None:
            return objects
        return assumed_role_store(settings, boto3.client("sts"), lambda **keys: boto3.client("s3", **keys))

    def account_id() -> str:
        return settings.account_id or str(boto3.client("sts").get_caller_identity()["Account"])

    return MonitorResources(
        settings=settings,
        objects=objects,
        runtime=boto3.client("sagemaker-runtime"),
        ledger=ledger(settings.state_table, settings.state_db),
        deployment=Deployment(settings, objects, current_config),
        findings_store=findings_store,
        lake_objects=subscriber_store(settings, boto3.client("sts"), lambda **keys: boto3.client("s3", **keys)),
        notifier=Notifier(
            security_hub=boto3.client("securityhub") if settings.security_hub else None,
            sns=boto3.client("sns") if settings.sns_topic else None,
            sns_topic=settings.sns_topic,
            account_id=account_id,
        ),
    )


def folder_resources(
    settings: Settings,
    root: Path,
    endpoint_url: str,
    current_config: Callable[[], str],
    state_db: Path | None = None,
    region: str = "us-east-1",
) -> MonitorResources:
    """Local replay's: objects and findings in a folder laid out as S3, the local inference server, a SQLite state
    table; nobody notified."""
    import boto3

    objects = ObjectStore(root=root)
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return MonitorResources(
        settings=settings,
        objects=objects,
        runtime=runtime,
        ledger=SqliteLedger(state_db) if state_db is not None else NoLedger(),
        deployment=Deployment(settings, objects, current_config),
        findings_store=lambda: objects,
    )
