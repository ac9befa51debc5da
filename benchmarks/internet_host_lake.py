"""Write a small Security Lake (VPC flow, source version 2) of a first account's internet-facing EC2 hosts."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.samplelake.addresses import SCANNER_V4, draw_ipv4, ipv4_to_text
from pipeline.samplelake.arrowbuild import assemble, constant
from pipeline.samplelake.organisation import hex_id, zone_of
from pipeline.samplelake.traffic import DAY_MS, draw_times, ephemeral_ports
from scripts.ocsf.layout import bucket_name, object_key
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, arrow_schema

REGION = "us-east-1"
VERSION = 2
END_DAY = dt.date(2026, 11, 28)  # the last day written, as the other benchmarks' lakes end
FILES_PER_DAY = 4
GZIP_LEVEL = 1
TCP, UDP, ICMP = 6, 17, 1
ALL_HOURS = np.arange(24)
# Networks the host's outbound traffic reaches: OS update mirrors, a public NTP server, two SaaS APIs.
MIRROR_NETWORKS = ("185.125.188.0/22", "91.189.91.0/24", "151.101.0.0/16")
NTP_NETWORK = "162.159.200.0/24"
SAAS_NETWORKS = ("3.233.144.0/20", "54.80.0.0/13")
# Ports internet scanners probe (the web ports are open, so probes of those are not rejected).
SCAN_TCP_PORTS = np.array([21, 22, 23, 25, 110, 135, 139, 445, 1433, 2375, 3306, 3389, 5432, 5900, 6379, 8080, 9200])
SCAN_UDP_PORTS = np.array([53, 123, 161, 1900, 5060, 11211])
_STRING = pa.string()
_FLOW_UNMAPPED = [("sublocation_id", "-"), ("sublocation_type", "-")]


@dataclass(frozen=True)
class Host:
    """One internet-facing EC2 instance: its ENI, address and the clients that come back to it."""

    ip: str
    instance_uid: str
    interface_uid: str
    subnet_uid: str
    zone: str
    clients: np.ndarray  # returning clients' addresses, most popular first
    client_weights: np.ndarray


@dataclass(frozen=True)
class Lake:
    """The account, its one VPC and hosts, and the fixed outside world they talk to."""

    account: str
    bucket: str
    vpc_uid: str
    resolver: str
    hosts: list[Host]
    mirrors: np.ndarray
    ntp: str
    saas: np.ndarray
    scanners: np.ndarray


@dataclass(frozen=True)
class Flows:
    """Connections of one host: each one is a request record and, unless rejected, a reply record."""

    time_ms: np.ndarray
    remote_ip: np.ndarray
    remote_port: np.ndarray
    local_port: np.ndarray
    outbound: np.ndarray  # the host opened the connection
    protocol: np.ndarray
    packets: np.ndarray
    bytes: np.ndarray
    reply_packets: np.ndarray
    reply_bytes: np.ndarray
    rejected: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ms)

    @staticmethod
    def concat(parts: list[Flows]) -> Flows:
        return Flows(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Flows)))


def make_flows(
    time_ms: np.ndarray,
    remote_ip: np.ndarray,
    remote_port: np.ndarray | int,
    local_port: np.ndarray | int,
    *,
    outbound: bool,
    protocol: np.ndarray | int,
    packets: np.ndarray | int,
    size: np.ndarray | int,
    reply_packets: np.ndarray | int,
    reply_size: np.ndarray | int,
    rejected: np.ndarray | bool = False,
) -> Flows:
    """Flows from per-connection arrays or one value for all connections."""
    n = len(time_ms)

    def full(value: np.ndarray | float, dtype: type) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

    return Flows(
        time_ms=full(time_ms, np.int64),
        remote_ip=full(remote_ip, object),
        remote_port=full(remote_port, np.int32),
        local_port=full(local_port, np.int32),
        outbound=full(outbound, np.bool_),
        protocol=full(protocol, np.int32),
        packets=full(packets, np.int64),
        bytes=full(size, np.int64),
        reply_packets=full(reply_packets, np.int64),
        reply_bytes=full(reply_size, np.int64),
        rejected=full(rejected, np.bool_),
    )


def _is_public(address: ipaddress.IPv4Address) -> bool:
    last = int(address) & 0xFF
    return address.is_global and not (address.is_multicast or address.is_reserved) and 0 < last < 255


def public_ipv4(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` addresses drawn uniformly from public unicast IPv4 space (no private, reserved or multicast ones)."""
    found: list[str] = []
    while len(found) < count:
        values = rng.integers(0x01000000, 0xE0000000, size=2 * (count - len(found)) + 8)
        candidates = (ipaddress.IPv4Address(v) for v in values.tolist())
        found.extend(str(a) for a in candidates if _is_public(a))
    return np.array(found[:count], dtype=object)


