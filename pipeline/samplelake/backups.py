"""Nightly backups (opt-in, unlabelled: normal traffic): every database and batch server uploads hundreds of MB to a
few GB to its region's S3 each night, in multipart connections spread over S3 addresses it can reach that day.

Real organisations do this daily, and with S3's rotating addresses (`s3_rotation`) most nights' uploads go to
addresses the server never met: the large first uploads a volume rule must learn as normal, not alarm on.
"""

from __future__ import annotations

import numpy as np

from pipeline.samplelake.anomalies import nat_of, outbound_connections
from pipeline.samplelake.organisation import World
from pipeline.samplelake.traffic import Connections

BACKUP_ROLES = frozenset({"db", "batch"})
BACKUP_MEDIAN_BYTES = 800_000_000  # each server's own size is drawn once around this (lognormal, sigma 0.8)
BACKUP_SIGMA = 0.8
NIGHTLY_GROWTH = (0.8, 1.25)  # a night's backup against the server's own size
PARTS = (8, 24)  # multipart uploads: connections per night
NIGHT_HOURS = (1.0, 4.0)  # UTC hours the backups start in
HTTPS = 443
HOUR_MS = 3_600_000
S3_SERVICE = "S3"


def backup_size(seed: int, workload: int) -> float:
    """The server's usual backup in bytes, fixed for the seed."""
    rng = np.random.default_rng([seed, 11, workload])
    return float(BACKUP_MEDIAN_BYTES * rng.lognormal(0.0, BACKUP_SIGMA))


def s3_addresses(world: World, workload: int, day: int) -> tuple[np.ndarray, np.ndarray]:
    """The S3 addresses the workload reaches on `day` (its peer relations with an S3 service), and their services."""
    peers = world.peers
    rows = np.arange(peers.segment_start[workload], peers.segment_end[workload])
    alive = (peers.first_day[rows] <= day) & (day <= peers.last_day[rows]) & (peers.service[rows] >= 0)
    rows = rows[alive]
    s3 = np.fromiter((world.services[s].svc_name == S3_SERVICE for s in peers.service[rows]), bool, count=len(rows))
    return peers.ip[rows[s3]], peers.service[rows[s3]]


def nightly_backups(world: World, seed: int, partition: int, day: int, day_start_ms: int) -> Connections | None:
    """The partition's backup connections of `day` (the NAT gateway's legs included), or None when it has none."""
    rng = np.random.default_rng([seed, 13, day, partition])
    parts: list[Connections] = []
    for member in world.partitions[partition].workloads.tolist():
        workload = world.workloads[member]
        if workload.role not in BACKUP_ROLES or not workload.alive(day):
            continue
        addresses, services = s3_addresses(world, member, day)
        if len(addresses) == 0:
            continue
        count = int(rng.integers(*PARTS))
        start = day_start_ms + int(rng.uniform(*NIGHT_HOURS) * HOUR_MS)
        times = np.sort(start + rng.integers(0, HOUR_MS, size=count))
        chosen = rng.integers(0, len(addresses), size=count)
        total = backup_size(seed, member) * rng.uniform(*NIGHTLY_GROWTH)
        for index in np.unique(chosen).tolist():
            mine = chosen == index
            upload = outbound_connections(
                world, member, int(addresses[index]), times[mine], HTTPS, rng, int(services[index])
            )
            upload.bytes = np.full(int(mine.sum()), int(total / count), np.int64)
            upload.packets = upload.bytes // 1400 + 1
            parts.append(upload)
            nat = nat_of(world, member)
            if nat is not None:
                leg = Connections.concat([upload])
                leg.workload = np.full(len(leg), nat, np.int32)
                leg.time_ms = leg.time_ms + 1
                parts.append(leg)
    return Connections.concat(parts) if parts else None
