"""How a VPC is laid out: its subnets per tier, each a /24 of 10/8, and which workload goes in which."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIERS = ("public", "private", "data")
PUBLIC_TIER_ROLES = frozenset({"lb", "web_public", "nat"})
DATA_TIER_ROLES = frozenset({"db"})
# The fixed plan (no IPAM): VPC n is 10.n/16; a tier's subnet i is 10.n.<octet + STRIDE * i>/24, the data tier's
# standby subnet i (database failover, another zone) 10.n.<STANDBY_OCTET + STRIDE * i>/24.
TIER_OCTET = {"public": 1, "private": 2, "data": 3}
STANDBY_OCTET = 4
OCTET_STRIDE = 4
MAX_OCTET = 255
MAX_FIXED_VPCS = MAX_OCTET  # 10.1/16 .. 10.255/16
IPAM_PREFIXES = MAX_OCTET * (MAX_OCTET + 1)  # the /24s of 10/8 an IPAM pool hands out, 10.0/16 left out
FIRST_HOST, END_HOST = 4, 250  # the hosts a /24 subnet hands out: .4 to .249 (AWS keeps .0 to .3 and .255)
# A subnet starts with at most this many workloads, about a quarter of its hosts: the rest is room for the new
# addresses of replacement instances (autoscaling, failover), which never reuse an old one.
WORKLOADS_PER_SUBNET = 64


def tier_of(role: str) -> str:
    """The subnet tier a role's workloads live in."""
    return "public" if role in PUBLIC_TIER_ROLES else "data" if role in DATA_TIER_ROLES else "private"


def subnets_per_tier(counts: dict[str, int]) -> dict[str, int]:
    """How many /24 subnets each tier needs for `counts` workloads per role: one per WORKLOADS_PER_SUBNET."""
    per_tier = dict.fromkeys(TIERS, 0)
    for role, count in counts.items():
        per_tier[tier_of(role)] += count
    return {tier: max(1, -(-count // WORKLOADS_PER_SUBNET)) for tier, count in per_tier.items()}


def check_address_plan(vpcs: int, ipam_subnets: bool) -> None:
    """Refuse an organisation whose VPCs the fixed plan cannot address (one /16 of 10/8 each)."""
    if vpcs > MAX_FIXED_VPCS and not ipam_subnets:
        message = (
            f"{vpcs} VPCs (accounts x regions) but the fixed address plan gives one /16 of 10/8 to each of at most "
            f"{MAX_FIXED_VPCS}: set sample_lake.ipam_subnets: true (subnets drawn from 10/8 one /24 at a time), or "
            "use fewer accounts or regions"
        )
        raise ValueError(message)


class SubnetPool:
    """Distinct /24 prefixes drawn from 10/8 (10.0/16 left out), as an IPAM pool hands subnets to accounts."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def draw(self) -> str:
        if len(self.used) >= IPAM_PREFIXES:
            message = f"the IPAM pool's {IPAM_PREFIXES} /24 subnets of 10/8 are all used: use fewer VPCs or workloads"
            raise ValueError(message)
        prefix = f"10.{int(self.rng.integers(1, MAX_OCTET + 1))}.{int(self.rng.integers(0, MAX_OCTET + 1))}"
        while prefix in self.used:
            prefix = f"10.{int(self.rng.integers(1, MAX_OCTET + 1))}.{int(self.rng.integers(0, MAX_OCTET + 1))}"
        self.used.add(prefix)
        return prefix


@dataclass(frozen=True)
class VpcLayout:
    """A VPC's subnets: per tier their ids and /24 prefixes (`10.a.b`), and the data tier's standby prefixes."""

    subnet_ids: dict[str, list[str]]
    prefixes: dict[str, list[str]]
    standby_prefixes: list[str]

    def place(self, tier: str, position: int) -> tuple[str, str]:
        """The (subnet id, prefix) of the tier's `position`-th workload: round robin over the tier's subnets."""
        subnet = position % len(self.prefixes[tier])
        return self.subnet_ids[tier][subnet], self.prefixes[tier][subnet]

    def failover_targets(self, standby_ids: list[str]) -> dict[str, tuple[str, str]]:
        """Where a database of each data subnet fails over to, (prefix, subnet id), and back: data subnet i and
        standby subnet i (ids `standby_ids`) pair up."""
        targets: dict[str, tuple[str, str]] = {}
        pairs = zip(self.subnet_ids["data"], self.prefixes["data"], standby_ids, self.standby_prefixes, strict=True)
        for data_id, data_prefix, standby_id, standby_prefix in pairs:
            targets[data_id] = (standby_prefix, standby_id)
            targets[standby_id] = (data_prefix, data_id)
        return targets


def fixed_prefixes(vpc_number: int, subnets: dict[str, int]) -> tuple[dict[str, list[str]], list[str]]:
    """The fixed plan's prefixes of VPC `vpc_number` (10.n/16) with `subnets` /24s per tier, and its standbys."""
    highest = max(TIER_OCTET[tier] + OCTET_STRIDE * (count - 1) for tier, count in subnets.items())
    highest = max(highest, STANDBY_OCTET + OCTET_STRIDE * (subnets["data"] - 1))
    if vpc_number > MAX_FIXED_VPCS or highest > MAX_OCTET:
        message = (
            f"VPC {vpc_number} with {subnets} /24 subnets per tier does not fit the fixed plan's 10.{vpc_number}/16: "
            "set sample_lake.ipam_subnets: true, or use fewer workloads_per_vpc"
        )
        raise ValueError(message)
    prefixes = {
        tier: [f"10.{vpc_number}.{TIER_OCTET[tier] + OCTET_STRIDE * i}" for i in range(count)]
        for tier, count in subnets.items()
    }
    standby = [f"10.{vpc_number}.{STANDBY_OCTET + OCTET_STRIDE * i}" for i in range(subnets["data"])]
    return prefixes, standby


def pool_prefixes(pool: SubnetPool, subnets: dict[str, int]) -> tuple[dict[str, list[str]], list[str]]:
    """Prefixes drawn from the IPAM pool: each tier's first subnet and the first standby, then the others."""
    prefixes = {tier: [pool.draw()] for tier in TIERS}
    standby = [pool.draw()]
    for tier in TIERS:
        prefixes[tier] += [pool.draw() for _ in range(subnets[tier] - 1)]
    standby += [pool.draw() for _ in range(subnets["data"] - 1)]
    return prefixes, standby
