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
from pipeline.samplelake.layout import END_HOST, FIRST_HOST
from pipeline.samplelake.organisation import (
    ENI_ONLY_ROLES,
    FOREVER,
    NTP_ADDRESS,
    PEER_COLUMNS,
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
    apps = [
        [m for m in partition.workloads.tolist() if workloads[m].role == "app" and workloads[m].first_day == 0]
        for partition in partitions
    ]
    for here, callers in zip(partitions, apps, strict=True):
        others = [apps[i] for i, p in enumerate(partitions) if p.region == here.region and p.account != here.account]
        for caller in callers:
            for callees in others:
                for callee in rng.choice(
                    callees, size=min(len(callees), 1 + int(rng.integers(0, 2))), replace=False
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
    since: int = 0,
) -> list[int]:
    """Replace, each day from the second, `churn` of each autoscaled group's running instances by new ones: the
    new instance talks to what the old one did, and its peers (load balancer, app servers, databases) to it
    instead. `since`: the first relation that can involve `members` (their VPC's first). Returns the new workloads'
    indices."""
    launched: list[int] = []
    for role in AUTOSCALED_ROLES:
        running = [m for m in members if workloads[m].role == role]
        for day in range(1, days):
            replaced = [m for m in running if rng.random() < churn]
            for old in replaced:
                new = _replacement(rng, workloads, old, day, peers, ip_index, since=since)
                running[running.index(old)] = new
                launched.append(new)
    return launched


BLUE_GREEN = "blue_green"  # the benign changes made to the organisation itself (changes.py labels them)
NEW_SERVICE = "new_service"
BLUE_GREEN_ROLE = "app"
NEW_SERVICE_INSTANCES = 2
NEW_SERVICE_PORT = 9090  # a port the VPC never served on: its web servers take a role they never had


FULL_SUBNET_CHECK = 1000  # failed draws of a free address between two checks that the subnet has one at all


def free_address(rng: np.random.Generator, prefix: str, taken: Container[str]) -> str:
    """A host address of the /24 `prefix` that nothing in `taken` uses, drawn until one is free."""
    ip = f"{prefix}.{int(rng.integers(FIRST_HOST, END_HOST))}"
    draws = 1
    while ip in taken:
        if draws % FULL_SUBNET_CHECK == 0 and all(f"{prefix}.{h}" in taken for h in range(FIRST_HOST, END_HOST)):
            message = (
                f"subnet {prefix}.0/24 has no free host address left ({END_HOST - FIRST_HOST} hosts; a replaced "
                "instance's address is never reused): lower sample_lake.autoscaling_churn, db_failover or days"
            )
            raise ValueError(message)
        ip = f"{prefix}.{int(rng.integers(FIRST_HOST, END_HOST))}"
        draws += 1
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
    # every relation from the first: other accounts' app servers may call them
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
    inherited = peers.gather(peers.owned(template, day))
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
            last_day=FOREVER,
            activity=model.activity * 0.5,
        )
        workloads.append(workload)
        launched.append(workload.index)
        rows = zip(*(inherited[name].tolist() for name in PEER_COLUMNS), strict=True)
        for _, address, port, _, protocol, weight, first, service, last in rows:
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


def fail_over(
    rng: np.random.Generator,
    workloads: list[Workload],
    members: list[int],
    peers: PeerBuilder,
    days: int,
    share: float,
    ip_index: dict[str, int],
    targets: dict[str, tuple[str, str]],
    since: int = 0,
) -> list[int]:
    """Each day from the second, `share` of the VPC's databases fail over to the other subnet of their pair
    (`targets`: a subnet id's other, as prefix and subnet id): a new instance and address there, which their app
    servers reach from that day. `since`: as autoscale's. Returns the new workloads' indices."""
    launched: list[int] = []
    running = [m for m in members if workloads[m].role == "db"]
    for day in range(1, days):
        for old in [m for m in running if rng.random() < share]:
            prefix, subnet = targets[workloads[old].subnet_uid]
            new = _replacement(rng, workloads, old, day, peers, ip_index, prefix, subnet, since)
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
    since: int = 0,
) -> int:
    """A new instance for `old` from `day`, in `prefix` (default: the old one's /24) and `subnet_uid`: its relations
    from `since` on (the old one's own, and those reaching the old one's address) end the day before and go on
    from `day` with the new instance."""
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
        last_day=FOREVER,
    )
    workloads.append(workload)
    positions = peers.touching(since, old, old_ip, day)
    rows = peers.gather(positions)
    peers.end(positions, day - 1)
    own = rows["owner"] == old  # the new instance's own relations: the old one's; the others reach the new address
    moved = {"owner": np.where(own, workload.index, rows["owner"]), "ip": np.where(own, rows["ip"], new_ip)}
    peers.add_many(**{**rows, **moved, "first_day": np.maximum(rows["first_day"], day)})
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
    ips = np.fromiter((peers.ip(address) for address in addresses), np.int32, count=count)
    peers.add_many(owner=owner, ip=ips, service_port=443, initiator_local=False, weight=weights, first_day=first_days)
