"""Benign organisation-wide changes on the last day, labelled (opt-in): what a detector must report at most as Low."""

from __future__ import annotations

import numpy as np

from pipeline.samplelake.anomalies import Injection, LastDayPlanner, add_service, outbound_connections
from pipeline.samplelake.choices import refuse_unknown
from pipeline.samplelake.organisation import World
from pipeline.samplelake.services import MIRRORS
from pipeline.samplelake.topology import BLUE_GREEN, NEW_SERVICE
from pipeline.samplelake.traffic import Connections

# BLUE_GREEN and NEW_SERVICE are made when the world is built (topology.py: deploy_green, launch_service); labelled
# here
BENIGN_CHANGES = ("saas_rollout", "patch_day", BLUE_GREEN, NEW_SERVICE)
BENIGN_CHANGES_NAME = "benign changes"
# A SaaS the organisation adopts, served from a provider it already uses: Amazon's CloudFront network, which none of
# the generator's services answer from, so its addresses are new to every workload down to /15.
SAAS_ROLLOUT_CIDR = "18.160.0.0/15"
SAAS_ROLLOUT_ADDRESSES = 4  # the name's DNS answer: clients spread over all of them
SAAS_ROLLOUT_ROLES = frozenset({"app"})
# Patch day: every server fetches updates from new addresses of a mirror every VPC already uses.
PATCH_MIRROR = "deb.debian.org"
PATCH_ADDRESSES = 3
PATCH_ROLES = frozenset({"web", "web_public", "app", "batch"})
HTTPS = 443


def _alive(world: World, partition: int, roles: frozenset[str], day: int) -> list[int]:
    return [
        member
        for member in world.partitions[partition].workloads.tolist()
        if world.workloads[member].role in roles and world.workloads[member].alive(day)
    ]


def _rollout(
    planner: LastDayPlanner, kind: str, roles: frozenset[str], ips: list[int], service: int, hour: float
) -> None:
    """Every alive workload of `roles`, in every partition, connects to each of `ips` from about `hour` on (each
    within half an hour of it, as a deployment reaches servers); private ones through their VPC's NAT gateway."""
    world, rng = planner.world, planner.rng
    for partition in range(len(world.partitions)):
        for member in _alive(world, partition, roles, planner.day):
            start = hour + float(rng.uniform(0.0, 0.5))
            parts = [
                outbound_connections(
                    world, member, ip, planner.times(int(rng.integers(6, 30)), start), HTTPS, rng, service
                )
                for ip in ips
            ]
            connections = Connections.concat(parts)
            if world.workloads[member].public_facing:
                planner.record(partition, kind, connections)
            else:
                planner.with_nat(partition, kind, member, connections)


def saas_rollout(planner: LastDayPlanner) -> None:
    """A new SaaS integration (a name never resolved before) rolled out to every app server of every account."""
    world, rng = planner.world, planner.rng
    ips = planner.unused_addresses(SAAS_ROLLOUT_CIDR, SAAS_ROLLOUT_ADDRESSES)
    name = f"api.{''.join(rng.choice(list('abcdefghijklmnopqrstuvwxyz'), 7))}.io"
    service = add_service(world, rng, name, ips, HTTPS, planner.day)
    _rollout(planner, "saas_rollout", SAAS_ROLLOUT_ROLES, ips, service, float(rng.uniform(9.0, 12.0)))


def patch_day(planner: LastDayPlanner) -> None:
    """Every server fetches updates from new addresses of a mirror it already uses, in the maintenance window."""
    world, rng = planner.world, planner.rng
    spec = next(s for s in MIRRORS if s.name == PATCH_MIRROR)
    ips = planner.unused_addresses(spec.cidr, PATCH_ADDRESSES)
    service = add_service(world, rng, spec.name, ips, HTTPS, planner.day)
    _rollout(planner, "patch_day", PATCH_ROLES, ips, service, float(rng.uniform(2.0, 4.0)))


def _label_launched(planner: LastDayPlanner, kind: str) -> None:
    """Label what a change the world made (`World.launched[kind]`) changed: each new instance's relations, and its
    peers' relations to its new address (what a detector must report at most as Low)."""
    world = planner.world
    peers = world.peers
    for green in world.launched.get(kind, []):
        workload = world.workloads[green]
        partition = next(i for i, p in enumerate(world.partitions) if green in p.workloads)
        start, end = peers.segment_start[green], peers.segment_end[green]
        for ip in sorted(set(peers.ip[start:end].tolist())):
            planner.label(partition, kind, green, world.ip_text[ip], planner.day_start)
        reached = np.flatnonzero(peers.ip == world.ip_id(workload.ip))
        for owner in sorted(set(peers.owner[reached].tolist())):
            planner.label(partition, kind, owner, workload.ip, planner.day_start)


def blue_green(planner: LastDayPlanner) -> None:
    """A whole app fleet of one VPC replaced by new instances (topology.deploy_green)."""
    _label_launched(planner, BLUE_GREEN)


def new_service(planner: LastDayPlanner) -> None:
    """A new service its VPC's web servers call on a port they never used (topology.launch_service)."""
    _label_launched(planner, NEW_SERVICE)


PLANS = {"saas_rollout": saas_rollout, "patch_day": patch_day, BLUE_GREEN: blue_green, NEW_SERVICE: new_service}


def plan_changes(world: World, seed: int, day_start_ms: int, kinds: tuple[str, ...]) -> list[Injection]:
    """The benign changes `kinds` on the last day, each labelled pair with its change's name as kind; their own
    random stream, so switching them on leaves the rest of the lake as it was."""
    refuse_unknown(kinds, BENIGN_CHANGES, BENIGN_CHANGES_NAME)
    planner = LastDayPlanner(world, np.random.default_rng([seed, 4]), day_start_ms)
    for kind in BENIGN_CHANGES:
        if kind in kinds:
            PLANS[kind](planner)
    return planner.injections()
