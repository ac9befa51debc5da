"""Detection quality on a generated lake with injected anomalies: the project's detector against simple baselines.

    python -m benchmarks.detection [--seeds 11 13] [--repeat 3] [--events-per-day 200000] [--days 8]
                                   [--anomalies-per-kind 4] [--work .seclake/benchmarks/detection]
                                   [--s3-rotation] [--cross-account-calls] [--ipam-subnets] [--db-failover 0.3]
                                   [--nightly-backups]

For each seed: generate the lake with every injected kind, cross-account lateral movement and exfiltration over 443
to another cloud included (--kinds; reused when present under --work), extract pairs with the pyarrow engine of the
pair mappings, train the open IP Insights on every day but the last two, calibrate on the day before the last, and
score the last day's distinct pairs, keyed by workload (a pair seen under several roles counts once, at its worst).
Methods: the baselines on the workload's whole history (unseen exact IP, unseen /24, unseen /16, longest common
prefix), plain IP Insights on the `peer` mapping, and the project's detector on the `role` mapping, with ablations
(without the model, without the new-role and fleet-change rules, without volume (large first uploads), without the
model and volume, without DNS tunnelling (the monitor's rule on each last-day Route 53 object, which flags a
tunnel's answer pairs), the model part alone; and, refitting the detector:
without network owners, without the address book (learned from the history days' flow records), without both, with
internal peers calibrated together with public ones). ROC AUC and average
precision need no threshold; precision and recall are at the detector's calibrated threshold (the binary baselines
at theirs, the rankings at the detector's number of alerts).
Each figure is the median of --repeat runs. The detector's defaults were chosen on seeds 5 and 7; report others.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks.detection_data import (
    Split,
    ensure_lake,
    labels,
    lake_address_book,
    lake_pairs,
    split_last_day,
    tunnel_pairs,
)
from pipeline.network_table import network_table
from pipeline.samplelake.anomalies import ALL_ANOMALY_KINDS
from scripts.detect.addressbook import AddressBook
from scripts.detect.decision import decide
from scripts.detect.detector import Detector
from scripts.detect.history import History, address_keys
from scripts.detect.memory import Pairs
from scripts.detect.networks import NetworkTable
from scripts.detect.settings import DAY_MS, DetectorSettings, ModelScores
from scripts.entity import base_entity
from scripts.ipinsights.features import address_arrays
from scripts.ipinsights.hyperparameters import parse_hyperparameters
from scripts.ipinsights.model import IPInsightsNetwork, encode_pairs
from scripts.ipinsights.trainer import Trainer, new_network, score_encoded
from scripts.pairs.mapping import BYTES_OUT

HYPERPARAMETERS = {
    "vector_dim": "64",
    "epochs": "5",
    "learning_rate": "0.01",
    "mini_batch_size": "1000",
    "random_negative_sampling_rate": "5",
    "shuffled_negative_sampling_rate": "1",
}
MAX_PAIR_REPEATS = 100


def train_model(pairs: pd.DataFrame, log: bool) -> IPInsightsNetwork:
    """The open IP Insights on pairs, each pair's first MAX_PAIR_REPEATS events as the processing step keeps."""
    kept = pairs.sort_values("time", kind="stable")
    kept = kept[kept.groupby(["entity", "ip"]).cumcount() < MAX_PAIR_REPEATS]
    hp = parse_hyperparameters({**HYPERPARAMETERS, "num_entity_vectors": str(2 * kept["entity"].nunique())})
    network = new_network(hp, kept["ip"].nunique(), 0x5EC1A4E)
    encoded = encode_pairs(network.spec, kept["entity"].tolist(), *address_arrays(kept["ip"].tolist()))
    started = time.perf_counter()
    Trainer(network, seed=0).fit(encoded)
    if log:
        print(f"  trained on {len(kept):,} events in {time.perf_counter() - started:.0f} s", flush=True)
    return network


def scorer(network: IPInsightsNetwork) -> ModelScores:
    def score(entities: Sequence[str], ips: Sequence[str]) -> np.ndarray:
        encoded = encode_pairs(network.spec, list(entities), *address_arrays(list(ips)))
        return score_encoded(network, encoded.entity_buckets, encoded.ip_features)

    return score


def _workload_history(split: Split) -> History:
    history = split.history
    workloads = [base_entity(e) for e in history["entity"]]
    return History(workloads, history["ip"].tolist(), history["time"].to_numpy())


