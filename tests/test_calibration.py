"""Tail calibration: each level's fallback and prior weight, exactly; the detector's flag rate on normal traffic."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from scripts.detect.calibration import TailTable, side_of
from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, DetectorSettings

# e1 is the whole of client:web, e2 of client:db, e3 of server:web; sides client (e1, e2) and server (e3)
ENTITIES = ["e1"] * 4 + ["e2"] * 2 + ["e3"] * 2
ROLES = ["client:web"] * 4 + ["client:db"] * 2 + ["server:web"] * 2
VALUES = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 10.0])
# (entity, role) of each query: its own level, then an entity never seen (its role), a role never seen (its side),
# a side never seen (everything)
QUERIES = [
    ("e1", "client:web"),
    ("stranger", "client:web"),
    ("stranger", "client:admin"),
    ("stranger", "server:admin"),
    ("stranger", "peer:web"),
]


def _probabilities(table: TailTable, x: float) -> list[float]:
    entities, roles = [q[0] for q in QUERIES], [q[1] for q in QUERIES]
    return [float(p) for p in np.exp(-table.surprisal(entities, roles, np.full(len(QUERIES), x)))]


def test_side_of_a_role_is_what_precedes_its_colon() -> None:
    assert [side_of(r) for r in ("client:web", "server:db", "client", "peer:a:b")] == [
        "client",
        "server",
        "client",
        "peer",
    ]


def test_each_level_falls_back_to_its_parent_upper_tail() -> None:
    table = TailTable.build(ENTITIES, ROLES, VALUES, upper=True, prior_weight=2.0)
    # values >= 4, prior weight 2:
    # all: 4 of 8 (4, 5, 6, 10)            P = (4 + 1) / (8 + 1)                  = 5/9
    # side client: 3 of 6 (4, 5, 6)        P = (3 + 2 * 5/9) / (6 + 2)            = 37/72
    # side server: 1 of 2 (10)             P = (1 + 2 * 5/9) / (2 + 2)            = 19/36
    # role client:web: 1 of 4 (4)          P = (1 + 2 * 37/72) / (4 + 2)          = 73/216
    # entity e1: 1 of 4                    P = (1 + 2 * 73/216) / (4 + 2)         = 181/648
    expected = [Fraction(181, 648), Fraction(73, 216), Fraction(37, 72), Fraction(19, 36), Fraction(5, 9)]
    assert _probabilities(table, 4.0) == pytest.approx([float(p) for p in expected], rel=1e-12)


def test_each_level_falls_back_to_its_parent_lower_tail() -> None:
    table = TailTable.build(ENTITIES, ROLES, VALUES, upper=False, prior_weight=2.0)
    # values <= 2, prior weight 2:
    # all: 3 of 8 (0, 1, 2)                P = (3 + 1) / (8 + 1)                  = 4/9
    # side client: 2 of 6 (1, 2)           P = (2 + 2 * 4/9) / (6 + 2)            = 13/36
    # side server: 1 of 2 (0)              P = (1 + 2 * 4/9) / (2 + 2)            = 17/36
    # role client:web: 2 of 4 (1, 2)       P = (2 + 2 * 13/36) / (4 + 2)          = 49/108
    # entity e1: 2 of 4                    P = (2 + 2 * 49/108) / (4 + 2)         = 157/324
    expected = [Fraction(157, 324), Fraction(49, 108), Fraction(13, 36), Fraction(17, 36), Fraction(4, 9)]
    assert _probabilities(table, 2.0) == pytest.approx([float(p) for p in expected], rel=1e-12)


def test_conformal_adds_one_to_every_count_but_the_pooled_one_already_has_it() -> None:
    table = TailTable.build(ENTITIES, ROLES, VALUES, upper=True, prior_weight=2.0, conformal=True)
    # values >= 4, prior weight 2, one more in each tail and each count:
    # all: unchanged                       P = (4 + 1) / (8 + 1)                  = 5/9
    # side client                          P = (3 + 1 + 2 * 5/9) / (6 + 1 + 2)    = 46/81
    # side server                          P = (1 + 1 + 2 * 5/9) / (2 + 1 + 2)    = 28/45
    # role client:web                      P = (1 + 1 + 2 * 46/81) / (4 + 1 + 2)  = 254/567
    # entity e1                            P = (1 + 1 + 2 * 254/567) / (4 + 1 + 2) = 1642/3969
    expected = [Fraction(1642, 3969), Fraction(254, 567), Fraction(46, 81), Fraction(28, 45), Fraction(5, 9)]
    assert _probabilities(table, 4.0) == pytest.approx([float(p) for p in expected], rel=1e-12)


def test_an_entity_with_many_observations_speaks_for_itself_one_with_few_borrows_from_its_role() -> None:
    """busy: 1000 values, a tenth of them 1; quiet: two values, both 0; crowd (the rest of the role): 1000 ones."""
    entities = ["busy"] * 1000 + ["quiet"] * 2 + ["crowd"] * 1000
    values = np.concatenate([np.ones(100), np.zeros(900), np.zeros(2), np.ones(1000)])
    table = TailTable.build(entities, ["server:web"] * 2002, values, upper=True, prior_weight=20.0)
    # values >= 1: 1100 of 2002 at every level above the entities (one role, one side)
    everything = Fraction(1100 + 1, 2002 + 1)
    side = (1100 + 20 * everything) / (2002 + 20)
    role = (1100 + 20 * side) / (2002 + 20)
    busy = (100 + 20 * role) / (1000 + 20)  # 1000/1020 of its own 0.1, 20/1020 of the role's
    quiet = (0 + 20 * role) / (2 + 20)  # 2/22 of its own 0, 20/22 of the role's
    busy_p, quiet_p, stranger_p = np.exp(
        -table.surprisal(["busy", "quiet", "stranger"], ["server:web"] * 3, np.ones(3))
    ).tolist()
    assert [busy_p, quiet_p, stranger_p] == pytest.approx([float(busy), float(quiet), float(role)], rel=1e-12)
    assert float(role) == pytest.approx(0.5494, abs=1e-4)
    assert busy_p == pytest.approx(0.1088, abs=1e-4)  # near its own 0.1, far from the role's 0.55
    assert quiet_p == pytest.approx(0.4995, abs=1e-4)  # near the role's 0.55, far from its own 0


# The synthetic "normal" process. Every workload (one per account, so its peer group is itself) met one home
# address in each of 98 /8s on day 0 (first bytes 1-99 but 10: public, and any two share at most 7 leading bits).
# On every later day it revisits homes (novelty 0) or meets a new address that shares exactly k >= 8 leading bits
# with one home: that home is then its nearest known address, as no other home, and no address met on another day,
# shares more than 7 bits with it (each day anchors its new addresses at homes of its own: 14 per day, days 1-7).
# So novelty, 1 - k/32 = (1 + x)/32 with x = 31 - k, has the same distribution every day: P(x >= j) = q**j per role.
PROCESS = {  # role: (share of revisits, q)
    "client:web": (0.5, 0.8),
    "client:db": (0.3, 0.85),
    "client:resolver": (0.4, 0.82),
    "server:web": (0.2, 0.8),
    "server:api": (0.6, 0.85),
}
WORKLOADS_PER_ROLE = 60
FIRST_BYTES = np.asarray([b for b in range(1, 100) if b != 10], dtype=np.int64)
ANCHORS_PER_DAY = 14
HISTORY_DAYS = 7  # day 0 (homes) to day 6; the detector calibrates on days 3 to 6 (min_history_days 3)
FLAG_RATE = 0.05


def _addresses(values: np.ndarray) -> list[str]:
    return [f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in values.tolist()]


def _a_days_peers(role: str, day: int, count: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """`count` peers of a workload in `role` on `day` (1-7), and the novelty each has by construction."""
    revisit_share, q = PROCESS[role]
    homes = FIRST_BYTES << 24
    anchors = FIRST_BYTES[(day - 1) * ANCHORS_PER_DAY : day * ANCHORS_PER_DAY] << 24
    x = np.minimum(rng.geometric(1 - q, size=count) - 1, 23)  # P(x >= j) = q**j, capped at 23 (k >= 8)
    # bit k (from the left; x from the right) set where the home has it clear, the x bits after it random
    new = rng.choice(anchors, size=count) | (1 << x) | rng.integers(0, 1 << x)
    revisit = rng.random(count) < revisit_share
    peers = _addresses(np.where(revisit, rng.choice(homes, size=count), new))
    return peers, np.where(revisit, 0.0, (1 + x) / 32)


def _workloads() -> list[tuple[str, str]]:
    roles = [role for role in PROCESS for _ in range(WORKLOADS_PER_ROLE)]
    return [(f"{100_000_000_000 + n}/i-{n:04d}#{role}", role) for n, role in enumerate(roles)]


def _normal_history(rng: np.random.Generator, per_day: int) -> Pairs:
    entities: list[str] = []
    ips: list[str] = []
    times: list[int] = []
    for entity, role in _workloads():
        homes = _addresses(FIRST_BYTES << 24)
        entities += [entity] * len(homes)
        ips += homes
        times += [0] * len(homes)
        for day in range(1, HISTORY_DAYS):
            peers, _ = _a_days_peers(role, day, per_day, rng)
            entities += [entity] * per_day
            ips += peers
            times += [day * DAY_MS + n for n in range(per_day)]
    return Pairs.of(entities, ips, times)


def test_the_flag_rate_on_a_normal_day_is_near_the_false_positive_rate() -> None:
    rng = np.random.default_rng(20261207)
    history = _normal_history(rng, per_day=30)
    detector = Detector.fit(history, None, HISTORY_DAYS * DAY_MS, DetectorSettings(false_positive_rate=FLAG_RATE))
    entities: list[str] = []
    ips: list[str] = []
    meant: list[np.ndarray] = []
    for entity, role in _workloads():  # day 7, from the same process: 300 workloads x 100 pairs
        peers, novelty = _a_days_peers(role, HISTORY_DAYS, 100, rng)
        entities += [entity] * 100
        ips += peers
        meant.append(novelty)
    scored = detector.score(entities, ips, None)
    assert scored["novelty"].tolist() == np.concatenate(meant).tolist()  # the process is what it claims
    assert not scored["new_role"].any() and not scored["fleet_change"].any()
    assert not scored["compared_with_peer_group"].any()
    rate = float(scored["flagged"].mean())
    # Binomial bound: N = 30,000 pairs flagged independently at the target rate would give a count with sd
    # sqrt(N * 0.05 * 0.95) = 37.7 pairs, 0.00126 of N. Pairs of one workload share its calibration, so allow 1.5
    # times that (9 seeds gave 0.0448 to 0.0483, sd 0.0013: no wider than binomial) and 4 such sd either side: 0.0076.
    # Below, also the grain of novelty: it takes 24 values, each tail q (>= 0.8) times the one below it, so even an
    # exact calibration flags only from the first value whose tail is <= 0.05: between 0.8 * 0.05 and 0.05 of the
    # pairs (0.045 for this process; this seed measures 0.0453).
    margin = 4 * 1.5 * np.sqrt(FLAG_RATE * (1 - FLAG_RATE) / len(ips))
    assert len(ips) == 30_000 and margin == pytest.approx(0.0076, abs=1e-4)
    assert 0.8 * FLAG_RATE - margin <= rate <= FLAG_RATE + margin, rate

    stranger = detector.score(["100000000000/i-0000#client:web"], ["203.0.113.7"], None)  # 203 = 0b11001011
    assert stranger["shared_prefix_bits"].tolist() == [0]  # every address it or its role met is in 1-99.x
    assert stranger["novelty"].tolist() == [1.0]
    assert stranger["flagged"].tolist() == [True]
    assert stranger["surprisal"][0] > -np.log(FLAG_RATE) + 3
