"""Scans and sweeps: one workload's burst of first connections to many addresses is one finding, not many.

A compromised server probing its network, or reaching a botnet's many addresses, makes one flagged pair per address;
an analyst should read one finding that lists them. A sweep is at least SWEEP_MIN_ADDRESSES flagged pairs of one
workload, each opened by the workload (its client side: a server meeting new clients is its ordinary life), in one
batch; its other first connections into the /16s of those addresses join it (probes of its own subnet that looked
like neighbours alone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scripts.entity import base_entity, role_of, workload_of

SWEEP_MIN_ADDRESSES = 5
SHOWN_ADDRESSES = 8
SWEEP_SEVERITY = "High"
SERVER_SIDE = "server"
NO_KNOWN_OWNER = "no known owner"


@dataclass(frozen=True)
class Sweep:
    """One workload's flagged first connections (and their neighbours) in one batch: row indices, in order."""

    workload: str
    rows: list[int]


def _client_side(entity: str) -> bool:
    return not role_of(entity).startswith(SERVER_SIDE)


def _network16(ip: str) -> str:
    return ip.rsplit(".", 2)[0] if ":" not in ip else ip.split(":", 2)[0]


def find_sweeps(entities: Sequence[str], ips: Sequence[str], flagged: np.ndarray, novel: np.ndarray) -> list[Sweep]:
    """The sweeps among row-aligned pairs: `flagged` by the detector, `novel` (a first connection: novelty > 0)."""
    flagged_by: dict[str, list[int]] = {}
    for index in np.flatnonzero(flagged).tolist():
        if _client_side(entities[index]):
            flagged_by.setdefault(base_entity(entities[index]), []).append(index)
    sweeps = []
    for workload, rows in sorted(flagged_by.items()):
        if len({ips[i] for i in rows}) < SWEEP_MIN_ADDRESSES:
            continue
        networks = {_network16(ips[i]) for i in rows}
        joined = [
            index
            for index in np.flatnonzero(novel & ~flagged).tolist()
            if base_entity(entities[index]) == workload
            and _client_side(entities[index])
            and _network16(ips[index]) in networks
        ]
        sweeps.append(Sweep(workload, sorted(rows + joined)))
    return sweeps


def owners_in_words(owners: Sequence[str | None]) -> str:
    """Who owns a sweep's addresses, most first: `Google (GOOGLE, cloud) 8, no known owner 2`."""
    counts = Counter(owner or NO_KNOWN_OWNER for owner in owners)
    return ", ".join(
        f"{owner} {count}" for owner, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )


def sweep_why(
    workload: str, addresses: Sequence[str], roles: Sequence[str], flagged: int, owners: Sequence[str | None] = ()
) -> str:
    """The sweep in words: how many addresses, which, in which roles, and who owns them (when known): a burst into
    one provider reads differently from one across a network."""
    shown = ", ".join(addresses[:SHOWN_ADDRESSES]) + (
        f" and {len(addresses) - SHOWN_ADDRESSES} more" if len(addresses) > SHOWN_ADDRESSES else ""
    )
    acting = ", ".join(sorted({r.replace(":", " of ") for r in roles if r})) or "its usual roles"
    owned = f" Owners: {owners_in_words(owners)}." if owners else ""
    return (
        f"{workload_of(workload)} met {len(addresses)} addresses for the first time in one object ({shown}), as "
        f"{acting}; {flagged} of them unusual on their own: a scan or a sweep looks like this.{owned}"
    )
