"""How the organisation changes and connects: autoscaling, database failover, VPC wiring, clients, other accounts."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace

import numpy as np

from pipeline.samplelake.addresses import (
    RESIDENTIAL_V4,
    RESIDENTIAL_V6,
    draw_ipv4,
    draw_ipv6,
    ipv4_to_text,
)
from pipeline.samplelake.organisation import (
    ENI_ONLY_ROLES,
    NTP_ADDRESS,
    Partition,
    PeerBuilder,
    Service,
    Workload,
    hex_id,
)
from pipeline.samplelake.services import use_service

AUTOSCALED_ROLES = ("web", "web_public", "app", "batch")


CROSS_ACCOUNT_API_PORT = 8443


def call_other_accounts(
    rng: np.random.Generator, workloads: list[Workload], partitions: list[Partition], peers: PeerBuilder
) -> None:
    """Each app server calls one or two app servers of every other account in its region, from the first day."""
    for here in partitions:
        others = [p for p in partitions if p.region == here.region and p.account != here.account]
        callers = [m for m in here.workloads.tolist() if workloads[m].role == "app" and workloads[m].first_day == 0]
        for caller in callers:
            for other in others:
                apps = [
                    m for m in other.workloads.tolist() if workloads[m].role == "app" and workloads[m].first_day == 0
                ]
                for callee in rng.choice(
                    apps, size=min(len(apps), 1 + int(rng.integers(0, 2))), replace=False
                ).tolist():
                    weight = 0.3 * float(rng.lognormal(0, 0.5))
                    peers.add(caller, peers.ip(workloads[callee].ip), CROSS_ACCOUNT_API_PORT, True, weight)
                    peers.add(callee, peers.ip(workloads[caller].ip), CROSS_ACCOUNT_API_PORT, False, weight)


def autoscale(
    rng: np.random.Generator,
    workloads: list[Workload],
    members: list[int],
    peers: PeerBuilder,
    days: int,
    churn: float,
    ip_index: dict[str, int],
) -> list[int]:
    """Replace, each day from the second, `churn` of each autoscaled group's running instances by new ones: the
    new instance talks to what the old one did, and its peers (load balancer, app servers, databases) to it
    instead. Returns the new workloads' indices."""
    launched: list[int] = []
    for role in AUTOSCALED_ROLES:
        running = [m for m in members if workloads[m].role == role]
        for day in range(1, days):
            replaced = [m for m in running if rng.random() < churn]
            for old in replaced:
                new = _replacement(rng, workloads, old, day, peers, ip_index)
                running[running.index(old)] = new
                launched.append(new)
    return launched


BLUE_GREEN = "blue_green"  # the benign changes made to the organisation itself (changes.py labels them)
NEW_SERVICE = "new_service"
BLUE_GREEN_ROLE = "app"
NEW_SERVICE_INSTANCES = 2
NEW_SERVICE_PORT = 9090  # a port the VPC never served on: its web servers take a role they never had


def free_address(rng: np.random.Generator, prefix: str, taken: Container[str]) -> str:
    """A host address of the /24 `prefix` that nothing in `taken` uses, drawn until one is free."""
    ip = f"{prefix}.{int(rng.integers(4, 250))}"
    while ip in taken:
        ip = f"{prefix}.{int(rng.integers(4, 250))}"
    return ip


def deploy_green(
    rng: np.random.Generator,
    workloads: list[Workload],
    partitions: list[Partition],
    peers: PeerBuilder,
    days: int,
    ip_index: dict[str, int],
) -> list[int]:
    """A blue/green deployment on the last day: every app server running in one VPC (one partition, drawn) is
    replaced by a new instance with a new address in its subnet, which takes over its peers. Returns the new
    workloads' indices, added to the partition's members."""
    day = days - 1
    chosen = int(rng.integers(0, len(partitions)))
    partition = partitions[chosen]
    blue = [m for m in partition.workloads.tolist() if workloads[m].role == BLUE_GREEN_ROLE and workloads[m].alive(day)]
    green = [_replacement(rng, workloads, old, day, peers, ip_index) for old in blue]
    partitions[chosen] = replace(
        partition, workloads=np.concatenate([partition.workloads, np.asarray(green, np.int32)])
    )
    return green