def network_ipv4(rng: np.random.Generator, networks: tuple[str, ...], count: int) -> np.ndarray:
    """`count` addresses, each inside one of `networks` chosen at random."""
    chosen = rng.integers(0, len(networks), size=count)
    return np.array([ipv4_to_text(draw_ipv4(rng, networks[c], 1))[0] for c in chosen.tolist()], dtype=object)


def build_host(rng: np.random.Generator, index: int) -> Host:
    """Host `index`: in public subnet 10.0.<1 + index % 2>.0/24, with a few hundred returning clients."""
    subnet = 1 + index % 2
    clients = public_ipv4(rng, int(rng.integers(200, 400)))
    weights = 1.0 / np.arange(1, len(clients) + 1) ** 1.1
    return Host(
        ip=f"10.0.{subnet}.{10 + 7 * index + int(rng.integers(0, 7))}",
        instance_uid=hex_id(rng, "i-"),
        interface_uid=hex_id(rng, "eni-"),
        subnet_uid=hex_id(rng, "subnet-"),
        zone=zone_of(REGION, subnet),
        clients=clients,
        client_weights=weights / weights.sum(),
    )


def build_lake(seed: int, hosts: int) -> Lake:
    """The account, VPC 10.0.0.0/16, its hosts and the fixed destinations, all drawn from `seed`."""
    rng = np.random.default_rng([seed, 0])
    suffix = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), size=30))
    return Lake(
        account=str(rng.integers(10**11, 10**12)),
        bucket=bucket_name(REGION, suffix),
        vpc_uid=hex_id(rng, "vpc-"),
        resolver="1.1.1.1",  # a public resolver: flow logs never record traffic to the VPC's own (.2)
        hosts=[build_host(rng, i) for i in range(hosts)],
        mirrors=network_ipv4(rng, MIRROR_NETWORKS, 3),
        ntp=ipv4_to_text(draw_ipv4(rng, NTP_NETWORK, 1))[0],
        saas=np.array([ipv4_to_text(draw_ipv4(rng, n, 1))[0] for n in SAAS_NETWORKS], dtype=object),
        scanners=network_ipv4(rng, tuple(SCANNER_V4), 60),
    )


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def uniform_times(rng: np.random.Generator, day_start: int, count: int) -> np.ndarray:
    return day_start + rng.integers(0, DAY_MS - 60_000, size=count)


def web_flows(rng: np.random.Generator, host: Host, day_start: int) -> Flows:
    """HTTPS and HTTP from new clients (a few connections each) and from returning ones, on a diurnal curve."""
    new_clients = public_ipv4(rng, int(rng.integers(450, 900)))
    new = np.repeat(new_clients, rng.geometric(0.5, size=len(new_clients)))
    returning = host.clients[rng.choice(len(host.clients), size=int(rng.integers(500, 1200)), p=host.client_weights)]
    clients = np.concatenate([new, returning])
    n = len(clients)
    packets = np.maximum(3, rng.lognormal(2.0, 1.0, size=n)).astype(np.int64)
    size = packets * rng.integers(60, 600, size=n)
    return make_flows(
        draw_times(rng, day_start, ALL_HOURS, n),
        clients,
        ephemeral_ports(rng, n),
        np.where(rng.random(n) < 0.85, 443, 80),
        outbound=False,
        protocol=TCP,
        packets=packets,
        size=size,
        reply_packets=packets + rng.integers(0, packets + 1),
        reply_size=size * rng.integers(2, 12, size=n),
    )


def ping_flows(rng: np.random.Generator, day_start: int) -> Flows:
    """ICMP echo requests from random internet addresses, and the host's echo replies."""
    n = int(rng.integers(24, 72))
    packets = rng.integers(1, 5, size=n)
    return make_flows(
        uniform_times(rng, day_start, n),
        public_ipv4(rng, n),
        0,
        0,
        outbound=False,
        protocol=ICMP,
        packets=packets,
        size=packets * 84,
        reply_packets=packets,
        reply_size=packets * 84,
    )


