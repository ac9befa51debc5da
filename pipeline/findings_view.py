"""Recent findings through the custom source's table, newest first, filtered, with why: one SQL text that Athena runs
over the registered custom source and the local Athena (DuckDB) over the local lake."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from scripts.lakequery.athena import QueryTarget, run_statement
from scripts.lakequery.sql import literal, quoted
from scripts.monitor.findings import PAIR_EVIDENCE

# The monitor writes the entity first and the address second among a finding's observables (scripts/monitor/findings.py)
ENTITY, IP = 1, 2
MIN_UID_PREFIX = 8
UID_PREFIX = re.compile(rf"[0-9a-f]{{{MIN_UID_PREFIX},64}}")
COLUMNS = (
    "time",
    "uid",
    "why",
    "entity",
    "ip",
    "accountid",
    "region",
    "eventday",
    "model_version",
    "severity",
    "incident_uid",
    "status",
)


@dataclass(frozen=True)
class FindingRow:
    """What an analyst reads first about one finding."""

    time_ms: int
    day: str
    account: str
    region: str
    entity: str
    ip: str
    why: str
    uid: str
    model_version: str
    severity: str
    incident: str = ""  # the monitor's incident uid (Finding.incident_uid); empty for findings written before it
    status: str = "New"  # Suppressed: a suppression rule matched it

    @property
    def time(self) -> str:
        return dt.datetime.fromtimestamp(self.time_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _selected() -> list[str]:
    """The FindingRow columns, as COLUMNS names them."""
    observable = quoted("observables")
    return [
        quoted("time"),
        f"{quoted('finding_info')}.{quoted('uid')} AS {quoted('uid')}",
        f"{quoted('finding_info')}.{quoted('desc')} AS {quoted('why')}",
        f"{observable}[{ENTITY}].{quoted('value')} AS {quoted('entity')}",
        f"{observable}[{IP}].{quoted('value')} AS {quoted('ip')}",
        quoted("accountid"),
        quoted("region"),
        quoted("eventday"),
        f"{quoted('unmapped')}['model_version'] AS {quoted('model_version')}",
        quoted("severity"),
        f"{quoted('unmapped')}['incident_uid'] AS {quoted('incident_uid')}",
        quoted("status"),
    ]


def findings_sql(
    database: str, table: str, entity: str | None, account: str | None, day: str | None, limit: int
) -> str:
    """Newest first; `entity` matches any part of the entity (an instance id finds all its roles); the account and
    day filters are on the partition columns, so Athena reads only those partitions."""
    if account is not None and not re.fullmatch(r"\d{12}", account):
        message = f"account {account!r} must be 12 digits"
        raise ValueError(message)
    if day is not None and not re.fullmatch(r"\d{8}", day):
        message = f"day {day!r} must be YYYYMMDD"
        raise ValueError(message)
    observable = quoted("observables")
    selected = _selected()
    predicates = []
    if account:
        predicates.append(f"{quoted('accountid')} = {literal(account)}")
    if day:
        predicates.append(f"{quoted('eventday')} = {literal(day)}")
    if entity:
        predicates.append(f"strpos({observable}[{ENTITY}].{quoted('value')}, {literal(entity)}) > 0")
    where = f"\nWHERE {' AND '.join(predicates)}" if predicates else ""
    return (
        f"SELECT DISTINCT {', '.join(selected)}\nFROM {quoted(database)}.{quoted(table)}{where}\n"
        f"ORDER BY {quoted('time')} DESC, {quoted('uid')} DESC\nLIMIT {int(limit)}"
    )


def _evidence(key: str) -> str:
    """One key of `unmapped`, NULL where a finding lacks it (Athena fails a missing key's subscript; DuckDB not)."""
    unmapped = quoted("unmapped")
    return (
        f"CASE WHEN contains(map_keys({unmapped}), {literal(key)}) THEN {unmapped}[{literal(key)}] END AS {quoted(key)}"
    )


def finding_sql(database: str, table: str, uid: str) -> str:
    """The findings whose uid starts with `uid` (as `seclake findings` prints it), with what their pairs come from."""
    if not UID_PREFIX.fullmatch(uid):
        message = (
            f"finding id {uid!r}: give at least {MIN_UID_PREFIX} of its hex digits, as `seclake findings` prints it"
        )
        raise ValueError(message)
    selected = [*_selected(), *(_evidence(key) for key in PAIR_EVIDENCE)]
    uid_column = f"{quoted('finding_info')}.{quoted('uid')}"
    return (
        f"SELECT DISTINCT {', '.join(selected)}\nFROM {quoted(database)}.{quoted(table)}\n"
        f"WHERE strpos({uid_column}, {literal(uid)}) = 1\nLIMIT 10"
    )


def _rows(client: Any, query_id: str) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    request: dict[str, Any] = {"QueryExecutionId": query_id}
    header: list[str] | None = None
    while True:
        page = client.get_query_results(**request)
        for row in page["ResultSet"]["Rows"]:
            values = [cell.get("VarCharValue") for cell in row["Data"]]
            if header is None:
                header = [str(v) for v in values]
                continue
            rows.append(dict(zip(header, values, strict=True)))
        if not page.get("NextToken"):
            return rows
        request["NextToken"] = page["NextToken"]


def recent_findings(
    client: Any,
    target: QueryTarget,
    table: str,
    entity: str | None = None,
    account: str | None = None,
    day: str | None = None,
    limit: int = 20,
) -> list[FindingRow]:
    """Run the query and read its rows (GetQueryResults pages; the first row is the header)."""
    statement = findings_sql(target.database, table, entity, account, day, limit)
    scope = f"seclake-findings {dt.datetime.now(dt.UTC).isoformat()}"  # each listing is a new query, never a replay
    outcome = run_statement(client, statement, target, scope, poll_seconds=1.0)
    return [_finding_row(row) for row in _rows(client, outcome.query_execution_id)]


def _finding_row(row: dict[str, str | None]) -> FindingRow:
    return FindingRow(
        time_ms=int(row["time"] or 0),
        day=row["eventday"] or "",
        account=row["accountid"] or "",
        region=row["region"] or "",
        entity=row["entity"] or "",
        ip=row["ip"] or "",
        why=row["why"] or "",
        uid=row["uid"] or "",
        model_version=row["model_version"] or "",
        severity=row["severity"] or "",
        incident=row.get("incident_uid") or "",
        status=row.get("status") or "New",
    )


def finding_by_uid(client: Any, target: QueryTarget, table: str, uid: str) -> tuple[FindingRow, dict[str, str]]:
    """The one finding whose uid starts with `uid`, and the evidence its pairs come from (PAIR_EVIDENCE); a
    LookupError names an id that matches none or several."""
    statement = finding_sql(target.database, table, uid)
    scope = f"seclake-finding {dt.datetime.now(dt.UTC).isoformat()}"
    outcome = run_statement(client, statement, target, scope, poll_seconds=1.0)
    rows = _rows(client, outcome.query_execution_id)
    matched = sorted({row["uid"] or "" for row in rows})
    if len(matched) != 1:
        found = f"{len(matched)} findings ({', '.join(m[:16] for m in matched[:5])})" if matched else "no finding"
        message = f"finding id {uid!r} matches {found} in {target.database}.{table}: give more of its digits"
        raise LookupError(message)
    row = rows[0]
    return _finding_row(row), {key: row[key] or "" for key in PAIR_EVIDENCE if row.get(key)}
