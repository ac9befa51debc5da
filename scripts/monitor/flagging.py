"""Which scored pairs become findings: the detector (novelty and the model, calibrated per entity; fleet changes
grouped per account and address, sweeps per workload) or, without one, the model's threshold; each finding with its
evidence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from scripts.detect.decision import ROTATED_ANSWER_SEVERITY, Decision, decide, rotated_answers
from scripts.detect.detector import Detector
from scripts.detect.explain import Evidence, day_of, describe, gather
from scripts.detect.fleet import cross_object_counts, fleet_change
from scripts.detect.memory import Memory
from scripts.detect.names import UNKNOWN
from scripts.detect.sweep import SWEEP_SEVERITY, Sweep, find_sweeps, owners_in_words, sweep_why
from scripts.detect.volume import LARGE_UPLOAD_SEVERITY, upload_why
from scripts.entity import account_of, role_of
from scripts.monitor.findings import FLEET_ENTITIES, FLEET_WORKLOADS, SWEEP_ADDRESSES, Finding
from scripts.monitor.ledger import FindingLedger


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


def findings_of(
    pairs: list[tuple[str, str]],
    scores: list[float],
    make: Callable[[str, str, float], Finding],
    known: Knowledge | None,
    threshold: float,
    fleet: FleetContext,
    sent: list[int] | None = None,
    names: Sequence[str | None] | None = None,
) -> list[Finding]:
    """Flag by the detector when there is one, else by the model's threshold; add the evidence when known. `sent`:
    the bytes each entity sent to the address in this object (None: not known); `names`: the name each DNS answer
    was asked for (None for a flow)."""
    entities = [e for e, _ in pairs]
    ips = [ip for _, ip in pairs]
    grouped: list[Finding] = []
    uploaded: dict[int, tuple[int, float, float]] = {}  # finding -> (the day's bytes, its reference, the floor)
    answered: set[int] = set()
    if known is not None and known.detector is not None:
        detector = known.detector
        in_object = np.asarray(sent if sent is not None else [0] * len(pairs), dtype=np.int64)
        scored = detector.score(entities, ips, np.asarray(scores, dtype=np.float64), in_object, names)
        counts, role_counts = cross_object_counts(scored, entities, ips, fleet.day, fleet.book)
        day_sent = uploads_of_the_day(detector, scored, (entities, ips, in_object), make, fleet)
        large = detector.large_first_uploads(
            day_sent, scored["upload_reference"], scored["first_meeting"], scored["uploads"]
        )
        parts = (scored["novelty_surprisal"], scored["model_surprisal"], scored["model_speaks"], scored["new_role"])
        decision = decide(*parts, counts, detector.settings, scored["owner_known"], large, role_counts)
        decision = _kept_on_redelivery(decision, counts, (entities, ips, scores), make, fleet.book)
        remember_new_names(detector, scored, (entities, ips, names), fleet)
        rotated = rotated_answers(entities, scored["owner_known"], detector.settings, scored["known_name"])
        novel = (scored["novelty"] > 0) & ~decision.fleet_change
        swept = find_sweeps(entities, ips, decision.flagged & ~rotated, novel)
        in_sweep = {index for sweep in swept for index in sweep.rows}
        findings: list[Finding] = []
        for index in np.flatnonzero(decision.flagged).tolist():
            if index in in_sweep:
                continue
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
            if names is not None and names[index]:
                finding = _with_name(finding, str(names[index]), scored, index)
            if large[index]:
                reference = float(scored["upload_reference"][index])
                uploaded[len(findings)] = (int(day_sent[index]), reference, float(detector.settings.large_upload_bytes))
            elif rotated[index]:
                answered.add(len(findings))
            findings.append(finding)
        sweeps = [_sweep_finding(sweep, decision, (entities, ips, scores), make, known) for sweep in swept]
        grouped = sweeps + _fleet_findings(
            decision.fleet_change,
            decision.surprisal,
            counts,
            scored["owner_known"],
            (entities, ips, scores),
            make,
            known,
            fleet,
        )
    else:
        findings = [make(e, ip, s) for (e, ip), s in zip(pairs, scores, strict=True) if s < threshold]
    if known is None or not findings:
        return findings + grouped
    evidence = gather(known.memory, [f.entity for f in findings], [f.ip for f in findings])
    explained = [_with_evidence(f, e) for f, e in zip(findings, evidence, strict=True)]
    for index, (day_bytes, reference, floor) in uploaded.items():
        explained[index] = _as_large_upload(explained[index], day_bytes, reference, floor)
    for index in answered:
        finding = explained[index]
        why = (
            f"{finding.why} A DNS answer of a name or an owner it already knows: its connection is judged by its flow."
        )
        explained[index] = replace(finding, severity=ROTATED_ANSWER_SEVERITY, why=why)
    for index, finding in enumerate(explained):
        if finding.evidence.get(QUERY_NAME_EVIDENCE):
            explained[index] = replace(finding, why=f"{finding.why} {name_why(finding.evidence)}")
    if known.detector is not None:
        explained = with_resolved_names(explained, known.detector, fleet)
    return explained + grouped


QUERY_NAME_EVIDENCE = "query_name"
NAME_FIRST_IN_ACCOUNT = "name_first_asked_in_account"
NAME_NEW_TO_ORGANISATION = "name_new_to_organisation"
RESOLVED_NAME = "resolved_name"  # a flow's finding: the name new to the account its address was answered for today


def _address_key(entity: str, ip: str) -> str:
    return f"{account_of(entity)}|{ip}"


def remember_new_names(
    detector: Detector,
    scored: dict[str, np.ndarray],
    pairs: tuple[list[str], list[str], Sequence[str | None] | None],
    fleet: FleetContext,
) -> None:
    """Record in the state table the DNS answers of names new to their account that are first meetings: the flow to
    that address, in another object, names it (with_resolved_names). One state-table call, only when there are."""
    entities, ips, names = pairs
    if names is None or detector.names is None:  # a detector saved before names cannot tell a new one
        return
    new = scored["first_meeting"] & ~scored["known_name"]
    answers = {_address_key(entities[i], ips[i]): str(names[i]) for i in np.flatnonzero(new).tolist() if names[i]}
    if answers:
        fleet.book.resolve(fleet.day, answers)


def with_resolved_names(findings: list[Finding], detector: Detector, fleet: FleetContext) -> list[Finding]:
    """Flow findings whose address was answered today for a name new to the account (remember_new_names, from a
    Route 53 object the monitor read before this one) say so. One state-table read, only when there are findings;
    an answer in an object read later is not seen (the DNS answer's own finding names it)."""
    flows = [i for i, f in enumerate(findings) if not f.evidence.get(QUERY_NAME_EVIDENCE) and not f.fleet]
    if not flows:
        return findings
    resolved = fleet.book.resolved(fleet.day, {_address_key(findings[i].entity, findings[i].ip) for i in flows})
    if not resolved:
        return findings
    named = list(findings)
    for index in flows:
        name = resolved.get(_address_key(findings[index].entity, findings[index].ip))
        if name is None:
            continue
        _, organisation_first = detector.name_sightings([findings[index].entity], [name])
        new_to_organisation = int(organisation_first[0]) == UNKNOWN
        whom = "nor did any account of the organisation" if new_to_organisation else "though other accounts did"
        finding = named[index]
        named[index] = replace(
            finding,
            why=f"{finding.why} Resolved today from {name}: this account never asked for that name before, {whom}.",
            evidence={
                **finding.evidence,
                RESOLVED_NAME: name,
                NAME_NEW_TO_ORGANISATION: str(new_to_organisation).lower(),
            },
        )
    return named


def _with_name(finding: Finding, name: str, scored: dict[str, np.ndarray], index: int) -> Finding:
    """A DNS answer's finding with the name asked for, and whether the account (or any account) asked before."""
    account_first = int(scored["name_account_first_ms"][index])
    organisation_first = int(scored["name_organisation_first_ms"][index])
    return replace(
        finding,
        evidence={
            **finding.evidence,
            QUERY_NAME_EVIDENCE: name,
            NAME_FIRST_IN_ACCOUNT: "" if account_first == UNKNOWN else day_of(account_first),
            NAME_NEW_TO_ORGANISATION: str(organisation_first == UNKNOWN).lower(),
        },
    )


def name_why(evidence: dict[str, str]) -> str:
    """`Answered for deb.debian.org, which this account has asked for since 2026-11-28.`, or `... a name no account
    of the organisation asked for before.`"""
    name = evidence[QUERY_NAME_EVIDENCE]
    if evidence.get(NAME_FIRST_IN_ACCOUNT):
        return f"Answered for {name}, which this account has asked for since {evidence[NAME_FIRST_IN_ACCOUNT]}."
    if evidence.get(NAME_NEW_TO_ORGANISATION) == "true":
        return f"Answered for {name}, a name no account of the organisation asked for before."
    return f"Answered for {name}, a name other accounts asked for, never this one."


def uploads_of_the_day(
    detector: Detector,
    scored: dict[str, np.ndarray],
    pairs: tuple[list[str], list[str], np.ndarray],
    make: Callable[[str, str, float], Finding],
    fleet: FleetContext,
) -> np.ndarray:
    """What each pair sent on the object's day: for first connections on the entity's side that sent at least
    upload_tracked_bytes here, the state table's sum over the day's objects (this one's figure recorded first);
    this object's bytes for the rest. One state-table call, only when such a pair exists."""
    entities, ips, in_object = pairs
    settings = detector.settings
    tracked = scored["first_meeting"] & scored["uploads"] & (in_object >= max(settings.upload_tracked_bytes, 1))
    if detector.uploads is None or settings.large_upload_bytes <= 0 or not tracked.any():
        return in_object
    rows = np.flatnonzero(tracked).tolist()
    owner = make(entities[rows[0]], ips[rows[0]], 0.0).source_object
    keys = {index: f"{entities[index]}|{ips[index]}" for index in rows}
    totals = fleet.book.upload(fleet.day, owner, {keys[index]: int(in_object[index]) for index in rows})
    day_sent = in_object.copy()
    for index, key in keys.items():
        day_sent[index] = max(int(totals.get(key, 0)), int(in_object[index]))
    return day_sent


def _as_large_upload(finding: Finding, day_bytes: int, reference: float, floor: float) -> Finding:
    """A flagged pair that is a large first upload: High, said first in why, with the figures in evidence."""
    return replace(
        finding,
        severity=LARGE_UPLOAD_SEVERITY,
        why=f"{upload_why(finding.entity, finding.ip, day_bytes, reference, floor)} {finding.why}",
        evidence={
            **finding.evidence,
            "large_upload": "true",
            "bytes_out_day": str(day_bytes),
            "largest_first_upload_bytes": "" if np.isnan(reference) else str(int(reference)),
        },
    )


def _kept_on_redelivery(
    decision: Decision,
    counts: np.ndarray,
    pairs: tuple[list[str], list[str], list[float]],
    make: Callable[[str, str, float], Finding],
    book: FindingLedger,
) -> Decision:
    """A pair of a fleet change whose own finding this object raised before stays its finding: the object is being
    redelivered, and the day's count grew past the rule with later objects since. Its findings file is rewritten, and
    must not lose a finding an analyst may already have read (the grouped one belongs to the later object). One
    state-table read, only when the object has fleet changes."""
    rows = np.flatnonzero(decision.fleet_change).tolist()
    if not rows:
        return decision
    entities, ips, scores = pairs
    made = {index: make(entities[index], ips[index], scores[index]) for index in rows}
    owner = made[rows[0]].source_object
    owned = book.owned(owner, [finding.uid for finding in made.values()])
    kept = np.zeros(len(entities), dtype=bool)
    for index, finding in made.items():
        kept[index] = finding.uid in owned
    if not kept.any():
        return decision
    alone = decision.score + np.log(np.maximum(counts, 1))  # the score before the fleet rule divided it
    return replace(
        decision,
        score=np.where(kept, alone, decision.score),
        flagged=decision.flagged | kept,
        fleet_change=decision.fleet_change & ~kept,
    )


def _sweep_finding(
    sweep: Sweep,
    decision: Decision,
    pairs: tuple[list[str], list[str], list[float]],
    make: Callable[[str, str, float], Finding],
    known: Knowledge,
) -> Finding:
    """One finding for the sweep: the workload, its first address, every address listed in order of first sight,
    and who owns them when the detector knows owners."""
    entities, ips, scores = pairs
    members = sorted((make(entities[i], ips[i], scores[i]).event_time_ms, ips[i], i) for i in sweep.rows)
    addresses = list(dict.fromkeys(ip for _, ip, _ in members))
    first = members[0][2]
    flagged = int(decision.flagged[sweep.rows].sum())
    ownership = known.memory.ownership
    owners = ownership.describe(addresses) if ownership is not None else []
    return replace(
        make(entities[first], ips[first], min(scores[i] for i in sweep.rows)),
        entity=sweep.workload,
        why=sweep_why(sweep.workload, addresses, [role_of(entities[i]) for i in sweep.rows], flagged, owners),
        severity=SWEEP_SEVERITY,
        surprisal=float(decision.score[sweep.rows].max()),
        surprisal_threshold=known.detector.threshold if known.detector is not None else None,
        evidence={
            SWEEP_ADDRESSES: ",".join(addresses),
            "sweep_owners": owners_in_words(owners) if owners else "",
            "sweep_flagged": str(flagged),
            "sweep_roles": ",".join(sorted({role_of(entities[i]) for i in sweep.rows})),
        },
    )


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
    owner_known: np.ndarray,
    pairs: tuple[list[str], list[str], list[float]],
    make: Callable[[str, str, float], Finding],
    known: Knowledge,
    fleet: FleetContext,
) -> list[Finding]:
    """One finding per address the fleet met at once: `<account>/*`, severity by whether the fleet knew its network
    or its owner (any of the changed workloads, or its peer group, talked to that owner before)."""
    entities, ips, scores = pairs
    by_ip: dict[str, list[int]] = {}
    for index in np.flatnonzero(changed).tolist():
        by_ip.setdefault(ips[index], []).append(index)
    ownership = known.memory.ownership
    owners = dict(zip(by_ip, ownership.describe(list(by_ip)), strict=True)) if ownership is not None else {}
    findings = []
    for ip, rows in sorted(by_ip.items()):
        nearest = known.memory.fleet_nearest([fleet.account], [ip])
        change = fleet_change(
            fleet.account,
            ip,
            fleet.day,
            [entities[i] for i in rows],
            int(counts[rows].max()),
            nearest,
            owners.get(ip),
            bool(owner_known[rows].any()),
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
                    FLEET_WORKLOADS: ",".join(change.workloads),
                    FLEET_ENTITIES: ",".join(sorted({entities[i] for i in rows})),
                    "fleet_knew_network": str(change.fleet_knew).lower(),
                    "network_owner": change.owner or "",
                    "fleet_knew_owner": str(change.fleet_knew_owner).lower(),
                },
            )
        )
    return findings