def scan_flows(rng: np.random.Generator, lake: Lake, day_start: int) -> Flows:
    """Internet scanners (known scanner networks and random addresses) probing closed ports; all rejected."""
    n = int(rng.integers(150, 450))
    known = rng.random(n) < 0.4
    remote = np.where(known, lake.scanners[rng.integers(0, len(lake.scanners), size=n)], public_ipv4(rng, n))
    udp = rng.random(n) < 0.15
    random_port = rng.integers(1, 65536, size=n)
    random_port = np.where(np.isin(random_port, [80, 443]), random_port + 1, random_port)
    tcp_port = np.where(rng.random(n) < 0.6, SCAN_TCP_PORTS[rng.integers(0, len(SCAN_TCP_PORTS), size=n)], random_port)
    udp_port = SCAN_UDP_PORTS[rng.integers(0, len(SCAN_UDP_PORTS), size=n)]
    return make_flows(
        uniform_times(rng, day_start, n),
        remote,
        ephemeral_ports(rng, n),
        np.where(udp, udp_port, tcp_port),
        outbound=False,
        protocol=np.where(udp, UDP, TCP),
        packets=1,
        size=np.where(udp, rng.integers(50, 120, size=n), rng.integers(40, 61, size=n)),
        reply_packets=0,
        reply_size=0,
        rejected=True,
    )


def outbound_flows(rng: np.random.Generator, lake: Lake, day_start: int, new_mirrors: np.ndarray) -> Flows:
    """The host's own connections: update mirrors (and the day's new ones), NTP, a public DNS resolver, SaaS APIs."""
    updates = int(rng.integers(20, 60))
    burst = rng.choice(draw_times(rng, day_start, ALL_HOURS, 3), size=updates) + rng.integers(0, 600_000, size=updates)
    mirror_packets = rng.integers(8, 40, size=updates)
    fresh = np.repeat(new_mirrors, rng.integers(2, 7, size=len(new_mirrors)))
    ntp_times = day_start + int(rng.integers(0, 1_024_000)) + np.arange(0, DAY_MS - 1_100_000, 1_024_000)
    dns = int(rng.integers(120, 320))
    saas = int(rng.integers(80, 240))
    saas_packets = rng.integers(6, 30, size=saas)
    return Flows.concat(
        [
            make_flows(
                np.minimum(burst, day_start + DAY_MS - 60_000),
                lake.mirrors[rng.integers(0, len(lake.mirrors), size=updates)],
                443,
                ephemeral_ports(rng, updates),
                outbound=True,
                protocol=TCP,
                packets=mirror_packets,
                size=mirror_packets * 120,
                reply_packets=mirror_packets * 20,
                reply_size=mirror_packets * 20 * 1400,
            ),
            make_flows(
                uniform_times(rng, day_start, len(fresh)),
                fresh,
                443,
                ephemeral_ports(rng, len(fresh)),
                outbound=True,
                protocol=TCP,
                packets=12,
                size=1_400,
                reply_packets=200,
                reply_size=280_000,
            ),
            make_flows(
                ntp_times + rng.integers(0, 2_000, size=len(ntp_times)),
                np.full(len(ntp_times), lake.ntp, dtype=object),
                123,
                ephemeral_ports(rng, len(ntp_times)),
                outbound=True,
                protocol=UDP,
                packets=1,
                size=76,
                reply_packets=1,
                reply_size=76,
            ),
            make_flows(
                draw_times(rng, day_start, ALL_HOURS, dns),
                np.full(dns, lake.resolver, dtype=object),
                53,
                ephemeral_ports(rng, dns),
                outbound=True,
                protocol=UDP,
                packets=1,
                size=rng.integers(60, 90, size=dns),
                reply_packets=1,
                reply_size=rng.integers(90, 300, size=dns),
            ),
            make_flows(
                draw_times(rng, day_start, ALL_HOURS, saas),
                lake.saas[rng.integers(0, len(lake.saas), size=saas)],
                443,
                ephemeral_ports(rng, saas),
                outbound=True,
                protocol=TCP,
                packets=saas_packets,
                size=saas_packets * 400,
                reply_packets=saas_packets,
                reply_size=saas_packets * 150,
            ),
        ]
    )


