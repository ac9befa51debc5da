"""The Spark engine of the pair mappings, for the processing step: the same rules as the pyarrow engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def _has(frame: DataFrame, path: str) -> bool:
    schema = frame.schema
    for part in path.split("."):
        names = {f.name: f for f in getattr(schema, "fields", [])}
        if part not in names:
            return False
        schema = names[part].dataType
    return True


def _col(frame: DataFrame, path: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(path) if _has(frame, path) else F.lit(None).cast("string")


def _present(value: Column) -> Column:
    return value.isNotNull() & ~value.isin(*MISSING_VALUES)


def _side_value(frame: DataFrame, path: str, rule: SourceRule) -> Column:
    from pyspark.sql import functions as F

    if not rule.sides_by_direction:
        return _col(frame, resolve(path, "src_endpoint", "dst_endpoint"))
    inbound = F.col("connection_info.direction") == "Inbound"
    return F.when(inbound, _col(frame, resolve(path, "dst_endpoint", "src_endpoint"))).otherwise(
        _col(frame, resolve(path, "src_endpoint", "dst_endpoint"))
    )


def _port_class(port: Column) -> Column:
    from pyspark.sql import functions as F

    result: Column = F.lit(OTHER_PORT_CLASS)
    for name, members in reversed(PORT_CLASSES):
        result = F.when(port.isin(*members), F.lit(name)).otherwise(result)
    return result


def asked_name(frame: DataFrame, rule: SourceRule) -> Column:
    """The name each Route 53 answer was asked for, by the same rule as the pyarrow engine's `asked_name`."""
    from pyspark.sql import functions as F

    if rule.answers is None:
        return F.lit(None).cast("string")
    return F.regexp_replace(F.lower(_col(frame, rule.answers.name).cast("string")), NAME_TRAILING_DOT, "")


def sent_by_entity(frame: DataFrame, rule: SourceRule) -> Column:
    """The bytes the entity sent on each row, by the same rule as the pyarrow engine's `sent_by_entity`."""
    from pyspark.sql import functions as F

    if rule.answers is not None:
        return F.lit(0).cast("long")
    sent = F.greatest(F.coalesce(_col(frame, SENT_BYTES).cast("long"), F.lit(-1)), F.lit(0)).cast("long")
    if not rule.sides_by_direction:
        return sent
    inbound = F.coalesce(_col(frame, "connection_info.direction") == "Inbound", F.lit(False))
    return F.when(inbound, F.lit(0).cast("long")).otherwise(sent)


def flow_role(frame: DataFrame, role: EntityRole) -> Column:
    """The role suffix of each flow row, by the same rules as the pyarrow engine."""
    from pyspark.sql import functions as F

    outbound = F.coalesce(_col(frame, "connection_info.direction") == "Outbound", F.lit(False))
    flags = F.coalesce(_col(frame, "connection_info.tcp_flags").cast("long"), F.lit(-1))
    tcp = F.coalesce(_col(frame, "connection_info.protocol_num").cast("long") == TCP, F.lit(False)) & (flags > 0)
    syn = tcp & (flags.bitwiseAND(TCP_SYN) > 0)
    acked = flags.bitwiseAND(TCP_ACK) > 0
    src_port = F.coalesce(_col(frame, "src_endpoint.port").cast("long"), F.lit(-1))
    dst_port = F.coalesce(_col(frame, "dst_endpoint.port").cast("long"), F.lit(-1))
    by_ports = F.when(src_port == dst_port, F.lit(True)).otherwise(dst_port < src_port)
    source_opened = F.when(syn, ~acked).otherwise(by_ports)
    side = F.when(source_opened == outbound, F.lit("client")).otherwise(F.lit("server"))
    if role == EntityRole.INITIATOR:
        return side
    service_port = F.when(source_opened, dst_port).otherwise(src_port)
    return F.concat(side, F.lit(":"), _port_class(service_port))


def address_rows(frame: DataFrame, version: int, rule: AddressBookRule) -> DataFrame:
    """The logging side of each VPC flow row, by the same rules as the pyarrow engine's `address_rows`."""
    from pyspark.sql import functions as F

    side = SourceRule(Source.VPC_FLOW, entity=rule.workload, ip=rule.ip, sides_by_direction=True)
    workload = F.coalesce(*[F.when(_present(v), v) for v in (_side_value(frame, c, side) for c in rule.workload)])
    ip = F.lower(_side_value(frame, rule.ip, side))
    account = _col(frame, account_column(version))
    keep = (
        F.coalesce(F.col("connection_info.direction").isin("Inbound", "Outbound"), F.lit(False))
        & F.coalesce(_present(workload), F.lit(False))
        & F.coalesce(_present(account), F.lit(False))
        & F.coalesce(ip.rlike(IP_REGEX), F.lit(False))
    )
    return frame.where(keep).select(
        ip.alias("ip"),
        account.alias("account"),
        _col(frame, rule.region).alias("region"),
        _side_value(frame, rule.vpc, side).alias("vpc"),
        _side_value(frame, rule.subnet, side).alias("subnet"),
        workload.alias("workload"),
        F.col("time"),
    )


