"""An object's findings with the analyst lists applied: a trusted address makes no finding; every pair with a
threat-listed address is a High finding naming the list, new or not (GuardDuty's order: trusted wins)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from scripts.monitor.findings import THREAT_LIST, Finding
from scripts.monitor.iplists import AnalystLists

THREAT_SEVERITY = "High"


@dataclass(frozen=True)
class Listed:
    """The findings after the lists, and how many each list decided (the object's metrics)."""

    findings: list[Finding]
    trusted: int  # findings dropped: every address they are about is trusted
    threat_listed: int  # pairs raised High for a threat list


def apply_lists(
    findings: list[Finding],
    lists: AnalystLists,
    pairs: Sequence[tuple[str, str]],
    scores: Sequence[float],
    make: Callable[[str, str, float], Finding],
) -> Listed:
    """`findings` without those on trusted addresses, and a High finding for each pair (entity, ip) whose address a
    threat list names, in place of the pair's own finding when it had one."""
    if not lists.trusted and not lists.threat:
        return Listed(findings, 0, 0)
    kept = [f for f in findings if not all(lists.trusted_mask(f.addresses))]
    trusted = len(findings) - len(kept)
    ips = [ip for _, ip in pairs]
    named = lists.threat_of(ips)
    allowed = lists.trusted_mask(ips)
    listed = [i for i, name in enumerate(named) if name is not None and not allowed[i]]
    if not listed:
        return Listed(kept, trusted, 0)
    own = {(f.entity, f.ip): f for f in kept}
    raised = []
    for index in listed:
        entity, ip = pairs[index]
        before = own.get((entity, ip))
        finding = before or make(entity, ip, scores[index])
        known = "" if before is not None else " The pair is not new: the list decides, not the detector."
        raised.append(
            replace(
                finding,
                severity=THREAT_SEVERITY,
                why=f"{ip} is on the threat list {named[index]}.{known} {finding.why}".strip(),
                evidence={**finding.evidence, THREAT_LIST: str(named[index])},
            )
        )
    replaced = {(f.entity, f.ip) for f in raised}
    return Listed([f for f in kept if (f.entity, f.ip) not in replaced] + raised, trusted, len(raised))
