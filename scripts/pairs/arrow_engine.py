"""The pyarrow engine of the pair mappings, for the monitoring Lambda: no Spark, bounded by the batch it is given."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scripts.entity import ROLE_SEPARATOR
from scripts.ocsf.schemas import Source
from scripts.pairs.mapping import (
    BYTES_OUT,
    IP_REGEX,
    IPV4_REGEX,
    MISSING_VALUES,
    NAME_TRAILING_DOT,
    OTHER_PORT_CLASS,
    PORT_CLASSES,
    QUERY_NAME,
    SENT_BYTES,
    TCP,
    TCP_ACK,
    TCP_SYN,
    AddressBookRule,
    Algorithm,
    DropReason,
    EntityRole,
    SourceRule,
    account_column,
    resolve,
)


@dataclass
class Extraction:
    """Pairs kept (entity, ip, time, bytes_out, query_name) and why the other candidates were dropped."""

    pairs: pa.Table
    rows: int = 0
    candidates: int = 0
    drops: Counter[str] = field(default_factory=Counter)


def column(data: pa.Table | pa.RecordBatch, path: str) -> pa.Array:
    """A nested column by dotted path; null where any parent struct is null."""
    parts = path.split(".")
    if parts[0] not in data.schema.names:
        return pa.nulls(data.num_rows, pa.string())
    values = data.column(parts[0])
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    for part in parts[1:]:
        if not pa.types.is_struct(values.type) or values.type.get_field_index(part) < 0:
            return pa.nulls(data.num_rows, pa.string())
        values = pc.struct_field(values, part)
    return values


def _present(values: pa.Array) -> pa.Array:
    return pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array(MISSING_VALUES, pa.string()))))


def _fill(mask: pa.Array) -> np.ndarray:
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _side_value(data: pa.Table | pa.RecordBatch, path: str, rule: SourceRule, inbound: pa.Array) -> pa.Array:
    """A {local}/{remote} path resolved per row; by direction when the rule says so."""
    if not rule.sides_by_direction:
        return column(data, resolve(path, "src_endpoint", "dst_endpoint"))
    when_inbound = column(data, resolve(path, "dst_endpoint", "src_endpoint"))
    when_outbound = column(data, resolve(path, "src_endpoint", "dst_endpoint"))
    return pc.if_else(inbound, when_inbound, when_outbound)


def _rejected(data: pa.Table | pa.RecordBatch) -> np.ndarray:
    blocked = _fill(pc.equal(column(data, "disposition"), "Blocked"))
    if "action" in data.schema.names:
        blocked |= _fill(pc.equal(column(data, "action"), "Denied"))
    return blocked


def _ints(data: pa.Table | pa.RecordBatch, path: str) -> np.ndarray:
    values = column(data, path).cast(pa.int64())
    return np.asarray(values.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _port_classes(ports: np.ndarray) -> np.ndarray:
    classes = np.full(len(ports), OTHER_PORT_CLASS, dtype=object)
    for name, members in reversed(PORT_CLASSES):
        classes[np.isin(ports, members)] = name
    return classes


def asked_name(data: pa.Table | pa.RecordBatch, rule: SourceRule) -> pa.Array:
    """Per row, the name a Route 53 answer was asked for (lower case, no final dot); null for flows."""
    if rule.answers is None:
        return pa.nulls(data.num_rows, pa.string())
    name = column(data, rule.answers.name).cast(pa.string())
    return pc.replace_substring_regex(pc.utf8_lower(name), NAME_TRAILING_DOT, "")


def sent_by_entity(data: pa.Table | pa.RecordBatch, rule: SourceRule, inbound: pa.Array) -> np.ndarray:
    """Per row, the bytes the entity (the {local} side) sent: the record's bytes when the entity is its sender
    (Outbound when sides go by direction; always otherwise, {local} being the source), else 0; 0 for answers."""
    if rule.answers is not None:
        return np.zeros(data.num_rows, dtype=np.int64)
    sent: np.ndarray = np.maximum(_ints(data, SENT_BYTES), 0)
    if not rule.sides_by_direction:
        return sent
    return np.where(_fill(inbound), 0, sent).astype(np.int64)


def flow_roles(data: pa.Table | pa.RecordBatch, role: EntityRole) -> np.ndarray:
    """Each flow row's role suffix (`client:web`, `server:admin`, or `client` / `server`), per the SourceRule rules."""
    outbound = _fill(pc.equal(column(data, "connection_info.direction"), "Outbound"))
    flags = _ints(data, "connection_info.tcp_flags")
    tcp = (_ints(data, "connection_info.protocol_num") == TCP) & (flags > 0)
    syn = tcp & (flags & TCP_SYN > 0)
    acked = (flags & TCP_ACK) > 0
    src_port = _ints(data, "src_endpoint.port")
    dst_port = _ints(data, "dst_endpoint.port")
    by_ports = np.where(src_port == dst_port, True, dst_port < src_port)
    source_opened = np.where(syn, ~acked, by_ports)
    local_opened = source_opened == outbound
    sides = np.where(local_opened, "client", "server").astype(object)
    if role == EntityRole.INITIATOR:
        return sides
    service_port = np.where(source_opened, dst_port, src_port)
    suffixes: np.ndarray = sides + ":" + _port_classes(service_port)
    return suffixes


