"""The detector: nearest known addresses, per-entity calibration, the rules, and the evidence a finding gives."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest

from scripts.addresses import private_block_bits
from scripts.detect.artifact import DetectorArtifactError, load_detector, save_detector
from scripts.detect.calibration import TailTable
from scripts.detect.decision import decide, novelty
from scripts.detect.detector import Detector
from scripts.detect.explain import describe, gather, network_of
from scripts.detect.history import History, bit_length, shared_prefix_bits
from scripts.detect.memory import Memory, Pairs
from scripts.detect.settings import DAY_MS, DetectorSettings


def test_nearest_known_address_per_entity() -> None:
    history = History(["a", "a", "a", "b"], ["10.0.0.1", "10.0.1.5", "2001:db8::1", "192.168.1.1"], [5, 6, 7, 8])
    found = history.nearest(
        ["a", "a", "a", "b", "c", "a"], ["10.0.0.2", "10.0.1.5", "2001:db8::ff", "10.0.0.1", "1.1.1.1", "11.0.0.0"]
    )
    assert found.shared_bits.tolist() == [30, 32, 120, 0, -1, 7]
    assert [found.nearest_ip(i) for i in range(4)] == ["10.0.0.1", "10.0.1.5", "2001:db8::1", "192.168.1.1"]
    assert found.nearest_ip(4) is None
    assert found.known_addresses.tolist() == [3, 3, 3, 1, 0, 3]
    assert found.first_seen_ms.tolist()[:3] == [5, 6, 7]


def test_bit_length_is_exact_where_floats_round() -> None:
    values = np.array([0, 1, 2**53 - 1, 2**53, 2**64 - 1], dtype=np.uint64)
    assert bit_length(values).tolist() == [0, 1, 53, 54, 64]


def test_shared_prefix_bits_of_ipv4_and_ipv6() -> None:
    def halves(text: str) -> tuple[int, int, int]:
        value = ipaddress.ip_address(text)
        number = int(value) | (0xFFFF_0000_0000 if value.version == 4 else 0)
        return value.version, number >> 64, number & (2**64 - 1)

    left = [halves(t) for t in ("10.1.2.3", "2001:db8::1", "8.8.8.8")]
    right = [halves(t) for t in ("10.1.3.3", "2001:db8::1", "9.8.8.8")]
    bits = shared_prefix_bits(
        np.array([f for f, _, _ in left]),
        np.array([h for _, h, _ in left], dtype=np.uint64),
        np.array([lo for _, _, lo in left], dtype=np.uint64),
        np.array([h for _, h, _ in right], dtype=np.uint64),
        np.array([lo for _, _, lo in right], dtype=np.uint64),
    )
    assert bits.tolist() == [23, 128, 7]


def test_tail_table_borrows_from_the_role_only_while_the_entity_has_little_data() -> None:
    busy = ["busy"] * 1000
    quiet = ["quiet"] * 5
    values = np.concatenate([np.linspace(0, 1, 1000), np.zeros(5)])
    table = TailTable.build(busy + quiet, ["server:web"] * 1005, values, upper=True, prior_weight=20.0)
    surprisal = table.surprisal(["busy", "quiet", "stranger"], ["server:web"] * 3, np.array([0.9, 0.9, 0.9]))
    busy_p, quiet_p, stranger_p = np.exp(-surprisal)
    assert busy_p == pytest.approx(0.1, abs=0.01)  # its own tail: a tenth of its values are >= 0.9
    assert stranger_p == pytest.approx(0.1, abs=0.01)  # no data of its own: its role's tail
    assert quiet_p == pytest.approx(20 / 25 * stranger_p)  # five values, all 0: its evidence pulls the role's down


def test_conformal_tail_never_claims_more_than_its_data() -> None:
    table = TailTable.build(["e"] * 99, ["client:web"] * 99, np.zeros(99), False, 20.0, conformal=True)
    assert table.surprisal(["e"], ["client:web"], np.array([-1e9]))[0] <= np.log(121)


def test_decide_combines_the_parts_and_applies_the_rules() -> None:
    settings = DetectorSettings(false_positive_rate=1e-4)
    threshold = -np.log(1e-4)
    decision = decide(
        novelty_part=np.array([9.0, 9.0, 1.0, 12.0, 12.0]),
        model_part=np.array([3.0, 0.1, 0.0, 0.0, 0.0]),
        model_speaks=np.array([True, True, False, False, False]),
        new_role=np.array([False, False, True, False, False]),
        fleet=np.array([1, 1, 1, 1, 6]),
        settings=settings,
    )
    assert decision.surprisal.tolist() == pytest.approx([12 - np.log(13), 9.1 - np.log(10.1), 1.0, 12.0, 12.0])
    assert decision.flagged.tolist() == [True, False, True, True, False]
    assert decision.score[2] == pytest.approx(threshold)
    assert decision.score[4] == pytest.approx(12.0 - np.log(6))
    assert decision.fleet_change.tolist() == [False, False, False, False, True]


def _synthetic_history(days: int = 7) -> Pairs:
    rng = np.random.default_rng(3)
    rows = []
    for day in range(days):
        base = day * DAY_MS
        for index in range(40):  # an app reaching S3, new addresses in the same /15 every day
            address = f"52.{216 + index % 2}.{(day * 7 + index) % 256}.{index}"
            rows.append(("111122223333/i-app#client:web", address, base + index))
        for index in range(300):  # a load balancer meeting new residential clients all day
            address = f"73.{rng.integers(0, 32)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
            rows.append(("111122223333/eni-lb#server:web", address, base + 1000 + index))
    return Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def test_detector_flags_new_networks_and_roles_not_the_usual_churn() -> None:
    history = _synthetic_history()
    detector = Detector.fit(history, None, 6 * DAY_MS, DetectorSettings(use_model=False))
    targets = [
        ("111122223333/i-app#client:web", "52.217.5.5", False),  # S3 rotating inside its /15
        ("111122223333/i-app#client:web", "185.220.101.7", True),  # a network it never came near
        ("111122223333/eni-lb#server:web", "73.12.34.56", False),  # one more residential client
        ("111122223333/eni-lb#client:admin", "10.0.3.7", True),  # the load balancer's first outbound SSH
        ("111122223333/i-new#client:web", "52.216.9.9", False),  # a new instance doing what its siblings do
    ]
    scored = detector.score([t[0] for t in targets], [t[1] for t in targets], None)
    assert scored["flagged"].tolist() == [t[2] for t in targets]
    assert scored["new_role"].tolist() == [False, False, False, True, False]
    assert scored["compared_with_peer_group"].tolist() == [False, False, False, False, True]
    surprisal = scored["novelty_surprisal"]
    assert surprisal[1] > surprisal[2] + 3


def test_findings_say_why() -> None:
    history = _synthetic_history(2)
    detector = Detector.fit(history, None, DAY_MS, DetectorSettings(use_model=False))
    evidence = gather(detector.memory, ["111122223333/i-app#client:web"], ["52.217.99.5"])[0]
    assert evidence.shared_prefix_bits == 17
    assert evidence.nearest_network == "52.217.0.0/17"
    assert evidence.nearest_first_seen_ms is not None
    text = describe("111122223333/i-app#client:web", "52.217.99.5", evidence)
    assert "shares only /17" in text
    assert "52.217.0.0/17" in text
    assert "as client of web" in text
    assert network_of("10.1.2.3", 23) == "10.1.2.0/23"


def _fleet_history(days: int = 7) -> Pairs:
    """Web servers of one autoscaling group answering residential clients; each day one instance is replaced."""
    rng = np.random.default_rng(5)
    clients = [f"73.{a}.{b}.{c}" for a, b, c in rng.integers(0, 64, size=(3000, 3)).tolist()]
    rows = []
    for day in range(days):
        instances = [f"i-web{n}" for n in range(day, day + 4)]  # i-web<day> is gone tomorrow, i-web<day+4> is new
        for index, instance in enumerate(instances):
            for client in rng.choice(clients, size=60, replace=False).tolist():
                rows.append((f"111122223333/{instance}#server:web", client, day * DAY_MS + index))
        rows.append(("111122223333/i-web0#client:db", "10.0.9.9", day * DAY_MS))
    return Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def test_a_young_instance_is_compared_with_its_peer_group() -> None:
    history = _fleet_history()
    young = "111122223333/i-web9#server:web"  # one day old: has met one client; its siblings met thousands
    history = Pairs.of([*history.entity, young], [*history.ip, "73.63.63.63"], [*history.time, 5 * DAY_MS])
    shared = next(ip for e, ip in zip(history.entity, history.ip, strict=True) if e.endswith("i-web4#server:web"))
    settings = DetectorSettings(use_model=False)
    alone = Detector.fit(history, None, 6 * DAY_MS, DetectorSettings(use_model=False, compare_with_peer_group=False))
    pooled = Detector.fit(history, None, 6 * DAY_MS, settings)
    targets = ([young, young], [shared, "185.220.101.7"])
    assert pooled.score(*targets, None)["flagged"].tolist() == [False, True]
    assert pooled.score(*targets, None)["compared_with_peer_group"].tolist() == [True, False]
    assert alone.score(*targets, None)["novelty"][0] > pooled.score(*targets, None)["novelty"][0]


def test_the_artifact_round_trips_and_scores_the_same(tmp_path: Path) -> None:
    history = _synthetic_history()
    detector = Detector.fit(history, None, 6 * DAY_MS, DetectorSettings(use_model=False))
    save_detector(detector, tmp_path / "detector.npz", {"model": "m-1"})
    loaded, metadata = load_detector(tmp_path / "detector.npz")
    assert metadata == {"model": "m-1"}
    entities = ["111122223333/i-app#client:web", "111122223333/eni-lb#client:admin", "111122223333/i-new#client:web"]
    ips = ["185.220.101.7", "10.0.3.7", "52.216.9.9"]
    before, after = detector.score(entities, ips, None), loaded.score(entities, ips, None)
    for column in ("score", "flagged", "new_role", "shared_prefix_bits", "compared_with_peer_group"):
        assert before[column].tolist() == after[column].tolist()
    (tmp_path / "other.npz").write_bytes(b"not an npz")
    with pytest.raises(DetectorArtifactError, match=r"other\.npz"):
        load_detector(tmp_path / "other.npz")


def test_inside_a_private_block_only_the_bits_after_it_count() -> None:
    history = History(["a"] * 2, ["10.3.1.4", "52.94.1.1"], [1, 2])
    ips = ["10.3.1.9", "10.5.2.9", "52.94.7.7"]
    values = novelty(history.nearest(["a"] * 3, ips), ips)
    # 10.5.2.9 shares 13 bits with 10.3.1.4: 5 of the 24 after 10/8; 52.94.7.7 shares 21 of 32 with 52.94.1.1
    assert values.tolist() == pytest.approx([1 - 20 / 24, 1 - 5 / 24, 1 - 21 / 32])
    assert private_block_bits(
        ["10.0.0.1", "172.20.1.1", "172.32.1.1", "192.168.0.1", "fd00::1", "8.8.8.8"]
    ).tolist() == [
        8,
        12,
        0,
        16,
        7,
        0,
    ]


def test_an_established_workloads_first_dns_answer_is_no_new_role_and_is_compared_with_its_peers() -> None:
    """A database that never had a lookup logged resolves S3: not a new role (resolver caches, logging that starts
    late), compared with its peer group's answers; its first outbound web connection still is a new role."""
    resolvers = [f"111122223333/i-app{n}#client:resolved" for n in range(3)]
    rows = [(e, f"52.216.{d}.{k}", d * DAY_MS + k) for e in resolvers for d in range(6) for k in range(5)]
    rows += [("111122223333/i-db#server:db", "10.0.2.5", d * DAY_MS) for d in range(6)]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    memory = Memory.build(pairs, young_days=2)
    lookup = memory.nearest(
        ["111122223333/i-db#client:resolved", "111122223333/i-db#client:web"], ["52.216.3.2", "52.216.3.2"]
    )
    assert lookup.new_role.tolist() == [False, True]
    assert lookup.from_group.tolist() == [True, False]
    assert int(lookup.nearest.shared_bits[0]) == 32  # its peers resolved that very address


def test_a_young_instance_may_show_a_role_its_siblings_have_not_one_nobody_has() -> None:
    old = [f"111122223333/i-web{n}#{role}" for n in range(3) for role in ("server:web", "client:resolved")]
    rows = [(e, f"73.{d}.1.{k}", d * DAY_MS + k) for e in old for d in range(6) for k in range(5)]
    rows += [("111122223333/i-db#server:db", "10.0.2.5", d * DAY_MS) for d in range(6)]
    rows += [("111122223333/i-young#server:web", "73.0.1.1", 5 * DAY_MS)]  # launched on the last day
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    memory = Memory.build(pairs, young_days=2)
    lookup = memory.nearest(
        ["111122223333/i-young#client:resolved", "111122223333/i-young#server:db", "111122223333/i-web0#server:db"],
        ["52.216.1.1", "10.0.1.7", "10.0.1.7"],
    )
    # its siblings all resolve names: usual; serving a database is no web server's role: a new role, young or not
    assert lookup.new_role.tolist() == [False, True, True]
