"""The simulated organisation's parts: workloads with roles, the services they use, who talks to whom, the world."""

from __future__ import annotations

from collections.abc import KeysView
from dataclasses import dataclass, field

import numpy as np

NTP_ADDRESS = "169.254.169.123"


# Workloads per VPC, by role. ENI-only roles (no instance): lb (load balancer), nat (NAT gateway).
ROLE_COUNTS = {"lb": 1, "web_public": 2, "web": 3, "app": 4, "db": 2, "batch": 2, "nat": 1}


ENI_ONLY_ROLES = {"lb", "nat"}


# Share of the organisation's connections each role carries (before a per-workload log-normal factor).
ROLE_ACTIVITY = {"lb": 20.0, "web_public": 12.0, "web": 6.0, "app": 6.0, "db": 4.0, "batch": 3.0, "nat": 6.0}


PUBLIC_FACING = {"lb", "web_public"}


@dataclass
class Workload:
    """An ENI, with its instance when there is one, in one account, region, VPC and subnet."""

    index: int
    account: str
    region: str
    zone: str
    vpc_uid: str
    subnet_uid: str
    instance_uid: str | None
    interface_uid: str
    ip: str
    role: str
    activity: float
    first_day: int = 0  # autoscaling: the day the instance was launched ...
    last_day: int = 1 << 30  # ... and the last day it ran

    def alive(self, day: int) -> bool:
        return self.first_day <= day <= self.last_day

    @property
    def entity(self) -> str:
        """The entity the `peer` mapping builds for this workload: `<account>/<instance or ENI id>`."""
        return f"{self.account}/{self.instance_uid or self.interface_uid}"

    @property
    def public_facing(self) -> bool:
        return self.role in PUBLIC_FACING


@dataclass
class Service:
    """A resolved service: its addresses ordered by the day each appears, for DNS answers and rotation."""

    index: int
    name: str
    port: int
    svc_name: str
    ips: np.ndarray  # indices into World.ip_text
    first_day: np.ndarray
    ips_v6: np.ndarray


@dataclass
class PeerTable:
    """Every (workload, remote address) relation with its weight, flattened and grouped by workload."""

    owner: np.ndarray
    ip: np.ndarray
    service_port: np.ndarray
    initiator_local: np.ndarray
    protocol: np.ndarray
    weight: np.ndarray
    first_day: np.ndarray
    service: np.ndarray
    segment_start: np.ndarray
    segment_end: np.ndarray
    last_day: np.ndarray

    def day_cumulative(self, day: int) -> np.ndarray:
        """Cumulative weights over the flat table with relations not alive on `day` weighted zero."""
        return np.cumsum(np.where((self.first_day <= day) & (day <= self.last_day), self.weight, 0.0))


@dataclass
class Partition:
    """One (region, account) pair: a folder of each source per day."""

    region: str
    account: str
    workloads: np.ndarray
    activity: float


@dataclass
class World:
    """Everything fixed for a seed: the organisation, the internet around it, and the traffic relations."""

    days: int
    workloads: list[Workload]
    services: list[Service]
    ip_text: list[str]
    peers: PeerTable
    partitions: list[Partition]
    scanners: np.ndarray
    scanner_first_day: np.ndarray
    bucket_suffix: dict[str, str]
    _ip_index: dict[str, int] = field(default_factory=dict, repr=False)
    # the instances each change made to the organisation itself launched on the last day (changes.py labels them)
    launched: dict[str, list[int]] = field(default_factory=dict)

    def ip_id(self, text: str) -> int:
        """The index of an address in ip_text, adding it when new."""
        if text not in self._ip_index:
            self._ip_index[text] = len(self.ip_text)
            self.ip_text.append(text)
        return self._ip_index[text]

    @property
    def used_addresses(self) -> KeysView[str]:
        """Every address any traffic or service of the world uses (`in` is one lookup)."""
        return self._ip_index.keys()

    def has_ip(self, text: str) -> bool:
        """Whether any traffic or service of the world already uses the address."""
        return text in self._ip_index

    def peer_ips_of(self, workload: int) -> set[str]:
        """Every remote address a workload ever talks to in normal traffic."""
        start, end = self.peers.segment_start[workload], self.peers.segment_end[workload]
        return {self.ip_text[i] for i in self.peers.ip[start:end].tolist()}


def hex_id(rng: np.random.Generator, prefix: str, length: int = 17) -> str:
    return prefix + "".join(rng.choice(list("0123456789abcdef"), size=length))


def zone_of(region: str, number: int) -> str:
    parts = region.split("-")
    return f"{parts[0]}{parts[1][0]}{parts[2]}-az{number}"


def draw_account_ids(rng: np.random.Generator, count: int) -> list[str]:
    accounts = [f"0{int(rng.integers(10**9, 10**10)):011d}"]  # a leading zero, as real account ids can have
    while len(accounts) < count:
        candidate = f"{int(rng.integers(10**11, 10**12)):012d}"
        if candidate not in accounts:
            accounts.append(candidate)
    return accounts


class PeerBuilder:
    def __init__(self, world_ip: dict[str, int], ip_text: list[str]) -> None:
        self.rows: list[tuple[int, int, int, bool, int, float, int, int, int]] = []
        self.ip_index = world_ip
        self.ip_text = ip_text

    def ip(self, text: str) -> int:
        if text not in self.ip_index:
            self.ip_index[text] = len(self.ip_text)
            self.ip_text.append(text)
        return self.ip_index[text]

    def add(
        self,
        owner: int,
        ip: int,
        port: int,
        initiator_local: bool,
        weight: float,
        first_day: int = 0,
        service: int = -1,
        protocol: int = 6,
        last_day: int = 1 << 30,
    ) -> None:
        self.rows.append((owner, ip, port, initiator_local, protocol, weight, first_day, service, last_day))

    def table(self, workload_count: int) -> PeerTable:
        rows = sorted(self.rows, key=lambda r: r[0])
        columns = list(zip(*rows, strict=True))
        owner = np.array(columns[0], dtype=np.int32)
        starts = np.searchsorted(owner, np.arange(workload_count), side="left")
        ends = np.searchsorted(owner, np.arange(workload_count), side="right")
        return PeerTable(
            owner=owner,
            ip=np.array(columns[1], dtype=np.int32),
            service_port=np.array(columns[2], dtype=np.int32),
            initiator_local=np.array(columns[3], dtype=bool),
            protocol=np.array(columns[4], dtype=np.int32),
            weight=np.array(columns[5], dtype=np.float64),
            first_day=np.array(columns[6], dtype=np.int32),
            service=np.array(columns[7], dtype=np.int32),
            segment_start=starts,
            segment_end=ends,
            last_day=np.array(columns[8], dtype=np.int64),
        )