def baselines(split: Split, targets: pd.DataFrame) -> dict[str, np.ndarray]:
    """Higher = more anomalous, on the workload's whole history: unseen IP, /24, /16, and -shared prefix length."""
    known = _workload_history(split)
    nearest = known.nearest(targets["workload"].tolist(), targets["ip"].tolist())
    families, _, _ = address_keys(targets["ip"].tolist())
    full = np.where(families == 4, 32, 128)
    bits = nearest.shared_bits
    v6_scale = np.where(families == 4, 1.0, 0.25)  # /24 and /16 of IPv4 compare with /96 and /64 of IPv6
    lcp = np.where(bits < 0, -1.0, bits * v6_scale)
    return {
        "unseen IP": (bits < full).astype(float),
        "unseen /24": (lcp < 24).astype(float),
        "unseen /16": (lcp < 16).astype(float),
        "longest common prefix": -lcp,
    }


def _metrics(label: np.ndarray, score: np.ndarray, flagged: np.ndarray, kinds: np.ndarray) -> dict[str, object]:
    true_positive = int((flagged & label).sum())
    per_kind = {}
    for kind in sorted(set(kinds[label].tolist())):
        chosen = (kinds == kind) | ~label
        per_kind[kind] = {
            "auc": float(roc_auc_score(label[chosen], score[chosen])),
            "recall": float((flagged & (kinds == kind)).sum() / max((kinds == kind).sum(), 1)),
        }
    return {
        "auc": float(roc_auc_score(label, score)),
        "ap": float(average_precision_score(label, score)),
        "alerts": int(flagged.sum()),
        "precision": true_positive / max(int(flagged.sum()), 1),
        "recall": true_positive / max(int(label.sum()), 1),
        "per_kind": per_kind,
    }


def _top(score: np.ndarray, count: int) -> np.ndarray:
    flagged = np.zeros(len(score), dtype=bool)
    flagged[np.argsort(-score, kind="stable")[:count]] = True
    return flagged


def by_workload(targets: pd.DataFrame, column: str) -> pd.Series:
    return targets.groupby(["workload", "ip"], sort=True)[column].max()


@dataclass(frozen=True)
class SeedData:
    """One seed's lake through both mappings, and its labels: extracted once, evaluated --repeat times."""

    seed: int
    role: Split
    peer: Split | None
    anomalous: dict[tuple[str, str], str]
    networks: NetworkTable
    book: AddressBook
    tunnels: frozenset[tuple[str, str]]  # (workload, address) answer pairs of the last day's DNS tunnels


def seed_data(arguments: argparse.Namespace, seed: int) -> SeedData:
    lake = ensure_lake(
        arguments.work,
        seed,
        arguments.days,
        arguments.events_per_day,
        arguments.anomalies_per_kind,
        arguments.kinds,
        arguments.s3_rotation,
        arguments.cross_account_calls,
        arguments.ipam_subnets,
        arguments.db_failover,
        arguments.nightly_backups,
    )
    truth = labels(lake)
    anomalous = dict(zip(zip(truth["entity"], truth["ip"], strict=True), truth["kind"], strict=True))
    peer = split_last_day(lake_pairs(lake, "peer")) if arguments.plain_model else None
    role = split_last_day(lake_pairs(lake, "role"))
    book = lake_address_book(lake, role.last_day_start_ms)
    tunnels = frozenset(tunnel_pairs(lake, "role", role.last_day_start_ms, DetectorSettings()))
    return SeedData(seed, role, peer, anomalous, network_table(), book, tunnels)


