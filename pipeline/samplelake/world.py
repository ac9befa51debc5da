"""The simulated organisation: accounts, VPCs, workloads with roles, the services they use, and who talks to whom."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.samplelake.addresses import (
    RESIDENTIAL_V4,
    RESIDENTIAL_V6,
    SCANNER_V4,
    draw_ipv4,
    draw_ipv6,
    ipv4_to_text,
)

NTP_ADDRESS = "169.254.169.123"

# Workloads per VPC, by role. ENI-only roles (no instance): lb (load balancer), nat (NAT gateway).
ROLE_COUNTS = {"lb": 1, "web_public": 2, "web": 3, "app": 4, "db": 2, "batch": 2, "nat": 1}
ENI_ONLY_ROLES = {"lb", "nat"}
# Share of the organisation's connections each role carries (before a per-workload log-normal factor).
ROLE_ACTIVITY = {"lb": 20.0, "web_public": 12.0, "web": 6.0, "app": 6.0, "db": 4.0, "batch": 3.0, "nat": 6.0}
PUBLIC_FACING = {"lb", "web_public"}


@dataclass(frozen=True)
class ServiceSpec:
    """A named internet or AWS service: where its addresses come from and how fast they rotate."""

    name: str
    cidr: str
    initial_ips: int
    new_ips_per_day: float
    port: int
    svc_name: str = "-"
    cidr_v6: str | None = None
    more_cidrs: tuple[str, ...] = ()  # further networks the addresses are drawn from, each equally likely


# More of the networks S3 publishes for a region (ip-ranges.json, service S3; a sample, not the whole list): with
# `s3_rotation` an S3 client meets new addresses across all of them every day, as real clients of S3 do.
S3_MORE_NETWORKS = {
    "us-east-1": ("54.231.0.0/16", "3.5.0.0/19", "16.182.0.0/16", "18.34.0.0/19", "52.92.16.0/20"),
    "eu-west-1": ("3.5.64.0/21", "52.92.40.0/21", "16.12.16.0/20", "52.95.150.0/24", "3.251.110.0/24"),
}
S3_ROTATION_NEW_IPS_PER_DAY = 60.0


def aws_services(region: str, s3_rotation: bool = False) -> list[ServiceSpec]:
    """The AWS endpoints every workload in `region` reaches (addresses inside the published AWS ranges). With
    `s3_rotation`, S3 answers from many networks and with many new addresses a day."""
    ranges = {
        "us-east-1": {
            "s3": "52.216.0.0/15",
            "dynamodb": "52.94.0.0/22",
            "sts": "54.239.0.0/19",
            "ssm": "52.46.128.0/19",
            "logs": "3.236.0.0/16",
        },
        "eu-west-1": {
            "s3": "52.218.0.0/17",
            "dynamodb": "52.119.240.0/21",
            "sts": "52.94.248.0/22",
            "ssm": "52.95.96.0/20",
            "logs": "3.248.0.0/16",
        },
    }
    cidrs = ranges.get(region) or {
        "s3": "52.92.0.0/17",
        "dynamodb": "52.94.4.0/22",
        "sts": "54.240.0.0/19",
        "ssm": "52.95.0.0/20",
        "logs": "3.240.0.0/16",
    }
    s3 = ServiceSpec(f"s3.{region}.amazonaws.com", cidrs["s3"], 12, 3.0, 443, "S3")
    if s3_rotation:
        more = S3_MORE_NETWORKS.get(region, ("54.231.0.0/16", "3.5.0.0/19"))
        s3 = ServiceSpec(s3.name, s3.cidr, 24, S3_ROTATION_NEW_IPS_PER_DAY, 443, "S3", more_cidrs=more)
    return [
        s3,
        ServiceSpec(f"dynamodb.{region}.amazonaws.com", cidrs["dynamodb"], 4, 1.0, 443, "DYNAMODB"),
        ServiceSpec(f"sts.{region}.amazonaws.com", cidrs["sts"], 3, 0.3, 443, "AMAZON"),
        ServiceSpec(f"ssm.{region}.amazonaws.com", cidrs["ssm"], 4, 0.3, 443, "AMAZON"),
        ServiceSpec(f"logs.{region}.amazonaws.com", cidrs["logs"], 4, 0.5, 443, "AMAZON"),
    ]


MIRRORS = [
    ServiceSpec("deb.debian.org", "151.101.0.0/16", 4, 0.2, 443, cidr_v6="2a04:4e42::/32"),
    ServiceSpec("pypi.org", "151.101.0.0/16", 4, 0.2, 443, cidr_v6="2a04:4e42::/32"),
    ServiceSpec("files.pythonhosted.org", "151.101.0.0/16", 6, 0.5, 443, cidr_v6="2a04:4e42::/32"),
    ServiceSpec("github.com", "140.82.112.0/20", 4, 0.1, 443),
    ServiceSpec("registry.npmjs.org", "104.16.0.0/13", 8, 1.0, 443, cidr_v6="2606:4700::/32"),
    ServiceSpec("security.ubuntu.com", "185.125.188.0/22", 6, 0.1, 80),
    ServiceSpec("download.docker.com", "3.160.0.0/14", 6, 0.5, 443),
]
SAAS = [
    ServiceSpec("api.pagerduty.com", "34.192.0.0/12", 4, 0.2, 443),
    ServiceSpec("http-intake.logs.datadoghq.com", "3.233.144.0/20", 6, 0.5, 443),
    ServiceSpec("api.stripe.com", "54.187.0.0/16", 6, 0.3, 443),
    ServiceSpec("hooks.slack.com", "54.80.0.0/13", 4, 0.3, 443),
    ServiceSpec("api.github.com", "140.82.112.0/20", 2, 0.1, 443),
    ServiceSpec("oauth2.googleapis.com", "142.250.0.0/15", 8, 1.0, 443, cidr_v6="2607:f8b0::/32"),
]
SCAN_PORTS = np.array([22, 23, 25, 80, 135, 445, 1433, 3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200, 27017])


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

    def ip_id(self, text: str) -> int:
        """The index of an address in ip_text, adding it when new."""
        if text not in self._ip_index:
            self._ip_index[text] = len(self.ip_text)
            self.ip_text.append(text)
        return self._ip_index[text]

    def peer_ips_of(self, workload: int) -> set[str]:
        """Every remote address a workload ever talks to in normal traffic."""
        start, end = self.peers.segment_start[workload], self.peers.segment_end[workload]
        return {self.ip_text[i] for i in self.peers.ip[start:end].tolist()}


def _hex_id(rng: np.random.Generator, prefix: str, length: int = 17) -> str:
    return prefix + "".join(rng.choice(list("0123456789abcdef"), size=length))


def _zone(region: str, number: int) -> str:
    parts = region.split("-")
    return f"{parts[0]}{parts[1][0]}{parts[2]}-az{number}"


def _account_ids(rng: np.random.Generator, count: int) -> list[str]:
    accounts = [f"0{int(rng.integers(10**9, 10**10)):011d}"]  # a leading zero, as real account ids can have
    while len(accounts) < count:
        candidate = f"{int(rng.integers(10**11, 10**12)):012d}"
        if candidate not in accounts:
            accounts.append(candidate)
    return accounts


class _PeerBuilder:
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


def _build_services(
    rng: np.random.Generator, specs: list[ServiceSpec], days: int, peers: _PeerBuilder, services: list[Service]
) -> dict[str, Service]:
    built = {}
    for spec in specs:
        added = rng.poisson(spec.new_ips_per_day * max(days - 1, 0))
        count = spec.initial_ips + int(added)
        if spec.more_cidrs:
            networks = (spec.cidr, *spec.more_cidrs)
            picks = rng.integers(0, len(networks), size=count)
            drawn = np.zeros(count, dtype=np.int64)
            for network in np.unique(picks).tolist():
                drawn[picks == network] = draw_ipv4(rng, networks[network], int((picks == network).sum()))
            addresses = ipv4_to_text(drawn)
        else:
            addresses = ipv4_to_text(draw_ipv4(rng, spec.cidr, count))
        first_day = np.concatenate(
            [
                np.zeros(spec.initial_ips, dtype=np.int32),
                np.sort(rng.integers(1, max(days, 2), size=count - spec.initial_ips)),
            ]
        )
        ids = np.array([peers.ip(a) for a in addresses], dtype=np.int32)
        v6 = (
            np.array([peers.ip(a) for a in draw_ipv6(rng, spec.cidr_v6, 4)], dtype=np.int32)
            if spec.cidr_v6
            else np.zeros(0, dtype=np.int32)
        )
        service = Service(len(services), spec.name, spec.port, spec.svc_name, ids, first_day.astype(np.int32), v6)
        services.append(service)
        built[spec.name] = service
    return built


def _use_service(
    peers: _PeerBuilder, owner: int, service: Service, weight: float, rng: np.random.Generator, adopted_on: int = 0
) -> None:
    """The owner talks to every address of the service, most to the oldest ones (Zipf over rank)."""
    ranks = np.arange(1, len(service.ips) + 1, dtype=np.float64)
    shares = ranks**-1.1
    shares = shares / shares.sum()
    order = rng.permutation(len(service.ips))
    for position, ip_position in enumerate(order.tolist()):
        first = max(int(service.first_day[ip_position]), adopted_on)
        peers.add(
            owner, int(service.ips[ip_position]), service.port, True, weight * shares[position], first, service.index
        )


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
) -> World:
    """The organisation and its relations for a seed: deterministic, independent of volume. With `churn`, the
    instances of each autoscaled role (web, web_public, app, batch) of a VPC are a group: each day that share of
    them is replaced by new instances (new ids and addresses) with the same peers. With `s3_rotation`, S3 answers
    from many published networks with many new addresses a day; with `cross_account_calls`, every app server also
    calls app servers of each other account in its region (services owned by other teams, other accounts). With
    `ipam_subnets`, every subnet is a /24 drawn from 10/8, as an IPAM pool hands them out, so accounts' subnets
    interleave and an address's prefix says little about its account; with `db_failover`, each day that share of
    the databases fails over to a standby in the VPC's second data subnet (another availability zone): a new
    address, and the app servers reach it instead."""
    rng = np.random.default_rng([seed, 1])
    account_ids = _account_ids(rng, accounts)
    ip_index: dict[str, int] = {}
    ip_text: list[str] = []
    peers = _PeerBuilder(ip_index, ip_text)
    services: list[Service] = []
    workloads: list[Workload] = []
    partitions: list[Partition] = []
    mirrors = _build_services(rng, MIRRORS, days, peers, services)
    saas = _build_services(rng, SAAS, days, peers, services)
    regional = {
        region: _build_services(rng, aws_services(region, s3_rotation), days, peers, services) for region in regions
    }
    residential_weights = np.arange(1, len(RESIDENTIAL_V4) + 1, dtype=np.float64) ** -0.9
    residential_weights /= residential_weights.sum()
    pool = _SubnetPool(np.random.default_rng([seed, 5])) if ipam_subnets else None
    vpc_number = 0
    for region in regions:
        for account in account_ids:
            vpc_number += 1
            vpc_uid = _hex_id(rng, "vpc-")
            subnets = {
                "public": _hex_id(rng, "subnet-"),
                "private": _hex_id(rng, "subnet-"),
                "data": _hex_id(rng, "subnet-"),
            }
            subnet_octet = {"public": 1, "private": 2, "data": 3}
            prefixes = {tier: f"10.{vpc_number}.{octet}" for tier, octet in subnet_octet.items()}
            standby_prefix = f"10.{vpc_number}.4"
            if pool is not None:
                prefixes = {tier: pool.draw() for tier in subnet_octet}
                standby_prefix = pool.draw()
            members: list[int] = []
            for role, count in ROLE_COUNTS.items():
                for _ in range(count):
                    tier = "public" if role in {"lb", "web_public", "nat"} else "data" if role == "db" else "private"
                    host = int(rng.integers(4, 250))
                    ip = f"{prefixes[tier]}.{host}"
                    while ip in ip_index:
                        host = int(rng.integers(4, 250))
                        ip = f"{prefixes[tier]}.{host}"
                    peers.ip(ip)
                    workload = Workload(
                        index=len(workloads),
                        account=account,
                        region=region,
                        zone=_zone(region, int(rng.integers(1, 4))),
                        vpc_uid=vpc_uid,
                        subnet_uid=subnets[tier],
                        instance_uid=None if role in ENI_ONLY_ROLES else _hex_id(rng, "i-"),
                        interface_uid=_hex_id(rng, "eni-"),
                        ip=ip,
                        role=role,
                        activity=ROLE_ACTIVITY[role] * float(rng.lognormal(0.0, 0.4)),
                    )
                    workloads.append(workload)
                    members.append(workload.index)
            by_role = {role: [w for w in members if workloads[w].role == role] for role in ROLE_COUNTS}
            _wire_vpc(
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
                members += _autoscale(rng, workloads, members, peers, days, churn, ip_index)
            if db_failover > 0:
                failover_rng = np.random.default_rng([seed, 6, vpc_number])
                standby = (prefixes["data"], standby_prefix, subnets["data"], _hex_id(failover_rng, "subnet-"))
                members += _fail_over(failover_rng, workloads, members, peers, days, db_failover, ip_index, standby)
            partitions.append(
                Partition(
                    region,
                    account,
                    np.array(members, dtype=np.int32),
                    float(sum(workloads[m].activity for m in members)),
                )
            )
    if cross_account_calls:
        _call_other_accounts(np.random.default_rng([seed, 4]), workloads, partitions, peers)
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
    return world


AUTOSCALED_ROLES = ("web", "web_public", "app", "batch")
CROSS_ACCOUNT_API_PORT = 8443


def _call_other_accounts(
    rng: np.random.Generator, workloads: list[Workload], partitions: list[Partition], peers: _PeerBuilder
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


def _autoscale(
    rng: np.random.Generator,
    workloads: list[Workload],
    members: list[int],
    peers: _PeerBuilder,
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


class _SubnetPool:
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


def _fail_over(
    rng: np.random.Generator,
    workloads: list[Workload],
    members: list[int],
    peers: _PeerBuilder,
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
    peers: _PeerBuilder,
    ip_index: dict[str, int],
    prefix: str | None = None,
    subnet_uid: str | None = None,
) -> int:
    """A new instance for `old` from `day`, in `prefix` (default: the old one's /24) and `subnet_uid`."""
    previous = workloads[old]
    prefix = prefix or previous.ip.rsplit(".", 1)[0]
    ip = f"{prefix}.{int(rng.integers(4, 250))}"
    while ip in ip_index:
        ip = f"{prefix}.{int(rng.integers(4, 250))}"
    new_ip, old_ip = peers.ip(ip), peers.ip(previous.ip)
    workloads[old] = replace(previous, last_day=day - 1)
    workload = replace(
        previous,
        index=len(workloads),
        instance_uid=_hex_id(rng, "i-"),
        interface_uid=_hex_id(rng, "eni-"),
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


def _wire_vpc(
    rng: np.random.Generator,
    workloads: list[Workload],
    by_role: dict[str, list[int]],
    peers: _PeerBuilder,
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
        _use_service(peers, web, aws_by_kind["s3"], 0.5, rng)
    db_choices = by_role["db"]
    for app in by_role["app"]:
        for db in rng.choice(db_choices, size=1 + int(rng.integers(0, len(db_choices))), replace=False).tolist():
            link(app, db, 5432, float(rng.lognormal(0.5, 0.5)))
        for kind, weight in (("s3", 1.0), ("dynamodb", 0.8), ("sts", 0.2)):
            _use_service(peers, app, aws_by_kind[kind], weight * float(rng.lognormal(0, 0.4)), rng)
        saas_list = list(saas.values())
        chosen = [saas_list[i] for i in rng.choice(len(saas_list), size=2, replace=False).tolist()]
        for service in chosen:
            _use_service(peers, app, service, 0.4 * float(rng.lognormal(0, 0.6)), rng)
        if rng.random() < 0.5:  # adopts one more SaaS during the window: new peers, all normal
            extra = [s for s in saas.values() if s not in chosen]
            _use_service(
                peers,
                app,
                extra[int(rng.integers(0, len(extra)))],
                0.3,
                rng,
                adopted_on=int(rng.integers(1, max(days - 1, 2))),
            )
    for db in by_role["db"]:
        _use_service(peers, db, aws_by_kind["s3"], 0.6, rng)
    for batch in by_role["batch"]:
        link(batch, int(rng.choice(db_choices)), 5432, 0.6)
        mirror_list = list(mirrors.values())
        for service in [mirror_list[i] for i in rng.choice(len(mirror_list), size=5, replace=False).tolist()]:
            _use_service(peers, batch, service, float(rng.lognormal(0, 0.8)), rng)
        _use_service(peers, batch, aws_by_kind["s3"], 1.0, rng)
        _use_service(peers, batch, saas["api.github.com"], 0.2, rng)
    instances = [w for role, members in by_role.items() if role not in ENI_ONLY_ROLES for w in members]
    ntp = peers.ip(NTP_ADDRESS)
    for instance in instances:
        _use_service(peers, instance, aws_by_kind["ssm"], 0.15, rng)
        _use_service(peers, instance, aws_by_kind["logs"], 0.15, rng)
        peers.add(instance, ntp, 123, True, 0.05, protocol=17)
    for nat in by_role["nat"]:
        private = by_role["app"] + by_role["batch"]
        for member in private:
            peers.add(nat, peers.ip(workloads[member].ip), 443, False, 1.0)
        for service in [*mirrors.values(), *saas.values(), aws_by_kind["sts"]]:
            _use_service(peers, nat, service, 0.3, rng)
    for front in by_role["lb"] + by_role["web_public"]:
        _add_clients(rng, peers, front, days, residential_weights, ipv6_fraction)


def _add_clients(
    rng: np.random.Generator,
    peers: _PeerBuilder,
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