def _with_role(entity: pa.Array, data: pa.Table | pa.RecordBatch, rule: SourceRule, rows: np.ndarray) -> pa.Array:
    if rule.role == EntityRole.WORKLOAD:
        return entity
    if rule.answers is not None:
        suffix = pa.array(np.full(len(rows), ROLE_SEPARATOR + rule.answer_role, dtype=object), pa.string())
    else:
        suffix = pa.array(ROLE_SEPARATOR + flow_roles(data, rule.role)[rows], pa.string())
    return pc.binary_join_element_wise(entity, suffix, "")


def address_rows(data: pa.Table | pa.RecordBatch, version: int, rule: AddressBookRule) -> pa.Table:
    """The logging side of each VPC flow row: (ip, account, region, vpc, subnet, workload, time), for rows whose
    direction is known and whose logging side has a well-formed address and a workload."""
    inbound = pc.fill_null(pc.equal(column(data, "connection_info.direction"), "Inbound"), False)
    side = SourceRule(Source.VPC_FLOW, entity=rule.workload, ip=rule.ip, sides_by_direction=True)
    workload = pa.nulls(data.num_rows, pa.string())
    for candidate in reversed(rule.workload):
        value = _side_value(data, candidate, side, inbound)
        workload = pc.if_else(_present(value), value, workload)
    ip = pc.utf8_lower(_side_value(data, rule.ip, side, inbound))
    account = column(data, account_column(version))
    keep = (
        _fill(pc.is_in(column(data, "connection_info.direction"), pa.array(["Inbound", "Outbound"])))
        & _fill(_present(workload))
        & _fill(_present(account))
        & _fill(pc.match_substring_regex(ip, IP_REGEX))
    )
    mask = pa.array(keep)
    return pa.table(
        {
            "ip": pc.filter(ip, mask),
            "account": pc.filter(account, mask),
            "region": pc.filter(column(data, rule.region), mask),
            "vpc": pc.filter(_side_value(data, rule.vpc, side, inbound), mask),
            "subnet": pc.filter(_side_value(data, rule.subnet, side, inbound), mask),
            "workload": pc.filter(workload, mask),
            "time": pc.filter(column(data, "time"), mask),
        }
    )


def address_book_table(rows: pa.Table) -> pa.Table:
    """address_rows grouped: one row per (ip, account, region, vpc, subnet, workload) with first and last time."""
    keys = ["ip", "account", "region", "vpc", "subnet", "workload"]
    grouped = rows.group_by(keys, use_threads=False).aggregate([("time", "min"), ("time", "max"), ("time", "count")])
    return pa.table(
        {
            **{key: grouped.column(key) for key in keys},
            "first_seen_ms": grouped.column("time_min").cast(pa.int64()),
            "last_seen_ms": grouped.column("time_max").cast(pa.int64()),
            "rows": grouped.column("time_count").cast(pa.int64()),
        }
    )


def _entity_values(data: pa.Table | pa.RecordBatch, rule: SourceRule, inbound: pa.Array, take: pa.Array) -> pa.Array:
    """The entity column of the rows `take` picks: the rule's first present candidate."""
    entity = pa.nulls(len(take), pa.string())
    for candidate in reversed(rule.entity):
        value = _side_value(data, candidate, rule, inbound).take(take)
        entity = pc.if_else(_present(value), value, entity)
    return entity


def _named_entity(
    entity: pa.Array, account: pa.Array, data: pa.Table | pa.RecordBatch, rule: SourceRule, rows: np.ndarray
) -> pa.Array:
    """The entity as the pairs name it: namespaced by account when the rule says so, with its role suffix."""
    if rule.namespace_by_account:
        entity = pc.binary_join_element_wise(account, entity, "/")
    return _with_role(entity, data, rule, rows)