def evaluate_seed(arguments: argparse.Namespace, data: SeedData) -> dict[str, dict[str, object]]:
    seed, role, anomalous = data.seed, data.role, data.anomalous
    results: dict[str, dict[str, object]] = {}
    calibration_start = role.last_day_start_ms - DAY_MS
    network = train_model(role.history[role.history["time"] < calibration_start], arguments.verbose)
    settings = DetectorSettings(
        false_positive_rate=arguments.fpr,
        prior_weight=arguments.prior_weight,
        model_prior_weight=arguments.model_prior_weight,
        min_history_days=arguments.min_history_days,
        use_model=arguments.use_model,
        flag_new_roles=arguments.flag_new_roles,
        use_networks=arguments.use_networks,
        use_address_book=arguments.use_address_book,
    )
    history = Pairs.of(
        role.history["entity"].tolist(),
        role.history["ip"].tolist(),
        role.history["time"].to_numpy(),
        role.history[BYTES_OUT].to_numpy(),
    )
    detector = Detector.fit(history, scorer(network), calibration_start, settings, data.networks, data.book)
    targets = role.target
    sent = targets[BYTES_OUT].to_numpy()
    dots = scorer(network)(targets["entity"].tolist(), targets["ip"].tolist())
    scored = pd.DataFrame(detector.score(targets["entity"].tolist(), targets["ip"].tolist(), dots, sent))
    scored["workload"] = targets["workload"].to_numpy()
    pairs = by_workload(scored, "score").index
    label = np.array([key in anomalous for key in pairs], dtype=bool)
    kinds = np.array([anomalous.get(key, "normal") for key in pairs], dtype=object)
    project = by_workload(scored, "score").to_numpy()
    flagged = by_workload(scored, "flagged").to_numpy().astype(bool)
    tunnelled = np.array([key in data.tunnels for key in pairs], dtype=bool)
    results["ablation: without DNS tunnelling"] = _metrics(label, project, flagged, kinds)
    project = np.where(tunnelled, np.maximum(project, float(project.max()) + 1.0), project)
    flagged = flagged | tunnelled
    alerts = int(flagged.sum())
    results["project: detector (role)"] = _metrics(label, project, flagged, kinds)
    for name, off in (
        ("ablation: without network owners", {"use_networks": False}),
        ("ablation: without the address book", {"use_address_book": False}),
        ("ablation: without owners (networks and address book)", {"use_networks": False, "use_address_book": False}),
        ("ablation: internal peers calibrated with public ones", {"internal_apart": False}),
    ):
        variant_settings = replace(settings, **off)
        if variant_settings == settings:
            continue
        refit = Detector.fit(history, scorer(network), calibration_start, variant_settings, data.networks, data.book)
        refit_scores = pd.DataFrame(refit.score(targets["entity"].tolist(), targets["ip"].tolist(), dots, sent))
        refit_scores["workload"] = targets["workload"].to_numpy()
        results[name] = _metrics(
            label,
            by_workload(refit_scores, "score").to_numpy(),
            by_workload(refit_scores, "flagged").to_numpy().astype(bool) | tunnelled,
            kinds,
        )
    if arguments.dump:
        scored.assign(
            label=[(base_entity(e), i) in anomalous for e, i in zip(scored["entity"], scored["ip"], strict=True)]
        ).to_pickle(arguments.dump / f"scored-{seed}.pkl")
    for name, variant in (
        ("ablation: without the model", replace(settings, use_model=False)),
        (
            "ablation: without the rules",
            replace(settings, flag_new_roles=False, fleet_change_workloads=0, known_owner_fleet_workloads=0),
        ),
        ("ablation: without volume (large first uploads)", replace(settings, large_upload_bytes=0)),
        ("ablation: without the model and without volume", replace(settings, use_model=False, large_upload_bytes=0)),
    ):
        large = detector.large_first_uploads(
            scored["bytes_out"].to_numpy(),
            scored["upload_reference"].to_numpy(),
            scored["first_meeting"].to_numpy(),
            scored["uploads"].to_numpy(),
        )
        large = large & (variant.large_upload_bytes > 0)
        decision = decide(
            scored["novelty_surprisal"].to_numpy(),
            scored["model_surprisal"].to_numpy(),
            scored["model_speaks"].to_numpy(),
            scored["new_role"].to_numpy(),
            scored["fleet_workloads"].to_numpy(),
            variant,
            scored["owner_known"].to_numpy(),
            large,
        )
        variant_scores = scored.assign(score=decision.score, flagged=decision.flagged)
        results[name] = _metrics(
            label,
            by_workload(variant_scores, "score").to_numpy(),
            by_workload(variant_scores, "flagged").to_numpy().astype(bool) | tunnelled,
            kinds,
        )
    model_only = by_workload(scored, "model_surprisal").to_numpy()
    results["ablation: model part alone"] = _metrics(label, model_only, _top(model_only, alerts), kinds)
    workload_targets = pd.DataFrame({"workload": [w for w, _ in pairs], "ip": [i for _, i in pairs]})
    for name, values in baselines(role, workload_targets).items():
        binary = set(np.unique(values).tolist()) <= {0.0, 1.0}
        chosen = values > 0 if binary else _top(values, alerts)
        results[f"baseline: {name}"] = _metrics(label, values, chosen, kinds)
    if data.peer is not None:
        peer = data.peer
        plain = train_model(peer.history[peer.history["time"] < calibration_start], arguments.verbose)
        peer_targets = peer.target
        anomaly = -scorer(plain)(peer_targets["entity"].tolist(), peer_targets["ip"].tolist())
        series = peer_targets.assign(anomaly=anomaly).set_index(["workload", "ip"])["anomaly"]
        values = series.reindex(pairs).fillna(series.min()).to_numpy()
        results["IP Insights alone (peer)"] = _metrics(label, values, _top(values, alerts), kinds)
    return results


