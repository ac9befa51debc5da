"""Turn simulated connections and DNS lookups into OCSF rows of Security Lake source version 1 or 2."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.samplelake.arrowbuild import assemble, constant
from pipeline.samplelake.organisation import World
from pipeline.samplelake.traffic import Connections, Queries, ephemeral_ports
from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, arrow_schema

MALFORMED_IPS = ["10.0.1.256", "192.168.1", "1.2.3.4.5", "::ffff:zz", "unknown", "172.16.300.1"]
_STRING = pa.string()
_FLOW_UNMAPPED = [("sublocation_id", "-"), ("sublocation_type", "-")]
_OBSERVABLE = pa.struct([("name", pa.string()), ("value", pa.string()), ("type", pa.string()), ("type_id", pa.int32())])


@dataclass
class WorldArrays:
    """Arrow lookups of a world, built once per generation run."""

    ip_text: pa.Array
    ip_is_v6: np.ndarray
    local_ip: pa.Array
    interface_uid: pa.Array
    instance_uid: pa.Array
    vpc_uid: pa.Array
    subnet_uid: pa.Array
    account: pa.Array
    region: pa.Array
    zone: pa.Array
    svc_name: pa.Array
    has_instance: np.ndarray
    service_name: pa.Array
    service_cname: pa.Array
    service_v4: list[np.ndarray]
    service_v4_first_day: list[np.ndarray]
    service_v6: list[np.ndarray]

    @staticmethod
    def of(world: World) -> WorldArrays:
        w = world.workloads
        return WorldArrays(
            ip_text=pa.array(world.ip_text, _STRING),
            ip_is_v6=np.array([":" in t for t in world.ip_text]),
            local_ip=pa.array([x.ip for x in w], _STRING),
            interface_uid=pa.array([x.interface_uid for x in w], _STRING),
            instance_uid=pa.array([x.instance_uid or "-" for x in w], _STRING),
            vpc_uid=pa.array([x.vpc_uid for x in w], _STRING),
            subnet_uid=pa.array([x.subnet_uid for x in w], _STRING),
            account=pa.array([x.account for x in w], _STRING),
            region=pa.array([x.region for x in w], _STRING),
            zone=pa.array([x.zone for x in w], _STRING),
            svc_name=pa.array([s.svc_name for s in world.services] + ["-"], _STRING),
            has_instance=np.array([x.instance_uid is not None for x in w]),
            service_name=pa.array([s.name + "." for s in world.services], _STRING),
            service_cname=pa.array([f"{s.name.replace('.', '-')}.edgekey.net." for s in world.services], _STRING),
            service_v4=[s.ips for s in world.services],
            service_v4_first_day=[s.first_day for s in world.services],
            service_v6=[s.ips_v6 for s in world.services],
        )


def _take(values: pa.Array, indices: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return values.take(pa.array(indices, type=pa.int32(), mask=mask))


def _ms_to_timestamp(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("datetime64[ms]"), type=pa.timestamp("ms", tz="UTC"))


def _common(
    source: Source, version: int, n: int, arrays: WorldArrays, workload: np.ndarray, time_ms: np.ndarray
) -> dict[str, pa.Array]:
    ocsf = SOURCE_VERSIONS[version].ocsf_version
    profiles = ["cloud", "security_control"] + (["datetime"] if version == 2 else [])
    product = {
        Source.VPC_FLOW: ("5", "Amazon VPC", "Flowlogs"),
        Source.ROUTE53: ("1.100000", "Route 53", "Resolver Query Logs"),
    }[source]
    account = _take(arrays.account, workload)
    region = _take(arrays.region, workload)
    columns = {
        "metadata.product.version": constant(product[0], _STRING, n),
        "metadata.product.name": constant(product[1], _STRING, n),
        "metadata.product.feature.name": constant(product[2], _STRING, n),
        "metadata.product.vendor_name": constant("AWS", _STRING, n),
        "metadata.profiles": constant(profiles, pa.list_(_STRING), n),
        "metadata.version": constant(ocsf, _STRING, n),
        "cloud.region": region,
        "cloud.provider": constant("AWS", _STRING, n),
        "time": pa.array(time_ms, pa.int64()),
        "severity_id": constant(1, pa.int32(), n),
        "severity": constant("Informational", _STRING, n),
        "category_name": constant("Network Activity", _STRING, n),
        "category_uid": constant(4, pa.int32(), n),
    }
    if version == 1:
        columns["cloud.account_uid"] = account
    else:
        columns["cloud.account.uid"] = account
        columns["time_dt"] = _ms_to_timestamp(time_ms)
        columns["accountid"] = account
        columns["region"] = region
        columns["asl_version"] = constant("2.0", _STRING, n)
    return columns


def _observables(pairs: list[tuple[str, str, pa.Array]], n: int) -> pa.Array:
    """OCSF observables: one struct per (name, type) given, for every row."""
    width = len(pairs)
    names = pa.array(np.repeat(np.array([p[0] for p in pairs], dtype=object)[None, :], n, axis=0).ravel(), _STRING)
    types = pa.array(np.repeat(np.array([p[1] for p in pairs], dtype=object)[None, :], n, axis=0).ravel(), _STRING)
    type_ids = pa.array(np.tile(np.array([2 if p[1] == "IP Address" else 1 for p in pairs], np.int32), n), pa.int32())
    order = np.arange(n * width).reshape(width, n).T.ravel()
    values = pa.concat_arrays([p[2].cast(_STRING) for p in pairs]).take(pa.array(order))
    structs = pa.StructArray.from_arrays([names, values, types, type_ids], fields=list(_OBSERVABLE))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * width + 1, width, dtype=np.int32)), structs)


def flow_table(
    arrays: WorldArrays, conns: Connections, version: int, rng: np.random.Generator, malformed_fraction: float
) -> pa.Table:
    """The VPC flow records of the connections: a request record each, a reply record unless rejected."""
    replies = np.flatnonzero(~conns.rejected)
    index = np.concatenate([np.arange(len(conns)), replies])
    is_reply = np.concatenate([np.zeros(len(conns), bool), np.ones(len(replies), bool)])
    n = len(index)
    workload = conns.workload[index]
    outbound = conns.initiator_local[index] ^ is_reply
    rejected = conns.rejected[index]
    tcp = conns.protocol[index] == 6
    time_ms = conns.time_ms[index] + is_reply.astype(np.int64)
    remote = _take(arrays.ip_text, conns.remote_ip[index])
    if malformed_fraction > 0:
        broken = rng.random(n) < malformed_fraction
        if broken.any():
            bad = pa.array(np.array(MALFORMED_IPS, dtype=object)[rng.integers(0, len(MALFORMED_IPS), size=n)], _STRING)
            remote = pc.if_else(pa.array(broken), bad, remote)
    local = _take(arrays.local_ip, workload)
    out_mask = pa.array(outbound)
    local_port = conns.local_port[index]
    remote_port = conns.remote_port[index]
    remote_svc = _take(
        arrays.svc_name, np.where(conns.service[index] >= 0, conns.service[index], len(arrays.svc_name) - 1)
    )
    dash = constant("-", _STRING, n)
    columns = _common(Source.VPC_FLOW, version, n, arrays, workload, time_ms)
    for side, is_local in (("src_endpoint", outbound), ("dst_endpoint", ~outbound)):
        not_local = ~is_local
        columns[f"{side}.ip"] = pc.if_else(pa.array(is_local), local, remote)
        columns[f"{side}.port"] = pa.array(np.where(is_local, local_port, remote_port), pa.int32())
        columns[f"{side}.svc_name"] = pc.if_else(pa.array(is_local), dash, remote_svc)
        for name, values in (
            ("interface_uid", arrays.interface_uid),
            ("vpc_uid", arrays.vpc_uid),
            ("instance_uid", arrays.instance_uid),
            ("subnet_uid", arrays.subnet_uid),
        ):
            columns[f"{side}.{name}"] = _take(values, workload, mask=not_local)
    packets = np.where(is_reply, np.maximum(1, conns.packets[index] * 4 // 5), conns.packets[index])
    flags = np.where(is_reply, 19, np.where(rejected, 2, 3))
    columns.update(
        {
            "connection_info.protocol_num": pa.array(conns.protocol[index], pa.int32()),
            "connection_info.tcp_flags": pa.array(np.where(tcp, flags, 0), pa.int32()),
            "connection_info.protocol_ver": pa.array(
                np.where(arrays.ip_is_v6[conns.remote_ip[index]], "IPv6", "IPv4"), _STRING
            ),
            "connection_info.boundary_id": constant(99, pa.int32(), n),
            "connection_info.boundary": dash,
            "connection_info.direction_id": pa.array(np.where(outbound, 2, 1), pa.int32()),
            "connection_info.direction": pc.if_else(out_mask, "Outbound", "Inbound"),
            "traffic.packets": pa.array(packets, pa.int64()),
            "traffic.bytes": pa.array(np.where(is_reply, conns.bytes[index] * 3, conns.bytes[index]), pa.int64()),
            "status_code": constant("OK", _STRING, n),
            "class_name": constant("Network Activity", _STRING, n),
            "class_uid": constant(4001, pa.int32(), n),
            "activity_name": pa.array(np.where(rejected, "Refuse", "Traffic"), _STRING),
            "activity_id": pa.array(np.where(rejected, 5, 6), pa.int32()),
            "disposition": pa.array(np.where(rejected, "Blocked", "Allowed"), _STRING),
            "type_uid": pa.array(np.where(rejected, 400105, 400106), pa.int64() if version == 2 else pa.int32()),
            "type_name": pa.array(np.where(rejected, "Network Activity: Refuse", "Network Activity: Traffic"), _STRING),
            "unmapped": constant(_FLOW_UNMAPPED, pa.map_(_STRING, _STRING), n),
        }
    )
    columns["cloud.zone"] = _take(arrays.zone, workload)
    end_ms = time_ms + rng.integers(1_000, 60_000, size=n)
    if version == 1:
        columns["start_time"] = pa.array(time_ms, pa.int64())
        columns["end_time"] = pa.array(end_ms, pa.int64())
        columns["disposition_id"] = pa.array(np.where(rejected, 2, 1), pa.int32())
    else:
        columns["start_time_dt"] = _ms_to_timestamp(time_ms)
        columns["end_time_dt"] = _ms_to_timestamp(end_ms)
        columns["action"] = pa.array(np.where(rejected, "Denied", "Allowed"), _STRING)
        columns["action_id"] = pa.array(np.where(rejected, 2, 1), pa.int32())
        columns["observables"] = _observables(
            [
                ("src_endpoint.ip", "IP Address", columns["src_endpoint.ip"]),
                ("dst_endpoint.ip", "IP Address", columns["dst_endpoint.ip"]),
            ],
            n,
        )
    return assemble(arrow_schema(Source.VPC_FLOW, version), columns, n)


def nodata_table(arrays: WorldArrays, workload: np.ndarray, time_ms: np.ndarray, version: int) -> pa.Table:
    """NODATA records: an ENI logged no traffic in the window; Security Lake writes "-" in its fields."""
    n = len(workload)
    dash = constant("-", _STRING, n)
    columns = _common(Source.VPC_FLOW, version, n, arrays, workload, time_ms)
    columns.update(
        {
            "cloud.zone": _take(arrays.zone, workload),
            "src_endpoint.ip": dash,
            "src_endpoint.svc_name": dash,
            "src_endpoint.instance_uid": dash,
            "src_endpoint.interface_uid": _take(arrays.interface_uid, workload),
            "src_endpoint.vpc_uid": _take(arrays.vpc_uid, workload),
            "src_endpoint.subnet_uid": _take(arrays.subnet_uid, workload),
            "dst_endpoint.ip": dash,
            "dst_endpoint.svc_name": dash,
            "connection_info.protocol_ver": dash,
            "connection_info.boundary_id": constant(99, pa.int32(), n),
            "connection_info.direction_id": constant(99, pa.int32(), n),
            "connection_info.direction": dash,
            "status_code": constant("NODATA", _STRING, n),
            "class_name": constant("Network Activity", _STRING, n),
            "class_uid": constant(4001, pa.int32(), n),
            "activity_name": constant("Unknown", _STRING, n),
            "activity_id": constant(0, pa.int32(), n),
            "disposition": dash,
            "type_uid": constant(400100, pa.int64() if version == 2 else pa.int32(), n),
            "type_name": constant("Network Activity: Unknown", _STRING, n),
            "unmapped": constant(_FLOW_UNMAPPED, pa.map_(_STRING, _STRING), n),
        }
    )
    end_ms = time_ms + 60_000
    if version == 1:
        columns.update(
            {
                "start_time": pa.array(time_ms, pa.int64()),
                "end_time": pa.array(end_ms, pa.int64()),
                "disposition_id": constant(99, pa.int32(), n),
            }
        )
    else:
        columns.update(
            {
                "start_time_dt": _ms_to_timestamp(time_ms),
                "end_time_dt": _ms_to_timestamp(end_ms),
                "action": constant("Unknown", _STRING, n),
                "action_id": constant(0, pa.int32(), n),
            }
        )
    return assemble(arrow_schema(Source.VPC_FLOW, version), columns, n)


def _answers(
    arrays: WorldArrays,
    rng: np.random.Generator,
    service: np.ndarray,
    connected_ip: np.ndarray,
    aaaa: np.ndarray,
    nxdomain: np.ndarray,
    day: int,
) -> pa.Array:
    """Answer lists: an optional CNAME, the address the instance then connects to, and other addresses in rotation."""
    n = len(service)
    with_cname = (rng.random(n) < 0.25) & ~nxdomain
    extra = np.where(aaaa | nxdomain, 0, rng.integers(0, 3, size=n))
    counts = np.where(nxdomain, 0, with_cname.astype(np.int64) + 1 + extra)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    query = np.repeat(np.arange(n), counts)
    slot = np.arange(len(query)) - offsets[query]
    cname_slot = with_cname[query] & (slot == 0)
    primary_slot = slot == with_cname[query].astype(np.int64)
    rdata_ip = connected_ip[query].copy()
    for position in np.flatnonzero(~cname_slot & ~primary_slot).tolist():
        pool = arrays.service_v4[service[query[position]]]
        alive = int(np.searchsorted(arrays.service_v4_first_day[service[query[position]]], day, side="right"))
        rdata_ip[position] = pool[int(rng.integers(0, max(alive, 1)))]
    rdata = pc.if_else(
        pa.array(cname_slot), _take(arrays.service_cname, service[query]), _take(arrays.ip_text, rdata_ip)
    )
    kind = np.where(cname_slot, "CNAME", np.where(aaaa[query], "AAAA", "A"))
    entries = pa.StructArray.from_arrays(
        [pa.array(kind, _STRING), rdata, constant("IN", _STRING, len(query))], names=["type", "rdata", "class"]
    )
    return pa.ListArray.from_arrays(pa.array(offsets), entries, mask=pa.array(nxdomain))


def dns_table(
    arrays: WorldArrays, conns: Connections, version: int, rng: np.random.Generator, share: float, day: int
) -> pa.Table:
    """Route 53 resolver queries that precede a share of the outbound connections to named services."""
    eligible = (conns.service >= 0) & conns.initiator_local & ~conns.rejected & arrays.has_instance[conns.workload]
    eligible &= rng.random(len(conns)) < share
    chosen = np.flatnonzero(eligible)
    service = conns.service[chosen]
    connected = conns.remote_ip[chosen]
    aaaa = arrays.ip_is_v6[connected]
    nxdomain = rng.random(len(chosen)) < 0.02
    n = len(chosen)
    workload = conns.workload[chosen]
    time_ms = conns.time_ms[chosen] - rng.integers(2, 400, size=n)
    hostnames = _take(arrays.service_name, service)
    if nxdomain.any():
        typos = pa.array([f"{h[:-1]}.corp.internal." for h in hostnames.to_pylist()], _STRING)
        hostnames = pc.if_else(pa.array(nxdomain), typos, hostnames)

    def answers() -> pa.Array:
        return _answers(arrays, rng, service, connected, aaaa, nxdomain, day)

    query_type = pa.array(np.where(aaaa, "AAAA", "A"), _STRING)
    return _route53_table(arrays, version, rng, (workload, time_ms), (hostnames, query_type, answers), nxdomain)


def query_table(arrays: WorldArrays, queries: Queries, version: int, rng: np.random.Generator) -> pa.Table:
    """Route 53 rows of queries no connection explains (a DNS tunnel's): each answered once, with the address it
    names (an A record) or a TXT record of encoded data."""
    n = len(queries)

    def answers() -> pa.Array:
        txt = pa.array([f'"{_txt_payload(rng)}"' for _ in range(n)], _STRING)
        with_address = pa.array(queries.answer_ip >= 0)
        rdata = pc.if_else(with_address, _take(arrays.ip_text, np.maximum(queries.answer_ip, 0)), txt)
        entries = pa.StructArray.from_arrays(
            [pa.array(queries.record_type.astype(str), _STRING), rdata, constant("IN", _STRING, n)],
            names=["type", "rdata", "class"],
        )
        return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), entries)

    names = (pa.array(queries.hostname.astype(str), _STRING), pa.array(queries.record_type.astype(str), _STRING))
    return _route53_table(
        arrays, version, rng, (queries.workload, queries.time_ms), (*names, answers), np.zeros(n, bool)
    )


def _txt_payload(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"), 48))


def _route53_table(
    arrays: WorldArrays,
    version: int,
    rng: np.random.Generator,
    who: tuple[np.ndarray, np.ndarray],
    asked: tuple[pa.Array, pa.Array, Callable[[], pa.Array]],
    nxdomain: np.ndarray,
) -> pa.Table:
    """Route 53 resolver rows: `who` (workload, time) asked `asked` (hostname, query type, and the answers, drawn
    after the source port as they always were: a lake of a given seed stays the same)."""
    workload, time_ms = who
    hostnames, query_type, answers = asked
    n = len(workload)
    columns = _common(Source.ROUTE53, version, n, arrays, workload, time_ms)
    columns.update(
        {
            "src_endpoint.vpc_uid": _take(arrays.vpc_uid, workload),
            "src_endpoint.ip": _take(arrays.local_ip, workload),
            "src_endpoint.port": pa.array(ephemeral_ports(rng, n), pa.int32()),
            "src_endpoint.instance_uid": _take(arrays.instance_uid, workload),
            "query.hostname": hostnames,
            "query.type": query_type,
            "query.class": constant("IN", _STRING, n),
            "answers": answers(),
            "connection_info.protocol_name": constant("UDP", _STRING, n),
            "connection_info.direction": constant("Unknown", _STRING, n),
            "connection_info.direction_id": constant(0, pa.int32(), n),
            "class_name": constant("DNS Activity", _STRING, n),
            "class_uid": constant(4003, pa.int32(), n),
            "rcode_id": pa.array(np.where(nxdomain, 3, 0), pa.int32()),
            "rcode": pa.array(np.where(nxdomain, "NXDomain", "NoError"), _STRING),
            "activity_id": constant(2, pa.int32(), n),
            "activity_name": constant("Response", _STRING, n),
            "type_uid": constant(400302, pa.int64() if version == 2 else pa.int32(), n),
            "type_name": constant("DNS Activity: Response", _STRING, n),
            "disposition": constant("No Action", _STRING, n),
        }
    )
    if version == 1:
        columns["disposition_id"] = constant(16, pa.int32(), n)
    else:
        columns["action"] = constant("Allowed", _STRING, n)
        columns["action_id"] = constant(1, pa.int32(), n)
        columns["observables"] = _observables(
            [("src_endpoint.ip", "IP Address", columns["src_endpoint.ip"]), ("query.hostname", "Hostname", hostnames)],
            n,
        )
    return assemble(arrow_schema(Source.ROUTE53, version), columns, n)
