"""Attacks that hide in what the organisation already uses (issue 27), opt-in kinds injected on the last day.

Exfiltration to the organisation's own cloud provider (a storage address of Amazon's, a bucket name never resolved
before), command and control through a CDN the organisation uses (Cloudflare), an internal scan from a compromised
app server (most of it refused), a DNS tunnel (its data in the names it asks for, under a new domain, answered by
TXT records and by A records of an Amazon address), and a rogue instance nobody deployed (SSH from a VPS, then a
mining pool). Each draws from its own random stream.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipeline.samplelake.anomalies import (
    STEALTHY_KINDS,
    Injection,
    LastDayPlanner,
    add_service,
    inbound_connections,
    outbound_connections,
)
from pipeline.samplelake.organisation import World, hex_id
from pipeline.samplelake.topology import free_address
from pipeline.samplelake.traffic import HOUR_MS, Connections, Queries

# An Amazon network (AMAZON-02 in the GeoLite2 table) no workload of the sample lake reaches (its S3 answers from
# 52.216.0.0/15 and 52.218.0.0/17): it stands in for a bucket's address in another region. Amazon itself every workload
# talks to.
OWN_PROVIDER_STORAGE_CIDR = "52.219.128.0/18"
OWN_PROVIDER_UPLOAD_BYTES = 2_000_000_000  # 2 GB over a few dozen TLS connections
# Cloudflare's network for customers' sites and workers; the organisation's npm registry is Cloudflare's too.
CDN_CIDR = "172.67.0.0/16"
C2_PERIOD_MS = 300_000
SCAN_ADDRESSES = 40
SCAN_ACCEPTED_SHARE = 0.2  # most of a scan is refused (security groups, nothing listening)
SCAN_PORTS = (22, 445, 3389, 5432)
HTTPS = 443
# A DNS tunnel (dnscat2, iodine, a C2 framework's DNS channel): hex-encoded data in the labels of a domain whose name
# server the attacker runs, a burst of queries over an hour or two; its A answers name an address of a provider the
# organisation uses (an EC2 address of Amazon's), so the answers alone look ordinary.
TUNNEL_QUERIES = (600, 1500)
TUNNEL_HOURS = (1.0, 3.0)
TUNNEL_LABEL_CHARACTERS = (32, 62)  # hex characters of data per query (a DNS label holds at most 63)
TUNNEL_A_SHARE = 0.4
TUNNEL_ANSWER_CIDR = "52.219.192.0/19"
TUNNEL_ANSWER_ADDRESSES = 2
TUNNEL_TLDS = ("com", "net", "info", "xyz")
# A rogue instance (launched with stolen credentials) in a public subnet: the attacker logs in over SSH from a VPS,
# and it mines for a pool on the stratum port all day.
ROGUE_TEMPLATE_ROLE = "web_public"
MINING_POOL_PORT = 3333
ROGUE_POOL_CONNECTIONS = (150, 400)
ROGUE_LOGINS = (2, 6)
SSH = 22


def _label(length: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), length))


def exfiltration_own_provider(planner: LastDayPlanner) -> None:
    """An app server uploads 2 GB over TLS to a storage address of Amazon's it never used, resolved from a bucket
    name no workload ever asked for."""
    world, rng = planner.world, planner.rng
    partition, workload = planner.pick({"app"})
    [address] = planner.unused_addresses(OWN_PROVIDER_STORAGE_CIDR, 1)
    name = f"{_label(12, rng)}-backup.s3.ap-southeast-2.amazonaws.com"
    service = add_service(world, rng, name, [address], HTTPS, planner.day)
    count = int(rng.integers(24, 48))
    connections = outbound_connections(world, workload, address, planner.times(count), HTTPS, rng, service)
    connections.bytes = np.full(count, OWN_PROVIDER_UPLOAD_BYTES // count, np.int64)
    connections.packets = connections.bytes // 1400 + 1
    planner.with_nat(partition, "exfiltration_own_provider", workload, connections)


def c2_through_cdn(planner: LastDayPlanner) -> None:
    """An app or batch server beacons every five minutes, small requests over TLS, to a site fronted by the CDN the
    organisation's package registry uses."""
    world, rng = planner.world, planner.rng
    partition, workload = planner.pick({"app", "batch"})
    [address] = planner.unused_addresses(CDN_CIDR, 1)
    name = f"{_label(10, rng)}.workers.dev"
    service = add_service(world, rng, name, [address], HTTPS, planner.day)
    start = planner.day_start + int(rng.uniform(0, 8) * HOUR_MS)
    ticks = np.arange(start, planner.day_start + 24 * HOUR_MS - C2_PERIOD_MS, C2_PERIOD_MS)
    times = ticks + rng.integers(-20_000, 20_000, size=len(ticks))
    beacon = outbound_connections(world, workload, address, times, HTTPS, rng, service)
    planner.with_nat(partition, "c2_through_cdn", workload, beacon)