def queried_names(data: pa.Table | pa.RecordBatch, version: int, rule: SourceRule) -> pa.Table:
    """Every Route 53 query's (entity, name, time), answered or not and whatever its record type, the entity named
    as the rule's answer pairs name it: what the tunnelling rule reads (scripts/detect/tunnelling.py). Empty for a
    rule without answers (flows)."""
    if rule.answers is None:
        empty = pa.array([], pa.string())
        return pa.table({"entity": empty, "name": empty, "time": pa.array([], pa.int64())})
    rows = np.arange(data.num_rows)
    take = pa.array(rows)
    inbound = pa.array(np.zeros(data.num_rows, bool))
    entity = _entity_values(data, rule, inbound, take)
    account = column(data, account_column(version))
    name = asked_name(data, rule)
    present = _fill(_present(entity)) & _fill(pc.is_valid(name)) & _fill(pc.greater(pc.utf8_length(name), 0))
    if rule.namespace_by_account:
        present &= _fill(_present(account))
    keep = pa.array(present)
    entity = _named_entity(entity, account, data, rule, rows)
    return pa.table(
        {
            "entity": pc.filter(entity, keep),
            "name": pc.filter(name, keep),
            "time": pc.filter(column(data, "time"), keep),
        }
    )


def extract(
    data: pa.Table | pa.RecordBatch,
    source: Source,
    version: int,
    rule: SourceRule,
    algorithm: Algorithm = Algorithm.OPEN,
) -> Extraction:
    """Apply one source rule to rows of that source and version."""
    rows = data.num_rows
    direction = column(data, "connection_info.direction")
    inbound = pc.fill_null(pc.equal(direction, "Inbound"), False)
    known_direction = _fill(pc.is_in(direction, pa.array(["Inbound", "Outbound"])))
    reasons: list[tuple[DropReason, np.ndarray]] = []
    row_index = np.arange(rows)
    if rule.answers is not None:
        answers = column(data, rule.answers.column)
        lengths = np.asarray(pc.fill_null(pc.list_value_length(answers), 0).to_numpy(zero_copy_only=False))
        flat = pc.list_flatten(answers)
        parents = np.asarray(pc.list_parent_indices(answers).to_numpy(zero_copy_only=False))
        empty = np.flatnonzero(lengths == 0)
        order = np.argsort(np.concatenate([parents, empty]), kind="stable")
        row_index = np.concatenate([parents, empty])[order]
        is_answer = np.concatenate([np.ones(len(parents), bool), np.zeros(len(empty), bool)])[order]
        answer_at = np.concatenate([np.arange(len(parents)), np.zeros(len(empty), np.int64)])[order]
        answer_take = pa.array(answer_at, mask=~is_answer)
        ip = (
            pc.struct_field(flat, rule.answers.value).take(answer_take)
            if len(flat)
            else pa.nulls(len(row_index), pa.string())
        )
        answer_type = (
            pc.struct_field(flat, rule.answers.type_field).take(answer_take)
            if len(flat)
            else pa.nulls(len(row_index), pa.string())
        )
        reasons.append((DropReason.NO_ANSWER, ~is_answer))
        reasons.append(
            (
                DropReason.ANSWER_NOT_ADDRESS,
                is_answer & ~_fill(pc.is_in(answer_type, pa.array(rule.answers.address_types))),
            )
        )
    take = pa.array(row_index)
    entity = _entity_values(data, rule, inbound, take)
    if rule.ip is not None:
        ip = _side_value(data, rule.ip, rule, inbound).take(take)
    account = column(data, account_column(version)).take(take)
    base: list[tuple[DropReason, np.ndarray]] = []
    if rule.exclude_rejected:
        base.append((DropReason.REJECTED, _rejected(data)[row_index]))
    if rule.sides_by_direction:
        base.append((DropReason.UNKNOWN_DIRECTION, ~known_direction[row_index]))
    reasons = base + reasons
    if rule.namespace_by_account:
        reasons.append((DropReason.MISSING_ACCOUNT, ~_fill(_present(account))))
    ip = pc.utf8_lower(ip)
    reasons.append((DropReason.MISSING_ENTITY, ~_fill(_present(entity))))
    reasons.append((DropReason.MISSING_IP, ~_fill(_present(ip))))
    reasons.append((DropReason.MALFORMED_IP, ~_fill(pc.match_substring_regex(ip, IP_REGEX))))
    if algorithm == Algorithm.BUILTIN:
        reasons.append((DropReason.IPV6_UNSUPPORTED, ~_fill(pc.match_substring_regex(ip, IPV4_REGEX))))
    dropped = np.zeros(len(row_index), bool)
    drops: Counter[str] = Counter()
    for reason, mask in reasons:
        newly = mask & ~dropped
        if newly.any():
            drops[reason.value] += int(newly.sum())
        dropped |= newly
    keep = pa.array(~dropped)
    entity = _named_entity(entity, account, data, rule, row_index)
    pairs = pa.table(
        {
            "entity": pc.filter(entity, keep),
            "ip": pc.filter(ip, keep),
            "time": pc.filter(column(data, "time").take(take), keep),
            BYTES_OUT: pa.array(sent_by_entity(data, rule, inbound)[row_index][~dropped], pa.int64()),
            QUERY_NAME: pc.filter(asked_name(data, rule).take(take), keep),
        }
    )
    return Extraction(pairs=pairs, rows=rows, candidates=len(row_index), drops=drops)