def host_day_flows(lake: Lake, index: int, day: dt.date, seed: int) -> Flows:
    """All connections of host `index` on one day (drawn from the seed and the date, whatever --days is)."""
    rng = np.random.default_rng([seed, 1, index, day.toordinal()])
    mirror_rng = np.random.default_rng([seed, 2, day.toordinal()])  # the day's new mirrors are the same for every host
    day_start = day_start_ms(day)
    new_mirrors = network_ipv4(mirror_rng, MIRROR_NETWORKS, int(mirror_rng.integers(1, 3)))
    host = lake.hosts[index]
    return Flows.concat(
        [
            web_flows(rng, host, day_start),
            ping_flows(rng, day_start),
            scan_flows(rng, lake, day_start),
            outbound_flows(rng, lake, day_start, new_mirrors),
        ]
    )


def _timestamps(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("datetime64[ms]"), type=pa.timestamp("ms", tz="UTC"))


def _observables(src: pa.Array, dst: pa.Array, data_type: pa.DataType) -> pa.Array:
    """OCSF observables: the source and destination addresses of every row."""
    return pa.array(
        [
            [
                {"name": "src_endpoint.ip", "value": s, "type": "IP Address", "type_id": 2},
                {"name": "dst_endpoint.ip", "value": d, "type": "IP Address", "type_id": 2},
            ]
            for s, d in zip(src.to_pylist(), dst.to_pylist(), strict=True)
        ],
        type=data_type,
    )


def flow_table(lake: Lake, host: Host, flows: Flows, rng: np.random.Generator, day_end: int) -> pa.Table:
    """The VPC flow records of one host's connections, in the columns and values the sample generator writes."""
    replies = np.flatnonzero(~flows.rejected)
    index = np.concatenate([np.arange(len(flows)), replies])
    is_reply = np.concatenate([np.zeros(len(flows), bool), np.ones(len(replies), bool)])
    n = len(index)
    outbound = flows.outbound[index] ^ is_reply
    rejected = flows.rejected[index]
    tcp = flows.protocol[index] == TCP
    still_open = rng.random(len(flows))[index] < 0.08  # the connection outlived the aggregation window: no FIN
    request_flags = np.where(rejected | still_open, 2, 3)
    reply_flags = np.where(still_open, 18, 19)
    time_ms = np.minimum(flows.time_ms[index] + is_reply * rng.integers(1, 40, size=n), day_end - 1)
    end_ms = time_ms + rng.integers(1_000, 60_000, size=n)
    remote = pa.array(flows.remote_ip[index], _STRING)
    local = constant(host.ip, _STRING, n)
    local_port = flows.local_port[index]
    remote_port = flows.remote_port[index]
    dash = constant("-", _STRING, n)
    nulls = pa.nulls(n, _STRING)
    schema = arrow_schema(Source.VPC_FLOW, VERSION)
    columns: dict[str, pa.Array] = {
        "metadata.product.version": constant("5", _STRING, n),
        "metadata.product.name": constant("Amazon VPC", _STRING, n),
        "metadata.product.feature.name": constant("Flowlogs", _STRING, n),
        "metadata.product.vendor_name": constant("AWS", _STRING, n),
        "metadata.profiles": constant(["cloud", "security_control", "datetime"], pa.list_(_STRING), n),
        "metadata.version": constant(SOURCE_VERSIONS[VERSION].ocsf_version, _STRING, n),
        "cloud.account.uid": constant(lake.account, _STRING, n),
        "cloud.region": constant(REGION, _STRING, n),
        "cloud.zone": constant(host.zone, _STRING, n),
        "cloud.provider": constant("AWS", _STRING, n),
        "time": pa.array(time_ms, pa.int64()),
        "time_dt": _timestamps(time_ms),
        "start_time_dt": _timestamps(time_ms),
        "end_time_dt": _timestamps(end_ms),
        "connection_info.protocol_num": pa.array(flows.protocol[index], pa.int32()),
        "connection_info.tcp_flags": pa.array(np.where(tcp, np.where(is_reply, reply_flags, request_flags), 0)),
        "connection_info.protocol_ver": constant("IPv4", _STRING, n),
        "connection_info.boundary_id": constant(99, pa.int32(), n),
        "connection_info.boundary": dash,
        "connection_info.direction_id": pa.array(np.where(outbound, 2, 1), pa.int32()),
        "connection_info.direction": pa.array(np.where(outbound, "Outbound", "Inbound"), _STRING),
        "traffic.packets": pa.array(np.where(is_reply, flows.reply_packets[index], flows.packets[index])),
        "traffic.bytes": pa.array(np.where(is_reply, flows.reply_bytes[index], flows.bytes[index])),
        "status_code": constant("OK", _STRING, n),
        "severity_id": constant(1, pa.int32(), n),
        "severity": constant("Informational", _STRING, n),
        "class_name": constant("Network Activity", _STRING, n),
        "class_uid": constant(4001, pa.int32(), n),
        "category_name": constant("Network Activity", _STRING, n),
        "category_uid": constant(4, pa.int32(), n),
        "activity_name": pa.array(np.where(rejected, "Refuse", "Traffic"), _STRING),
        "activity_id": pa.array(np.where(rejected, 5, 6), pa.int32()),
        "action": pa.array(np.where(rejected, "Denied", "Allowed"), _STRING),
        "action_id": pa.array(np.where(rejected, 2, 1), pa.int32()),
        "disposition": pa.array(np.where(rejected, "Blocked", "Allowed"), _STRING),
        "type_uid": pa.array(np.where(rejected, 400105, 400106), pa.int64()),
        "type_name": pa.array(np.where(rejected, "Network Activity: Refuse", "Network Activity: Traffic"), _STRING),
        "accountid": constant(lake.account, _STRING, n),
        "region": constant(REGION, _STRING, n),
        "asl_version": constant("2.0", _STRING, n),
        "unmapped": constant(_FLOW_UNMAPPED, pa.map_(_STRING, _STRING), n),
    }
    for side, is_local in (("src_endpoint", outbound), ("dst_endpoint", ~outbound)):
        columns[f"{side}.ip"] = pc.if_else(pa.array(is_local), local, remote)
        columns[f"{side}.port"] = pa.array(np.where(is_local, local_port, remote_port), pa.int32())
        columns[f"{side}.svc_name"] = dash
        for name, value in (
            ("interface_uid", host.interface_uid),
            ("vpc_uid", lake.vpc_uid),
            ("instance_uid", host.instance_uid),
            ("subnet_uid", host.subnet_uid),
        ):
            columns[f"{side}.{name}"] = pc.if_else(pa.array(is_local), constant(value, _STRING, n), nulls)
    columns["observables"] = _observables(
        columns["src_endpoint.ip"], columns["dst_endpoint.ip"], schema.field("observables").type
    )
    return assemble(schema, columns, n)


