"""The internet and AWS services the organisation uses: where their addresses come from and how fast they rotate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.samplelake.addresses import (
    draw_ipv4,
    draw_ipv6,
    ipv4_to_text,
)
from pipeline.samplelake.organisation import PeerBuilder, Service


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


def build_services(
    rng: np.random.Generator, specs: list[ServiceSpec], days: int, peers: PeerBuilder, services: list[Service]
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


def use_service(
    peers: PeerBuilder, owner: int, service: Service, weight: float, rng: np.random.Generator, adopted_on: int = 0
) -> None:
    """The owner talks to every address of the service, most to the oldest ones (Zipf over rank)."""
    ranks = np.arange(1, len(service.ips) + 1, dtype=np.float64)
    shares = ranks**-1.1
    shares = shares / shares.sum()
    order = rng.permutation(len(service.ips))
    peers.add_many(
        owner=owner,
        ip=service.ips[order],
        service_port=service.port,
        initiator_local=True,
        weight=weight * shares,
        first_day=np.maximum(service.first_day[order], adopted_on),
        service=service.index,
    )
