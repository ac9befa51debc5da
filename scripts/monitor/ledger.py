"""Facts that span a day's objects, in a small state table: which object raised each finding (one finding per
(entity, ip, day, model) however many objects carry the pair), which workloads met each address for the first
time that day (the fleet-change rule counts them across objects, not within one), how much each workload sent
to an address it first met that day (the large-upload rule adds it up across objects), and which name new to its
account an address was answered for that day (a flow's finding names it: the answer and the flow are in different
objects). DynamoDB in AWS (conditional put, a string set, one attribute per object, TTL), SQLite locally; the
settings choose."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from scripts.monitor.dynamo_table import DynamoTable

TTL_SECONDS = 3 * 86_400  # a day's findings stay deduplicated through late and redelivered objects
FINDING_KEY = "finding#"  # + the finding's uid: which object raised it
FLEET_KEY = "fleet#"  # + day#<account>|<ip> (or <account>|<role>|<ip>): the workloads that met it first that day
UPLOAD_KEY = "upload#"  # + day#pair: what each object saw the pair send that day, one attribute per object
OBJECT_ATTRIBUTE = "o_"  # + a hash of the object's key: its bytes on an upload item
NAME_KEY = "name#"  # + day#<account>|<ip>: the name new to the account the address was answered for that day
TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
BATCH_GET_ITEMS = 100  # BatchGetItem's limit
TRANSACTION_RETRIES = 5
CONDITION_FAILED = "ConditionalCheckFailed"
SQLITE_PARAMETERS = 999  # the oldest SQLite's limit on bound parameters per statement


class FindingLedger(Protocol):
    """An object's state-table work is a few requests, whatever its size: its claims in one call, its first meetings
    in one call (batched inside as the store allows)."""

    def claim(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        """The uids `owner` (a source object) raises: those no other object claimed first, and those it claimed
        itself (a redelivery rewrites its own findings file and must keep them). Any other: another object has it."""

    def owned(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        """Which of `uids` `owner` claimed before (read only): a redelivered object's earlier findings."""

    def release(self, owner: str, uids: Iterable[str]) -> None:
        """Undo `owner`'s claims of `uids` (its findings could not be written): the next object with the pair, or
        this one redelivered, raises them again. Another owner's claim is left alone."""

    def meet(self, day: str, met: Mapping[str, Iterable[str]], now: float | None = None) -> dict[str, int]:
        """Record that, for each address of `met`, its workloads met it for the first time on `day`; for each, how
        many distinct workloads have, in every object of the day so far (a redelivered object counts once)."""

    def upload(self, day: str, owner: str, sent: Mapping[str, int], now: float | None = None) -> dict[str, int]:
        """Record what `owner` (a source object) saw each pair of `sent` (`<entity>|<ip>`) send on `day`; for each,
        the day's total over every object so far (a redelivered object replaces its own figure, never adds twice)."""

    def resolve(self, day: str, names: Mapping[str, str], now: float | None = None) -> None:
        """Record that each address of `names` (`<account>|<ip>`) was answered on `day` for its name (a later
        answer replaces it)."""

    def resolved(self, day: str, keys: Iterable[str], now: float | None = None) -> dict[str, str]:
        """The name each of `keys` (`<account>|<ip>`) was answered for on `day`, for those recorded."""