def day_table(lake: Lake, day: dt.date, seed: int) -> pa.Table:
    """Every host's records of one day, in time order."""
    rng = np.random.default_rng([seed, 3, day.toordinal()])
    tables = [
        flow_table(lake, host, host_day_flows(lake, i, day, seed), rng, day_start_ms(day) + DAY_MS)
        for i, host in enumerate(lake.hosts)
    ]
    table = pa.concat_tables(tables)
    return table.take(np.argsort(table.column("time").to_numpy(), kind="stable"))


def write_day(root: Path, lake: Lake, day: dt.date, table: pa.Table, rng: np.random.Generator) -> int:
    """The day's records in FILES_PER_DAY objects, one per block of hours; the number of files written."""
    block = (table.column("time").to_numpy() - day_start_ms(day)) * FILES_PER_DAY // DAY_MS
    for number in range(FILES_PER_DAY):
        name = "".join(rng.choice(list("0123456789abcdef"), size=32)) + ".gz.parquet"
        key = object_key(Source.VPC_FLOW, VERSION, REGION, lake.account, day.strftime("%Y%m%d"), name)
        path = root / "s3" / lake.bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        part = table.filter(pa.array(block == number))
        pq.write_table(part, path, compression="gzip", compression_level=GZIP_LEVEL)
    return FILES_PER_DAY


def generate(root: Path, hosts: int, days: int, seed: int) -> tuple[int, int]:
    """Write the lake under `root/s3/`; the rows and files written."""
    lake = build_lake(seed, hosts)
    rows = files = 0
    for back in range(days - 1, -1, -1):
        day = END_DAY - dt.timedelta(days=back)
        table = day_table(lake, day, seed)
        files += write_day(root, lake, day, table, np.random.default_rng([seed, 4, day.toordinal()]))
        rows += len(table)
    return rows, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="the lake is written under ROOT/s3/")
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.hosts <= 30 or arguments.days < 1:
        parser.error("--hosts must be 1 to 30 and --days at least 1")
    rows, files = generate(arguments.root, arguments.hosts, arguments.days, arguments.seed)
    root = arguments.root / "s3"
    print(f"wrote {rows} rows, {arguments.days} days, {arguments.hosts} hosts, {files} files under {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
