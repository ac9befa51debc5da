"""Why a pair was flagged, in words a responder can check: the entity's nearest known network and since when, and
who owns the address (a cloud, a CDN, another network) and whether the entity ever talked to that owner."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from scripts.detect.memory import Memory
from scripts.entity import role_of, workload_of


@dataclass(frozen=True)
class Evidence:
    """What the entity's history says about one address."""

    nearest_known_ip: str | None
    shared_prefix_bits: int
    nearest_network: str | None
    nearest_first_seen_ms: int | None
    known_addresses: int
    new_role: bool
    compared_with_peer_group: bool
    owner: str | None = None  # `Google (GOOGLE-CLOUD-PLATFORM, cloud)`, or the holder of an internal address
    owner_known: bool = False  # the entity (or its peer group) talked to that owner (organisation, account) before
    owner_is_account: bool = False  # the owner is an account of the address book, not a network's organisation


def network_of(ip: str, bits: int) -> str:
    """The network of `ip` with `bits` leading bits: 10.1.2.3 and 23 -> 10.1.0.0/23."""
    return str(ipaddress.ip_network(f"{ip}/{max(bits, 0)}", strict=False))


def gather(memory: Memory, entities: Sequence[str], ips: Sequence[str]) -> list[Evidence]:
    """Evidence for row-aligned pairs."""
    lookup = memory.nearest(entities, ips)
    nearest = lookup.nearest
    owners = memory.ownership.describe(list(ips)) if memory.ownership is not None else [None] * len(ips)
    evidence = []
    for index in range(len(ips)):
        owner = owners[index] if int(lookup.organisation[index]) >= 0 else None
        known_ip = nearest.nearest_ip(index)
        bits = int(nearest.shared_bits[index])
        first = int(nearest.first_seen_ms[index])
        evidence.append(
            Evidence(
                nearest_known_ip=known_ip,
                shared_prefix_bits=bits,
                nearest_network=network_of(known_ip, bits) if known_ip is not None and bits >= 0 else None,
                nearest_first_seen_ms=first if first >= 0 else None,
                known_addresses=int(nearest.known_addresses[index]),
                new_role=bool(lookup.new_role[index]),
                compared_with_peer_group=bool(lookup.from_group[index]),
                owner=owner,
                owner_known=bool(lookup.owner_known[index]),
                owner_is_account=owner is not None and not bool(lookup.public_owner[index]),
            )
        )
    return evidence


def day_of(ms: int) -> str:
    """`2026-11-28`: the UTC day of a time in milliseconds."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def describe(entity: str, ip: str, evidence: Evidence) -> str:
    """One sentence: what is new, and the closest thing the entity had done before."""
    workload = workload_of(entity)
    role = role_of(entity)
    acting = f" as {role.replace(':', ' of ')}" if role else ""
    if evidence.new_role:
        owner = owned_by(ip, evidence)
        return f"{workload} never acted{acting} before; this is its first such connection, to {ip}.{owner}"
    if evidence.nearest_known_ip is None:
        owner = owned_by(ip, evidence)
        return f"{workload} has no history{acting}; {ip} could not be compared with anything.{owner}"
    whose = "its account's workloads in this role" if evidence.compared_with_peer_group else workload
    details = []
    if evidence.shared_prefix_bits >= 8:
        details.append(f"network {evidence.nearest_network}")
    if evidence.nearest_first_seen_ms:
        details.append(f"first seen {day_of(evidence.nearest_first_seen_ms)}")
    detail = f" ({', '.join(details)})" if details else ""
    return (
        f"{ip} shares only /{evidence.shared_prefix_bits} with the {evidence.known_addresses} addresses {whose} "
        f"talked to{acting}; the nearest is {evidence.nearest_known_ip}{detail}.{owned_by(ip, evidence)}"
    )


def owned_by(ip: str, evidence: Evidence) -> str:
    """` 34.64.1.1 belongs to Google (GOOGLE-CLOUD-PLATFORM, cloud): the first connection to that owner ...`,
    ` 10.3.3.37 is i-0abc in vpc-1 (subnet-2), account 222233334444, us-east-1: the first connection into that
    account ...`, or ""."""
    if evidence.owner is None:
        return ""
    if evidence.owner_is_account:
        if evidence.owner_known:
            return f" {ip} is {evidence.owner}, an account this workload or its peers already talked to."
        return f" {ip} is {evidence.owner}: the first connection into that account for this workload and its peers."
    if evidence.owner_known:
        return f" {ip} belongs to {evidence.owner}, which this workload or its peers already talked to."
    return f" {ip} belongs to {evidence.owner}: the first connection to that owner for this workload and its peers."
