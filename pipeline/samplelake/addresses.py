"""IP address blocks of the simulated internet and helpers to draw addresses from them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Block:
    """An IPv4 or IPv6 network addresses are drawn from."""

    cidr: str
    kind: str

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)


# Residential ISP access networks (clients of the web tier). Public unicast; heavy-tailed popularity is applied later.
RESIDENTIAL_V4 = [
    "24.0.0.0/12",
    "67.160.0.0/11",
    "73.0.0.0/11",
    "98.192.0.0/10",
    "71.192.0.0/12",
    "76.96.0.0/11",
    "86.128.0.0/10",
    "92.0.0.0/11",
    "2.96.0.0/11",
    "81.96.0.0/12",
    "109.144.0.0/12",
    "151.224.0.0/11",
    "189.0.0.0/11",
    "177.32.0.0/11",
    "49.128.0.0/11",
    "58.160.0.0/11",
    "112.192.0.0/11",
    "122.96.0.0/11",
    "180.64.0.0/11",
    "84.56.0.0/13",
    "90.0.0.0/11",
    "176.0.0.0/12",
    "187.96.0.0/11",
    "201.0.0.0/12",
]
RESIDENTIAL_V6 = ["2600:1700::/28", "2a02:c7c::/30", "2001:569::/32", "2804:14c::/32", "2003:e0::/27"]
# Mass scanners and other internet background noise that security groups reject.
SCANNER_V4 = [
    "45.128.0.0/12",
    "89.248.160.0/19",
    "185.220.0.0/14",
    "193.32.160.0/19",
    "162.142.125.0/24",
    "167.94.138.0/24",
]
# Another cloud provider's address space, which no workload of the organisation uses: where exfiltration goes.
OTHER_CLOUD_V4 = ["34.64.0.0/10", "35.184.0.0/13", "20.36.0.0/14", "40.112.0.0/13"]
# Networks no normal workload ever touches: the injected anomalies come from here.
UNSEEN_V4 = ["5.188.0.0/16", "94.102.48.0/20", "194.26.28.0/22", "91.240.118.0/24", "141.98.10.0/24", "80.66.64.0/20"]


def ipv4_to_text(values: np.ndarray) -> list[str]:
    """Dotted-decimal strings for an array of IPv4 integers."""
    octets = [(values >> shift) & 0xFF for shift in (24, 16, 8, 0)]
    return [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(*(o.tolist() for o in octets), strict=True)]


def draw_ipv4(rng: np.random.Generator, cidr: str, count: int, avoid_edges: bool = True) -> np.ndarray:
    """`count` addresses drawn uniformly inside `cidr`, skipping the network and broadcast addresses of each /24."""
    network = ipaddress.IPv4Network(cidr)
    base = int(network.network_address)
    values = base + rng.integers(0, network.num_addresses, size=count, dtype=np.int64)
    if avoid_edges and network.prefixlen <= 24:
        last = values & 0xFF
        values = np.where(last == 0, values + 1, values)
        values = np.where(last == 255, values - 1, values)
    return values


def draw_ipv6(rng: np.random.Generator, cidr: str, count: int) -> list[str]:
    """`count` addresses drawn inside `cidr` (a /64 per customer, random interface id)."""
    network = ipaddress.IPv6Network(cidr)
    base = int(network.network_address)
    span_bits = 128 - network.prefixlen
    subnet_bits = max(span_bits - 64, 0)
    subnets = rng.integers(0, 1 << min(subnet_bits, 62), size=count, dtype=np.int64)
    hosts = rng.integers(1, 1 << 62, size=count, dtype=np.int64)
    return [
        str(ipaddress.IPv6Address(base | (int(s) << 64) | int(h)))
        for s, h in zip(subnets.tolist(), hosts.tolist(), strict=True)
    ]


def fresh_subnet(rng: np.random.Generator, cidr: str) -> str:
    """A random /24 (or the block itself when smaller) inside an IPv4 block."""
    network = ipaddress.IPv4Network(cidr)
    if network.prefixlen >= 24:
        return cidr
    subnets = 1 << (24 - network.prefixlen)
    chosen = int(network.network_address) + int(rng.integers(0, subnets)) * 256
    return f"{ipaddress.IPv4Address(chosen)}/24"
