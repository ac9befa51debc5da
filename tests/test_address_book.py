"""The address book: who had each internal address, learned from flow records, and what the detector makes of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from scripts.detect.addressbook import AddressBook, Holder
from scripts.detect.artifact import load_detector, save_detector
from scripts.detect.decision import fleet_workloads
from scripts.detect.detector import Detector
from scripts.detect.explain import describe, gather
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, KNOWN_OWNER_NOVELTY, DetectorSettings
from scripts.pairs.arrow_engine import address_book_table, address_rows
from scripts.pairs.mapping import ADDRESS_BOOK_RULE

APP = "111111111111/i-app#client:db"


def _flow(direction: str, src: dict[str, str], dst: dict[str, str], time: int) -> dict[str, object]:
    return {
        "time": time,
        "cloud": {"account_uid": "111111111111", "region": "us-east-1"},
        "connection_info": {"direction": direction},
        "src_endpoint": src,
        "dst_endpoint": dst,
    }


def test_the_logging_side_of_each_flow_row_is_booked() -> None:
    rows = [
        _flow(
            "Outbound",
            {"ip": "10.1.0.5", "instance_uid": "i-app", "vpc_uid": "vpc-a", "subnet_uid": "s-1"},
            {"ip": "10.2.0.9"},
            1_000,
        ),
        _flow(
            "Inbound",
            {"ip": "10.1.0.5"},
            {"ip": "10.2.0.9", "interface_uid": "eni-db", "vpc_uid": "vpc-b", "subnet_uid": "s-2"},
            2_000,
        ),
        _flow(
            "Inbound",
            {"ip": "10.1.0.5"},
            {"ip": "10.2.0.9", "interface_uid": "eni-db", "vpc_uid": "vpc-b", "subnet_uid": "s-2"},
            3_000,
        ),
        _flow("Unknown", {"ip": "10.3.0.1", "instance_uid": "i-x"}, {"ip": "10.4.0.1"}, 4_000),
        _flow("Outbound", {"ip": "not-an-ip", "instance_uid": "i-y"}, {"ip": "10.4.0.1"}, 5_000),
    ]
    table = pa.Table.from_pylist(rows)
    book = address_book_table(address_rows(table, 1, ADDRESS_BOOK_RULE)).to_pylist()
    account = {"account": "111111111111", "region": "us-east-1"}
    assert sorted(book, key=lambda r: r["ip"]) == [
        {"ip": "10.1.0.5", **account, "vpc": "vpc-a", "subnet": "s-1", "workload": "i-app"}
        | {"first_seen_ms": 1_000, "last_seen_ms": 1_000, "rows": 1},
        {"ip": "10.2.0.9", **account, "vpc": "vpc-b", "subnet": "s-2", "workload": "eni-db"}
        | {"first_seen_ms": 2_000, "last_seen_ms": 3_000, "rows": 2},
    ]


def _book() -> AddressBook:
    fields: dict[str, list[str | None]] = {
        "account": ["111111111111", "222222222222", "111111111111", "333333333333", "111111111111", "111111111111"],
        "region": ["us-east-1"] * 6,
        "vpc": ["vpc-a", "vpc-b", "vpc-a", "vpc-c", "vpc-a", "vpc-a"],
        "subnet": ["s-1", "s-2", "", None, "s-1", "s-9"],
        "workload": ["i-db1", "i-db2", "i-old", "i-new", "i-db3", "i-standby"],
    }
    ips = ["10.1.0.9", "10.2.0.9", "10.3.0.9", "10.3.0.9", "10.1.0.77", "10.200.7.5"]
    return AddressBook.of_rows(ips, [5, 5, 1, 9, 5, 5], fields)


def test_an_address_is_booked_to_its_latest_holder_and_survives_the_artifact_arrays() -> None:
    book = _book()
    assert len(book) == 5
    holder = book.holder(int(book.rows(*_halves(["10.3.0.9"]))[0]))
    assert holder == Holder("333333333333", "us-east-1", "vpc-c", "", "i-new")
    assert holder.describe() == "i-new in vpc-c, account 333333333333, us-east-1"
    again = AddressBook.of_arrays(book.arrays())
    assert again.fields == book.fields and again.accounts == book.accounts
    assert book.rows(*_halves(["10.9.9.9"])).tolist() == [-1]


def test_an_address_new_to_the_book_belongs_to_the_subnet_its_booked_neighbours_agree_on() -> None:
    """10.1.3.50 is in a /24 whose booked addresses are all s-3 of account 111111111111: an instance launched today
    there is that account's, and so is one at either end of the /24. Not: an address of a /24 holding two subnets
    (10.1.0.x: s-1 and another account's s-7, as subnets smaller than a /24 are), one whose /24 the book has
    nothing of, a booked one (its own row), a public one."""
    fields: dict[str, list[str | None]] = {
        "account": ["111111111111", "111111111111", "222222222222", "111111111111", "111111111111"],
        "region": ["us-east-1"] * 5,
        "vpc": ["vpc-a", "vpc-a", "vpc-b", "vpc-a", "vpc-a"],
        "subnet": ["s-1", "s-1", "s-7", "s-3", "s-3"],
        "workload": ["i-db1", "i-db3", "i-x", "i-app1", "i-app2"],
    }
    ips = ["10.1.0.9", "10.1.0.77", "10.1.0.200", "10.1.3.20", "10.1.3.90"]
    book = AddressBook.of_rows(ips, [5] * 5, fields)
    queries = ["10.1.3.50", "10.1.3.4", "10.1.3.250", "10.1.0.50", "10.1.2.5", "10.1.0.9", "52.1.0.50"]
    rows = book.neighbour_rows(*_halves(queries)).tolist()
    holders = [book.holder(row) for row in rows]
    assert [h.subnet if h else None for h in holders] == ["s-3", "s-3", "s-3", None, None, None, None]
    first = holders[0]
    assert first is not None and first.describe_neighbourhood() == (
        "an address new to the book in s-3 of vpc-a, account 111111111111, us-east-1"
    )


def _halves(ips: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from scripts.detect.history import address_keys

    _, high, low = address_keys(ips)
    return high, low


def test_first_connection_into_another_account_is_as_novel_as_never_seen(tmp_path: Path) -> None:
    # the app server talks to its own account's database every day, from a /16 next to the other account's
    entities = [APP] * 4
    ips = ["10.1.0.9"] * 4
    pairs = Pairs.of(entities, ips, [day * DAY_MS for day in range(4)])
    detector = Detector.fit(pairs, None, 3 * DAY_MS, DetectorSettings(min_history_days=1), None, _book())
    without = Detector.fit(
        pairs, None, 3 * DAY_MS, DetectorSettings(min_history_days=1, use_address_book=False), None, _book()
    )
    query = ([APP] * 4, ["10.2.0.9", "10.1.0.77", "10.7.0.1", "10.200.7.5"])
    scored = detector.score(*query, None)
    plain = without.score(*query, None)
    assert scored["owner_known"].tolist() == [False, True, False, True]
    assert scored["novelty"][0] == 1.0 > plain["novelty"][0]  # account 222222222222: never talked to
    assert scored["novelty"][1] == plain["novelty"][1] < KNOWN_OWNER_NOVELTY  # its own account, near: prefixes
    # a standby in a far subnet of its own account (an IPAM pool's): no more novel than a known owner's address
    assert plain["novelty"][3] > KNOWN_OWNER_NOVELTY == scored["novelty"][3]
    assert scored["novelty"][2] == plain["novelty"][2]  # not booked (on premises, a peered partner): prefixes
    save_detector(detector, tmp_path / "detector.npz")
    loaded, _ = load_detector(tmp_path / "detector.npz")
    assert loaded.score(*query, None)["novelty"].tolist() == scored["novelty"].tolist()
    evidence = gather(loaded.memory, *query)
    assert evidence[0].owner_is_account and not evidence[0].owner_known
    assert describe(APP, "10.2.0.9", evidence[0]).endswith(
        "10.2.0.9 is i-db2 in vpc-b (s-2), account 222222222222, us-east-1: the first connection into that account "
        "for this workload and its peers."
    )
    assert "an account this workload or its peers already talked to" in describe(APP, "10.1.0.77", evidence[1])


def test_a_fleet_change_is_counted_within_one_account() -> None:
    """A database fails over and its own account's app servers all meet the new address; an app server of another
    account reaching it the same day is not part of that service moving."""
    entities = [f"111111111111/i-app{n}#client:db" for n in range(5)] + ["222222222222/i-attacker#client:db"]
    counts = fleet_workloads(entities, ["10.7.14.151"] * 6, np.ones(6, dtype=bool))
    assert counts.tolist() == [5, 5, 5, 5, 5, 1]
