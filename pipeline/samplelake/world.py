"""The simulated organisation: accounts, VPCs, workloads with roles, the services they use, and who talks to whom."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.samplelake.addresses import (
    RESIDENTIAL_V4,
    SCANNER_V4,
    draw_ipv4,
    ipv4_to_text,
)
from pipeline.samplelake.layout import (
    TIERS,
    SubnetPool,
    VpcLayout,
    check_address_plan,
    fixed_prefixes,
    pool_prefixes,
    subnets_per_tier,
    tier_of,
)
from pipeline.samplelake.organisation import (
    DEFAULT_WORKLOADS_PER_VPC,
    ENI_ONLY_ROLES,
    ROLE_ACTIVITY,
    Partition,
    PeerBuilder,
    Service,
    Workload,
    World,
    draw_account_ids,
    hex_id,
    role_counts,
    zone_of,
)
from pipeline.samplelake.services import MIRRORS, SAAS, aws_services, build_services
from pipeline.samplelake.topology import (
    BLUE_GREEN,
    NEW_SERVICE,
    autoscale,
    call_other_accounts,
    deploy_green,
    fail_over,
    free_address,
    launch_service,
    wire_vpc,
)


@dataclass(frozen=True)
class Vpc:
    """One VPC: its account, region, id and subnets."""

    account: str
    region: str
    uid: str
    layout: VpcLayout


def vpc_layout(
    rng: np.random.Generator, pool: SubnetPool | None, vpc_number: int, subnets: dict[str, int]
) -> VpcLayout:
    """The VPC's subnet ids (each tier's first, then the others) and prefixes: from the IPAM `pool`, or the fixed
    plan's 10.<vpc_number>/16."""
    ids = {tier: [hex_id(rng, "subnet-")] for tier in TIERS}
    for tier in TIERS:
        ids[tier] += [hex_id(rng, "subnet-") for _ in range(subnets[tier] - 1)]
    prefixes, standby = pool_prefixes(pool, subnets) if pool is not None else fixed_prefixes(vpc_number, subnets)
    return VpcLayout(ids, prefixes, standby)


def add_vpc_workloads(
    rng: np.random.Generator,
    vpc: Vpc,
    counts: dict[str, int],
    workloads: list[Workload],
    peers: PeerBuilder,
) -> list[int]:
    """The VPC's `counts` workloads per role, each tier's spread round robin over its subnets, each at a free host
    address of its subnet. Returns their indices."""
    members: list[int] = []
    placed = dict.fromkeys(TIERS, 0)
    for role, count in counts.items():
        tier = tier_of(role)
        for _ in range(count):
            subnet_uid, prefix = vpc.layout.place(tier, placed[tier])
            placed[tier] += 1
            ip = free_address(rng, prefix, peers.ip_index)
            peers.ip(ip)
            workload = Workload(
                index=len(workloads),
                account=vpc.account,
                region=vpc.region,
                zone=zone_of(vpc.region, int(rng.integers(1, 4))),
                vpc_uid=vpc.uid,
                subnet_uid=subnet_uid,
                instance_uid=None if role in ENI_ONLY_ROLES else hex_id(rng, "i-"),
                interface_uid=hex_id(rng, "eni-"),
                ip=ip,
                role=role,
                activity=ROLE_ACTIVITY[role] * float(rng.lognormal(0.0, 0.4)),
            )
            workloads.append(workload)
            members.append(workload.index)
    return members


