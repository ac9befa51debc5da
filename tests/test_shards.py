"""The detector at organisation scale: cut by account (each account's shard answers for its entities exactly as the
whole detector does), its calibration days fitted in parallel."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from scripts.detect.addressbook import AddressBook
from scripts.detect.artifact import load_detector
from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.names import KnownNames
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.detect.shards import account_shard, accounts_of, organisation_shard, write_shards
from scripts.handoff.detector_index import CUT_ACCOUNT, CUT_NONE, ORGANISATION_SHARD, ShardIndex, ShardIndexError

START_MS = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS
# the third is a prefix of the first: a cut by string prefix must not mix them
ACCOUNTS = ("111122223333", "444455556666", "1111")
ROLES = ("client:web", "server:web", "client:db", "resolved")
DAYS = 8


def _history(seed: int = 3) -> tuple[Pairs, AddressBook, KnownNames]:
    """Eight days of four accounts' workloads in four roles: public peers, their own databases, other accounts'
    services (cross-account calls, booked to their holder), uploads of varying size, and names asked."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, int, int]] = []
    book_ips, book_accounts, book_workloads = [], [], []
    for a, account in enumerate(ACCOUNTS):
        for w in range(6):
            workload = f"i-{a}{w:03x}"
            book_ips.append(f"10.{a + 1}.0.{w + 10}")
            book_accounts.append(account)
            book_workloads.append(workload)
            first_day = 0 if w < 4 else 5  # two young workloads in every account
            for day in range(first_day, DAYS):
                for role in ROLES[: 2 + w % 3]:
                    for _ in range(int(rng.integers(3, 9))):
                        if role == "client:db":  # its own account's databases
                            ip = f"10.{a + 1}.0.{int(rng.integers(10, 16))}"
                        elif role == "client:web" and w % 2 and rng.random() < 0.3:  # the next account's services
                            ip = f"10.{(a + 1) % len(ACCOUNTS) + 1}.0.{int(rng.integers(10, 16))}"
                        else:
                            ip = f"{int(rng.integers(1, 223))}.{int(rng.integers(0, 256))}.{int(rng.integers(0, 4))}.9"
                        time = START_MS + day * DAY_MS + int(rng.integers(0, DAY_MS))
                        rows.append((f"{account}/{workload}#{role}", ip, time, int(rng.integers(0, 10**7))))
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
    regions = ["us-east-1"] * len(book_ips)
    fields: dict[str, list[str | None]] = {
        "account": list(book_accounts),
        "region": list(regions),
        "vpc": [f"vpc-{a}" for a in book_accounts],
        "subnet": [f"subnet-{a}" for a in book_accounts],
        "workload": list(book_workloads),
    }
    book = AddressBook.of_rows(book_ips, [START_MS] * len(book_ips), fields)
    names = KnownNames.of_rows(
        [ACCOUNTS[0], ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[1]],
        ["deb.debian.org", "api.partner.io", "deb.debian.org", "s3.amazonaws.com"],
        [START_MS, START_MS + 5, START_MS + 9, START_MS + 2 * DAY_MS],
    )
    return pairs, book, names


@pytest.fixture(scope="module")
def detector() -> Detector:
    pairs, book, names = _history()
    calibration_start = START_MS + (DAYS - 1) * DAY_MS
    held_out = pairs.where(pairs.time >= calibration_start)
    rng = np.random.default_rng(8)
    keys = zip(held_out.entity.tolist(), held_out.ip.tolist(), strict=True)
    scores = dict(zip(keys, rng.normal(size=len(held_out)).tolist(), strict=True))

    def model(entities: Sequence[str], ips: Sequence[str]) -> np.ndarray:
        return np.asarray([scores.get((e, i), 0.0) for e, i in zip(entities, ips, strict=True)])

    settings = DetectorSettings(min_history_days=1, young_workload_days=4)
    return Detector.fit(pairs, model, calibration_start, settings, None, book, names)


def _queries(account: str, seed: int) -> tuple[list[str], list[str], np.ndarray, list[str | None]]:
    """New and known peers of an account's workloads (one it never had), with uploads and names."""
    rng = np.random.default_rng(seed)
    index = ACCOUNTS.index(account) if account in ACCOUNTS else 9
    entities, ips = [], []
    for w in [0, 1, 4, 5, 77]:
        for role in ROLES:
            for _ in range(6):
                entities.append(f"{account}/i-{index}{w:03x}#{role}")
                if rng.random() < 0.4:
                    ips.append(f"10.{int(rng.integers(1, 5))}.0.{int(rng.integers(8, 18))}")
                else:
                    ips.append(f"{int(rng.integers(1, 223))}.{int(rng.integers(0, 256))}.{int(rng.integers(0, 4))}.9")
    sent = rng.integers(0, 10**8, size=len(ips))
    choices: list[str | None] = ["deb.debian.org", "api.partner.io", "new.example", None]
    names = [choices[int(rng.integers(0, len(choices)))] for _ in ips]
    return entities, ips, sent, names


def _same(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> None:
    assert left.keys() == right.keys()
    for column, a in left.items():
        b = right[column]
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), column
        else:
            assert a.tolist() == b.tolist(), column


