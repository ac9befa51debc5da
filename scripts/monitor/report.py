"""What one object gave (rows, pairs, findings, drops), one finding per pair and day, and the object's metrics as
CloudWatch embedded-metric-format records."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from dataclasses import dataclass, field

from scripts.monitor.findings import (
    Finding,
)
from scripts.monitor.ledger import FindingLedger


def _metrics_logger() -> logging.Logger:
    """Embedded-metric-format records must be log events of their own, without Lambda's prefix: stdout, bare."""
    logger = logging.getLogger("seclake.metrics")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


METRICS = _metrics_logger()


METRICS_NAMESPACE = "SeclakeIpInsights/Monitor"


UNPLACEABLE_TIME = "unplaceable_time"  # a row whose time is missing or no date (epoch ms outside years 1970-9999)
LAST_PLACEABLE_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z


def placeable(time: int | None) -> bool:
    """Whether a row's time (epoch milliseconds) names a moment a finding can carry."""
    return time is not None and 0 <= time < LAST_PLACEABLE_MS


@dataclass
class ObjectReport:
    key: str
    rows: int = 0
    pairs: int = 0
    findings: list[Finding] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    repeated: int = 0  # findings another object of the day already raised
    refused_by_security_hub: int = 0  # findings Security Hub did not import (they are in the lake)
    trusted: int = 0  # findings a trusted list dropped
    threat_listed: int = 0  # pairs a threat list raised
    suppressed: int = 0  # findings a suppression rule matched (written, marked, not notified)


def _uids_by_owner(findings: list[Finding]) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for finding in findings:
        owners.setdefault(finding.source_object, []).append(finding.uid)
    return owners


def keep_first_findings(report: ObjectReport, book: FindingLedger) -> None:
    """One finding per (entity, ip, day, model): the first object to raise it keeps it (and so does that object
    when redelivered); in any other object it is dropped and counted. One state-table call per source object."""
    owners = _uids_by_owner(report.findings)
    claimed = {(owner, uid) for owner, uids in owners.items() for uid in book.claim(owner, uids)}
    kept = [f for f in report.findings if (f.source_object, f.uid) in claimed]
    report.repeated = len(report.findings) - len(kept)
    report.findings = kept


def release_findings(report: ObjectReport, book: FindingLedger) -> None:
    """Give up the object's claims on its findings (they were not written)."""
    for owner, uids in _uids_by_owner(report.findings).items():
        book.release(owner, uids)


def metrics_line(report: ObjectReport, endpoint: str) -> str:
    """One CloudWatch embedded-metric-format record per object: rows, pairs, findings and every drop reason, so a
    skip is a metric people can alarm on, not only a number in a report."""
    counts = {
        "Rows": report.rows,
        "Pairs": report.pairs,
        "Findings": len(report.findings),
        "RepeatedFindings": report.repeated,
        "SecurityHubRefused": report.refused_by_security_hub,
        "TrustedListed": report.trusted,
        "ThreatListed": report.threat_listed,
        "Suppressed": report.suppressed,
    }
    counts.update({f"Dropped_{reason}": count for reason, count in sorted(report.drops.items())})
    document = {
        "_aws": {
            "Timestamp": int(dt.datetime.now(dt.UTC).timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["Endpoint"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in counts],
                }
            ],
        },
        "Endpoint": endpoint,
        "object": report.key,
        **counts,
    }
    return json.dumps(document, sort_keys=True)
