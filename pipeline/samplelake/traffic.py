"""Draw the connections of one partition and time block: normal traffic, rejected scans, with a diurnal curve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.samplelake.organisation import World
from pipeline.samplelake.services import SCAN_PORTS

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Relative volume by UTC hour: quiet at night, a peak in the afternoon.
DIURNAL = 1.0 + 0.7 * np.cos(2 * np.pi * (np.arange(24) - 15) / 24)


@dataclass
class Connections:
    """One row per connection seen by a local workload; each becomes a request record and, unless rejected, a reply."""

    time_ms: np.ndarray
    workload: np.ndarray
    remote_ip: np.ndarray
    local_port: np.ndarray
    remote_port: np.ndarray
    initiator_local: np.ndarray
    protocol: np.ndarray
    packets: np.ndarray
    bytes: np.ndarray
    rejected: np.ndarray
    service: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ms)

    @staticmethod
    def concat(parts: list[Connections]) -> Connections:
        names = list(Connections.__dataclass_fields__)
        return Connections(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})

    def select(self, mask: np.ndarray) -> Connections:
        names = list(Connections.__dataclass_fields__)
        return Connections(**{name: getattr(self, name)[mask] for name in names})


@dataclass
class Queries:
    """Route 53 queries that no connection explains (a DNS tunnel's): one row each, its name and record type, and
    the address answered (-1: the answer holds no address, e.g. TXT)."""

    time_ms: np.ndarray
    workload: np.ndarray
    hostname: np.ndarray  # object array of names with their final dot
    record_type: np.ndarray  # object array: "A", "TXT"
    answer_ip: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ms)

    @staticmethod
    def concat(parts: list[Queries]) -> Queries:
        names = list(Queries.__dataclass_fields__)
        return Queries(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})

    def select(self, mask: np.ndarray) -> Queries:
        names = list(Queries.__dataclass_fields__)
        return Queries(**{name: getattr(self, name)[mask] for name in names})


def ephemeral_ports(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.integers(32768, 61000, size=count, dtype=np.int32)


def block_hours(block: int, blocks: int) -> np.ndarray:
    """The UTC hours covered by file block `block` of `blocks` per day."""
    return np.array_split(np.arange(24), blocks)[block]


def draw_times(rng: np.random.Generator, day_start_ms: int, hours: np.ndarray, count: int) -> np.ndarray:
    """Event times inside the given hours of a day, following the diurnal curve."""
    weights = DIURNAL[hours] / DIURNAL[hours].sum()
    hour = rng.choice(hours, size=count, p=weights)
    return day_start_ms + hour.astype(np.int64) * HOUR_MS + rng.integers(0, HOUR_MS, size=count)


def normal_connections(
    rng: np.random.Generator, world: World, partition: int, day: int, cumulative: np.ndarray, times: np.ndarray
) -> Connections:
    """Connections of the partition's workloads to their peers, one per time given."""
    members = world.partitions[partition].workloads
    peers = world.peers
    activity = np.array([world.workloads[m].activity * world.workloads[m].alive(day) for m in members])
    count = len(times)
    workload = members[rng.choice(len(members), size=count, p=activity / activity.sum())]
    start = peers.segment_start[workload]
    end = peers.segment_end[workload]
    base = np.where(start > 0, cumulative[np.maximum(start - 1, 0)], 0.0)
    total = cumulative[end - 1] - base
    target = base + rng.random(count) * total
    chosen = np.clip(np.searchsorted(cumulative, target, side="right"), start, end - 1)
    initiator_local = peers.initiator_local[chosen]
    service_port = peers.service_port[chosen]
    ephemeral = ephemeral_ports(rng, count)
    protocol = peers.protocol[chosen]
    packets = np.maximum(1, rng.lognormal(2.0, 1.2, size=count)).astype(np.int64)
    size = (packets * rng.integers(60, 1400, size=count)).astype(np.int64)
    return Connections(
        time_ms=times,
        workload=workload.astype(np.int32),
        remote_ip=peers.ip[chosen],
        local_port=np.where(initiator_local, ephemeral, service_port).astype(np.int32),
        remote_port=np.where(initiator_local, service_port, ephemeral).astype(np.int32),
        initiator_local=initiator_local,
        protocol=protocol,
        packets=packets,
        bytes=size,
        rejected=np.zeros(count, dtype=bool),
        service=peers.service[chosen],
    )


def scan_connections(
    rng: np.random.Generator, world: World, partition: int, day: int, times: np.ndarray
) -> Connections:
    """Internet scanners probing the partition's public-facing workloads; security groups reject them."""
    members = world.partitions[partition].workloads
    fronts = np.array(
        [m for m in members.tolist() if world.workloads[m].public_facing and world.workloads[m].alive(day)],
        dtype=np.int32,
    )
    alive = world.scanners[world.scanner_first_day <= day]
    count = len(times) if len(fronts) and len(alive) else 0
    times = times[:count]
    return Connections(
        time_ms=times,
        workload=fronts[rng.integers(0, max(len(fronts), 1), size=count)] if count else np.zeros(0, np.int32),
        remote_ip=alive[rng.integers(0, max(len(alive), 1), size=count)] if count else np.zeros(0, np.int32),
        local_port=SCAN_PORTS[rng.integers(0, len(SCAN_PORTS), size=count)].astype(np.int32),
        remote_port=ephemeral_ports(rng, count),
        initiator_local=np.zeros(count, dtype=bool),
        protocol=np.full(count, 6, dtype=np.int32),
        packets=np.ones(count, dtype=np.int64),
        bytes=rng.integers(40, 61, size=count).astype(np.int64),
        rejected=np.ones(count, dtype=bool),
        service=np.full(count, -1, dtype=np.int32),
    )
