"""OCSF Detection Findings (class 2004, OCSF 1.1) for anomalous pairs, as parquet, and as Security Hub ASFF."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scripts.entity import base_entity, is_fleet, workload_of
from scripts.ocsf.layout import CUSTOM_SOURCE_PREFIX, FINDINGS_SOURCE_NAME

GENERATOR_ID = "seclake-ipinsights"  # ASFF GeneratorId: the Security Hub workflow's rule matches it
FINDING_TITLE = "Unusual network peer for workload"
FLEET_TITLE = "Many workloads met a new address the same day"
SWEEP_TITLE = "One workload met many new addresses at once"
SWEEP_ADDRESSES = "sweep_addresses"  # a sweep's evidence: every address it met, comma-separated, first seen first
TUNNEL_TITLE = "One workload asked DNS for many new names under one domain"
TUNNEL_DOMAIN = "tunnel_domain"  # a DNS tunnel's evidence (scripts/detect/tunnelling.py): the domain
TUNNEL_ADDRESSES = "tunnel_addresses"  # and the addresses its names answered, comma-separated (may be empty)
FLEET_WORKLOADS = "workloads"  # a fleet change's evidence: the workload ids that met its address, comma-separated
FLEET_ENTITIES = "fleet_entities"  # and their entities (`<account>/<workload>#<role>`): the pairs it stands for
PAIR_EVIDENCE = (FLEET_ENTITIES, SWEEP_ADDRESSES, TUNNEL_ADDRESSES)  # the evidence a grouped finding's pairs come from
THREAT_LIST = "threat_list"  # a finding's evidence: the threat list that names its address (scripts/monitor/iplists.py)
SEVERITY_IDS = {"Low": 2, "Medium": 3, "High": 4}
NEW, SUPPRESSED = "New", "Suppressed"  # a finding's status (OCSF Detection Finding status and status_id)
STATUS_IDS = {NEW: 1, SUPPRESSED: 3}
RELATED_FINDINGS = 10  # ASFF's limit on RelatedFindings
PRODUCT_FIELD_CHARACTERS = 2048  # ASFF's limit on a ProductFields value
EVENT_DAY_FIELD = "event_day"  # ASFF ProductFields: the finding's day (YYYYMMDD)
IP_FIELD = "ip"  # ASFF ProductFields: the finding's address
ACCOUNT_FIELD = "workload_account"  # ASFF ProductFields: the workload's account (AwsAccountId is the importer's)


@dataclass(frozen=True)
class Finding:
    """One anomalous (entity, ip) pair seen in a Security Lake object."""

    entity: str
    ip: str
    score: float
    threshold: float
    model_version: str
    source_object: str
    event_time_ms: int
    account: str
    region: str
    why: str = ""
    evidence: dict[str, str] = field(default_factory=dict)
    surprisal: float | None = None
    surprisal_threshold: float | None = None
    severity: str = "Medium"  # Low, Medium or High (a fleet change the fleet knew, a pair, a fleet change it did not)
    event_day: str = ""  # YYYYMMDD: the source object's eventDay partition, whatever its rows' times say
    status: str = NEW  # Suppressed: a suppression rule matched (scripts/monitor/suppression.py); never notified

    @property
    def fleet(self) -> bool:
        """A grouped finding: many workloads of the account met the address the same day (`<account>/*`)."""
        return is_fleet(self.entity)

    @property
    def sweep(self) -> bool:
        """A grouped finding: one workload met many new addresses at once (scripts/detect/sweep.py)."""
        return SWEEP_ADDRESSES in self.evidence

    @property
    def tunnel(self) -> bool:
        """A grouped finding: one workload's burst of new names under one domain (scripts/detect/tunnelling.py)."""
        return TUNNEL_DOMAIN in self.evidence

    @property
    def addresses(self) -> list[str]:
        """Every address the finding is about: a sweep's, a tunnel's answers (with its own `ip`), else its one."""
        if self.sweep:
            return self.evidence[SWEEP_ADDRESSES].split(",")
        if self.tunnel:
            return sorted({self.ip, *filter(None, self.evidence[TUNNEL_ADDRESSES].split(","))})
        return [self.ip]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The (entity, ip) pairs the finding stands for: what an analyst's verdict on it covers."""
        return finding_pairs(self.entity, self.ip, self.evidence)

    @property
    def title(self) -> str:
        if self.tunnel:
            return TUNNEL_TITLE
        return FLEET_TITLE if self.fleet else SWEEP_TITLE if self.sweep else FINDING_TITLE

    @property
    def verdict(self) -> str:
        """Why it was flagged, by the detector or by the model's threshold; a fleet change says how the pair alone
        scored, which need not reach the threshold (the count of workloads raised it)."""
        if self.surprisal is not None and self.surprisal_threshold is not None:
            reaches = "reaches" if self.surprisal >= self.surprisal_threshold else "for the pair alone, against"
            return (
                f"detector surprisal {self.surprisal:.2f} nats {reaches} the threshold {self.surprisal_threshold:.2f} "
                f"(IP Insights dot_product {self.score:.4f})"
            )
        return f"IP Insights dot_product {self.score:.4f} is below the threshold {self.threshold:.4f}"

    @property
    def description(self) -> str:
        """The finding in the words an analyst reads first."""
        if self.tunnel:
            return f"{self.title}: {self.why}"
        if THREAT_LIST in self.evidence:  # the list decides, whatever the detector said of the pair
            return f"{workload_of(self.entity)} talked to {self.ip}: {self.why}"
        if self.fleet or self.sweep:
            return f"{self.title}: {self.why} Detector: {self.verdict}.".strip()
        workload = workload_of(self.entity)
        return f"{workload} talked to {self.ip}, which does not fit its usual peers: {self.verdict}." + (
            f" {self.why}" if self.why else ""
        )

    @property
    def day(self) -> str:
        """The finding's day: its object's partition day (one finding per pair and day however the rows' clocks
        drift), else the day of its first sighting."""
        return self.event_day or dt.datetime.fromtimestamp(self.event_time_ms / 1000, dt.UTC).strftime("%Y%m%d")

    @property
    def incident_uid(self) -> str:
        """One workload's findings of one day share it (a fleet change is its own incident): Security Hub's related
        findings and `seclake findings` group by it."""
        workload = self.uid if self.fleet else base_entity(self.entity)
        return hashlib.sha256(f"{self.account}|{workload}|{self.day}".encode()).hexdigest()[:32]

    @property
    def uid(self) -> str:
        """Deterministic: the same pair, day and model always give the same finding id; a tunnel's is its domain's,
        never its answer's (the pair's own finding, or another tunnel answered by no address, would share it)."""
        subject = f"tunnel:{self.evidence[TUNNEL_DOMAIN]}" if self.tunnel else self.ip
        text = "|".join((self.entity, subject, self.day, self.model_version))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def finding_pairs(entity: str, ip: str, evidence: Mapping[str, str]) -> list[tuple[str, str]]:
    """The pairs behind a finding, from what every copy of it carries (the OCSF row's observables and unmapped, the
    ASFF's Resources and ProductFields): a fleet change's member entities with its address, a sweep's or a tunnel's
    entity with each of its addresses, else the pair itself."""

    def listed(key: str) -> list[str]:
        return [item for item in (evidence.get(key) or "").split(",") if item]

    if is_fleet(entity):  # written before fleet_entities: its members' roles are unknown, so no pair is named
        return [(member, ip) for member in listed(FLEET_ENTITIES)]
    if listed(SWEEP_ADDRESSES):
        return [(entity, address) for address in listed(SWEEP_ADDRESSES)]
    if listed(TUNNEL_ADDRESSES):
        return [(entity, address) for address in dict.fromkeys([ip, *listed(TUNNEL_ADDRESSES)])]
    return [(entity, ip)]