def address_book(rows: DataFrame) -> DataFrame:
    """address_rows grouped: one row per (ip, account, region, vpc, subnet, workload) with first and last time."""
    from pyspark.sql import functions as F

    return rows.groupBy("ip", "account", "region", "vpc", "subnet", "workload").agg(
        F.min("time").cast("long").alias("first_seen_ms"),
        F.max("time").cast("long").alias("last_seen_ms"),
        F.count("*").cast("long").alias("rows"),
    )


def extract(
    frame: DataFrame, source: Source, version: int, rule: SourceRule, algorithm: Algorithm = Algorithm.OPEN
) -> DataFrame:
    """Candidates with `entity`, `ip`, `time`, `bytes_out`, `query_name` and `reason` (null when kept)."""
    from pyspark.sql import functions as F

    checks: list[tuple[DropReason, Column]] = []
    if rule.exclude_rejected:
        rejected = F.coalesce(_col(frame, "disposition") == "Blocked", F.lit(False))
        if _has(frame, "action"):
            rejected = rejected | F.coalesce(F.col("action") == "Denied", F.lit(False))
        checks.append((DropReason.REJECTED, rejected))
    if rule.sides_by_direction:
        known = F.coalesce(F.col("connection_info.direction").isin("Inbound", "Outbound"), F.lit(False))
        checks.append((DropReason.UNKNOWN_DIRECTION, ~known))
    entity = F.coalesce(*[F.when(_present(v), v) for v in (_side_value(frame, c, rule) for c in rule.entity)])
    account = _col(frame, account_column(version))
    if rule.role == EntityRole.WORKLOAD:
        role: Column = F.lit(None).cast("string")
    elif rule.answers is not None:
        role = F.lit(rule.answer_role)
    else:
        role = flow_role(frame, rule.role)
    columns = [
        entity.alias("entity"),
        account.alias("account"),
        F.col("time").alias("time"),
        role.alias("role"),
        sent_by_entity(frame, rule).alias(BYTES_OUT),
        asked_name(frame, rule).alias(QUERY_NAME),
    ]
    if rule.answers is not None:
        answers = rule.answers
        exploded = frame.select(
            *columns,
            *[c.alias(f"_check{i}") for i, (_, c) in enumerate(checks)],
            F.posexplode_outer(answers.column).alias("answer_position", "answer"),
        )
        ip = F.col(f"answer.{answers.value}")
        is_answer = F.col("answer").isNotNull()
        checks = [(reason, F.col(f"_check{i}")) for i, (reason, _) in enumerate(checks)]
        checks.append((DropReason.NO_ANSWER, ~is_answer))
        checks.append(
            (
                DropReason.ANSWER_NOT_ADDRESS,
                ~F.coalesce(F.col(f"answer.{answers.type_field}").isin(*answers.address_types), F.lit(False)),
            )
        )
        frame = exploded.withColumn("ip", ip)
    else:
        assert rule.ip is not None
        frame = frame.select(
            *columns,
            *[c.alias(f"_check{i}") for i, (_, c) in enumerate(checks)],
            _side_value(frame, rule.ip, rule).alias("ip"),
        )
        checks = [(reason, F.col(f"_check{i}")) for i, (reason, _) in enumerate(checks)]
    ip = F.lower(F.col("ip"))
    if rule.namespace_by_account:
        checks.append((DropReason.MISSING_ACCOUNT, ~_present(F.col("account"))))
    checks.append((DropReason.MISSING_ENTITY, ~F.coalesce(_present(F.col("entity")), F.lit(False))))
    checks.append((DropReason.MISSING_IP, ~F.coalesce(_present(ip), F.lit(False))))
    checks.append((DropReason.MALFORMED_IP, ~F.coalesce(ip.rlike(IP_REGEX), F.lit(False))))
    if algorithm == Algorithm.BUILTIN:
        checks.append((DropReason.IPV6_UNSUPPORTED, ~F.coalesce(ip.rlike(IPV4_REGEX), F.lit(False))))
    reason: Column = F.lit(None).cast("string")
    for check_reason, condition in reversed(checks):
        reason = F.when(F.coalesce(condition, F.lit(False)), F.lit(check_reason.value)).otherwise(reason)
    entity_out = F.concat_ws("/", F.col("account"), F.col("entity")) if rule.namespace_by_account else F.col("entity")
    if rule.role != EntityRole.WORKLOAD:
        entity_out = F.concat_ws(ROLE_SEPARATOR, entity_out, F.col("role"))
    return frame.select(
        entity_out.alias("entity"),
        ip.alias("ip"),
        F.col("time"),
        F.col(BYTES_OUT),
        F.col(QUERY_NAME),
        reason.alias("reason"),
    )