def build_world(
    seed: int,
    days: int,
    accounts: int,
    regions: list[str],
    ipv6_client_fraction: float,
    churn: float = 0.0,
    s3_rotation: bool = False,
    cross_account_calls: bool = False,
    ipam_subnets: bool = False,
    db_failover: float = 0.0,
    blue_green: bool = False,
    new_service: bool = False,
    workloads_per_vpc: int = DEFAULT_WORKLOADS_PER_VPC,
) -> World:
    """The organisation and its relations for a seed: deterministic, independent of volume. With `churn`, the
    instances of each autoscaled role (web, web_public, app, batch) of a VPC are a group: each day that share of
    them is replaced by new instances (new ids and addresses) with the same peers. With `s3_rotation`, S3 answers
    from many published networks with many new addresses a day; with `cross_account_calls`, every app server also
    calls app servers of each other account in its region (services owned by other teams, other accounts). With
    `ipam_subnets`, every subnet is a /24 drawn from 10/8, as an IPAM pool hands them out, so accounts' subnets
    interleave and an address's prefix says little about its account; with `db_failover`, each day that share of
    the databases fails over to a standby in the VPC's second data subnet (another availability zone): a new
    address, and the app servers reach it instead. With `blue_green`, on the last day one VPC's whole app fleet is
    replaced by new instances (a blue/green deployment); with `new_service`, a team launches a new service in one VPC
    that its web servers call (`World.launched` names the instances of each). Each VPC holds `workloads_per_vpc`
    workloads (ROLE_COUNTS scaled: `role_counts`), each tier in one /24 subnet per WORKLOADS_PER_SUBNET of them
    (layout.py); the default is ROLE_COUNTS itself, one subnet a tier."""
    counts = role_counts(workloads_per_vpc)
    check_address_plan(accounts * len(regions), ipam_subnets)
    subnets = subnets_per_tier(counts)
    rng = np.random.default_rng([seed, 1])
    account_ids = draw_account_ids(rng, accounts)
    ip_index: dict[str, int] = {}
    ip_text: list[str] = []
    peers = PeerBuilder(ip_index, ip_text)
    services: list[Service] = []
    workloads: list[Workload] = []
    partitions: list[Partition] = []
    mirrors = build_services(rng, MIRRORS, days, peers, services)
    saas = build_services(rng, SAAS, days, peers, services)
    regional = {
        region: build_services(rng, aws_services(region, s3_rotation), days, peers, services) for region in regions
    }
    residential_weights = np.arange(1, len(RESIDENTIAL_V4) + 1, dtype=np.float64) ** -0.9
    residential_weights /= residential_weights.sum()
    pool = SubnetPool(np.random.default_rng([seed, 5])) if ipam_subnets else None
    vpc_number = 0
    for region in regions:
        for account in account_ids:
            vpc_number += 1
            vpc = Vpc(account, region, hex_id(rng, "vpc-"), vpc_layout(rng, pool, vpc_number, subnets))
            members = add_vpc_workloads(rng, vpc, counts, workloads, peers)
            since = len(peers)  # the VPC's first relation: none before involves its workloads
            by_role = {role: [w for w in members if workloads[w].role == role] for role in counts}
            wire_vpc(
                rng,
                workloads,
                by_role,
                peers,
                days,
                mirrors,
                saas,
                regional[region],
                residential_weights,
                ipv6_client_fraction,
            )
            if churn > 0:
                members += autoscale(rng, workloads, members, peers, days, churn, ip_index, since)
            if db_failover > 0:
                failover_rng = np.random.default_rng([seed, 6, vpc_number])
                standby_ids = [hex_id(failover_rng, "subnet-") for _ in vpc.layout.standby_prefixes]
                targets = vpc.layout.failover_targets(standby_ids)
                members += fail_over(
                    failover_rng, workloads, members, peers, days, db_failover, ip_index, targets, since
                )
            partitions.append(
                Partition(
                    region,
                    account,
                    np.array(members, dtype=np.int32),
                    float(sum(workloads[m].activity for m in members)),
                )
            )
    if cross_account_calls:
        call_other_accounts(np.random.default_rng([seed, 4]), workloads, partitions, peers)
    launched: dict[str, list[int]] = {}
    if blue_green:
        green_rng = np.random.default_rng([seed, 7])
        launched[BLUE_GREEN] = deploy_green(green_rng, workloads, partitions, peers, days, ip_index)
    if new_service:
        service_rng = np.random.default_rng([seed, 8])
        launched[NEW_SERVICE] = launch_service(service_rng, workloads, partitions, peers, days, ip_index)
    scanner_count = 400 + 150 * days
    scanner_blocks = rng.choice(len(SCANNER_V4), size=scanner_count)
    scanner_ips = np.zeros(scanner_count, dtype=np.int64)
    for block in np.unique(scanner_blocks).tolist():
        chosen = scanner_blocks == block
        scanner_ips[chosen] = draw_ipv4(rng, SCANNER_V4[block], int(chosen.sum()))
    scanners = np.array([peers.ip(a) for a in ipv4_to_text(scanner_ips)], dtype=np.int32)
    scanner_first_day = rng.integers(0, days, size=scanner_count).astype(np.int32)
    suffix_alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789")
    bucket_suffix = {region: "".join(rng.choice(suffix_alphabet, size=30)) for region in regions}
    world = World(
        days,
        workloads,
        services,
        ip_text,
        peers.table(len(workloads)),
        partitions,
        scanners,
        scanner_first_day,
        bucket_suffix,
    )
    world._ip_index = ip_index
    world.launched = launched
    return world