def ocsf_rows(findings: list[Finding], now_ms: int) -> list[dict[str, Any]]:
    rows = []
    for f in findings:
        workload = workload_of(f.entity)
        rows.append(
            {
                "class_uid": 2004,
                "class_name": "Detection Finding",
                "category_uid": 2,
                "category_name": "Findings",
                "activity_id": 1,
                "activity_name": "Create",
                "type_uid": 200401,
                "type_name": "Detection Finding: Create",
                "severity_id": SEVERITY_IDS[f.severity],
                "severity": f.severity,
                "status_id": STATUS_IDS[f.status],
                "status": f.status,
                "time": f.event_time_ms,
                "metadata": {
                    "version": "1.1.0",
                    "product": {
                        "name": "seclake-ipinsights",
                        "vendor_name": "seclake",
                        "feature": {"name": "IP Insights"},
                    },
                },
                "finding_info": {
                    "uid": f.uid,
                    "title": f.title,
                    "created_time": now_ms,
                    "first_seen_time": f.event_time_ms,
                    "types": ["Unusual Behaviors/Network Flow"],
                    "desc": f.description,
                    "analytic": {
                        "name": "IP Insights",
                        "type_id": 4,
                        "type": "Learning (ML/DL)",
                        "version": f.model_version,
                    },
                },
                "cloud": {"provider": "AWS", "region": f.region, "account": {"uid": f.account}},
                "resources": [
                    {"uid": name, "type": "AWS EC2 Instance" if name.startswith("i-") else "AWS EC2 Network Interface"}
                    for name in (f.evidence[FLEET_WORKLOADS].split(",") if f.fleet else [workload])
                ],
                "observables": [
                    {"name": "entity", "type": "Resource UID", "type_id": 10, "value": f.entity},
                    {"name": "ip", "type": "IP Address", "type_id": 2, "value": f.ip},
                    *(
                        [{"name": TUNNEL_DOMAIN, "type": "Hostname", "type_id": 1, "value": f.evidence[TUNNEL_DOMAIN]}]
                        if f.tunnel
                        else []
                    ),
                ],
                "unmapped": {
                    "dot_product": repr(f.score),
                    "incident_uid": f.incident_uid,
                    "threshold": repr(f.threshold),
                    "model_version": f.model_version,
                    "source_object": f.source_object,
                    **({"surprisal": repr(f.surprisal)} if f.surprisal is not None else {}),
                    **f.evidence,
                },
            }
        )
    return rows


