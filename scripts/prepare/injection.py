"""The eval set: the held-out day's pairs, the model's negatives and the attacks injected for the detector
(scripts/handoff/evalset.py names the kinds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scripts.addresses import private_ipv4_blocks
from scripts.entity import ROLE_SEPARATOR, SERVER_SIDE, SIDE_SEPARATOR, account_of, base_entity, peer_group, role_of
from scripts.handoff.evalset import (
    KIND_ORDER,
    MODEL_NEGATIVE_KINDS,
    NEW_NETWORK,
    NEW_ROLE,
    NORMAL,
    OTHER_ACCOUNT_INTERNAL,
    OTHER_GROUP_IP,
    RANDOM_IPV4,
)
from scripts.pairs.mapping import ANSWER_ROLE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


NEGATIVE_ATTEMPTS = 8


def _public_ipv4(value: Any) -> Any:
    """A Spark condition: the 32-bit value is a public unicast IPv4 address."""
    from pyspark.sql import functions as F

    first = F.shiftright(value, 24)
    second = F.shiftright(value, 16).bitwiseAND(255)
    return ~(
        first.isin(0, 10, 127)
        | (first >= 224)
        | ((first == 100) & (second >= 64) & (second < 128))
        | ((first == 169) & (second == 254))
        | ((first == 172) & (second >= 16) & (second < 32))
        | ((first == 192) & (second == 168))
        | ((first == 198) & (second.isin(18, 19)))
    )


def _dotted(value: Any) -> Any:
    from pyspark.sql import functions as F

    return F.concat_ws(".", *[F.shiftright(value, shift).bitwiseAND(255).cast("string") for shift in (24, 16, 8, 0)])


def entity_groups(spark: SparkSession, entities: list[str]) -> DataFrame:
    """Each entity's workload, account, role and peer group, named by the detector's own functions (one place)."""
    rows = [(e, base_entity(e), account_of(e), role_of(e), peer_group(e)) for e in sorted(entities)]
    schema = "entity string, workload string, account string, role string, peer_group string"
    return spark.createDataFrame(rows, schema)


def _ipv4_prefix16(ip: Any) -> Any:
    """A Spark expression: the /16 of a dotted IPv4 address as a number (null for IPv6)."""
    from pyspark.sql import functions as F

    parts = F.split(ip, "\\.")
    is_v4 = ip.rlike("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$")
    return F.when(is_v4, parts.getItem(0).cast("long") * 256 + parts.getItem(1).cast("long"))


def _private_ipv4(ip: Any) -> Any:
    """A Spark condition: a dotted IPv4 address in one of the private blocks (scripts/addresses.py's table)."""
    from functools import reduce

    from pyspark.sql import functions as F

    parts = F.split(ip, "\\.")
    value = reduce(
        lambda total, i: total * 256 + parts.getItem(i).cast("long"), range(1, 4), parts.getItem(0).cast("long")
    )
    inside = [F.shiftright(value, 32 - length) == network >> (32 - length) for network, length in private_ipv4_blocks()]
    is_v4 = ip.rlike("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$")
    return is_v4 & reduce(lambda a, b: a | b, inside)


def _first_found(candidates: DataFrame, key: str) -> DataFrame:
    """The first attempt per key that survived the filters."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    first = SparkWindow.partitionBy(key).orderBy("attempt")
    return candidates.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n")


def eval_set(train: DataFrame, validation: DataFrame, seed: int) -> DataFrame:
    """Held-out validation pairs (label 0), the model's negatives per normal row of an entity seen in training, and
    the attacks injected into that day for the detector (scripts/handoff/evalset.py says what each kind is)."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    spark = train.sparkSession
    known_pairs = train.select("entity", "ip").unionByName(validation.select("entity", "ip")).distinct()
    info = F.broadcast(entity_groups(spark, [r["entity"] for r in known_pairs.select("entity").distinct().collect()]))
    known = known_pairs.join(info, "entity")
    group_ips = known.select("peer_group", "ip").distinct()
    train_entities = train.select("entity").distinct().withColumn("entity_in_training", F.lit(1))
    positives = (
        validation.select("entity", "ip")
        .distinct()
        .join(train_entities, "entity", "left")
        .fillna({"entity_in_training": 0})
        .withColumn("row_id", F.row_number().over(SparkWindow.orderBy("entity", "ip")) - 1)
    )
    ips = known_pairs.select("ip").distinct().withColumn("ip_index", F.row_number().over(SparkWindow.orderBy("ip")) - 1)
    ip_count = max(ips.count(), 1)
    seen = positives.where(F.col("entity_in_training") == 1).select("row_id", "entity").join(info, "entity")
    attempts = seen.crossJoin(spark.range(NEGATIVE_ATTEMPTS).withColumnRenamed("id", "attempt"))
    hashed = F.xxhash64("entity", "row_id", "attempt", F.lit(seed))
    other_group = (
        attempts.withColumn("ip_index", F.pmod(hashed, F.lit(ip_count)))
        .join(ips, "ip_index")
        .join(group_ips, ["peer_group", "ip"], "left_anti")
        .withColumn("kind", F.lit(OTHER_GROUP_IP))
    )
    random_value = F.pmod(F.xxhash64("entity", "row_id", "attempt", F.lit(seed), F.lit("r")), F.lit(2**32))
    random = (
        attempts.withColumn("value", random_value)
        .where(_public_ipv4(F.col("value")))
        .withColumn("ip", _dotted(F.col("value")))
        .join(known_pairs, ["entity", "ip"], "left_anti")
        .withColumn("kind", F.lit(RANDOM_IPV4))
    )
    per_row = [
        _first_found(frame.select("row_id", "entity", "ip", "attempt", "kind"), "row_id")
        for frame in (other_group, random)
    ]
    injected = _injected(spark, seen, known, info, group_ips, seed)
    negatives = per_row[0].unionByName(per_row[1]).drop("attempt").withColumn("entity_in_training", F.lit(1))
    negatives = negatives.unionByName(injected).withColumn("label", F.lit(1))
    model_negative = F.col("kind").isin(*MODEL_NEGATIVE_KINDS).cast("int")
    normal = positives.select(
        "row_id", "entity", "ip", F.lit(NORMAL).alias("kind"), F.lit(0).alias("label"), "entity_in_training"
    )
    order = F.lit(len(KIND_ORDER))
    for position, kind in reversed(list(enumerate(KIND_ORDER))):
        order = F.when(F.col("kind") == kind, position).otherwise(order)
    return (
        normal.unionByName(negatives)
        .withColumn("model_negative", model_negative)
        .withColumn("_order", order)
        .orderBy("row_id", "_order", "entity", "ip")
        .drop("_order")
    )


def _injected(
    spark: SparkSession, seen: DataFrame, known: DataFrame, info: DataFrame, group_ips: DataFrame, seed: int
) -> DataFrame:
    """One attack of each injected kind per entity seen in training (new_role: per workload), where one exists:
    row_id, entity, ip, kind, entity_in_training. They sit next to the entity's first normal row."""
    from pyspark.sql import functions as F

    entities = seen.groupBy("entity", "workload", "account", "peer_group", "role").agg(F.min("row_id").alias("row_id"))
    attempts = entities.crossJoin(spark.range(4 * NEGATIVE_ATTEMPTS).withColumnRenamed("id", "attempt"))
    value = F.pmod(F.xxhash64("entity", "attempt", F.lit(seed), F.lit("n")), F.lit(2**32))
    group_networks = (
        known.select("peer_group", _ipv4_prefix16(F.col("ip")).alias("prefix16")).where(F.col("prefix16").isNotNull())
    ).distinct()
    opens = (
        F.split(F.col("role"), SIDE_SEPARATOR).getItem(0) != SERVER_SIDE
    )  # a server's new client network is its service
    new_network = (
        attempts.where(opens)
        .withColumn("value", value)
        .where(_public_ipv4(F.col("value")))
        .withColumn("prefix16", F.shiftright(F.col("value"), 16))
        .join(group_networks, ["peer_group", "prefix16"], "left_anti")
        .withColumn("ip", _dotted(F.col("value")))
        .withColumn("kind", F.lit(NEW_NETWORK))
    )
    pool = (
        known.where(_private_ipv4(F.col("ip")))
        .select(F.col("account").alias("owner"), "ip")
        .distinct()
        .withColumn("pool_index", F.row_number().over(_ordered("owner", "ip")) - 1)
    )
    pool_size = max(pool.count(), 1)
    internal = (
        attempts.withColumn(
            "pool_index", F.pmod(F.xxhash64("entity", "attempt", F.lit(seed), F.lit("i")), F.lit(pool_size))
        )
        .join(pool, "pool_index")
        .where(F.col("owner") != F.col("account"))
        .join(group_ips, ["peer_group", "ip"], "left_anti")
        .withColumn("kind", F.lit(OTHER_ACCOUNT_INTERNAL))
    )
    roles = info.where((F.col("role") != "") & (F.col("role") != ANSWER_ROLE)).select("account", "role").distinct()
    held = info.select("workload", "role").distinct()
    role_groups = info.where(F.col("role") != "").select("account", "role", F.col("peer_group").alias("role_group"))
    workloads = entities.groupBy("workload", "account").agg(F.min("row_id").alias("row_id"))
    new_roles = (
        workloads.join(roles, "account")
        .join(held, ["workload", "role"], "left_anti")
        .join(role_groups.distinct(), ["account", "role"])
        .join(group_ips.withColumnRenamed("peer_group", "role_group"), "role_group")
        .withColumn("attempt", F.xxhash64("workload", "role", "ip", F.lit(seed)))
        .withColumn("entity", F.concat("workload", F.lit(ROLE_SEPARATOR), "role"))
        .withColumn("kind", F.lit(NEW_ROLE))
    )
    columns = ("row_id", "entity", "ip", "attempt", "kind")
    found = [
        _first_found(new_network.select(*columns), "entity"),
        _first_found(internal.select(*columns), "entity"),
        _first_found(new_roles.select(*columns, "workload"), "workload").drop("workload"),
    ]
    union = found[0].unionByName(found[1]).unionByName(found[2]).drop("attempt")
    return union.withColumn("entity_in_training", F.when(F.col("kind") == NEW_ROLE, 0).otherwise(1))


def _ordered(*columns: str) -> Any:
    from pyspark.sql import Window as SparkWindow

    return SparkWindow.orderBy(*columns)
