"""Trusted and threat lists in GuardDuty's plain-text format: one IP address or CIDR per line, `#` comments.

An analyst's list of known-good networks (partners, scanners they run) and their intelligence team's known-bad
addresses. A trusted address never makes a finding; a threat-listed one is High even when the pair is not new. Lookups
are a binary search over the merged ranges of each family; a line that is no address nor CIDR is skipped and counted,
never a reason to drop the list.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

COMMENT = "#"
TRUSTED = "trusted"
THREAT = "threat"
KINDS = (TRUSTED, THREAT)


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IPv4-mapped IPv6 network as the IPv4 network it names (lookups map addresses the same way)."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


@dataclass(frozen=True)
class IpList:
    """One named list: merged (first, last) integer ranges per IP version, and the lines it could not read."""

    name: str
    starts: dict[int, list[int]]
    ends: dict[int, list[int]]
    skipped: tuple[str, ...] = ()

    @staticmethod
    def parse(name: str, text: str) -> IpList:
        """Read a list; host bits of a CIDR are ignored (10.0.0.1/8 is 10.0.0.0/8), as GuardDuty reads them."""
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        skipped = []
        for raw in text.splitlines():
            line = raw.split(COMMENT, 1)[0].strip()
            if not line:
                continue
            try:
                network = ipaddress.ip_network(line.lstrip("\ufeff"), strict=False)
            except ValueError:
                skipped.append(line)
                continue
            networks.append(_unmapped(network))
        v4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
        v6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
        starts: dict[int, list[int]] = {}
        ends: dict[int, list[int]] = {}
        for version, merged in ((4, list(v4)), (6, list(v6))):
            ranges = sorted((int(n.network_address), int(n.broadcast_address)) for n in merged)
            starts[version] = [first for first, _ in ranges]
            ends[version] = [last for _, last in ranges]
        return IpList(name, starts, ends, tuple(skipped))

    def __contains__(self, ip: object) -> bool:
        try:
            address = ipaddress.ip_address(str(ip))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        value, starts = int(address), self.starts.get(address.version, [])
        position = bisect.bisect_right(starts, value) - 1
        return position >= 0 and value <= self.ends[address.version][position]

    def __len__(self) -> int:
        return sum(len(values) for values in self.starts.values())


@dataclass(frozen=True)
class AnalystLists:
    """The trusted and threat lists the monitor applies."""

    trusted: tuple[IpList, ...] = ()
    threat: tuple[IpList, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)  # list name -> lines it could not read

    @staticmethod
    def of(trusted: Iterable[IpList], threat: Iterable[IpList]) -> AnalystLists:
        trusted, threat = tuple(trusted), tuple(threat)
        return AnalystLists(trusted, threat, {x.name: len(x.skipped) for x in (*trusted, *threat) if x.skipped})

    def trusted_mask(self, ips: Sequence[str]) -> list[bool]:
        return [any(ip in listed for listed in self.trusted) for ip in ips]

    def threat_of(self, ips: Sequence[str]) -> list[str | None]:
        """The first threat list naming each address, or None."""
        return [next((listed.name for listed in self.threat if ip in listed), None) for ip in ips]
