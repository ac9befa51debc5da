"""Security Hub's workflow as analysts' verdicts: a finding of ours set RESOLVED (true positive) or SUPPRESSED
(benign) reaches this function through an EventBridge rule on "Security Hub Findings - Imported", which writes the
verdict where the next pipeline run reads it (feedback/verdicts/<finding uid>.json).

Environment: ARTIFACT_URI (s3://bucket/prefix of the pipeline's artifacts).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from scripts.handoff.artifacts import ArtifactLayout
from scripts.handoff.verdicts import BENIGN, TRUE_POSITIVE, Verdict, VerdictError
from scripts.monitor.findings import ACCOUNT_FIELD, EVENT_DAY_FIELD, GENERATOR_ID, IP_FIELD, finding_pairs

LOG = logging.getLogger("seclake.feedback")
WORKFLOW_VERDICTS = {"RESOLVED": TRUE_POSITIVE, "SUPPRESSED": BENIGN}  # Security Hub's Workflow.Status -> verdict
EVENT_SOURCE = "aws.securityhub"
EVENT_DETAIL_TYPE = "Security Hub Findings - Imported"
SOURCE = "Security Hub workflow"
AUTOMATION_RULE = ":automation-rule/"  # in Note.UpdatedBy when a Security Hub automation rule made the change


@dataclass(frozen=True)
class EventVerdicts:
    """The verdicts an event carries, and the findings passed over (named, with why)."""

    verdicts: list[Verdict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _day_of(finding: dict[str, Any], fields: dict[str, str]) -> str:
    """The finding's day: ProductFields' event_day, else the day it was first observed or created (older imports)."""
    if fields.get(EVENT_DAY_FIELD):
        return fields[EVENT_DAY_FIELD]
    stamp = str(finding.get("FirstObservedAt") or finding.get("CreatedAt") or "")
    return stamp[:10].replace("-", "")


def _moment(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def verdict_of(finding: dict[str, Any], changed: dt.datetime) -> Verdict | None:
    """The verdict an ASFF finding of ours carries, or None when its workflow status is not a verdict; `changed`:
    when Security Hub sent it (the event's time: BatchUpdateFindings leaves UpdatedAt alone), the decision's time
    unless the analyst's note says when. Raises VerdictError naming what is missing, or a decision no analyst made
    (a Security Hub automation rule's)."""
    status = str((finding.get("Workflow") or {}).get("Status", ""))
    if finding.get("GeneratorId") != GENERATOR_ID or status not in WORKFLOW_VERDICTS:
        return None
    note = finding.get("Note") or {}
    if AUTOMATION_RULE in str(note.get("UpdatedBy", "")):
        message = f"finding {finding.get('Id')!r}: {status} by {note['UpdatedBy']}, an automation rule, not an analyst"
        raise VerdictError(message)
    fields = {str(k): str(v) for k, v in (finding.get("ProductFields") or {}).items()}
    resources = finding.get("Resources") or [{}]
    entity, ip = str(resources[0].get("Id", "")), fields.get(IP_FIELD, "")
    if not entity or not ip:
        message = f"finding {finding.get('Id')!r} has no Resources[0].Id or ProductFields.{IP_FIELD}: not one of ours"
        raise VerdictError(message)
    decided_at = _moment(str(note.get("UpdatedAt") or "")) or changed
    return Verdict.of(
        str(finding.get("Id", "")),
        WORKFLOW_VERDICTS[status],
        _day_of(finding, fields),
        fields.get(ACCOUNT_FIELD, str(finding.get("AwsAccountId", ""))),
        finding_pairs(entity, ip, fields),
        decided_at,
        author=str(note.get("UpdatedBy", "")),
        note=str(note.get("Text", "")),
        source=SOURCE,
    )


def verdicts_of_event(event: dict[str, Any], received: dt.datetime) -> EventVerdicts:
    """Every verdict of an EventBridge event (its time, else `received`, dates a decision without a note); a finding
    that cannot make one is skipped and named, never fatal."""
    found = EventVerdicts()
    sent = _moment(str(event.get("time") or "")) or received
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
        found.skipped.append(f"event {event.get('id', '?')}: not {EVENT_DETAIL_TYPE!r} from {EVENT_SOURCE}")
        return found
    for finding in (event.get("detail") or {}).get("findings") or []:
        try:
            verdict = verdict_of(finding, sent)
        except VerdictError as error:
            found.skipped.append(str(error))
            continue
        if verdict is not None:
            found.verdicts.append(verdict)
    return found


def write_verdicts(s3: Any, artifact_uri: str, verdicts: list[Verdict]) -> list[str]:
    """Put each verdict under feedback/verdicts/ (the latest decision on a finding replaces the earlier one)."""
    written = []
    layout = ArtifactLayout(artifact_uri)
    for verdict in verdicts:
        uri = layout.verdict(verdict.file_name)
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=verdict.dumps().encode(), ContentType="application/json")
        written.append(uri)
    return written


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge "Security Hub Findings - Imported" -> feedback/verdicts/."""
    import boto3

    found = verdicts_of_event(event, dt.datetime.now(dt.UTC))
    written = write_verdicts(boto3.client("s3"), os.environ["ARTIFACT_URI"], found.verdicts)
    for reason in found.skipped:
        LOG.warning("skipped: %s", reason)
    LOG.warning("verdicts written: %d; findings skipped: %d", len(written), len(found.skipped))
    return {"written": len(written), "skipped": len(found.skipped)}
