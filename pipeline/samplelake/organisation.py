"""The simulated organisation's parts: workloads with roles, the services they use, who talks to whom, the world."""

from __future__ import annotations

from array import array
from collections.abc import KeysView
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NTP_ADDRESS = "169.254.169.123"
FOREVER = 1 << 30  # the last day of a relation or workload that never ends


# Workloads per VPC, by role. ENI-only roles (no instance): lb (load balancer), nat (NAT gateway).
ROLE_COUNTS = {"lb": 1, "web_public": 2, "web": 3, "app": 4, "db": 2, "batch": 2, "nat": 1}
DEFAULT_WORKLOADS_PER_VPC = sum(ROLE_COUNTS.values())  # 15: ROLE_COUNTS exactly
MAX_WORKLOADS_PER_VPC = 1000  # real VPCs hold tens to hundreds of instances


ENI_ONLY_ROLES = {"lb", "nat"}


# Share of the organisation's connections each role carries (before a per-workload log-normal factor).
ROLE_ACTIVITY = {"lb": 20.0, "web_public": 12.0, "web": 6.0, "app": 6.0, "db": 4.0, "batch": 3.0, "nat": 6.0}


PUBLIC_FACING = {"lb", "web_public"}


def role_counts(workloads_per_vpc: int) -> dict[str, int]:
    """ROLE_COUNTS scaled to `workloads_per_vpc` workloads (largest remainders, ties in ROLE_COUNTS' order): the
    default gives ROLE_COUNTS itself, 50 gives 3 load balancer and NAT gateway ENIs (one per zone), 7 databases."""
    if not DEFAULT_WORKLOADS_PER_VPC <= workloads_per_vpc <= MAX_WORKLOADS_PER_VPC:
        message = (
            f"workloads_per_vpc {workloads_per_vpc} is outside {DEFAULT_WORKLOADS_PER_VPC}..{MAX_WORKLOADS_PER_VPC}: "
            f"set sample_lake.workloads_per_vpc within it (more VPCs come from more accounts or regions)"
        )
        raise ValueError(message)
    scaled = {role: count * workloads_per_vpc for role, count in ROLE_COUNTS.items()}
    counts = {role: value // DEFAULT_WORKLOADS_PER_VPC for role, value in scaled.items()}
    short = workloads_per_vpc - sum(counts.values())
    by_remainder = sorted(ROLE_COUNTS, key=lambda role: -(scaled[role] % DEFAULT_WORKLOADS_PER_VPC))
    for role in by_remainder[:short]:
        counts[role] += 1
    return counts


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
    last_day: int = FOREVER  # ... and the last day it ran

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
    _nat_by_vpc: dict[str, int] = field(default_factory=dict, repr=False)
    _nats_of_workloads: int = field(default=-1, repr=False)  # how many workloads _nat_by_vpc was built from

    def nat_of(self, workload: int) -> int | None:
        """The first NAT gateway of the workload's VPC (None: it has none), one lookup: a map rebuilt only when
        workloads were added since."""
        if self._nats_of_workloads != len(self.workloads):
            self._nat_by_vpc = {}
            for candidate in self.workloads:
                if candidate.role == "nat":
                    self._nat_by_vpc.setdefault(candidate.vpc_uid, candidate.index)
            self._nats_of_workloads = len(self.workloads)
        return self._nat_by_vpc.get(self.workloads[workload].vpc_uid)

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


# The peer relations' columns while the world is built, and their array types (array.array codes).
PEER_COLUMNS = {
    "owner": "i",
    "ip": "i",
    "service_port": "i",
    "initiator_local": "b",
    "protocol": "i",
    "weight": "d",
    "first_day": "i",
    "service": "i",
    "last_day": "q",
}
_DTYPES = {"i": np.int32, "b": np.int8, "d": np.float64, "q": np.int64}


class PeerBuilder:
    """The peer relations as they are added, one compact column each (about 41 bytes a relation), in order."""

    def __init__(self, world_ip: dict[str, int], ip_text: list[str]) -> None:
        self.columns: dict[str, array[Any]] = {name: array(code) for name, code in PEER_COLUMNS.items()}
        self.ip_index = world_ip
        self.ip_text = ip_text

    def __len__(self) -> int:
        return len(self.columns["owner"])

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
        last_day: int = FOREVER,
    ) -> None:
        values = (owner, ip, port, initiator_local, protocol, weight, first_day, service, last_day)
        for column, value in zip(self.columns.values(), values, strict=True):
            column.append(value)

    def add_many(self, **values: np.ndarray | float | int | bool) -> None:
        """Relations given column by column (arrays of one length, or one value for all of them), defaults as `add`:
        `owner`, `ip`, `service_port`, `initiator_local` and `weight` are required."""
        defaults: dict[str, float | int | bool] = {"first_day": 0, "service": -1, "protocol": 6, "last_day": FOREVER}
        given = {**defaults, **values}
        shaped = np.broadcast_arrays(*(np.asarray(given[name]) for name in PEER_COLUMNS))
        for (name, code), column in zip(PEER_COLUMNS.items(), shaped, strict=True):
            self.columns[name].frombytes(column.astype(_DTYPES[code]).tobytes())

    def _view(self, name: str) -> np.ndarray:
        """A column as a numpy array over the same memory: drop it before adding relations."""
        return np.frombuffer(self.columns[name], dtype=_DTYPES[PEER_COLUMNS[name]])

    def touching(self, since: int, workload: int, address: int, day: int) -> np.ndarray:
        """Positions from `since` of the relations still alive on `day` that `workload` owns or that reach `address`."""
        owner, ip, last = self._view("owner")[since:], self._view("ip")[since:], self._view("last_day")[since:]
        return since + np.flatnonzero(((owner == workload) | (ip == address)) & (last >= day))

    def owned(self, workload: int, day: int) -> np.ndarray:
        """Positions of the relations `workload` opens (initiator) that are still alive on `day`."""
        owner, initiator, last = self._view("owner"), self._view("initiator_local"), self._view("last_day")
        return np.flatnonzero((owner == workload) & (initiator != 0) & (last >= day))

    def gather(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of the relations at `positions`, copied."""
        return {name: self._view(name)[positions] for name in PEER_COLUMNS}

    def end(self, positions: np.ndarray, day: int) -> None:
        """End the relations at `positions` on `day` at the latest."""
        last = self._view("last_day")
        last[positions] = np.minimum(last[positions], day)

    def table(self, workload_count: int) -> PeerTable:
        """The relations grouped by owner, in the order they were added; the builder is left empty (its columns are
        released one by one, so the table and the builder never both hold all of them)."""
        order = np.argsort(self._view("owner"), kind="stable")
        sorted_columns = {}
        for name, code in PEER_COLUMNS.items():
            sorted_columns[name] = self._view(name)[order]
            self.columns[name] = array(code)
        owner = sorted_columns["owner"]
        starts = np.searchsorted(owner, np.arange(workload_count), side="left")
        ends = np.searchsorted(owner, np.arange(workload_count), side="right")
        return PeerTable(
            owner=owner,
            ip=sorted_columns["ip"],
            service_port=sorted_columns["service_port"],
            initiator_local=sorted_columns["initiator_local"].astype(bool),
            protocol=sorted_columns["protocol"],
            weight=sorted_columns["weight"],
            first_day=sorted_columns["first_day"],
            service=sorted_columns["service"],
            segment_start=starts,
            segment_end=ends,
            last_day=sorted_columns["last_day"],
        )
