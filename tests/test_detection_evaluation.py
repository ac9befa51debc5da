"""What the gate reads: the detector's alerts on the held-out day and its recall on the attacks injected into it."""

from __future__ import annotations

import numpy as np

from scripts.detect.held_out_day import DetectionInputs, evaluate_detection, fold_of
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.handoff.evalset import EvalSet

START = 1_764_288_000_000  # 2025-11-28, the first of six days; the sixth is held out


def _inputs(held_out: list[tuple[str, str]], injected: list[tuple[str, str, str]]) -> DetectionInputs:
    web = [f"111122223333/i-web{n}#client:web" for n in range(8)]
    rows = [(w, f"52.94.{d}.{k}", START + d * DAY_MS + k) for d in range(5) for w in web for k in range(20)]
    rows += [(e, ip, START + 5 * DAY_MS + 7) for e, ip in held_out]
    history = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    entities = [e for e, _ in held_out] + [e for e, _, _ in injected]
    ips = [ip for _, ip in held_out] + [ip for _, ip, _ in injected]
    kinds = ["normal"] * len(held_out) + [k for _, _, k in injected]
    count = len(entities)
    data = EvalSet(
        entity=np.array(entities, dtype=object),
        ip=np.array(ips, dtype=object),
        label=np.array([0 if k == "normal" else 1 for k in kinds]),
        kind=np.array(kinds, dtype=object),
        entity_in_training=np.ones(count, dtype=np.int64),
        dot_product=np.zeros(count),
        model_negative=np.zeros(count, dtype=np.int64),
    )
    return DetectionInputs(history, data, "20251203", START + 5 * DAY_MS)


def test_alerts_count_pairs_and_fleet_changes_into_unknown_networks_and_recall_is_per_kind() -> None:
    web = [f"111122223333/i-web{n}#client:web" for n in range(8)]
    usual = [(w, f"52.94.5.{10 * n + k}") for n, w in enumerate(web) for k in range(10)]  # the day: the same /16
    worm = [(w, "185.220.101.7") for w in web[:6]]  # six workloads meet one address in an unknown network
    moved = [(w, "52.94.200.9") for w in web[:6]]  # six meet a new address in a network the fleet knows
    lone = [(web[7], "203.0.113.50")]  # one workload, one brand new network: a flagged pair
    injected = [(web[0], "198.51.100.9", "new_network"), (web[1], "52.94.3.25", "new_network")]
    report = evaluate_detection(
        _inputs(usual + worm + moved + lone, injected), DetectorSettings(use_model=False)
    ).to_json()
    assert report["workloads"] == 8
    assert report["fleet_changes"] == 2 and report["fleet_changes_in_unknown_networks"] == 1
    assert report["alerts"] == 1 + 1  # the lone pair and the worm's address; the moved service is low severity
    assert report["alerts_per_1000_workloads"] == 250.0
    assert report["per_kind"]["new_network"] == {
        "count": 2,
        "recall": 0.5,
        "missed_examples": [{"entity": web[1], "ip": "52.94.3.25"}],  # next to addresses it met: not an attack
    }
    assert report["recall"] == 0.5
    assert any("203.0.113.50" in alert["why"] for alert in report["top_alerts"])


def test_folds_are_stable_and_split_the_pairs() -> None:
    entities = [f"e{n}" for n in range(200)]
    folds = fold_of(entities, ["10.0.0.1"] * 200)
    assert folds.tolist() == fold_of(entities, ["10.0.0.1"] * 200).tolist()
    assert 60 < folds.sum() < 140
