"""The detector's decision rules at their edges: novelty keys and bits, fleet counts, new pairs, the gate's verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scripts.detect.calibration import TailTable
from scripts.detect.decision import (
    days_since,
    decide,
    fleet_workloads,
    model_calibration,
    new_pairs,
    novelty,
    novelty_keys,
)
from scripts.detect.detector import Detector
from scripts.detect.gate import GateThresholds, judge
from scripts.detect.history import Nearest
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, KNOWN_OWNER_NOVELTY, DetectorSettings
from scripts.monitor.findings import Finding
from scripts.monitor.flagging import FleetContext, Knowledge, findings_of
from scripts.monitor.ledger import SqliteLedger
from tests.test_gate import _report


def _nearest(shared_bits: list[int]) -> Nearest:
    count = len(shared_bits)
    seen = np.asarray([-1 if bits < 0 else 0 for bits in shared_bits], dtype=np.int64)
    zeros = np.zeros(count, dtype=np.int64)
    return Nearest(np.asarray(shared_bits, dtype=np.int64), zeros, zeros, zeros, seen)


def test_internal_peers_are_keyed_apart_only_when_asked_and_only_for_calibrated_roles() -> None:
    entities = ["1/i-a#client:db", "1/i-a#client:db", "1/i-b#server:web"]
    ips = ["10.1.2.3", "52.94.1.1", "192.168.0.9"]
    assert novelty_keys(entities, ips, DetectorSettings()) == (
        ["internal/1/i-a#client:db", "1/i-a#client:db", "internal/1/i-b#server:web"],
        ["internal/client:db", "client:db", "internal/server:web"],
    )
    plain = (entities, ["client:db", "client:db", "server:web"])
    assert novelty_keys(entities, ips, DetectorSettings(internal_apart=False)) == plain
    # scoring: an internal role that had no internal peers when fitted keeps its plain keys
    assert novelty_keys(entities, ips, DetectorSettings(), calibrated_roles={"internal/server:web"}) == (
        ["1/i-a#client:db", "1/i-a#client:db", "internal/1/i-b#server:web"],
        ["client:db", "client:db", "internal/server:web"],
    )
    with pytest.raises(ValueError, match="zip"):  # entities and addresses must pair up
        novelty_keys(entities, ips[:2], DetectorSettings())


def test_fleet_counts_are_per_account_and_address_and_zero_where_nothing_is_new() -> None:
    entities = ["1/i-a#client:web", "1/i-b#client:web", "1/i-b#client:db", "2/i-c#client:web", "1/i-d#client:web"]
    ips = ["9.9.9.9", "9.9.9.9", "9.9.9.9", "9.9.9.9", "8.8.8.8"]
    novel = np.array([True, True, True, True, False])
    counts = fleet_workloads(entities, ips, novel)
    # i-b met it under two roles: one workload; account 2's workload is not account 1's fleet; 8.8.8.8 was known
    assert counts.dtype == np.int64 and counts.tolist() == [2, 2, 2, 1, 0]
    assert fleet_workloads(entities[:1], ips[:1], novel[:1]).tolist() == [1]
    nothing_new = fleet_workloads(entities, ips, np.zeros(5, dtype=bool))
    assert nothing_new.dtype == np.int64 and nothing_new.tolist() == [0] * 5
    assert fleet_workloads([], [], np.zeros(0, dtype=bool)).tolist() == []
    with pytest.raises(ValueError, match="zip"):  # an address per entity, even when nothing is new
        fleet_workloads(entities, ips[:4], np.zeros(5, dtype=bool))


def test_novelty_counts_ipv6_to_64_bits_private_blocks_after_the_block_and_owners_as_documented() -> None:
    ips = ["52.94.1.1", "2600:1f18::1", "10.5.2.9", "10.5.2.9", "52.94.1.1", "52.94.1.1"]
    value = novelty(_nearest([16, 32, 13, 4, 0, -1]), ips)
    # 16 of 32 bits; 32 of an IPv6 /64; inside 10/8, 5 of the 24 bits after it; 4 bits: not inside the block;
    # nothing shared with a known address; an entity with no history at all
    assert value.tolist() == pytest.approx([0.5, 0.5, 1 - 5 / 24, 1 - 4 / 32, 1.0, 1.0])
    owners = np.array([7, 7, -1, 3, 3, 3])
    known = np.array([True, False, False, True, False, False])
    public = np.array([True, True, True, False, False, True])
    owned = novelty(_nearest([0, 16, 16, 0, 30, 30]), ips, owners, known, public)
    assert owned.tolist() == pytest.approx(
        # a known organisation: at most KNOWN_OWNER_NOVELTY; one never met keeps its prefix novelty (16 of 64 bits);
        # no owner (8 of the 24 bits after 10/8); a known account's internal address; an account never talked to:
        # 1; a public owner never met: its prefix novelty
        [KNOWN_OWNER_NOVELTY, 1 - 16 / 64, 1 - 8 / 24, KNOWN_OWNER_NOVELTY, 1.0, 1 - 30 / 32]
    )
    without_public = novelty(_nearest([0, 30]), ips[:2], owners[:2], np.array([False, False]), None)
    assert without_public.tolist() == pytest.approx([1.0, 1 - 30 / 64])  # every owner taken as public
    assert novelty(_nearest([0]), ips[:1], owners[:1], None).tolist() == [1.0]  # owners without `known`: ignored


def test_days_since_counts_whole_days_from_the_origin() -> None:
    origin = 1_000 * DAY_MS
    times = np.array([origin - 1, origin, origin + DAY_MS - 1, origin + DAY_MS, origin + 3 * DAY_MS + 5])
    result = days_since(times, origin)
    assert result.dtype == np.int64 and result.tolist() == [-1, 0, 0, 1, 3]  # the day before is day -1


def test_new_pairs_start_at_start_ms_exactly_and_keep_only_novel_addresses() -> None:
    start = 10 * DAY_MS
    pairs = Pairs.of(
        ["e", "e", "e", "e", "f"],
        ["1.1.1.1", "1.1.1.1", "2.2.2.2", "1.1.1.1", "1.1.1.1"],
        [start - 1, start, start, start + 5, start - 1],
    )
    fresh = new_pairs(pairs, start)
    assert sorted(zip(fresh.entity.tolist(), fresh.ip.tolist(), strict=True)) == [("e", "2.2.2.2")]
    at_start = Pairs.of(["g", "g"], ["3.3.3.3", "4.4.4.4"], [start, start + 1])
    assert sorted(new_pairs(at_start, start).ip.tolist()) == ["3.3.3.3", "4.4.4.4"]  # nothing before: all new


def test_model_calibration_is_a_conformal_lower_tail_without_the_unscored_pairs() -> None:
    entities = ["e#client:web"] * 4 + ["f#client:web"]
    dots = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    table = model_calibration(entities, dots, DetectorSettings(model_prior_weight=0.0))
    assert not table.upper and table.conformal and table.prior_weight == 0.0
    assert table.by_entity["e#client:web"].tolist() == [1.0, 2.0, 3.0]
    # a score below all three of e's: conformal, (0 + 1) / (3 + 1)
    assert table.surprisal(["e#client:web"], ["client:web"], np.array([0.0]))[0] == pytest.approx(np.log(4))
    with pytest.raises(ValueError, match="zip"):
        model_calibration(entities[:4], dots, DetectorSettings())


def test_the_fleet_rule_starts_at_its_count_divides_the_score_and_can_be_turned_off() -> None:
    threshold = -np.log(1e-4)
    parts = {
        "novelty_part": np.array([20.0, 20.0, 20.0, threshold]),
        "model_part": np.zeros(4),
        "model_speaks": np.zeros(4, dtype=bool),
        "new_role": np.zeros(4, dtype=bool),
        "fleet": np.array([4, 5, 1, 0]),
    }
    decision = decide(**parts, settings=DetectorSettings(fleet_change_workloads=5))
    assert decision.fleet_change.tolist() == [False, True, False, False]  # five workloads are a fleet change
    assert decision.score.tolist() == pytest.approx([20.0, 20.0 - np.log(5), 20.0, threshold])
    assert decision.flagged.tolist() == [True, False, True, True]  # a score exactly at the threshold is flagged
    off = decide(**parts, settings=DetectorSettings(fleet_change_workloads=0))
    assert off.fleet_change.dtype == bool and off.fleet_change.tolist() == [False] * 4
    assert off.flagged.tolist() == [True, True, True, True]
    one = decide(**parts, settings=DetectorSettings(fleet_change_workloads=1))
    assert one.fleet_change.tolist() == [True, True, True, False]
    assert one.score[2] == pytest.approx(20.0)  # a fleet of one divides by one: ln 1 = 0


def test_the_gate_passes_at_its_thresholds_exactly_and_names_every_failure() -> None:
    thresholds = GateThresholds(recall_gate=0.8, alert_budget=50.0, alert_allowance=3)
    at_edges = judge(_report(100, 8, 0.8), thresholds)  # recall at the gate; (8 - 3) / 100 workloads = 50 per 1,000
    assert at_edges.gate == "passed" and at_edges.alerts_judged_per_1000_workloads == 50.0
    assert at_edges.alert_allowance == 3
    both = judge(_report(100, 9, 0.7), thresholds)
    assert both.gate == (
        "recall on injected attacks 0.70 is 0.10 below RecallGate 0.80 (lower it with --param RecallGate=..., or "
        "pipeline.recall_gate; the report's per-kind recall says which attacks look like this fleet's ordinary days)"
        "; 9 alerts on the held-out day for 100 workloads: 60.0 per 1,000 beyond the allowance of 3, 10.0 over "
        "AlertBudget 50 (raise AlertAllowance or AlertBudget, or pipeline.alert_allowance / pipeline.alert_budget)"
    )


def test_a_flagged_pair_carries_its_decision_and_its_memory_as_evidence(tmp_path: Path) -> None:
    """Every field of a finding's evidence, for a workload with history and one with none (the monitor's flagging)."""
    start = 1_649_030_400_000
    rows = [
        (f"1/i-{n}#client:web", f"52.94.{n}.{k}", start + day * DAY_MS + k)
        for n in range(2)
        for day in range(7)
        for k in range(30)
    ]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    detector = Detector.fit(pairs, None, start + 6 * DAY_MS, DetectorSettings(use_model=False))
    fleet = FleetContext("20220412", "1", SqliteLedger(tmp_path / "state.sqlite"))

    def make(entity: str, ip: str, value: float) -> Finding:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", start + 8 * DAY_MS, "1", "r")

    queried = [("1/i-0#client:web", "52.95.7.7"), ("1/i-1#client:web", "52.94.1.3"), ("1/i-9#client:web", "9.9.9.9")]
    found = findings_of(queried, [0.0] * 3, make, Knowledge(detector.memory, detector), 0.0, fleet)
    assert [(f.entity, f.ip) for f in found] == [queried[0], queried[2]]  # i-1 knew 52.94.1.3
    known, stranger = found
    assert known.surprisal_threshold == pytest.approx(-np.log(DetectorSettings().false_positive_rate))
    assert known.evidence == {
        "novelty_surprisal": f"{known.surprisal:.3f}",
        "model_surprisal": "0.000",
        "fleet_workloads": "1",
        "compared_with_peer_group": "false",
        "nearest_known_ip": "52.94.0.29",  # 52.95.7.7 shares /15 with each of 52.94.0.0-29: the last is reported
        "nearest_network": "52.94.0.0/15",
        "shared_prefix_bits": "15",
        "nearest_first_seen_ms": str(start + 29),
        "known_addresses": "30",
        "new_role": "false",
        "network_owner": "",
        "owner_known": "false",
        "owner_is_account": "false",
    }
    assert known.why == (
        "52.95.7.7 shares only /15 with the 30 addresses i-0 talked to as client of web; the nearest is 52.94.0.29 "
        "(network 52.94.0.0/15, first seen 2022-04-04)."
    )
    # a workload never seen is judged by what its account's workloads in its role met (9 vs 52: /2 in common)
    assert {k: v for k, v in stranger.evidence.items() if "surprisal" not in k} == {
        "fleet_workloads": "1",
        "compared_with_peer_group": "true",
        "nearest_known_ip": "52.94.0.0",
        "nearest_network": "0.0.0.0/2",
        "shared_prefix_bits": "2",
        "nearest_first_seen_ms": str(start),
        "known_addresses": "60",
        "new_role": "false",
        "network_owner": "",
        "owner_known": "false",
        "owner_is_account": "false",
    }
    assert "talked to as client of web; the nearest is 52.94.0.0 (first seen 2022-04-04)" in stranger.why


def test_a_table_of_one_observation_still_has_its_levels() -> None:
    table = TailTable.build(["e"], ["client:web"], np.array([1.0]), upper=True, prior_weight=1.0)
    # above the one value: pooled (0 + 1) / (1 + 1); each level (0 + 1 * parent) / (1 + 1)
    assert np.exp(-table.surprisal(["e"], ["client:web"], np.array([2.0])))[0] == pytest.approx(0.5 / 8)


def test_without_a_detector_the_models_threshold_flags_strictly_below_it_with_the_memory_as_evidence(
    tmp_path: Path,
) -> None:
    start = 1_649_030_400_000
    pairs = Pairs.of(["1/i-0#client:web"] * 3, ["52.94.0.1", "52.94.0.2", "52.94.0.3"], [start, start + 1, start + 2])
    detector = Detector.fit(pairs, None, start + DAY_MS, DetectorSettings(use_model=False))
    fleet = FleetContext("20220412", "1", SqliteLedger(tmp_path / "state.sqlite"))

    def make(entity: str, ip: str, value: float) -> Finding:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", start + 2 * DAY_MS, "2", "r")

    queried = [("2/i-7#client:ssh", "203.0.113.9"), ("2/i-8#client:ssh", "203.0.113.9")]
    found = findings_of(queried, [-2.0, -1.0], make, Knowledge(detector.memory, None), -1.0, fleet)
    assert [(f.entity, f.score) for f in found] == [("2/i-7#client:ssh", -2.0)]  # -1.0 is not below -1.0
    # a workload of an account nobody knew: no nearest address to show
    assert {
        key: found[0].evidence[key] for key in ("nearest_known_ip", "nearest_network", "nearest_first_seen_ms")
    } == {
        "nearest_known_ip": "",
        "nearest_network": "",
        "nearest_first_seen_ms": "",
    }
    assert found[0].evidence["known_addresses"] == "0"
    with pytest.raises(ValueError, match="zip"):  # a score per pair, or nothing
        findings_of(queried, [-2.0], make, Knowledge(detector.memory, None), -1.0, fleet)
