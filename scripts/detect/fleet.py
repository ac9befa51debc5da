"""The fleet-change rule across a day's objects: an address many workloads met for the first time the same day.

A service moving (a new S3 or SaaS address block), a SaaS rolled out to every app server, a patch day on new mirror
addresses look like that, and so does a worm or a shared command-and-control server. So it is not dropped: it becomes
one grouped finding per (account, address, day), whose severity says whether the account's fleet knew where the
address is: its network (an address sharing half its bits) or its owner (a provider or an account the workloads
already talk to) is Low, reported and nobody paged; an address of a network and an owner the fleet never came near
is High. The count of workloads spans every object of the day, through the state table (scripts/monitor/ledger.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from scripts.detect.decision import fleet_key
from scripts.detect.explain import network_of
from scripts.detect.history import Nearest
from scripts.entity import base_entity, fleet_of, workload_of


class FirstMeetings(Protocol):
    """The state table's side of the rule (scripts/monitor/ledger.py implements it)."""

    def meet(self, day: str, met: Mapping[str, Iterable[str]], now: float | None = None) -> dict[str, int]: ...


KNOWN_NETWORK_SHARE = 0.5  # the fleet knew the network when it had reached an address sharing half the bits (/16)
SHOWN_WORKLOADS = 5
SERVICE_MOVING_SEVERITY = "Low"  # the fleet knew the network or the owner: reported, nobody is paged
UNKNOWN_NETWORK_SEVERITY = "High"


def cross_object_counts(
    scored: dict[str, np.ndarray], entities: Sequence[str], ips: Sequence[str], day: str, book: FirstMeetings
) -> tuple[np.ndarray, np.ndarray]:
    """For each pair, how many workloads of its account met its address for the first time on `day`, in this object
    and every earlier one (another account's objects count apart: an attacker reaching a new instance the same day
    its own account's fleet meets it is not part of that), and how many met it in the pair's own role (counted for
    new roles only; the batch's count for the rest): the state table is asked only for the addresses of pairs this
    object would report (flagged, or already a fleet change here), all of them in one call, whatever their number."""
    candidates = (scored["flagged"] | scored["fleet_change"]) & (scored["novelty"] > 0)
    members: dict[str, set[str]] = {}
    keys = {index: fleet_key(entities[index], ips[index]) for index in np.flatnonzero(candidates).tolist()}
    for index, key in keys.items():
        members.setdefault(key, set()).add(base_entity(entities[index]))
    new_roles = np.flatnonzero(candidates & scored["new_role"]).tolist()
    roles = {index: fleet_key(entities[index], ips[index], by_role=True) for index in new_roles}
    for index, key in roles.items():  # `<account>|<role>|<ip>`: never an address's `<account>|<ip>`
        members.setdefault(key, set()).add(base_entity(entities[index]))
    totals = book.meet(day, members) if members else {}
    in_object = scored["fleet_workloads"]
    pairs = enumerate(zip(entities, ips, strict=True))
    counts = np.asarray([max(int(in_object[i]), totals.get(fleet_key(e, ip), 0)) for i, (e, ip) in pairs], np.int64)
    role_counts = np.asarray(scored["role_fleet_workloads"], dtype=np.int64).copy()
    for index, key in roles.items():
        role_counts[index] = max(int(role_counts[index]), totals.get(key, 0))
    return counts, role_counts


@dataclass(frozen=True)
class FleetChange:
    """One address many workloads of an account met for the first time the same day."""

    account: str
    ip: str
    workloads: list[str]
    count: int
    fleet_knew: bool  # the network (an address sharing half its bits)
    severity: str
    why: str
    owner: str | None = None  # who owns the address, in words, when known
    fleet_knew_owner: bool = False  # the changed workloads (or their peer groups) already talked to that owner

    @property
    def entity(self) -> str:
        return fleet_of(self.account)


def knew_network(ip: str, bits: int, nearest: str | None) -> bool:
    """Whether the account's fleet had reached `ip`'s network: an address sharing half its bits (/16 for IPv4)."""
    full = 64 if ":" in ip else 32
    return nearest is not None and bits >= KNOWN_NETWORK_SHARE * full


def fleet_severity(knew_network: bool, knew_owner: bool) -> str:
    """Low when the fleet knew the address's network or its owner; High when it knew neither."""
    return SERVICE_MOVING_SEVERITY if knew_network or knew_owner else UNKNOWN_NETWORK_SEVERITY


def fleet_change(
    account: str,
    ip: str,
    day: str,
    workloads: Sequence[str],
    count: int,
    known: Nearest | None,
    owner: str | None = None,
    owner_known: bool = False,
) -> FleetChange:
    """The grouped finding's verdict and words; `known`: the account's nearest address to `ip` (one row); `owner`:
    who owns `ip` in words (None: no owner known); `owner_known`: whether any of the workloads (or its peer group)
    talked to that owner before."""
    names = sorted({workload_of(w) for w in workloads})
    shown = ", ".join(names[:SHOWN_WORKLOADS]) + (
        f" and {len(names) - SHOWN_WORKLOADS} more" if len(names) > SHOWN_WORKLOADS else ""
    )
    bits = int(known.shared_bits[0]) if known is not None else -1
    nearest = known.nearest_ip(0) if known is not None else None
    knew = knew_network(ip, bits, nearest)
    knew_owner = owner is not None and owner_known
    head = f"{count} workloads met {ip} for the first time on {day} ({shown})"
    if knew and nearest is not None:
        tail = (
            f"the account's workloads already reached its network {network_of(nearest, bits)}: likely a service moving"
        )
    elif knew_owner:
        tail = (
            f"its network is new to the account's workloads, but its owner, {owner}, is one they already talk to: "
            "likely a service of that provider rolled out"
        )
    else:
        reach = f"more than /{bits}" if bits > 0 else "anything"
        whose = f"its owner, {owner}, is new to them too" if owner is not None else "its owner is not known"
        tail = (
            f"nothing the account's workloads ever reached shares {reach} with it and {whose}: a worm or a shared "
            "command-and-control server looks like this"
        )
    return FleetChange(
        account,
        ip,
        names,
        count,
        knew,
        fleet_severity(knew, knew_owner),
        f"{head}; {tail}.",
        owner,
        knew_owner,
    )