def launch_service(
    rng: np.random.Generator,
    workloads: list[Workload],
    partitions: list[Partition],
    peers: PeerBuilder,
    days: int,
    ip_index: dict[str, int],
) -> list[int]:
    """A new service on the last day: in one VPC (one partition, drawn), NEW_SERVICE_INSTANCES new instances in an
    app server's subnet, using what that app server uses (its database, AWS services, SaaS) through the NAT gateway,
    and called by every web server of the VPC on NEW_SERVICE_PORT. Returns the new workloads' indices, added to the
    partition's members."""
    day = days - 1
    chosen = int(rng.integers(0, len(partitions)))
    partition = partitions[chosen]
    members = partition.workloads.tolist()
    template = next(m for m in members if workloads[m].role == "app" and workloads[m].alive(day))
    model = workloads[template]
    by_address = {peers.ip(workloads[m].ip): m for m in members}
    launched = []
    for _ in range(NEW_SERVICE_INSTANCES):
        ip = free_address(rng, model.ip.rsplit(".", 1)[0], ip_index)
        new_ip = peers.ip(ip)
        workload = replace(
            model,
            index=len(workloads),
            instance_uid=hex_id(rng, "i-"),
            interface_uid=hex_id(rng, "eni-"),
            ip=ip,
            first_day=day,
            last_day=1 << 30,
            activity=model.activity * 0.5,
        )
        workloads.append(workload)
        launched.append(workload.index)
        for row in list(peers.rows):
            owner, address, port, initiator, protocol, weight, first, service, last = row
            if owner != template or not initiator or last < day:
                continue
            peers.add(workload.index, address, port, True, weight, max(first, day), service, protocol, last)
            if address in by_address:  # a workload of the VPC (its database) sees its new client
                peers.add(by_address[address], new_ip, port, False, weight, day, protocol=protocol)
        for member in members:
            if workloads[member].role == "nat":
                peers.add(member, new_ip, 443, False, 1.0, day)
            elif workloads[member].role == "web" and workloads[member].alive(day):
                weight = float(rng.lognormal(0, 0.5))
                peers.add(member, new_ip, NEW_SERVICE_PORT, True, weight, day)
                peers.add(workload.index, peers.ip(workloads[member].ip), NEW_SERVICE_PORT, False, weight, day)
    partitions[chosen] = replace(partition, workloads=np.asarray(members + launched, np.int32))
    return launched


class SubnetPool:
    """Distinct /24 prefixes drawn from 10/8 (10.0/16 left out), as an IPAM pool hands subnets to accounts."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def draw(self) -> str:
        prefix = f"10.{int(self.rng.integers(1, 256))}.{int(self.rng.integers(0, 256))}"
        while prefix in self.used:
            prefix = f"10.{int(self.rng.integers(1, 256))}.{int(self.rng.integers(0, 256))}"
        self.used.add(prefix)
        return prefix


def fail_over(
    rng: np.random.Generator,
    workloads: list[Workload],
    members: list[int],
    peers: PeerBuilder,
    days: int,
    share: float,
    ip_index: dict[str, int],
    standby: tuple[str, str, str, str],
) -> list[int]:
    """Each day from the second, `share` of the VPC's databases fail over to the other data subnet (`standby`:
    both prefixes, then both subnet ids): a new instance and address there, which their app servers reach from that
    day. Returns the new workloads' indices."""
    other_prefix = {standby[0]: standby[1], standby[1]: standby[0]}
    other_subnet = {standby[2]: standby[3], standby[3]: standby[2]}
    launched: list[int] = []
    running = [m for m in members if workloads[m].role == "db"]
    for day in range(1, days):
        for old in [m for m in running if rng.random() < share]:
            previous = workloads[old]
            prefix = other_prefix.get(previous.ip.rsplit(".", 1)[0], standby[1])
            subnet = other_subnet.get(previous.subnet_uid, standby[3])
            new = _replacement(rng, workloads, old, day, peers, ip_index, prefix, subnet)
            running[running.index(old)] = new
            launched.append(new)
    return launched


def _replacement(
    rng: np.random.Generator,
    workloads: list[Workload],
    old: int,
    day: int,
    peers: PeerBuilder,
    ip_index: dict[str, int],
    prefix: str | None = None,
    subnet_uid: str | None = None,
) -> int:
    """A new instance for `old` from `day`, in `prefix` (default: the old one's /24) and `subnet_uid`."""
    previous = workloads[old]
    ip = free_address(rng, prefix or previous.ip.rsplit(".", 1)[0], ip_index)
    new_ip, old_ip = peers.ip(ip), peers.ip(previous.ip)
    workloads[old] = replace(previous, last_day=day - 1)
    workload = replace(
        previous,
        index=len(workloads),
        instance_uid=hex_id(rng, "i-"),
        interface_uid=hex_id(rng, "eni-"),
        ip=ip,
        subnet_uid=subnet_uid or previous.subnet_uid,
        first_day=day,
        last_day=1 << 30,
    )
    workloads.append(workload)
    for position, row in enumerate(list(peers.rows)):
        owner, address, port, initiator, protocol, weight, first, service, last = row
        if owner == old and last >= day:  # the new instance's own relations: the old one's
            peers.rows[position] = (*row[:8], min(last, day - 1))
            peers.rows.append(
                (workload.index, address, port, initiator, protocol, weight, max(first, day), service, last)
            )
        elif address == old_ip and last >= day:  # its peers now reach the new address
            peers.rows[position] = (*row[:8], min(last, day - 1))
            peers.rows.append((owner, new_ip, port, initiator, protocol, weight, max(first, day), service, last))
    return workload.index