@pytest.mark.parametrize("account", ACCOUNTS)
def test_an_accounts_shard_scores_its_pairs_as_the_whole_detector(detector: Detector, account: str) -> None:
    entities, ips, sent, names = _queries(account, seed=len(account))
    dots = np.random.default_rng(1).normal(size=len(ips))
    whole = detector.score(entities, ips, dots, sent, names)
    shard = account_shard(detector, account)
    _same(shard.score(entities, ips, dots, sent, names), whole)
    for column in ("flagged", "owner_known", "new_role", "compared_with_peer_group"):
        assert whole[column].any() and not whole[column].all(), column  # the comparison sees both answers
    fleet = [account] * len(ips)
    whole_fleet, shard_fleet = detector.memory.fleet_nearest(fleet, ips), shard.memory.fleet_nearest(fleet, ips)
    assert whole_fleet is not None and shard_fleet is not None
    assert whole_fleet.shared_bits.tolist() == shard_fleet.shared_bits.tolist()
    assert whole_fleet.first_seen_ms.tolist() == shard_fleet.first_seen_ms.tolist()
    assert len(shard.memory.history) < len(detector.memory.history)
    assert not any(not e.startswith(f"{account}/") for e in shard.memory.history.entities.tolist())


def test_the_organisation_shard_answers_for_an_account_the_fit_never_saw(detector: Detector) -> None:
    entities, ips, sent, names = _queries("999988887777", seed=4)
    dots = np.random.default_rng(2).normal(size=len(ips))
    shard = organisation_shard(detector)
    assert len(shard.memory.history) == 0 and len(shard.memory.workloads) == 0
    _same(shard.score(entities, ips, dots, sent, names), detector.score(entities, ips, dots, sent, names))


def test_the_shards_are_written_in_parallel_with_an_index_naming_each(detector: Detector, tmp_path: Path) -> None:
    index = write_shards(detector, tmp_path, {"history_pairs": 1}, workers=2)
    assert index.cut == CUT_ACCOUNT and set(index.shards) == {ORGANISATION_SHARD, *ACCOUNTS}
    assert sum(entry["history_pairs"] for entry in index.shards.values()) == len(detector.memory.history)
    read = ShardIndex.from_json((tmp_path / "detector.json").read_text(), "detector.json")
    assert read == index and read.file_of("999988887777") == "shards/organisation.npz"
    entities, ips, sent, names = _queries(ACCOUNTS[1], seed=7)
    loaded, metadata = load_detector(tmp_path / read.file_of(ACCOUNTS[1]))
    assert metadata == {"history_pairs": 1, "shard": ACCOUNTS[1]}
    assert (tmp_path / read.file_of(ACCOUNTS[1])).stat().st_size == index.shards[ACCOUNTS[1]]["bytes"]
    _same(loaded.score(entities, ips, None, sent, names), detector.score(entities, ips, None, sent, names))


def test_entities_without_an_account_make_one_shard_of_the_whole_detector(tmp_path: Path) -> None:
    rows = [(f"i-{w}#client:web", f"52.{w}.{d}.1", START_MS + d * DAY_MS) for w in range(3) for d in range(4)]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    flat = Detector.fit(pairs, None, START_MS + 3 * DAY_MS, DetectorSettings(use_model=False, min_history_days=1))
    assert accounts_of(flat) is None
    index = write_shards(flat, tmp_path, {}, workers=1)
    assert index.cut == CUT_NONE and list(index.shards) == [ORGANISATION_SHARD]
    loaded, _ = load_detector(tmp_path / index.file_of("anything"))
    assert len(loaded.memory.history) == len(flat.memory.history)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "is not JSON"),
        (json.dumps({"format": "other"}), "is not a detector index"),
        (json.dumps({"format": "seclake-detector-shards", "version": 9}), "index version 9"),
        (json.dumps({"format": "seclake-detector-shards", "version": 1, "shards": {}}), "no 'organisation' shard"),
    ],
)
def test_an_index_this_code_cannot_read_is_named_with_the_fix(text: str, expected: str) -> None:
    with pytest.raises(ShardIndexError, match=expected):
        ShardIndex.from_json(text, "s3://b/runs/r/detector/detector.json")


def test_calibration_days_fitted_in_parallel_give_the_same_detector(detector: Detector) -> None:
    """Each calibration day's novelty is independent of the others': three processes give the tables one gives."""
    pairs, book, names = _history()
    settings = DetectorSettings(min_history_days=1, young_workload_days=4)
    parallel = Detector.fit(pairs, None, START_MS + (DAYS - 1) * DAY_MS, settings, None, book, names, workers=3)
    table, expected = parallel.novelty_table, detector.novelty_table
    assert len(expected.everything) > 100 and table.everything.tolist() == expected.everything.tolist()
    assert table.by_entity.keys() == expected.by_entity.keys()
    assert all(table.by_entity[k].tolist() == expected.by_entity[k].tolist() for k in expected.by_entity)


def test_the_fit_runs_as_many_days_at_once_as_the_cores_and_the_memory_hold() -> None:
    """Each day's process builds its own memory (272 MiB + 500 MiB per million history rows, benchmarks.growth): on
    an ml.m5.large (2 cores, 8 GiB) a 10M-row history fits one at a time, a 1M-row one two; an ml.r5.4xlarge
    (16 cores, 128 GiB) holds two of 70M rows; never fewer than one."""
    from scripts.detect.detector import fit_workers

    gib = 2**30
    assert fit_workers(2, 8 * gib, 10_000_000) == 1
    assert fit_workers(2, 8 * gib, 1_000_000) == 2
    assert fit_workers(16, 128 * gib, 70_000_000) == 2
    assert fit_workers(16, 1 * gib, 500_000_000) == 1
