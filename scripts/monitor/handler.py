"""Lambda entry point: `handler(event, context)` for SQS batches from the Security Lake subscriber queue.

Environment (read once per invocation into scripts/monitor/settings.py's Settings, each value checked): ENDPOINT_NAME
(required); FINDINGS_URI (the location Security Lake returned for the custom source, see `seclake findings-source
create`; default: ext/seclake-ipinsights/ in the bucket the object came from) and FINDINGS_ROLE_ARN with
FINDINGS_EXTERNAL_ID (the custom source's provider role, assumed to write there; default: the function's own role);
SECLAKE_THRESHOLD (overrides the threshold) or SECLAKE_EVALUATION_URI (the deployed model's evaluation.json) or
ARTIFACT_URI (the pipeline's artifacts: the evaluation is found from the endpoint config's execution id);
SECLAKE_MODEL_VERSION; PAIR_MAPPING and ALGORITHM only for a model whose evaluation.json does not record them (the
deployed run's own record, seclake.training_data, wins; with neither: role and builtin); SECURITY_HUB=true to import
findings; SNS_TOPIC_ARN to publish a summary; SECLAKE_OBJECT_STORE_ROOT to read and write a local folder;
SECLAKE_DETECTOR_URI (the FitDetector step's detector.npz; by default the one the deployed model's evaluation.json
records, else the run's under ARTIFACT_URI): with it, pairs are flagged by the detector the pipeline fitted and
evaluated with the model (novelty against the entity and its peer group, and the model's score, calibrated per
entity; SECLAKE_DETECTOR=off keeps the model's threshold alone, SECLAKE_DETECTOR_FPR overrides the false positive
rate it was fitted with) and each finding says why: the nearest known network, the prefix length shared, and when
it was first seen. The cold start loads that one file: no history scan, no endpoint call.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from scripts.detect.artifact import load_detector
from scripts.detect.detector import Detector, Memory, decide
from scripts.detect.explain import Evidence, describe, gather
from scripts.detect.fleet import cross_object_counts, fleet_change
from scripts.layout import ArtifactLayout, execution_of
from scripts.monitor.events import Message, ObjectRef, parse_batch
from scripts.monitor.findings import (
    Finding,
    asff,
    default_findings_uri,
    findings_location,
    ocsf_rows,
    parquet_bytes,
)
from scripts.monitor.ledger import FindingLedger, NoLedger, ledger
from scripts.monitor.scoring import score
from scripts.monitor.settings import MonitorConfigError, Settings
from scripts.monitor.store import ObjectStore
from scripts.ocsf.layout import parse_object_key
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, arrow_mismatches
from scripts.pairs.arrow_engine import extract
from scripts.pairs.mapping import Algorithm, mapping

LOG = logging.getLogger("seclake.monitor")


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
BATCH_ROWS = 65_536
THRESHOLD_PATH = ("seclake", "threshold", "dot_product")
METRICS_NAMESPACE = "SeclakeIpInsights/Monitor"
DETECTOR_URI_KEY = "detector_uri"  # seclake.detector_uri in evaluation.json (scripts/evaluate.py ships alone)
TRAINING_DATA_KEY = "training_data"  # seclake.training_data: the mapping and algorithm training used


class DetectorUnavailableError(RuntimeError):
    """The fitted detector could not be read; the message names its URI."""


class ObjectSchemaError(ValueError):
    """An object's columns are not its source's and version's (a misfiled or foreign file); the message says what
    was expected, what differs, and what the file looks like instead."""


def check_object_schema(schema: Any, source: Source, version: int, where: str) -> None:
    """Missing or mistyped columns fail the object; columns a newer Security Lake adds are allowed."""
    problems = [p for p in arrow_mismatches(schema, source, version) if not p.endswith("unexpected column")]
    if not problems:
        return
    looks_like = [
        f"{other.value}/{SOURCE_VERSIONS[number].folder}"
        for other in Source
        for number in SOURCE_VERSIONS
        if (other, number) != (source, version)
        and not [p for p in arrow_mismatches(schema, other, number) if not p.endswith("unexpected column")]
    ]
    hint = f"; it looks like {' or '.join(looks_like)}" if looks_like else ""
    message = (
        f"{where} is filed under {source.value}/{SOURCE_VERSIONS[version].folder} but its columns differ: "
        f"{'; '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}{hint}. Nothing was scored; the message goes "
        "to the dead-letter queue: move the object under its source's prefix, or drop it from the queue"
    )
    raise ObjectSchemaError(message)


DEFAULT_PAIRS = ("role", Algorithm.BUILTIN)


@functools.lru_cache(maxsize=4)
def pair_rules(settings: Settings) -> tuple[str, Algorithm]:
    """The pair mapping and algorithm the deployed model was trained with, from its evaluation.json's record of the
    preprocessing step; a model from before that record uses the variables, else role and builtin (with a warning)."""
    mapping_variable, algorithm_variable = settings.mapping, settings.algorithm
    uri, _ = deployed_evaluation(settings)
    recorded: dict[str, Any] = {}
    if uri is not None:
        recorded = evaluation_document(uri).get("seclake", {}).get(TRAINING_DATA_KEY, {})
    mapping_name = recorded.get("mapping") or mapping_variable
    algorithm_text = recorded.get("algorithm") or (algorithm_variable.value if algorithm_variable else None)
    if recorded and mapping_variable and mapping_variable != recorded.get("mapping"):
        LOG.warning(
            "PAIR_MAPPING=%s ignored: the deployed model was trained on %s pairs", mapping_variable, mapping_name
        )
    if mapping_name is None or algorithm_text is None:
        LOG.warning(
            "the deployed model's evaluation records no pair mapping; using %s/%s (set PAIR_MAPPING and ALGORITHM)",
            mapping_name or DEFAULT_PAIRS[0],
            algorithm_text or DEFAULT_PAIRS[1].value,
        )
    return mapping_name or DEFAULT_PAIRS[0], Algorithm(algorithm_text or DEFAULT_PAIRS[1].value)


@dataclass
class ObjectReport:
    key: str
    rows: int = 0
    pairs: int = 0
    findings: list[Finding] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    repeated: int = 0  # findings another object of the day already raised


def keep_first_findings(report: ObjectReport, book: FindingLedger) -> None:
    """One finding per (entity, ip, day, model): the first object to raise it keeps it (and so does that object
    when redelivered); in any other object it is dropped and counted."""
    kept = [f for f in report.findings if book.claim(f.uid, f.source_object)]
    report.repeated = len(report.findings) - len(kept)
    report.findings = kept


@functools.lru_cache(maxsize=1)
def _clients() -> tuple[Any, Any]:
    import boto3

    return boto3.client("sagemaker-runtime"), boto3.client("sagemaker")


@functools.lru_cache(maxsize=4)
def deployed_evaluation(settings: Settings) -> tuple[str | None, str]:
    """(URI of the deployed model's evaluation.json, model version), resolved once per container; no URI when
    SECLAKE_THRESHOLD overrides the threshold."""
    endpoint, version, uri = settings.endpoint, settings.model_version, settings.evaluation_uri
    if uri is None and settings.threshold_override is None:
        artifacts = settings.artifact_uri
        if not artifacts:
            message = "set SECLAKE_EVALUATION_URI, ARTIFACT_URI or SECLAKE_THRESHOLD to find the threshold"
            raise MonitorConfigError(message)
        config_name = _clients()[1].describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        version = version or config_name.removeprefix(f"{endpoint}-")
        uri = ArtifactLayout(artifacts).evaluation(version)
    if uri is not None and not version:
        version = execution_of(uri) or ""
    return uri, version


@functools.lru_cache(maxsize=4)
def evaluation_document(uri: str) -> dict[str, Any]:
    return dict(json.loads(ObjectStore().get_text(uri)))


@functools.lru_cache(maxsize=4)
def model_threshold(settings: Settings) -> tuple[float, str]:
    """(threshold, model version) of the deployed model, resolved once per container."""
    uri, version = deployed_evaluation(settings)
    if settings.threshold_override is not None:
        return settings.threshold_override, version or "override"
    assert uri is not None
    document: Any = evaluation_document(uri)
    for part in THRESHOLD_PATH:
        document = document[part]
    if not isinstance(document, int | float):
        message = f"{uri} has no numeric {'.'.join(THRESHOLD_PATH)} (was the evaluation degenerate?)"
        raise MonitorConfigError(message)
    return float(document), version


@functools.lru_cache(maxsize=2)
def detector_file(uri: str) -> tuple[Detector, dict[str, Any]]:
    """The FitDetector step's detector.npz, loaded once per container."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    path: Path | None = None
    try:
        path = ObjectStore().download(bucket, key)
        return load_detector(path)
    except Exception as error:  # missing, unreadable or not a detector: said with the URI
        message = f"cannot read the detector {uri}: {type(error).__name__}: {error}"
        raise DetectorUnavailableError(message) from error
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


def knowledge_for(settings: Settings, version: str) -> Knowledge | None:
    """The deployed model's detector; None when there is none to use.

    A detector named by SECLAKE_DETECTOR_URI must be readable. One found from the evaluation or under ARTIFACT_URI
    may be missing (a model deployed from a run older than the FitDetector step): then the model's threshold alone
    flags, with a warning.
    """
    uri = resolve_detector_uri(settings, version)
    if uri is None:
        return None
    try:
        detector, _ = detector_file(uri)
    except DetectorUnavailableError as error:
        if settings.detector_uri:
            message = f"{error}; point SECLAKE_DETECTOR_URI at the run's detector/detector.npz, or unset it"
            raise MonitorConfigError(message) from error
        LOG.warning("%s; flagging by the model's threshold alone", error)
        return None
    if not settings.detector:
        return Knowledge(detector.memory, None)
    if settings.false_positive_rate is not None:
        detector = detector.with_false_positive_rate(settings.false_positive_rate)
    return Knowledge(detector.memory, detector)


def resolve_detector_uri(settings: Settings, version: str) -> str | None:
    """SECLAKE_DETECTOR_URI; else the detector the deployed model's evaluation.json records (a cached step's output
    lies under an earlier execution); else the run's own under ARTIFACT_URI; else None."""
    if settings.detector_uri:
        return settings.detector_uri
    uri, _ = deployed_evaluation(settings)
    if uri is not None:
        try:
            recorded = evaluation_document(uri).get("seclake", {}).get(DETECTOR_URI_KEY)
        except Exception as error:  # the threshold's own read reports an unreadable evaluation
            LOG.warning("cannot read %s for the detector's location: %s", uri, error)
            recorded = None
        if recorded:
            return str(recorded)
    artifacts = settings.artifact_uri
    if artifacts and version and version != "override":
        return ArtifactLayout(artifacts).detector(version)
    return None


@dataclass(frozen=True)
class Knowledge:
    memory: Memory
    detector: Detector | None


def _with_evidence(finding: Finding, evidence: Evidence) -> Finding:
    return replace(
        finding,
        why=describe(finding.entity, finding.ip, evidence),
        evidence={
            **finding.evidence,
            "nearest_known_ip": evidence.nearest_known_ip or "",
            "nearest_network": evidence.nearest_network or "",
            "shared_prefix_bits": str(evidence.shared_prefix_bits),
            "nearest_first_seen_ms": str(evidence.nearest_first_seen_ms or ""),
            "known_addresses": str(evidence.known_addresses),
            "new_role": str(evidence.new_role).lower(),
            "network_owner": evidence.owner or "",
            "owner_known": str(evidence.owner_known).lower(),
            "owner_is_account": str(evidence.owner_is_account).lower(),
        },
    )


def _findings(
    pairs: list[tuple[str, str]],
    scores: list[float],
    make: Callable[[str, str, float], Finding],
    known: Knowledge | None,
    threshold: float,
    fleet: FleetContext,
) -> list[Finding]:
    """Flag by the detector when there is one, else by the model's threshold; add the evidence when known."""
    entities = [e for e, _ in pairs]
    ips = [ip for _, ip in pairs]
    grouped: list[Finding] = []
    if known is not None and known.detector is not None:
        detector = known.detector
        scored = detector.score(entities, ips, np.asarray(scores, dtype=np.float64))
        counts = cross_object_counts(scored, entities, ips, fleet.day, fleet.book)
        parts = (scored["novelty_surprisal"], scored["model_surprisal"], scored["model_speaks"], scored["new_role"])
        decision = decide(*parts, counts, detector.settings)
        findings = []
        for index in np.flatnonzero(decision.flagged).tolist():
            finding = replace(
                make(entities[index], ips[index], scores[index]),
                surprisal=float(decision.score[index]),
                surprisal_threshold=detector.threshold,
                evidence={
                    "novelty_surprisal": f"{scored['novelty_surprisal'][index]:.3f}",
                    "model_surprisal": f"{scored['model_surprisal'][index]:.3f}",
                    "fleet_workloads": str(int(counts[index])),
                    "compared_with_peer_group": str(bool(scored["compared_with_peer_group"][index])).lower(),
                },
            )
            findings.append(finding)
        grouped = _fleet_findings(
            decision.fleet_change, decision.surprisal, counts, entities, ips, scores, make, known, fleet
        )
    else:
        findings = [make(e, ip, s) for (e, ip), s in zip(pairs, scores, strict=True) if s < threshold]
    if known is None or not findings:
        return findings + grouped
    evidence = gather(known.memory, [f.entity for f in findings], [f.ip for f in findings])
    return [_with_evidence(f, e) for f, e in zip(findings, evidence, strict=True)] + grouped


@dataclass(frozen=True)
class FleetContext:
    """What the fleet-change rule needs beyond the pairs: the day, the account and the state table."""

    day: str
    account: str
    book: FindingLedger


def _fleet_findings(
    changed: np.ndarray,
    surprisal: np.ndarray,
    counts: np.ndarray,
    entities: list[str],
    ips: list[str],
    scores: list[float],
    make: Callable[[str, str, float], Finding],
    known: Knowledge,
    fleet: FleetContext,
) -> list[Finding]:
    """One finding per address the fleet met at once: `<account>/*`, severity by whether the fleet knew it."""
    by_ip: dict[str, list[int]] = {}
    for index in np.flatnonzero(changed).tolist():
        by_ip.setdefault(ips[index], []).append(index)
    findings = []
    for ip, rows in sorted(by_ip.items()):
        nearest = known.memory.fleet_nearest([fleet.account], [ip])
        change = fleet_change(
            fleet.account, ip, fleet.day, [entities[i] for i in rows], int(counts[rows].max()), nearest
        )
        first = min(rows, key=lambda i: scores[i])
        base = make(entities[first], ip, scores[first])
        findings.append(
            replace(
                base,
                entity=change.entity,
                why=change.why,
                severity=change.severity,
                surprisal=float(surprisal[rows].max()),
                surprisal_threshold=known.detector.threshold if known.detector is not None else None,
                evidence={
                    "fleet_workloads": str(change.count),
                    "workloads": ",".join(change.workloads),
                    "fleet_knew_network": str(change.fleet_knew).lower(),
                },
            )
        )
    return findings


def process_object(
    ref: ObjectRef, settings: Settings, store: ObjectStore, runtime: Any, book: FindingLedger | None = None
) -> ObjectReport:
    """Pairs of one object (row group by row group), de-duplicated, scored; the anomalous ones as findings."""
    location = parse_object_key(ref.key)
    if location is None or location.version not in SOURCE_VERSIONS or location.source not in Source.__members__:
        message = f"s3://{ref.bucket}/{ref.key} is not a VPC_FLOW or ROUTE53 object of a known source version"
        raise ValueError(message)
    source, version = Source(location.source), int(location.version)
    mapping_name, algorithm = pair_rules(settings)
    rule = mapping(mapping_name).rule(source)
    report = ObjectReport(ref.key)
    first_seen: dict[tuple[str, str], int] = {}
    local = store.download(ref.bucket, ref.key)
    try:
        parquet = pq.ParquetFile(local)
        check_object_schema(parquet.schema_arrow, source, version, f"s3://{ref.bucket}/{ref.key}")
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            result = extract(batch, source, version, rule, algorithm)
            report.rows += batch.num_rows
            for reason, count in result.drops.items():
                report.drops[reason] = report.drops.get(reason, 0) + count
            columns = (result.pairs[c].to_pylist() for c in ("entity", "ip", "time"))
            for entity, ip, time in zip(*columns, strict=True):
                key = (entity, ip)
                if key not in first_seen or time < first_seen[key]:
                    first_seen[key] = time
    finally:
        local.unlink(missing_ok=True)
    pairs = sorted(first_seen)
    report.pairs = len(pairs)
    if not pairs:
        return report
    threshold, version_name = model_threshold(settings)
    known = knowledge_for(settings, version_name)
    scores = score(runtime, settings.endpoint, pairs)

    def make(entity: str, ip: str, value: float) -> Finding:
        return Finding(
            entity,
            ip,
            value,
            threshold,
            version_name,
            f"s3://{ref.bucket}/{ref.key}",
            first_seen[(entity, ip)],
            location.account,
            location.region,
        )

    fleet = FleetContext(location.event_day, location.account, book or NoLedger())
    report.findings = _findings(pairs, scores, make, known, threshold, fleet)
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


def findings_store(settings: Settings, store: ObjectStore, sts: Any = None) -> ObjectStore:
    """Where findings are written from: the function's own S3 access, or, when the custom source's provider role is
    named, S3 with that role's credentials (Security Lake grants it the source's location; the external id is the
    one given at registration)."""
    if settings.findings_role_arn is None or store.root is not None:
        return store
    import boto3

    request: dict[str, Any] = {"RoleArn": settings.findings_role_arn, "RoleSessionName": "seclake-ipinsights-monitor"}
    if settings.findings_external_id:
        request["ExternalId"] = settings.findings_external_id
    credentials = (sts or boto3.client("sts")).assume_role(**request)["Credentials"]
    client = boto3.client(
        "s3",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return ObjectStore(client=client)


def _notify(findings: list[Finding], settings: Settings) -> None:
    import boto3

    if settings.security_hub and findings:
        client = boto3.client("securityhub")
        account = os.environ.get("AWS_ACCOUNT_ID") or boto3.client("sts").get_caller_identity()["Account"]
        documents = asff(findings, account, client.meta.region_name, dt.datetime.now(dt.UTC))
        for start in range(0, len(documents), 100):
            client.batch_import_findings(Findings=documents[start : start + 100])
    if settings.sns_topic and findings:
        lines = [f"{f.entity} -> {f.ip} (dot_product {f.score:.3f} < {f.threshold:.3f})" for f in findings[:50]]
        boto3.client("sns").publish(
            TopicArn=settings.sns_topic,
            Subject="seclake-ipinsights findings"[:100],
            Message=f"{len(findings)} new findings\n" + "\n".join(lines),
        )


def metrics_line(report: ObjectReport, endpoint: str) -> str:
    """One CloudWatch embedded-metric-format record per object: rows, pairs, findings and every drop reason, so a
    skip is a metric people can alarm on, not only a number in a report."""
    counts = {
        "Rows": report.rows,
        "Pairs": report.pairs,
        "Findings": len(report.findings),
        "RepeatedFindings": report.repeated,
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


def handle_messages(
    messages: list[Message], settings: Settings, store: ObjectStore, runtime: Any
) -> tuple[list[str], list[ObjectReport]]:
    """Process every message; return the ids that failed (for the partial batch response) and the reports."""
    failures: list[str] = []
    reports: list[ObjectReport] = []
    book = ledger(settings.state_table, settings.state_db)
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
            for ref in message.objects:
                report = process_object(ref, settings, store, runtime, book)
                keep_first_findings(report, book)
                if report.findings and writer is None:
                    writer = findings_store(settings, store)
                write_findings(report, settings, writer or store, ref.bucket)
                _notify(report.findings, settings)
                reports.append(report)
                METRICS.info("%s", metrics_line(report, settings.endpoint))
                if report.drops:
                    LOG.info("%s: %d rows, skipped %s", ref.key, report.rows, report.drops)
        except Exception as error:  # reported per message; SQS redelivers it, then the DLQ keeps it
            LOG.error("message %s failed: %s: %s", message.message_id, type(error).__name__, error)
            failures.append(message.message_id)
    return failures, reports


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch -> findings; the response lists the messages to retry (ReportBatchItemFailures)."""
    settings = Settings.from_environment()
    failures, _ = handle_messages(parse_batch(event), settings, ObjectStore(), _clients()[0])
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
