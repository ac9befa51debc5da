"""An object's DNS tunnels as findings: one High finding per tunnel, which takes the place of its answers' pairs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from scripts.detect.detector import Detector
from scripts.detect.tunnelling import (
    NO_ADDRESS,
    TUNNEL_SEVERITY,
    DomainQueries,
    Tunnel,
    answered_addresses,
    find_tunnels,
    tunnel_why,
)
from scripts.entity import account_of
from scripts.monitor.findings import TUNNEL_ADDRESSES, TUNNEL_DOMAIN, Finding

Make = Callable[[str, str, float], Finding]


def tunnel_rule_on(detector: Detector | None) -> bool:
    """Whether the rule applies: a detector that learnt the names its accounts ask for (an artifact saved before
    names has it off), with tunnel_min_names above 0. Off, an object's queries are not even collected."""
    return detector is not None and detector.names is not None and detector.settings.tunnel_min_names > 0


def tunnels_of(detector: Detector | None, queries: dict[tuple[str, str], DomainQueries]) -> list[Tunnel]:
    """The tunnels among an object's queries; none when the rule is off (tunnel_rule_on)."""
    if detector is None or detector.names is None or not queries or not tunnel_rule_on(detector):
        return []
    names = detector.names
    settings = detector.settings
    return find_tunnels(
        queries,
        lambda entity, domain: names.account_asked_domain(account_of(entity), domain),
        settings.tunnel_min_names,
        settings.tunnel_min_subdomain_length,
    )


def with_tunnels(
    findings: list[Finding],
    tunnels: list[Tunnel],
    detector: Detector,
    pairs: Sequence[tuple[str, str]],
    scores: Sequence[float],
    names: Sequence[str | None],
    make: Make,
) -> list[Finding]:
    """`findings` with each tunnel's answer pairs replaced by one finding for the tunnel: its `ip` the first (in
    order) address its names answered, or NO_ADDRESS when they answered none."""
    if not tunnels:
        return findings
    entities = [entity for entity, _ in pairs]
    ips = [ip for _, ip in pairs]
    folded: set[tuple[str, str]] = set()
    made = []
    for tunnel in tunnels:
        rows = answered_addresses(tunnel, entities, ips, names)
        addresses = sorted({ips[i] for i in rows})
        folded |= {(tunnel.entity, ip) for ip in addresses}
        ip = addresses[0] if addresses else NO_ADDRESS
        score = min((scores[i] for i in rows), default=float("nan"))
        organisation_knew = detector.names is not None and tunnel.domain in detector.names.organisation_domains
        finding = make(tunnel.entity, ip, score)
        made.append(
            replace(
                finding,
                event_time_ms=tunnel.first_ms if tunnel.first_ms is not None else finding.event_time_ms,
                severity=TUNNEL_SEVERITY,
                why=tunnel_why(tunnel, addresses, organisation_knew),
                evidence={
                    TUNNEL_DOMAIN: tunnel.domain,
                    TUNNEL_ADDRESSES: ",".join(addresses),
                    "tunnel_names": str(tunnel.names),
                    "tunnel_median_label_length": f"{tunnel.median_subdomain_length:.0f}",
                    "tunnel_examples": ",".join(tunnel.examples),
                    "domain_new_to_organisation": str(not organisation_knew).lower(),
                },
            )
        )
    return [f for f in findings if (f.entity, f.ip) not in folded] + made
