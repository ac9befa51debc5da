"""DNS tunnelling: one workload asking Route 53, in one object, for many distinct long names under one domain its
account never asked for.

A tunnel (iodine, dnscat2, a C2 framework's DNS channel) carries its data in the labels left of a domain whose name
server the attacker runs: thousands of queries, each for a name never asked before, whatever the answer holds (TXT,
NULL, or an A record of a harmless-looking address). The answers' addresses tell a pair detector nothing; the names
do. Legitimate lookups with many distinct names (DNS blocklists, antivirus hash lookups, a CDN's tenants) go to
domains the account asks for every day, or carry short labels; the domain's first day in the account is the one
moment such a service is indistinguishable, and the finding says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from scripts.entity import workload_of

TUNNEL_SEVERITY = "High"
SHOWN_NAMES = 3
# a tunnel's finding is about the addresses its names answered; one that answered none (TXT or NULL records only)
# names the unspecified address, so that the finding's ip field stays an address
NO_ADDRESS = "0.0.0.0"
# second-level labels under which a country's registry sells names (example.co.uk, example.com.au): the domain a
# tunnel's operator registers is then three labels long
REGISTRY_SECOND_LEVELS = frozenset({"ac", "co", "com", "edu", "gov", "net", "ne", "or", "org"})
# reverse lookups (in-addr.arpa, ip6.arpa) carry an address in their labels, an IPv6 one 63 characters long: a log
# pipeline or mail server resolving its clients asks for thousands of them, and no tunnel can use the zone
REVERSE_ZONE = "arpa"


def base_domain(name: str) -> str:
    """The registered domain a name belongs to: its last two labels, or three under a country's second level
    (`x7.t.example.co.uk` -> `example.co.uk`)."""
    labels = name.strip(".").lower().split(".")
    registry = len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in REGISTRY_SECOND_LEVELS
    return ".".join(labels[-3:] if registry else labels[-2:])


def subdomain(name: str, domain: str) -> str:
    """What a name carries left of its domain (`4a6f.t` of `4a6f.t.example.com`)."""
    return name.strip(".").lower()[: -len(domain)].rstrip(".")


@dataclass
class DomainQueries:
    """The distinct names one entity asked for under one domain in an object, and when it first asked."""

    names: set[str] = field(default_factory=set)
    first_ms: int | None = None

    def add(self, name: str, time_ms: int | None) -> None:
        self.names.add(name)
        if time_ms is not None and (self.first_ms is None or time_ms < self.first_ms):
            self.first_ms = time_ms


@dataclass(frozen=True)
class Tunnel:
    """One entity's burst of distinct names under one domain its account did not know."""

    entity: str
    domain: str
    names: int
    median_subdomain_length: float
    examples: tuple[str, ...]
    first_ms: int | None


def collect(
    queries: dict[tuple[str, str], DomainQueries],
    entities: Iterable[str],
    names: Iterable[str | None],
    times: Iterable[int | None],
) -> None:
    """Add one batch's (entity, name, time) rows to `queries`, keyed by (entity, domain); reverse lookups are left
    out."""
    for entity, raw, time_ms in zip(entities, names, times, strict=True):
        name = (raw or "").strip(".").lower()  # one name however it was written
        if "." not in name or name.rsplit(".", 1)[-1] == REVERSE_ZONE:
            continue
        key = (entity, base_domain(name))
        queries.setdefault(key, DomainQueries()).add(name, time_ms)


def find_tunnels(
    queries: dict[tuple[str, str], DomainQueries],
    known_domain: Callable[[str, str], bool],
    min_names: int,
    min_subdomain_length: int,
) -> list[Tunnel]:
    """The (entity, domain) bursts of at least `min_names` distinct names whose subdomains are at least
    `min_subdomain_length` characters long (median), under a domain `known_domain(entity, domain)` says the
    entity's account never asked for. `min_names` 0 turns the rule off."""
    if min_names <= 0:
        return []
    tunnels = []
    for (entity, domain), seen in sorted(queries.items()):
        if len(seen.names) < min_names:
            continue
        lengths = [len(subdomain(name, domain)) for name in seen.names]
        median = float(statistics.median(lengths))
        if median < min_subdomain_length or known_domain(entity, domain):
            continue
        examples = tuple(sorted(seen.names)[:SHOWN_NAMES])
        tunnels.append(Tunnel(entity, domain, len(seen.names), median, examples, seen.first_ms))
    return tunnels


def answered_addresses(
    tunnel: Tunnel, entities: Sequence[str], ips: Sequence[str], names: Sequence[str | None]
) -> list[int]:
    """Indices of the pairs (row-aligned) that are the tunnel's own DNS answers: its entity, a name of its domain."""
    return [
        index
        for index, (entity, name) in enumerate(zip(entities, names, strict=True))
        if entity == tunnel.entity and name and base_domain(name) == tunnel.domain and ips[index]
    ]


def tunnel_why(tunnel: Tunnel, addresses: Sequence[str], organisation_knew: bool) -> str:
    """The tunnel in words: how many names, how long, examples, what they answered, and who knew the domain."""
    answered = ", ".join(addresses[:SHOWN_NAMES]) if addresses else "no address (TXT or NULL records only)"
    known = (
        "another account of the organisation asks for it, this one never did"
        if organisation_knew
        else "no account of the organisation asked for it before"
    )
    return (
        f"{workload_of(tunnel.entity)} asked Route 53 for {tunnel.names} distinct names under {tunnel.domain} in one "
        f"object, their labels {tunnel.median_subdomain_length:.0f} characters long (median), e.g. "
        f"{', '.join(tunnel.examples)}; {known}. Answers: {answered}. Data carried in DNS names (a tunnel, or a C2 "
        f"channel over DNS) looks like this; a new blocklist or antivirus lookup service does too on its first day."
    )
