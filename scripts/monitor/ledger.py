"""Facts that span a day's objects, in a small state table: which object raised each finding (one finding per
(entity, ip, day, model) however many objects carry the pair), and which workloads met each address for the first
time that day (the fleet-change rule counts them across objects, not within one). DynamoDB in AWS (conditional
put, a string set, TTL), SQLite locally; the settings choose."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

TTL_SECONDS = 3 * 86_400  # a day's findings stay deduplicated through late and redelivered objects


class FindingLedger(Protocol):
    def claim(self, uid: str, owner: str, now: float | None = None) -> bool:
        """True when `owner` (a source object) raises finding `uid`: the first to claim it, or the same object
        again (a redelivery rewrites its own findings file and must keep them). False: another object has it."""

    def release(self, uid: str, owner: str) -> None:
        """Undo `owner`'s claim of `uid` (its findings could not be written): the next object with the pair, or this
        one redelivered, raises it again. Another owner's claim is left alone."""

    def meet(self, day: str, ip: str, workloads: Iterable[str], now: float | None = None) -> int:
        """Record that `workloads` met `ip` for the first time on `day`; how many distinct workloads have, in
        every object of the day so far (a redelivered object counts its workloads once)."""


class NoLedger:
    """No state table configured: every object's findings and fleet counts stand alone."""

    def claim(self, uid: str, owner: str, now: float | None = None) -> bool:
        return True

    def release(self, uid: str, owner: str) -> None:
        return None

    def meet(self, day: str, ip: str, workloads: Iterable[str], now: float | None = None) -> int:
        return len(set(workloads))


class SqliteLedger:
    """The local state table: one SQLite file; safe across processes (an immediate transaction per claim)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS findings (uid TEXT PRIMARY KEY, owner TEXT, expires_at REAL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS first_meetings (day TEXT, ip TEXT, workload TEXT, expires_at REAL, "
                "PRIMARY KEY (day, ip, workload))"
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield connection
        finally:
            connection.close()

    def claim(self, uid: str, owner: str, now: float | None = None) -> bool:
        moment = time.time() if now is None else now
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT owner, expires_at FROM findings WHERE uid = ?", (uid,)).fetchone()
            if row is not None and row[0] != owner and row[1] > moment:
                db.execute("COMMIT")
                return False
            db.execute("INSERT OR REPLACE INTO findings VALUES (?, ?, ?)", (uid, owner, moment + TTL_SECONDS))
            db.execute("COMMIT")
            return True

    def release(self, uid: str, owner: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM findings WHERE uid = ? AND owner = ?", (uid, owner))

    def meet(self, day: str, ip: str, workloads: Iterable[str], now: float | None = None) -> int:
        moment = time.time() if now is None else now
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR IGNORE INTO first_meetings VALUES (?, ?, ?, ?)",
                [(day, ip, workload, moment + TTL_SECONDS) for workload in sorted(set(workloads))],
            )
            count = db.execute(
                "SELECT COUNT(*) FROM first_meetings WHERE day = ? AND ip = ? AND expires_at > ?", (day, ip, moment)
            ).fetchone()[0]
            db.execute("COMMIT")
            return int(count)


class DynamoLedger:
    """The state table in AWS: a conditional put keyed on the finding uid, expired by DynamoDB's TTL."""

    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def claim(self, uid: str, owner: str, now: float | None = None) -> bool:
        moment = int(time.time() if now is None else now)
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"finding#{uid}"},
                    "owner": {"S": owner},
                    "expires_at": {"N": str(moment + TTL_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(pk) OR #owner = :owner OR expires_at < :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":now": {"N": str(moment)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, uid: str, owner: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table,
                Key={"pk": {"S": f"finding#{uid}"}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return  # another object owns it now: its finding stands

    def meet(self, day: str, ip: str, workloads: Iterable[str], now: float | None = None) -> int:
        members = sorted(set(workloads))
        if not members:
            return 0
        moment = int(time.time() if now is None else now)
        answer = self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"fleet#{day}#{ip}"}},
            UpdateExpression="ADD workloads :workloads SET expires_at = :expires",
            ExpressionAttributeValues={
                ":workloads": {"SS": members},
                ":expires": {"N": str(moment + TTL_SECONDS)},
            },
            ReturnValues="ALL_NEW",
        )
        return len(answer["Attributes"]["workloads"]["SS"])


def ledger(table: str | None, sqlite_path: str | None) -> FindingLedger:
    """SECLAKE_STATE_TABLE (DynamoDB) or SECLAKE_STATE_DB (SQLite), else none."""
    if table:
        return DynamoLedger(table)
    if sqlite_path:
        return SqliteLedger(Path(sqlite_path))
    return NoLedger()