def findings_arrow_schema() -> Any:
    """The parquet schema of every findings object, whatever the rows hold: a custom source's Glue crawler reads one
    schema, so optional members are typed columns (null when absent) and `unmapped` is a map of strings, as in the
    Security Lake native tables."""
    import pyarrow as pa

    string, integer, long = pa.string(), pa.int32(), pa.int64()
    return pa.schema(
        [
            ("class_uid", integer),
            ("class_name", string),
            ("category_uid", integer),
            ("category_name", string),
            ("activity_id", integer),
            ("activity_name", string),
            ("type_uid", long),
            ("type_name", string),
            ("severity_id", integer),
            ("severity", string),
            ("status_id", integer),
            ("status", string),
            ("time", long),
            (
                "metadata",
                pa.struct(
                    [
                        ("version", string),
                        (
                            "product",
                            pa.struct(
                                [("name", string), ("vendor_name", string), ("feature", pa.struct([("name", string)]))]
                            ),
                        ),
                    ]
                ),
            ),
            (
                "finding_info",
                pa.struct(
                    [
                        ("uid", string),
                        ("title", string),
                        ("created_time", long),
                        ("first_seen_time", long),
                        ("types", pa.list_(string)),
                        ("desc", string),
                        (
                            "analytic",
                            pa.struct([("name", string), ("type_id", integer), ("type", string), ("version", string)]),
                        ),
                    ]
                ),
            ),
            ("cloud", pa.struct([("provider", string), ("region", string), ("account", pa.struct([("uid", string)]))])),
            ("resources", pa.list_(pa.struct([("uid", string), ("type", string)]))),
            (
                "observables",
                pa.list_(pa.struct([("name", string), ("type", string), ("type_id", integer), ("value", string)])),
            ),
            ("unmapped", pa.map_(string, string)),
        ]
    )


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = findings_arrow_schema()
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    columns["unmapped"] = [sorted((row.get("unmapped") or {}).items()) for row in rows]
    table = pa.Table.from_pydict(columns, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="gzip")
    return buffer.getvalue()


