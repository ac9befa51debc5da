"""Lambda entry point: `handler(event, context)` for SQS batches from the Security Lake subscriber queue.

Environment (read once per container into scripts/monitor/settings.py's Settings, each value checked): ENDPOINT_NAME
and ARTIFACT_URI (required: the endpoint's current config names the deployed execution, whose manifest.json under
ARTIFACT_URI gives the threshold, the pair rules and the detector); FINDINGS_URI (the location Security Lake returned
for the custom source, see `seclake findings-source create`; default: ext/seclake-ipinsights/ in the bucket the
object came from) and FINDINGS_ROLE_ARN with FINDINGS_EXTERNAL_ID (the custom source's provider role, assumed to
write there; default: the function's own role); SECURITY_HUB=true to import findings; SNS_TOPIC_ARN to publish a
summary; SECLAKE_STATE_TABLE (one finding per pair and day across objects, and the fleet counts); operator
overrides: SECLAKE_THRESHOLD (the model's threshold), SECLAKE_DETECTOR=off (the model's threshold alone flags),
SECLAKE_DETECTOR_FPR (the detector's false positive rate instead of the one it was fitted with).
With the detector, each finding says why: the nearest known network, the prefix length shared, and when it was first
seen. The cold start loads that one file: no history scan, no endpoint call.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pyarrow.parquet as pq

from scripts.detect.tunnelling import DomainQueries, collect
from scripts.monitor.deployment import Deployed
from scripts.monitor.endpoint_client import score
from scripts.monitor.events import Message, ObjectRef, parse_batch
from scripts.monitor.findings import Finding, default_findings_uri, findings_location, ocsf_rows, parquet_bytes
from scripts.monitor.flagging import FleetContext, findings_of
from scripts.monitor.listed_findings import apply_lists
from scripts.monitor.object_schema import check_object_schema
from scripts.monitor.report import (
    METRICS,
    UNPLACEABLE_TIME,
    ObjectReport,
    keep_first_findings,
    metrics_line,
    placeable,
    release_findings,
)
from scripts.monitor.resources import MonitorResources, aws_resources
from scripts.monitor.settings import Settings
from scripts.monitor.store import ObjectStore
from scripts.monitor.suppression import suppress
from scripts.monitor.tunnel_findings import tunnel_rule_on, tunnels_of, with_tunnels
from scripts.ocsf.layout import parse_object_key
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source
from scripts.pairs.arrow_engine import extract, queried_names
from scripts.pairs.mapping import BYTES_OUT, QUERY_NAME, mapping

LOG = logging.getLogger("seclake.monitor")
BATCH_ROWS = 65_536


def process_object(ref: ObjectRef, resources: MonitorResources, deployed: Deployed) -> ObjectReport:
    """Pairs of one object (row group by row group), extracted as the deployed run's training data was, de-duplicated
    (each at its earliest time, with the bytes the entity sent over all its rows and, for a DNS answer, the first name
    it answered), scored; the anomalous ones as findings. A Route 53 object's queries, answered or not, are also read
    for DNS tunnels (scripts/detect/tunnelling.py)."""
    location = parse_object_key(ref.key)
    if location is None or location.version not in SOURCE_VERSIONS or location.source not in Source.__members__:
        message = f"s3://{ref.bucket}/{ref.key} is not a VPC_FLOW or ROUTE53 object of a known source version"
        raise ValueError(message)
    source, version = Source(location.source), int(location.version)
    rule = mapping(deployed.mapping).rule(source)
    report = ObjectReport(ref.key)
    first_seen: dict[tuple[str, str], int] = {}
    sent: dict[tuple[str, str], int] = {}
    asked: dict[tuple[str, str], str] = {}
    queries: dict[tuple[str, str], DomainQueries] = {}
    known = deployed.knowledge.of(location.account) if deployed.knowledge is not None else None
    detector = known.detector if known is not None else None
    reads_queries = rule.answers is not None and tunnel_rule_on(detector)
    local = resources.lake.download(ref.bucket, ref.key)
    try:
        parquet = pq.ParquetFile(local)
        check_object_schema(parquet.schema_arrow, source, version, f"s3://{ref.bucket}/{ref.key}")
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            result = extract(batch, source, version, rule, deployed.algorithm)
            report.rows += batch.num_rows
            if reads_queries:
                queried = queried_names(batch, version, rule)
                collect(queries, *(queried[c].to_pylist() for c in ("entity", "name", "time")))
            for reason, count in result.drops.items():
                report.drops[reason] = report.drops.get(reason, 0) + count
            columns = (result.pairs[c].to_pylist() for c in ("entity", "ip", "time", BYTES_OUT, QUERY_NAME))
            for entity, ip, time, count, name in zip(*columns, strict=True):
                if not placeable(time):
                    report.drops[UNPLACEABLE_TIME] = report.drops.get(UNPLACEABLE_TIME, 0) + 1
                    continue
                key = (entity, ip)
                if key not in first_seen or time < first_seen[key]:
                    first_seen[key] = time
                sent[key] = sent.get(key, 0) + count
                if name and key not in asked:
                    asked[key] = name
    finally:
        local.unlink(missing_ok=True)
    pairs = sorted(first_seen)
    report.pairs = len(pairs)
    tunnels = tunnels_of(detector, queries)
    if not pairs and not tunnels:
        return report
    concurrency = resources.settings.scoring_concurrency
    scores = score(resources.runtime, resources.settings.endpoint, pairs, concurrency=concurrency) if pairs else []

    def make(entity: str, ip: str, value: float) -> Finding:
        return Finding(
            entity,
            ip,
            value,
            deployed.threshold,
            deployed.version,
            f"s3://{ref.bucket}/{ref.key}",
            first_seen.get((entity, ip), 0),
            location.account,
            location.region,
            event_day=location.event_day,
        )

    fleet = FleetContext(location.event_day, location.account, resources.ledger)
    volumes = [sent[pair] for pair in pairs]
    names = [asked.get(pair) for pair in pairs]
    findings = findings_of(pairs, scores, make, known, deployed.threshold, fleet, volumes, names) if pairs else []
    if detector is not None:
        findings = with_tunnels(findings, tunnels, detector, pairs, scores, names, make)
    listed = apply_lists(findings, resources.analyst_lists(), pairs, scores, make)
    report.trusted, report.threat_listed = listed.trusted, listed.threat_listed
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    suppressed = suppress(listed.findings, resources.suppression_rules(), now_ms)
    report.findings, report.suppressed = suppressed.findings, suppressed.suppressed
    return report


def write_findings(report: ObjectReport, settings: Settings, store: ObjectStore, source_bucket: str) -> list[str]:
    """One parquet file per (source object, model, day) under the custom source's location: a redelivered message
    overwrites, never duplicates."""
    location = settings.findings_uri or default_findings_uri(source_bucket)
    written = []
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    by_file: dict[tuple[str, str], list[Finding]] = {}
    for finding in report.findings:
        by_file.setdefault(findings_location(finding, report.key, location), []).append(finding)
    for (bucket, key), group in sorted(by_file.items()):
        store.put(bucket, key, parquet_bytes(ocsf_rows(group, now_ms)))
        written.append(f"s3://{bucket}/{key}")
    return written


def handle_messages(messages: list[Message], resources: MonitorResources) -> tuple[list[str], list[ObjectReport]]:
    """Process every message; return the ids that failed (for the partial batch response) and the reports. What is
    deployed is looked up once per batch."""
    failures: list[str] = []
    reports: list[ObjectReport] = []
    deployed: Deployed | None = None
    writer: ObjectStore | None = None
    for message in messages:
        if message.ignored is not None:
            LOG.info("message %s acknowledged: %s", message.message_id, message.ignored)
            continue
        if message.error is not None:
            LOG.error("message %s: %s", message.message_id, message.error)
            failures.append(message.message_id)
            continue
        try:
            deployed = deployed or resources.deployment.current()
            for ref in message.objects:
                report = process_object(ref, resources, deployed)
                keep_first_findings(report, resources.ledger)
                try:
                    if report.findings and writer is None:
                        writer = resources.findings_store()
                    write_findings(report, resources.settings, writer or resources.objects, ref.bucket)
                except Exception:  # not written: give up the claims, so that no later object drops them as repeated
                    release_findings(report, resources.ledger)
                    raise
                report.refused_by_security_hub = resources.notifier.notify(report.findings)
                reports.append(report)
                METRICS.info("%s", metrics_line(report, resources.settings.endpoint))
                if report.drops:
                    LOG.info("%s: %d rows, skipped %s", ref.key, report.rows, report.drops)
        except Exception as error:  # reported per message; SQS redelivers it, then the DLQ keeps it
            LOG.error("message %s failed: %s: %s", message.message_id, type(error).__name__, error)
            failures.append(message.message_id)
    return failures, reports


_RESOURCES: list[MonitorResources] = []  # built by the first invocation, kept by the warm container


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch -> findings; the response lists the messages to retry (ReportBatchItemFailures)."""
    if not _RESOURCES:
        _RESOURCES.append(aws_resources(Settings.from_environment()))
    failures, _ = handle_messages(parse_batch(event), _RESOURCES[0])
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