def median_results(runs: list[dict[str, dict[str, object]]]) -> dict[str, dict[str, object]]:
    """Each number the median of the runs (training threads make runs differ slightly)."""

    def merge(values: list[object]) -> object:
        first = values[0]
        if isinstance(first, dict):
            return {key: merge([v[key] for v in values if isinstance(v, dict)]) for key in first}
        return float(statistics.median(float(v) for v in values if isinstance(v, int | float)))

    merged = merge(list(runs))
    assert isinstance(merged, dict)
    return merged


def table(all_results: dict[int, dict[str, dict[str, object]]]) -> str:
    lines = [
        "| method | seed | ROC AUC | AP | alerts | precision | recall |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for seed, results in all_results.items():
        for method, metrics in results.items():
            lines.append(
                f"| {method} | {seed} | {metrics['auc']:.4f} | {metrics['ap']:.3f} | {metrics['alerts']:.0f} | "
                f"{metrics['precision']:.3f} | {metrics['recall']:.3f} |"
            )
    return "\n".join(lines)


def kind_table(all_results: dict[int, dict[str, dict[str, object]]]) -> str:
    lines = ["| method | seed | kind | ROC AUC | recall |", "| --- | --- | --- | --- | --- |"]
    for seed, results in all_results.items():
        for method, metrics in results.items():
            per_kind = metrics["per_kind"]
            assert isinstance(per_kind, dict)
            for kind, values in per_kind.items():
                lines.append(f"| {method} | {seed} | {kind} | {values['auc']:.4f} | {values['recall']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 13])
    parser.add_argument("--repeat", type=int, default=3, help="Runs per seed; each figure is their median")
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--events-per-day", type=int, default=200_000)
    parser.add_argument("--anomalies-per-kind", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path(".seclake/benchmarks/detection"))
    parser.add_argument(
        "--kinds",
        type=lambda text: tuple(k.strip() for k in text.split(",") if k.strip()),
        default=ALL_ANOMALY_KINDS,
        help=f"Injected kinds, comma-separated (default: all: {','.join(ALL_ANOMALY_KINDS)})",
    )
    parser.add_argument("--s3-rotation", action="store_true", help="S3 from many networks, many new addresses a day")
    parser.add_argument("--cross-account-calls", action="store_true", help="App servers call other accounts' apps")
    parser.add_argument("--ipam-subnets", action="store_true", help="Every subnet a /24 drawn from 10/8")
    parser.add_argument("--db-failover", type=float, default=0.0, help="Share of databases failing over each day")
    parser.add_argument("--nightly-backups", action="store_true", help="Databases and batch servers back up to S3")
    parser.add_argument("--no-plain-model", dest="plain_model", action="store_false", help="Skip the peer model")
    parser.add_argument("--json", type=Path, help="Also write the results here")
    defaults = DetectorSettings()
    parser.add_argument("--fpr", type=float, default=defaults.false_positive_rate)
    parser.add_argument("--prior-weight", type=float, default=defaults.prior_weight)
    parser.add_argument("--model-prior-weight", type=float, default=defaults.model_prior_weight)
    parser.add_argument("--min-history-days", type=int, default=defaults.min_history_days)
    parser.add_argument("--novelty-only", dest="use_model", action="store_false")
    parser.add_argument("--no-new-role-rule", dest="flag_new_roles", action="store_false")
    parser.add_argument("--no-network-owners", dest="use_networks", action="store_false")
    parser.add_argument("--no-address-book", dest="use_address_book", action="store_false")
    parser.add_argument("--dump", type=Path, help="Write each seed's scored pairs here (pickle)")
    parser.add_argument("--threads", type=int, default=0, help="Torch threads (0: one per core)")
    parser.add_argument("--quiet", dest="verbose", action="store_false")
    arguments = parser.parse_args(argv)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    all_results = {}
    for seed in arguments.seeds:
        print(f"seed {seed}", flush=True)
        data = seed_data(arguments, seed)
        all_results[seed] = median_results([evaluate_seed(arguments, data) for _ in range(arguments.repeat)])
    print(table(all_results))
    print()
    print(kind_table(all_results))
    if arguments.json:
        arguments.json.write_text(json.dumps(all_results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