def default_findings_uri(source_bucket: str, source_name: str = FINDINGS_SOURCE_NAME) -> str:
    """Where findings go when no custom source location is configured: ext/<source>/ in the object's bucket."""
    return f"s3://{source_bucket}/{CUSTOM_SOURCE_PREFIX}/{source_name}/"


def findings_location(f: Finding, object_key: str, findings_uri: str) -> tuple[str, str]:
    """(bucket, key) of a finding's file under the custom source's location, in the layout Security Lake expects
    there (region=/accountId=/eventDay=): one file per source object and model."""
    bucket, _, prefix = findings_uri.removeprefix("s3://").partition("/")
    name = hashlib.sha256(f"{object_key}|{f.model_version}".encode()).hexdigest()[:32]
    prefix = prefix.strip("/")
    partition = f"region={f.region}/accountId={f.account}/eventDay={f.day}/{name}.gz.parquet"
    return bucket, f"{prefix}/{partition}" if prefix else partition


def _capped(listing: str) -> str:
    """A comma-separated listing cut at whole items to fit a ProductFields value."""
    if len(listing) <= PRODUCT_FIELD_CHARACTERS:
        return listing
    cut = listing[: PRODUCT_FIELD_CHARACTERS + 1].rsplit(",", 1)[0]
    return cut if len(cut) <= PRODUCT_FIELD_CHARACTERS else ""


def asff(findings: list[Finding], aws_account: str, region: str, now: dt.datetime) -> list[dict[str, Any]]:
    """Security Hub findings (ASFF) for BatchImportFindings with the calling account's default product: each finding's
    AwsAccountId must be that account (Security Hub refuses any other); the workload's account is in ProductFields.
    The findings of one incident in the batch name each other as RelatedFindings (at most RELATED_FINDINGS)."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    product = f"arn:aws:securityhub:{region}:{aws_account}:product/{aws_account}/default"
    by_incident: dict[str, list[str]] = {}
    for f in findings:
        by_incident.setdefault(f.incident_uid, []).append(f.uid)

    def related(f: Finding) -> dict[str, Any]:
        others = [uid for uid in by_incident[f.incident_uid] if uid != f.uid][:RELATED_FINDINGS]
        return {"RelatedFindings": [{"ProductArn": product, "Id": uid} for uid in others]} if others else {}

    return [
        {
            "SchemaVersion": "2018-10-08",
            "Id": f.uid,
            "ProductArn": product,
            "GeneratorId": GENERATOR_ID,
            "AwsAccountId": aws_account,
            "Types": ["Unusual Behaviors/Network Flow"],
            "CreatedAt": stamp,
            "UpdatedAt": stamp,
            "Severity": {"Label": f.severity.upper()},
            "Title": f.title,
            "Description": f.description[:1024],
            "Resources": [{"Type": "Other", "Id": f.entity, "Region": f.region}],
            "ProductFields": {
                "dot_product": repr(f.score),
                "model_version": f.model_version,
                IP_FIELD: f.ip,
                ACCOUNT_FIELD: f.account,
                EVENT_DAY_FIELD: f.day,
                "incident_uid": f.incident_uid,
                **{key: _capped(f.evidence[key]) for key in PAIR_EVIDENCE if _capped(f.evidence.get(key) or "")},
            },
            **related(f),
        }
        for f in findings
    ]
