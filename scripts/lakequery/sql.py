"""The SQL that reads one source's window from its Security Lake table: only the columns the pair mappings need,
filtered on the partition columns, in the subset of SQL that Athena (Trino) and DuckDB both run unchanged."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from scripts.ocsf.schemas import Source, projected_type
from scripts.window import Window

# The top-level columns the pair mappings (scripts/pairs/mapping.py), the account check and the object fingerprints
# (scripts/jobs/preprocess.py) read; whole structs, so the Spark step's column paths are the same on both access paths.
READ_COLUMNS: dict[Source, tuple[str, ...]] = {
    Source.VPC_FLOW: (
        "time",
        "cloud",
        "src_endpoint",
        "dst_endpoint",
        "connection_info",
        "traffic",
        "disposition",
        "action",
    ),
    Source.ROUTE53: ("time", "cloud", "src_endpoint", "dst_endpoint", "connection_info", "query", "answers"),
}
UNLOAD_FORMAT = "PARQUET"
UNLOAD_COMPRESSION = "SNAPPY"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class LakeTable:
    """One Security Lake table as the query reaches it: database (or resource link) and table name."""

    source: Source
    version: int
    database: str
    table: str

    def __post_init__(self) -> None:
        for what, name in (("database", self.database), ("table", self.table)):
            if not _NAME.match(name):
                message = (
                    f"{what} name {name!r} is not a plain Glue name (letters, digits, underscores): name the "
                    "database and table (or their resource links) as Glue lists them"
                )
                raise ValueError(message)

    @property
    def columns(self) -> tuple[str, ...]:
        """READ_COLUMNS that this version's table has (v1 has no `action`)."""
        projected = projected_type(self.source, self.version, READ_COLUMNS[self.source])
        return tuple(field.name for field in projected.fields)


def quoted(name: str) -> str:
    """A double-quoted identifier: the same in Trino and DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A single-quoted string literal."""
    return "'" + value.replace("'", "''") + "'"


def _timestamp(day: str) -> str:
    moment = dt.datetime.strptime(day, "%Y%m%d")
    return f"TIMESTAMP {literal(moment.strftime('%Y-%m-%d %H:%M:%S'))}"


def partition_filter(table: LakeTable, window: Window, regions: list[str], accounts: list[str]) -> list[str]:
    """Predicates on the partition columns: v1 tables are Hive-partitioned on region, accountid and eventday
    (YYYYMMDD strings); v2 tables are Iceberg tables partitioned on time_dt, region and accountid."""
    predicates = []
    if regions:
        predicates.append(f"{quoted('region')} IN ({', '.join(literal(r) for r in regions)})")
    if accounts:
        predicates.append(f"{quoted('accountid')} IN ({', '.join(literal(a) for a in accounts)})")
    first, last = window.days[0], window.days[-1]
    if table.version == 1:
        predicates.append(f"{quoted('eventday')} BETWEEN {literal(first)} AND {literal(last)}")
    else:
        after_last = (window.end_day + dt.timedelta(days=1)).strftime("%Y%m%d")
        predicates.append(f"{quoted('time_dt')} >= {_timestamp(first)}")
        predicates.append(f"{quoted('time_dt')} < {_timestamp(after_last)}")
    return predicates


def window_select(table: LakeTable, window: Window, regions: list[str], accounts: list[str]) -> str:
    """SELECT the read columns of the window's rows: partitions pruned, then the exact [start, end) on `time`."""
    predicates = [
        *partition_filter(table, window, regions, accounts),
        f"{quoted('time')} >= {window.start_ms}",
        f"{quoted('time')} < {window.end_ms}",
    ]
    columns = ", ".join(quoted(c) for c in table.columns)
    where = "\n  AND ".join(predicates)
    return f"SELECT {columns}\nFROM {quoted(table.database)}.{quoted(table.table)}\nWHERE {where}"


def unload(select: str, destination: str) -> str:
    """UNLOAD (not CTAS: no table to create or drop, which Lake Formation databases rarely allow) into an empty
    S3 prefix, as parquet."""
    if not destination.startswith("s3://") or not destination.endswith("/"):
        message = f"UNLOAD destination {destination!r} must be an s3:// prefix ending in '/'"
        raise ValueError(message)
    return (
        f"UNLOAD ({select})\nTO {literal(destination)}\n"
        f"WITH (format = {literal(UNLOAD_FORMAT)}, compression = {literal(UNLOAD_COMPRESSION)})"
    )


_UNLOAD = re.compile(r"^UNLOAD \((?P<select>.*)\)\nTO '(?P<destination>[^']+)'\nWITH \((?P<properties>[^)]*)\)$", re.S)


@dataclass(frozen=True)
class ParsedUnload:
    """An UNLOAD statement taken apart: what a local engine needs to run it."""

    select: str
    destination: str
    properties: dict[str, str]


def parse_unload(statement: str) -> ParsedUnload | None:
    """The parts of an UNLOAD written by `unload`, or None for any other statement."""
    match = _UNLOAD.match(statement.strip())
    if match is None:
        return None
    properties = {}
    for part in match["properties"].split(","):
        key, _, value = part.partition("=")
        properties[key.strip().lower()] = value.strip().strip("'")
    return ParsedUnload(match["select"], match["destination"], properties)
