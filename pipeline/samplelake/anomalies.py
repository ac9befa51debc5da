"""Attacks injected on the last day, each with the (entity, ip) pairs it creates, for labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from pipeline.samplelake.addresses import (
    OTHER_CLOUD_V4,
    RESIDENTIAL_V4,
    UNSEEN_V4,
    draw_ipv4,
    fresh_subnet,
    ipv4_to_text,
)
from pipeline.samplelake.choices import refuse_unknown
from pipeline.samplelake.organisation import Service, World
from pipeline.samplelake.traffic import DAY_MS, HOUR_MS, Connections, Queries, ephemeral_ports

ANOMALY_KINDS = ("egress_new_network", "beacon", "lateral_movement", "compromised_web_outbound")
# What security teams fear most and a realistic organisation hid from the detector (issue 14); opt-in, so the
# sample lake's figures stay comparable: `GenerationOptions.anomaly_kinds`, the detection benchmark's --kinds.
EXTRA_ANOMALY_KINDS = ("cross_account_lateral_movement", "exfiltration_443")
# Attacks that hide in what the organisation already uses (issue 27; stealthy.py): opt-in, their own random stream.
STEALTHY_KINDS = ("exfiltration_own_provider", "c2_through_cdn", "internal_scan", "dns_tunnelling", "rogue_instance")
ALL_ANOMALY_KINDS = ANOMALY_KINDS + EXTRA_ANOMALY_KINDS + STEALTHY_KINDS
ANOMALY_KINDS_NAME = "anomaly kinds"
T = TypeVar("T")
EXFILTRATION_BYTES = 80_000_000  # one exfiltration's upload, over a dozen TLS connections
DB_PORT = 5432


@dataclass(frozen=True)
class Label:
    """One anomalous (entity, ip) pair, as the `peer` mapping will see it."""

    entity: str
    ip: str
    kind: str
    first_seen_ms: int
    account: str
    region: str


@dataclass
class Injection:
    """The connections of all anomalies of one partition (None: it has only queries), and their labels; `queries`:
    Route 53 queries no connection explains (a DNS tunnel's), None when there are none."""

    partition: int
    connections: Connections | None
    labels: list[Label]
    queries: Queries | None = None


def outbound_connections(
    world: World,
    workload: int,
    ip: int,
    times: np.ndarray,
    port: int,
    rng: np.random.Generator,
    service: int = -1,
    heavy: bool = False,
) -> Connections:
    count = len(times)
    packets = rng.integers(20, 4000 if heavy else 40, size=count).astype(np.int64)
    return Connections(
        time_ms=times.astype(np.int64),
        workload=np.full(count, workload, np.int32),
        remote_ip=np.full(count, ip, np.int32),
        local_port=ephemeral_ports(rng, count),
        remote_port=np.full(count, port, np.int32),
        initiator_local=np.ones(count, bool),
        protocol=np.full(count, 6, np.int32),
        packets=packets,
        bytes=packets * rng.integers(200, 1400, size=count),
        rejected=np.zeros(count, bool),
        service=np.full(count, service, np.int32),
    )


def inbound_connections(workload: int, ip: int, times: np.ndarray, port: int, rng: np.random.Generator) -> Connections:
    count = len(times)
    packets = rng.integers(4, 60, size=count).astype(np.int64)
    return Connections(
        time_ms=times.astype(np.int64),
        workload=np.full(count, workload, np.int32),
        remote_ip=np.full(count, ip, np.int32),
        local_port=np.full(count, port, np.int32),
        remote_port=ephemeral_ports(rng, count),
        initiator_local=np.zeros(count, bool),
        protocol=np.full(count, 6, np.int32),
        packets=packets,
        bytes=packets * rng.integers(60, 600, size=count),
        rejected=np.zeros(count, bool),
        service=np.full(count, -1, np.int32),
    )


def add_service(world: World, rng: np.random.Generator, name: str, ips: list[int], port: int, day: int) -> int:
    index = len(world.services)
    world.services.append(
        Service(
            index, name, port, "-", np.array(ips, np.int32), np.full(len(ips), day, np.int32), np.zeros(0, np.int32)
        )
    )
    return index


def nat_of(world: World, workload: int) -> int | None:
    """The NAT gateway of the workload's VPC (None: it has none)."""
    return world.nat_of(workload)


class LastDayPlanner:
    """The last day's injected connections per partition, with a label for each (entity, ip) pair they create."""

    def __init__(self, world: World, rng: np.random.Generator, day_start_ms: int) -> None:
        self.world = world
        self.rng = rng
        self.day = world.days - 1
        self.day_start = day_start_ms
        self.by_partition: dict[int, list[Connections]] = {}
        self.labels: dict[int, list[Label]] = {}
        self.queries: dict[int, list[Queries]] = {}
        self.used_subnets: set[str] = set()

    def injections(self) -> list[Injection]:
        """What was planned, one injection per partition."""
        partitions = sorted(set(self.by_partition) | set(self.queries) | set(self.labels))
        return [
            Injection(
                partition,
                Connections.concat(self.by_partition.get(partition, [])) if partition in self.by_partition else None,
                self.labels.get(partition, []),
                Queries.concat(self.queries[partition]) if partition in self.queries else None,
            )
            for partition in partitions
        ]

    def times(self, count: int, start_hour: float | None = None) -> np.ndarray:
        start = self.day_start + int((start_hour if start_hour is not None else self.rng.uniform(1, 20)) * HOUR_MS)
        return np.sort(self.rng.integers(start, self.day_start + DAY_MS - 60_000, size=count))

    def unused_addresses(self, cidr: str, count: int) -> list[int]:
        """`count` addresses of `cidr` that no traffic or service of the world uses yet, drawn one at a time."""
        chosen: list[int] = []
        while len(chosen) < count:
            text = ipv4_to_text(draw_ipv4(self.rng, cidr, 1))[0]
            if not self.world.has_ip(text):
                chosen.append(self.world.ip_id(text))
        return sorted(chosen)

    def fresh_ips(self, count: int) -> list[str]:
        subnet = fresh_subnet(self.rng, UNSEEN_V4[int(self.rng.integers(0, len(UNSEEN_V4)))])
        while subnet in self.used_subnets:
            subnet = fresh_subnet(self.rng, UNSEEN_V4[int(self.rng.integers(0, len(UNSEEN_V4)))])
        self.used_subnets.add(subnet)
        return sorted(set(ipv4_to_text(draw_ipv4(self.rng, subnet, count))))

    def record(self, partition: int, kind: str, connections: Connections, labelled: bool = True) -> None:
        """Inject `connections`; label each (workload, address) pair they create unless not `labelled` (refused
        flows give no pair a detector could see)."""
        self.by_partition.setdefault(partition, []).append(connections)
        if not labelled:
            return
        for workload, ip in sorted(
            set(zip(connections.workload.tolist(), connections.remote_ip.tolist(), strict=True))
        ):
            mask = (connections.workload == workload) & (connections.remote_ip == ip)
            owner = self.world.workloads[workload]
            label = Label(
                owner.entity,
                self.world.ip_text[ip],
                kind,
                int(connections.time_ms[mask].min()),
                owner.account,
                owner.region,
            )
            self.labels.setdefault(partition, []).append(label)

    def label(self, partition: int, kind: str, workload: int, ip: str, first_seen_ms: int) -> None:
        """Label one (workload, address) pair that no injected connection makes (a change the world itself made)."""
        owner = self.world.workloads[workload]
        label = Label(owner.entity, ip, kind, first_seen_ms, owner.account, owner.region)
        self.labels.setdefault(partition, []).append(label)

    def record_queries(self, partition: int, kind: str, queries: Queries) -> None:
        """Inject Route 53 `queries`; label each (workload, address) pair their address answers create."""
        self.queries.setdefault(partition, []).append(queries)
        answered = queries.answer_ip >= 0
        for workload, ip in sorted(
            set(zip(queries.workload[answered].tolist(), queries.answer_ip[answered].tolist(), strict=True))
        ):
            mask = (queries.workload == workload) & (queries.answer_ip == ip)
            owner = self.world.workloads[workload]
            first = int(queries.time_ms[mask].min())
            label = Label(owner.entity, self.world.ip_text[ip], kind, first, owner.account, owner.region)
            self.labels.setdefault(partition, []).append(label)

    def pick(self, roles: set[str]) -> tuple[int, int]:
        partition = int(self.rng.integers(0, len(self.world.partitions)))
        last_day = self.world.days - 1
        members = [
            m
            for m in self.world.partitions[partition].workloads.tolist()
            if self.world.workloads[m].role in roles and self.world.workloads[m].alive(last_day)
        ]
        return partition, int(members[int(self.rng.integers(0, len(members)))])

    def with_nat(self, partition: int, kind: str, workload: int, connections: Connections) -> None:
        """Private instances reach the internet through the VPC's NAT gateway, which logs the flows too."""
        self.record(partition, kind, connections)
        nat = nat_of(self.world, workload)
        if nat is not None:
            legs = Connections.concat([connections])
            legs.workload = np.full(len(legs), nat, np.int32)
            legs.time_ms = legs.time_ms + 1
            self.record(partition, kind, legs)

    def egress_new_network(self) -> None:
        partition, workload = self.pick({"batch", "app"})
        addresses = [self.world.ip_id(a) for a in self.fresh_ips(3)]
        port = int(self.rng.choice([3333, 4444, 443]))
        name = f"pool.{''.join(self.rng.choice(list('abcdefghijklmnopqrstuvwxyz'), 8))}.xyz"
        service = add_service(self.world, self.rng, name, addresses, port, self.day)
        start = float(self.rng.uniform(2, 16))
        parts = [
            outbound_connections(
                self.world,
                workload,
                ip,
                self.times(int(self.rng.integers(20, 50)), start),
                port,
                self.rng,
                service,
                heavy=True,
            )
            for ip in addresses
        ]
        self.with_nat(partition, "egress_new_network", workload, Connections.concat(parts))

    def beacon(self) -> None:
        partition, workload = self.pick({"app", "batch"})
        address = self.world.ip_id(self.fresh_ips(1)[0])
        name = f"cdn-{''.join(self.rng.choice(list('0123456789abcdef'), 10))}.net"
        service = add_service(self.world, self.rng, name, [address], 443, self.day)
        start = self.day_start + int(self.rng.uniform(0, 6) * HOUR_MS)
        period = 600_000
        ticks = np.arange(start, self.day_start + DAY_MS - period, period)
        times = ticks + self.rng.integers(-30_000, 30_000, size=len(ticks))
        self.with_nat(
            partition,
            "beacon",
            workload,
            outbound_connections(self.world, workload, address, times, 443, self.rng, service),
        )

    def lateral_movement(self) -> None:
        for _ in range(50):
            partition, attacker = self.pick({"app", "web"})
            known = self.world.peer_ips_of(attacker)
            source_ip = self.world.workloads[attacker].ip
            targets = [
                m
                for m in self.world.partitions[partition].workloads.tolist()
                if self.world.workloads[m].role in {"db", "batch", "app"}
                and self.world.workloads[m].alive(self.world.days - 1)
                and m != attacker
                and self.world.workloads[m].ip not in known
                and source_ip not in self.world.peer_ips_of(m)
            ]
            if targets:
                break
        else:
            return
        target = int(targets[int(self.rng.integers(0, len(targets)))])
        start = float(self.rng.uniform(1, 20))
        for port in (22, 445):
            times = self.times(int(self.rng.integers(3, 8)), start)
            self.both_sides("lateral_movement", (partition, attacker), (partition, target), port, times)

    def both_sides(
        self, kind: str, attacker: tuple[int, int], target: tuple[int, int], port: int, times: np.ndarray
    ) -> None:
        """Connections from one workload to another, logged by each in its own partition: (partition, workload)."""
        (attacker_partition, attacker_workload), (target_partition, target_workload) = attacker, target
        target_ip = self.world.ip_id(self.world.workloads[target_workload].ip)
        attacker_ip = self.world.ip_id(self.world.workloads[attacker_workload].ip)
        outbound = outbound_connections(self.world, attacker_workload, target_ip, times, port, self.rng)
        self.record(attacker_partition, kind, outbound)
        self.record(
            target_partition, kind, inbound_connections(target_workload, attacker_ip, times + 2, port, self.rng)
        )

    def cross_account_lateral_movement(self) -> None:
        """An app server's first connections to a database in another account of the same region (peered VPCs or a
        transit gateway make it reachable): the database logs the inbound side in its own account."""
        for _ in range(50):
            partition, attacker = self.pick({"app"})
            here = self.world.partitions[partition]
            others = [
                index
                for index, other in enumerate(self.world.partitions)
                if other.region == here.region and other.account != here.account
            ]
            if not others:
                continue
            target_partition = others[int(self.rng.integers(0, len(others)))]
            known = self.world.peer_ips_of(attacker)
            targets = [
                m
                for m in self.world.partitions[target_partition].workloads.tolist()
                if self.world.workloads[m].role == "db"
                and self.world.workloads[m].alive(self.world.days - 1)
                and self.world.workloads[m].ip not in known
            ]
            if targets:
                break
        else:
            return
        target = int(targets[int(self.rng.integers(0, len(targets)))])
        times = self.times(int(self.rng.integers(4, 10)))
        kind = "cross_account_lateral_movement"
        self.both_sides(kind, (partition, attacker), (target_partition, target), DB_PORT, times)

    def exfiltration_443(self) -> None:
        """An app server uploads about 80 MB over TLS to an address in another cloud provider's space, once."""
        partition, workload = self.pick({"app"})
        subnet = fresh_subnet(self.rng, OTHER_CLOUD_V4[int(self.rng.integers(0, len(OTHER_CLOUD_V4)))])
        address = self.world.ip_id(ipv4_to_text(draw_ipv4(self.rng, subnet, 1))[0])
        count = int(self.rng.integers(8, 16))
        connections = outbound_connections(self.world, workload, address, self.times(count), 443, self.rng)
        connections.bytes = np.full(count, EXFILTRATION_BYTES // count, np.int64)
        connections.packets = connections.bytes // 1400 + 1
        self.with_nat(partition, "exfiltration_443", workload, connections)

    def compromised_web_outbound(self) -> None:
        partition, web = self.pick({"web_public"})
        known = self.world.peer_ips_of(web)
        chosen: list[int] = []
        while len(chosen) < 3:
            block = RESIDENTIAL_V4[int(self.rng.integers(0, len(RESIDENTIAL_V4)))]
            text = ipv4_to_text(draw_ipv4(self.rng, block, 1))[0]
            if text not in known:
                chosen.append(self.world.ip_id(text))
        start = float(self.rng.uniform(1, 18))
        parts = [
            outbound_connections(
                self.world,
                web,
                ip,
                self.times(int(self.rng.integers(5, 15)), start),
                int(self.rng.choice([4444, 8081, 22])),
                self.rng,
            )
            for ip in chosen
        ]
        self.record(partition, "compromised_web_outbound", Connections.concat(parts))


def plan_anomalies(
    world: World, seed: int, day_start_ms: int, per_kind: int, kinds: tuple[str, ...] = ANOMALY_KINDS
) -> list[Injection]:
    """Anomalies for the last day, `per_kind` of each kind, spread over partitions at random. The extra kinds draw
    from their own random stream, so adding them leaves the other kinds' anomalies as they were."""
    refuse_unknown(kinds, ALL_ANOMALY_KINDS, ANOMALY_KINDS_NAME)
    planner = LastDayPlanner(world, np.random.default_rng([seed, 2]), day_start_ms)
    for _ in range(per_kind):
        for kind in ANOMALY_KINDS:
            if kind in kinds:
                getattr(planner, kind)()
    planner.rng = np.random.default_rng([seed, 3])
    for _ in range(per_kind):
        for kind in EXTRA_ANOMALY_KINDS:
            if kind in kinds:
                getattr(planner, kind)()
    return planner.injections()


def merge_injections(*plans: list[Injection]) -> dict[int, Injection]:
    """Several plans for the last day as one injection per partition: their connections and labels together."""
    merged: dict[int, Injection] = {}
    for plan in plans:
        for injection in plan:
            before = merged.get(injection.partition)
            if before is None:
                merged[injection.partition] = injection
                continue
            connections = _joined(before.connections, injection.connections, Connections.concat)
            queries = _joined(before.queries, injection.queries, Queries.concat)
            labels = before.labels + injection.labels
            merged[injection.partition] = Injection(injection.partition, connections, labels, queries)
    return merged


def _joined(first: T | None, second: T | None, concat: Callable[[list[T]], T]) -> T | None:
    parts = [part for part in (first, second) if part is not None]
    return concat(parts) if parts else None