def wire_vpc(
    rng: np.random.Generator,
    workloads: list[Workload],
    by_role: dict[str, list[int]],
    peers: PeerBuilder,
    days: int,
    mirrors: dict[str, Service],
    saas: dict[str, Service],
    aws: dict[str, Service],
    residential_weights: np.ndarray,
    ipv6_fraction: float,
) -> None:
    """Who talks to whom inside one VPC, and with which outside services and clients."""

    def link(client: int, server: int, port: int, weight: float) -> None:
        peers.add(client, peers.ip(workloads[server].ip), port, True, weight)
        peers.add(server, peers.ip(workloads[client].ip), port, False, weight)

    aws_by_kind = {name.split(".")[0]: service for name, service in aws.items()}
    for lb in by_role["lb"]:
        for web in by_role["web"]:
            link(lb, web, 8080, float(rng.lognormal(0, 0.3)))
    for web in by_role["web"] + by_role["web_public"]:
        for app in rng.choice(by_role["app"], size=2, replace=False).tolist():
            link(web, app, 8443, float(rng.lognormal(0, 0.5)))
        use_service(peers, web, aws_by_kind["s3"], 0.5, rng)
    db_choices = by_role["db"]
    for app in by_role["app"]:
        for db in rng.choice(db_choices, size=1 + int(rng.integers(0, len(db_choices))), replace=False).tolist():
            link(app, db, 5432, float(rng.lognormal(0.5, 0.5)))
        for kind, weight in (("s3", 1.0), ("dynamodb", 0.8), ("sts", 0.2)):
            use_service(peers, app, aws_by_kind[kind], weight * float(rng.lognormal(0, 0.4)), rng)
        saas_list = list(saas.values())
        chosen = [saas_list[i] for i in rng.choice(len(saas_list), size=2, replace=False).tolist()]
        for service in chosen:
            use_service(peers, app, service, 0.4 * float(rng.lognormal(0, 0.6)), rng)
        if rng.random() < 0.5:  # adopts one more SaaS during the window: new peers, all normal
            extra = [s for s in saas.values() if s not in chosen]
            use_service(
                peers,
                app,
                extra[int(rng.integers(0, len(extra)))],
                0.3,
                rng,
                adopted_on=int(rng.integers(1, max(days - 1, 2))),
            )
    for db in by_role["db"]:
        use_service(peers, db, aws_by_kind["s3"], 0.6, rng)
    for batch in by_role["batch"]:
        link(batch, int(rng.choice(db_choices)), 5432, 0.6)
        mirror_list = list(mirrors.values())
        for service in [mirror_list[i] for i in rng.choice(len(mirror_list), size=5, replace=False).tolist()]:
            use_service(peers, batch, service, float(rng.lognormal(0, 0.8)), rng)
        use_service(peers, batch, aws_by_kind["s3"], 1.0, rng)
        use_service(peers, batch, saas["api.github.com"], 0.2, rng)
    instances = [w for role, members in by_role.items() if role not in ENI_ONLY_ROLES for w in members]
    ntp = peers.ip(NTP_ADDRESS)
    for instance in instances:
        use_service(peers, instance, aws_by_kind["ssm"], 0.15, rng)
        use_service(peers, instance, aws_by_kind["logs"], 0.15, rng)
        peers.add(instance, ntp, 123, True, 0.05, protocol=17)
    for nat in by_role["nat"]:
        private = by_role["app"] + by_role["batch"]
        for member in private:
            peers.add(nat, peers.ip(workloads[member].ip), 443, False, 1.0)
        for service in [*mirrors.values(), *saas.values(), aws_by_kind["sts"]]:
            use_service(peers, nat, service, 0.3, rng)
    for front in by_role["lb"] + by_role["web_public"]:
        _add_clients(rng, peers, front, days, residential_weights, ipv6_fraction)


def _add_clients(
    rng: np.random.Generator,
    peers: PeerBuilder,
    owner: int,
    days: int,
    residential_weights: np.ndarray,
    ipv6_fraction: float,
) -> None:
    """Internet clients of a public-facing workload: regulars from day 0, new ones every day, heavy-tailed."""
    count = 1500 + 400 * days
    v6_count = int(count * ipv6_fraction)
    blocks = rng.choice(len(RESIDENTIAL_V4), size=count - v6_count, p=residential_weights)
    v4 = np.zeros(len(blocks), dtype=np.int64)
    for block in np.unique(blocks).tolist():
        chosen = blocks == block
        v4[chosen] = draw_ipv4(rng, RESIDENTIAL_V4[block], int(chosen.sum()))
    addresses = ipv4_to_text(v4)
    for _ in range(v6_count):
        addresses.extend(draw_ipv6(rng, RESIDENTIAL_V6[int(rng.integers(0, len(RESIDENTIAL_V6)))], 1))
    regulars = int(count * 0.35)
    first_days = np.concatenate([np.zeros(regulars, dtype=np.int64), rng.integers(0, days, size=count - regulars)])
    first_days = first_days[rng.permutation(count)]
    weights = rng.pareto(1.2, size=count) + 0.05
    for address, first_day, weight in zip(addresses, first_days.tolist(), weights.tolist(), strict=True):
        peers.add(owner, peers.ip(address), 443, False, weight, first_day)