def internal_scan(planner: LastDayPlanner) -> None:
    """A compromised app server probes 40 addresses of its VPC's subnets on admin and database ports within
    minutes; four in five are refused (those flows are logged REJECT and give no pair: only the accepted ones are
    labelled, the pairs a detector can see)."""
    world, rng = planner.world, planner.rng
    partition, workload = planner.pick({"app"})
    scanner = world.workloads[workload]
    subnets = sorted({w.ip.rsplit(".", 1)[0] for w in world.workloads if w.vpc_uid == scanner.vpc_uid})
    targets: list[int] = []
    known = world.peer_ips_of(workload) | {scanner.ip}
    while len(targets) < SCAN_ADDRESSES:
        text = f"{subnets[int(rng.integers(0, len(subnets)))]}.{int(rng.integers(4, 251))}"
        if text not in known:
            known.add(text)
            targets.append(world.ip_id(text))
    start = planner.day_start + int(rng.uniform(1, 22) * HOUR_MS)
    times = np.sort(start + rng.integers(0, 600_000, size=len(targets)))
    ports = rng.choice(np.asarray(SCAN_PORTS), size=len(targets))
    probes = Connections.concat(
        [
            outbound_connections(world, workload, ip, times[i : i + 1], int(ports[i]), rng)
            for i, ip in enumerate(targets)
        ]
    )
    probes.packets = np.full(len(probes), 2, np.int64)
    probes.bytes = np.full(len(probes), 120, np.int64)
    accepted = rng.random(len(probes)) < SCAN_ACCEPTED_SHARE
    probes.rejected = ~accepted
    planner.record(partition, "internal_scan", probes.select(accepted))
    planner.record(partition, "internal_scan", probes.select(~accepted), labelled=False)


def dns_tunnelling(planner: LastDayPlanner) -> None:
    """An app or batch server with an instance (Route 53 logs name the instance) tunnels data through DNS: a burst of
    queries for hex labels under a domain no workload ever asked for, most answered with TXT records, the rest with
    one of two Amazon addresses. Labelled: the (workload, address) pairs its A answers make."""
    world, rng = planner.world, planner.rng
    partition, workload = planner.pick({"app", "batch"})
    while world.workloads[workload].instance_uid is None:
        partition, workload = planner.pick({"app", "batch"})
    domain = f"{_label(9, rng)}.{TUNNEL_TLDS[int(rng.integers(0, len(TUNNEL_TLDS)))]}"
    count = int(rng.integers(*TUNNEL_QUERIES))
    start = planner.day_start + int(rng.uniform(1, 20) * HOUR_MS)
    times = np.sort(start + rng.integers(0, int(rng.uniform(*TUNNEL_HOURS) * HOUR_MS), size=count))
    lengths = rng.integers(*TUNNEL_LABEL_CHARACTERS, size=count)
    hex_digits = np.asarray(list("0123456789abcdef"))
    names = np.asarray([f"{''.join(rng.choice(hex_digits, n))}.t.{domain}." for n in lengths.tolist()], dtype=object)
    answers = np.asarray(planner.unused_addresses(TUNNEL_ANSWER_CIDR, TUNNEL_ANSWER_ADDRESSES), np.int32)
    with_a = rng.random(count) < TUNNEL_A_SHARE
    queries = Queries(
        time_ms=times.astype(np.int64),
        workload=np.full(count, workload, np.int32),
        hostname=names,
        record_type=np.where(with_a, "A", "TXT").astype(object),
        answer_ip=np.where(with_a, answers[rng.integers(0, len(answers), size=count)], -1).astype(np.int32),
    )
    planner.record_queries(partition, "dns_tunnelling", queries)


def rogue_instance(planner: LastDayPlanner) -> None:
    """A new instance nobody deployed, in an account's public subnet: SSH logins from one address of a network no
    workload met, then connections all day to a mining pool's address on 3333. Labelled: both pairs."""
    world, rng = planner.world, planner.rng
    partition, template = planner.pick({ROGUE_TEMPLATE_ROLE})
    model = world.workloads[template]
    ip = free_address(rng, model.ip.rsplit(".", 1)[0], world.used_addresses)
    world.ip_id(ip)
    rogue = replace(
        model,
        index=len(world.workloads),
        instance_uid=hex_id(rng, "i-"),
        interface_uid=hex_id(rng, "eni-"),
        ip=ip,
        role="rogue",
        first_day=planner.day,
    )
    world.workloads.append(rogue)
    attacker, pool = (world.ip_id(address) for address in planner.fresh_ips(1) + planner.fresh_ips(1))
    start = float(rng.uniform(1, 12))
    logins = planner.times(int(rng.integers(*ROGUE_LOGINS)), start)
    planner.record(partition, "rogue_instance", inbound_connections(rogue.index, attacker, logins, SSH, rng))
    mining = planner.times(int(rng.integers(*ROGUE_POOL_CONNECTIONS)), start + 0.5)
    planner.record(
        partition, "rogue_instance", outbound_connections(world, rogue.index, pool, mining, MINING_POOL_PORT, rng)
    )


PLANS = {
    "exfiltration_own_provider": exfiltration_own_provider,
    "c2_through_cdn": c2_through_cdn,
    "internal_scan": internal_scan,
    "dns_tunnelling": dns_tunnelling,
    "rogue_instance": rogue_instance,
}


def plan_stealthy(world: World, seed: int, day_start_ms: int, per_kind: int, kinds: tuple[str, ...]) -> list[Injection]:
    """`per_kind` of each of the stealthy `kinds` asked for (the others are anomalies.py's), from their own random
    stream: switching them on leaves every other injected anomaly as it was."""
    planner = LastDayPlanner(world, np.random.default_rng([seed, 5]), day_start_ms)
    for _ in range(per_kind):
        for kind in STEALTHY_KINDS:
            if kind in kinds:
                PLANS[kind](planner)
    return planner.injections()
