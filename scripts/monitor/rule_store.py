"""Where suppression rules live: a DynamoDB table in AWS (the template's SuppressionRulesTable; the function may only
Scan it), a SQLite file locally; the monitor keeps what it read for RULES_TTL_SECONDS per container."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from scripts.monitor.dynamo_table import DynamoTable
from scripts.monitor.suppression import RuleError, SuppressionRule

LOG = logging.getLogger("seclake.monitor")
RULES_TTL_SECONDS = 60.0
ITEM_FIELDS = ("rule_id", "criteria", "reason", "author", "created_ms", "expires_ms")


def parsed(items: list[dict[str, Any]], where: str) -> list[SuppressionRule]:
    """The rules of `items`, each read on its own: a malformed one (edited by hand, written by another release) is
    logged and skipped, never a reason to stop the monitor."""
    rules = []
    for item in items:
        try:
            rules.append(SuppressionRule.of_item(item))
        except (RuleError, KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
            LOG.warning("suppression rule %r in %s skipped: %s", item.get("rule_id"), where, error)
    return sorted(rules, key=lambda rule: rule.rule_id)


class RuleStore(Protocol):
    def rules(self) -> list[SuppressionRule]: ...

    def put(self, rule: SuppressionRule) -> None: ...

    def remove(self, rule_id: str) -> bool: ...


class NoRules:
    """No rule store configured: nothing is suppressed."""

    def rules(self) -> list[SuppressionRule]:
        return []

    def put(self, rule: SuppressionRule) -> None:
        message = "no suppression rule store is configured (SECLAKE_SUPPRESSION_TABLE, or a local home)"
        raise RuntimeError(message)

    def remove(self, rule_id: str) -> bool:
        return False


class SqliteRules:
    """The local rule store: one table in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS suppression_rules (rule_id TEXT PRIMARY KEY, criteria TEXT, reason TEXT, "
                "author TEXT, created_ms TEXT, expires_ms TEXT)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def rules(self) -> list[SuppressionRule]:
        with self._connect() as db:
            rows = db.execute(f"SELECT {', '.join(ITEM_FIELDS)} FROM suppression_rules ORDER BY rule_id").fetchall()
        return parsed([dict(zip(ITEM_FIELDS, row, strict=True)) for row in rows], str(self.path))

    def put(self, rule: SuppressionRule) -> None:
        item = rule.to_item()
        with self._connect() as db:
            db.execute(
                f"INSERT OR REPLACE INTO suppression_rules VALUES ({', '.join('?' * len(ITEM_FIELDS))})",
                [item[name] for name in ITEM_FIELDS],
            )

    def remove(self, rule_id: str) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM suppression_rules WHERE rule_id = ?", (rule_id,)).rowcount > 0


class DynamoRules(DynamoTable):
    """The rule table in AWS: partition key `rule_id`, every field a string."""

    def rules(self) -> list[SuppressionRule]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**request)
            items += [{k: next(iter(v.values())) for k, v in item.items()} for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return parsed(items, f"DynamoDB table {self.table}")
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put(self, rule: SuppressionRule) -> None:
        self.client.put_item(TableName=self.table, Item={k: {"S": v} for k, v in rule.to_item().items()})

    def remove(self, rule_id: str) -> bool:
        answer = self.client.delete_item(TableName=self.table, Key={"rule_id": {"S": rule_id}}, ReturnValues="ALL_OLD")
        return "Attributes" in answer


class CachedRules:
    """A store's rules, read again when older than RULES_TTL_SECONDS: a new rule reaches warm containers within a
    minute, with one Scan per minute per container."""

    def __init__(self, store: RuleStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._rules: list[SuppressionRule] | None = None
        self._read_at = 0.0

    def rules(self) -> list[SuppressionRule]:
        now = self.clock()
        if self._rules is None or now - self._read_at >= RULES_TTL_SECONDS:
            self._rules, self._read_at = self.store.rules(), now
        return self._rules


def rule_store(table: str | None, sqlite_path: str | Path | None) -> RuleStore:
    """DynamoDB when a table is named, else SQLite when a path is, else none."""
    if table:
        return DynamoRules(table)
    if sqlite_path:
        return SqliteRules(Path(sqlite_path))
    return NoRules()