class NoLedger:
    """No state table configured: every object's findings and fleet counts stand alone."""

    def claim(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        return set(uids)

    def owned(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        return set()

    def release(self, owner: str, uids: Iterable[str]) -> None:
        return None

    def meet(self, day: str, met: Mapping[str, Iterable[str]], now: float | None = None) -> dict[str, int]:
        return {ip: len(set(workloads)) for ip, workloads in met.items()}

    def upload(self, day: str, owner: str, sent: Mapping[str, int], now: float | None = None) -> dict[str, int]:
        return dict(sent)

    def resolve(self, day: str, names: Mapping[str, str], now: float | None = None) -> None:
        return None

    def resolved(self, day: str, keys: Iterable[str], now: float | None = None) -> dict[str, str]:
        return {}


class SqliteLedger:
    """The local state table: one SQLite file, safe across processes; one immediate transaction per call, so an
    object's claims (or its first meetings) are one transaction however many there are."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS findings (uid TEXT PRIMARY KEY, owner TEXT, expires_at REAL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS first_meetings (day TEXT, ip TEXT, workload TEXT, expires_at REAL, "
                "PRIMARY KEY (day, ip, workload))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS uploads (day TEXT, pair TEXT, owner TEXT, bytes INTEGER, expires_at REAL, "
                "PRIMARY KEY (day, pair, owner))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS resolved_names (day TEXT, address TEXT, name TEXT, expires_at REAL, "
                "PRIMARY KEY (day, address))"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def claim(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        moment = time.time() if now is None else now
        wanted = sorted(set(uids))
        with self._transaction() as db:
            taken = _live_claims(db, wanted, owner, moment, mine=False)
            kept = [uid for uid in wanted if uid not in taken]
            db.executemany(
                "INSERT OR REPLACE INTO findings VALUES (?, ?, ?)",
                [(uid, owner, moment + TTL_SECONDS) for uid in kept],
            )
        return set(kept)

    def owned(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        moment = time.time() if now is None else now
        wanted = sorted(set(uids))
        with self._transaction() as db:
            return _live_claims(db, wanted, owner, moment, mine=True)

    def release(self, owner: str, uids: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM findings WHERE uid = ? AND owner = ?", [(uid, owner) for uid in set(uids)])

    def meet(self, day: str, met: Mapping[str, Iterable[str]], now: float | None = None) -> dict[str, int]:
        moment = time.time() if now is None else now
        members = {ip: sorted(set(workloads)) for ip, workloads in met.items()}
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO first_meetings VALUES (?, ?, ?, ?)",
                [(day, ip, w, moment + TTL_SECONDS) for ip, workloads in members.items() for w in workloads],
            )
            counts = {
                ip: int(count)
                for chunk in _chunks(sorted(members), SQLITE_PARAMETERS - 2)
                for ip, count in db.execute(
                    f"SELECT ip, COUNT(*) FROM first_meetings WHERE day = ? AND expires_at > ? "
                    f"AND ip IN ({','.join('?' * len(chunk))}) GROUP BY ip",
                    (day, moment, *chunk),
                )
            }
        return {ip: counts.get(ip, 0) for ip in members}

    def upload(self, day: str, owner: str, sent: Mapping[str, int], now: float | None = None) -> dict[str, int]:
        moment = time.time() if now is None else now
        pairs = sorted(sent)
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?)",
                [(day, pair, owner, int(sent[pair]), moment + TTL_SECONDS) for pair in pairs],
            )
            totals = {
                pair: int(total)
                for chunk in _chunks(pairs, SQLITE_PARAMETERS - 2)
                for pair, total in db.execute(
                    f"SELECT pair, SUM(bytes) FROM uploads WHERE day = ? AND expires_at > ? "
                    f"AND pair IN ({','.join('?' * len(chunk))}) GROUP BY pair",
                    (day, moment, *chunk),
                )
            }
        return {pair: totals.get(pair, 0) for pair in pairs}

    def resolve(self, day: str, names: Mapping[str, str], now: float | None = None) -> None:
        moment = time.time() if now is None else now
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO resolved_names VALUES (?, ?, ?, ?)",
                [(day, key, name, moment + TTL_SECONDS) for key, name in sorted(names.items())],
            )

    def resolved(self, day: str, keys: Iterable[str], now: float | None = None) -> dict[str, str]:
        moment = time.time() if now is None else now
        wanted = sorted(set(keys))
        with self._transaction() as db:
            return {
                str(address): str(name)
                for chunk in _chunks(wanted, SQLITE_PARAMETERS - 2)
                for address, name in db.execute(
                    f"SELECT address, name FROM resolved_names WHERE day = ? AND expires_at > ? "
                    f"AND address IN ({','.join('?' * len(chunk))})",
                    (day, moment, *chunk),
                )
            }


class DynamoLedger(DynamoTable):
    """The state table in AWS, expired by DynamoDB's TTL. Claims and releases are conditional writes sent 100 to a
    TransactWriteItems request (a refused condition is read from the cancellation reasons, and the rest sent again);
    first meetings are string-set ADDs sent 100 to a transaction, their sizes read back 100 to a BatchGetItem; an
    object's uploads are SETs of its own attribute (`o_<hash of its key>`, so a redelivery overwrites it) sent the
    same way, their items read back whole and summed."""

    def claim(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        moment = int(time.time() if now is None else now)
        wanted = sorted(set(uids))
        actions = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        "pk": {"S": f"{FINDING_KEY}{uid}"},
                        "owner": {"S": owner},
                        "expires_at": {"N": str(moment + TTL_SECONDS)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk) OR #owner = :owner OR expires_at < :now",
                    "ExpressionAttributeNames": {"#owner": "owner"},
                    "ExpressionAttributeValues": {":owner": {"S": owner}, ":now": {"N": str(moment)}},
                }
            }
            for uid in wanted
        ]
        refused = self._transact(actions)
        return {uid for index, uid in enumerate(wanted) if index not in refused}

    def owned(self, owner: str, uids: Iterable[str], now: float | None = None) -> set[str]:
        moment = int(time.time() if now is None else now)
        keys = [f"{FINDING_KEY}{uid}" for uid in sorted(set(uids))]
        items = self._items(keys, "pk, #owner, expires_at", {"#owner": "owner"})
        return {
            key.removeprefix(FINDING_KEY)
            for key, item in items.items()
            if item.get("owner", {}).get("S") == owner and int(item.get("expires_at", {}).get("N", "0")) > moment
        }

    def release(self, owner: str, uids: Iterable[str]) -> None:
        actions = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": f"{FINDING_KEY}{uid}"}},
                    "ConditionExpression": "#owner = :owner",
                    "ExpressionAttributeNames": {"#owner": "owner"},
                    "ExpressionAttributeValues": {":owner": {"S": owner}},
                }
            }
            for uid in sorted(set(uids))
        ]
        self._transact(actions)  # a refused one: another object owns it now, its finding stands

    def meet(self, day: str, met: Mapping[str, Iterable[str]], now: float | None = None) -> dict[str, int]:
        moment = int(time.time() if now is None else now)
        members = {ip: sorted(set(workloads)) for ip, workloads in met.items()}
        keys = {ip: f"{FLEET_KEY}{day}#{ip}" for ip, workloads in sorted(members.items()) if workloads}
        self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": keys[ip]}},
                        "UpdateExpression": "ADD workloads :workloads SET expires_at = :expires",
                        "ExpressionAttributeValues": {
                            ":workloads": {"SS": members[ip]},
                            ":expires": {"N": str(moment + TTL_SECONDS)},
                        },
                    }
                }
                for ip in keys
            ]
        )
        sizes = self._set_sizes(list(keys.values()))
        return {ip: sizes.get(keys[ip], 0) if ip in keys else 0 for ip in members}

    def upload(self, day: str, owner: str, sent: Mapping[str, int], now: float | None = None) -> dict[str, int]:
        moment = int(time.time() if now is None else now)
        keys = {pair: f"{UPLOAD_KEY}{day}#{pair}" for pair in sorted(sent)}
        self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": key}},
                        "UpdateExpression": "SET #object = :bytes, expires_at = :expires",
                        "ExpressionAttributeNames": {"#object": object_attribute(owner)},
                        "ExpressionAttributeValues": {
                            ":bytes": {"N": str(int(sent[pair]))},
                            ":expires": {"N": str(moment + TTL_SECONDS)},
                        },
                    }
                }
                for pair, key in keys.items()
            ]
        )
        items = self._items(list(keys.values()))
        return {pair: _uploaded(items.get(key, {})) for pair, key in keys.items()}

    def resolve(self, day: str, names: Mapping[str, str], now: float | None = None) -> None:
        moment = int(time.time() if now is None else now)
        self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"{NAME_KEY}{day}#{key}"}},
                        "UpdateExpression": "SET #name = :name, expires_at = :expires",
                        "ExpressionAttributeNames": {"#name": "name"},
                        "ExpressionAttributeValues": {
                            ":name": {"S": name},
                            ":expires": {"N": str(moment + TTL_SECONDS)},
                        },
                    }
                }
                for key, name in sorted(names.items())
            ]
        )

    def resolved(self, day: str, keys: Iterable[str], now: float | None = None) -> dict[str, str]:
        moment = int(time.time() if now is None else now)
        wanted = {f"{NAME_KEY}{day}#{key}": key for key in sorted(set(keys))}
        items = self._items(list(wanted), "pk, #name, expires_at", {"#name": "name"})
        return {
            wanted[pk]: item["name"]["S"]
            for pk, item in items.items()
            if "name" in item and int(item.get("expires_at", {}).get("N", "0")) > moment
        }

    def _transact(self, actions: list[dict[str, Any]]) -> set[int]:
        """Send `actions` 100 to a transaction; the indexes of those whose condition was refused. A transaction
        cancelled by refused conditions is sent again without them; one cancelled by a conflict or throttling is
        retried with backoff, then raised."""
        refused: set[int] = set()
        for start in range(0, len(actions), TRANSACTION_ITEMS):
            pending = list(range(start, min(start + TRANSACTION_ITEMS, len(actions))))
            attempt = 0
            while pending:
                try:
                    self.client.transact_write_items(TransactItems=[actions[i] for i in pending])
                    break
                except self.client.exceptions.TransactionCanceledException as error:
                    reasons = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
                    failed = {pending[i] for i, code in enumerate(reasons) if code == CONDITION_FAILED}
                    others = sorted({code for code in reasons if code not in ("None", CONDITION_FAILED)})
                    refused |= failed
                    pending = [i for i in pending if i not in failed]
                    if others or not failed:
                        attempt += 1
                        if attempt > TRANSACTION_RETRIES:
                            message = (
                                f"state table {self.table}: a transaction was cancelled {attempt} times "
                                f"({', '.join(others) or 'no reason given'}); the message is retried by SQS"
                            )
                            raise RuntimeError(message) from error
                        time.sleep(0.05 * 2**attempt)
        return refused

    def _set_sizes(self, keys: list[str]) -> dict[str, int]:
        """How many workloads each fleet item holds."""
        items = self._items(keys, "pk, workloads")
        return {key: len(item.get("workloads", {}).get("SS", [])) for key, item in items.items()}

    def _items(
        self, keys: list[str], projection: str | None = None, names: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The items of `keys` that exist (whole, or the `projection`), read 100 keys to a consistent BatchGetItem
        (unprocessed keys again)."""
        found: dict[str, Any] = {}
        for start in range(0, len(keys), BATCH_GET_ITEMS):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": key}} for key in keys[start : start + BATCH_GET_ITEMS]],
                    **({"ProjectionExpression": projection} if projection else {}),
                    "ConsistentRead": True,
                    **({"ExpressionAttributeNames": names} if names else {}),
                }
            }
            attempt = 0
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.table, []):
                    found[item["pk"]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    attempt += 1
                    time.sleep(0.05 * 2 ** min(attempt, 6))
        return found


def object_attribute(owner: str) -> str:
    """The upload item's attribute of one source object: `o_` and 16 hex digits of its key's BLAKE2b (an object key
    is too long, and has characters an attribute name placeholder need not carry)."""
    return OBJECT_ATTRIBUTE + hashlib.blake2b(owner.encode(), digest_size=8).hexdigest()


def _uploaded(item: Mapping[str, Any]) -> int:
    """The bytes on an upload item: the sum of its objects' attributes."""
    return sum(int(value["N"]) for name, value in item.items() if name.startswith(OBJECT_ATTRIBUTE))


def _live_claims(db: sqlite3.Connection, uids: list[str], owner: str, moment: float, mine: bool) -> set[str]:
    """Which of `uids` hold an unexpired claim by `owner` (`mine`) or by any other object."""
    relation = "=" if mine else "!="
    return {
        uid
        for chunk in _chunks(uids, SQLITE_PARAMETERS - 2)
        for (uid,) in db.execute(
            f"SELECT uid FROM findings WHERE owner {relation} ? AND expires_at > ? "
            f"AND uid IN ({','.join('?' * len(chunk))})",
            (owner, moment, *chunk),
        )
    }


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def ledger(table: str | None, sqlite_path: str | None) -> FindingLedger:
    """SECLAKE_STATE_TABLE (DynamoDB) or SECLAKE_STATE_DB (SQLite), else none."""
    if table:
        return DynamoLedger(table)
    if sqlite_path:
        return SqliteLedger(Path(sqlite_path))
    return NoLedger()
