"""The detector: IP Insights' score and prefix novelty, each calibrated per entity, summed as surprisal.

A pair is unusual when its address shares little with what the entity talked to before (novelty) and when the
model says it does not fit the entity (dot_product). Each is turned into -ln P(this extreme) for that entity, from
days the entity lived through: how novel its new peers usually are, and how low the model scores its traffic on a
day it was not trained on. A load balancer that meets new residential clients every hour is then not alarmed by
one more, while a batch host's first address in a new /8 is. The sum t of two parts becomes one surprisal, -ln P(a
sum this large), which is t - ln(1 + t) when the parts are independent (the sum of two Exp(1) surprisals is
Gamma(2, 1)); the model has no opinion on an entity it was not trained on, and there the novelty part stands
alone. A pair is flagged when its surprisal reaches -ln(false_positive_rate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scripts.detect.calibration import TailTable
from scripts.detect.history import History, Nearest
from scripts.pairs.mapping import ROLE_SEPARATOR, base_entity

DAY_MS = 86_400_000
ModelScores = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector calibrates: see config `detection`."""

    false_positive_rate: float = 1e-4
    prior_weight: float = 20.0
    model_prior_weight: float = 20.0
    novelty_days: int = 6
    min_history_days: int = 3
    use_model: bool = True
    use_novelty: bool = True
    flag_new_roles: bool = True
    fleet_change_workloads: int = 5


def role_of(entity: str) -> str:
    """The role suffix of an entity (`client:web`), or "" for a workload-only entity."""
    return entity.split(ROLE_SEPARATOR, 1)[1] if ROLE_SEPARATOR in entity else ""


def peer_group(entity: str) -> str:
    """The account's pooled history for the entity's role: `<account>/*#client:web`."""
    account = entity.split("/", 1)[0]
    role = role_of(entity)
    return f"{account}/*{ROLE_SEPARATOR}{role}" if role else f"{account}/*"


@dataclass(frozen=True)
class Lookup:
    """The nearest known addresses, which came from the account's peer group, and which pairs are a new role."""

    nearest: Nearest
    from_group: np.ndarray
    new_role: np.ndarray


class Memory:
    """Each entity's history, and each account's pooled history per role for workloads never seen before.

    A new instance in an autoscaling group talks to what its siblings talk to, so a workload with no history at all
    is compared with its account's pooled history for that role; a known workload in a role it never had (its first
    outbound SSH, a web server's first outbound connection) has nothing to compare with: novelty 1.
    """

    def __init__(self, pairs: pd.DataFrame) -> None:
        entities = pairs["entity"].tolist()
        times = pairs["time"].to_numpy()
        self.history = History(entities, pairs["ip"].tolist(), times)
        self.groups = History([peer_group(e) for e in entities], pairs["ip"].tolist(), times)
        self.workloads = frozenset(base_entity(e) for e in self.history.entities)

    def nearest(self, entities: Sequence[str], ips: Sequence[str]) -> Lookup:
        """The nearest known address; for a new workload, its peer group's."""
        own = self.history.nearest(entities, ips)
        unseen = np.flatnonzero(own.shared_bits < 0)
        by_group = np.zeros(len(ips), dtype=bool)
        new_role = np.zeros(len(ips), dtype=bool)
        new_workload = np.array([base_entity(entities[i]) not in self.workloads for i in unseen.tolist()], bool)
        new_role[unseen[~new_workload]] = True
        chosen = unseen[new_workload]
        if len(chosen) == 0:
            return Lookup(own, by_group, new_role)
        group = self.groups.nearest([peer_group(entities[i]) for i in chosen.tolist()], [ips[i] for i in chosen])
        bits = own.shared_bits.copy()
        bits[chosen] = group.shared_bits
        nearest_ip = list(own.nearest_ip)
        for position, index in enumerate(chosen.tolist()):
            nearest_ip[index] = group.nearest_ip[position]
        first = own.first_seen_ms.copy()
        first[chosen] = group.first_seen_ms
        known = own.known_addresses.copy()
        known[chosen] = group.known_addresses
        by_group[chosen] = group.shared_bits >= 0
        return Lookup(Nearest(bits, nearest_ip, known, first), by_group, new_role)


def fleet_workloads(entities: Sequence[str], ips: Sequence[str], novel: np.ndarray) -> np.ndarray:
    """For each pair, how many workloads of the batch met its address for the first time."""
    frame = pd.DataFrame({"workload": [base_entity(e) for e in entities], "ip": list(ips), "novel": novel})
    counts = frame[frame["novel"]].groupby("ip")["workload"].nunique()
    return frame["ip"].map(counts).fillna(0).to_numpy(np.int64)


def novelty(nearest: Nearest, ips: Sequence[str]) -> np.ndarray:
    """1 - shared bits / address bits (IPv6 counted to /64); 1 when the entity has no history at all."""
    is_v6 = np.fromiter((":" in ip for ip in ips), dtype=bool, count=len(ips))
    full = np.where(is_v6, 64, 32)
    shared = np.minimum(nearest.shared_bits, full)
    return np.where(nearest.shared_bits < 0, 1.0, 1.0 - shared / full)


def _days(times: np.ndarray, origin_ms: int) -> np.ndarray:
    return ((times - origin_ms) // DAY_MS).astype(np.int64)


def _new_pairs(pairs: pd.DataFrame, start_ms: int) -> pd.DataFrame:
    """Distinct pairs from start_ms on whose address the entity had not met before start_ms."""
    before = pairs[pairs["time"] < start_ms]
    after = pairs[pairs["time"] >= start_ms].drop_duplicates(["entity", "ip"])
    known = History(before["entity"].tolist(), before["ip"].tolist(), before["time"].to_numpy())
    nearest = known.nearest(after["entity"].tolist(), after["ip"].tolist())
    return after[novelty(nearest, after["ip"].tolist()) > 0]


@dataclass(frozen=True)
class Decision:
    """The combined surprisal, the score alerts are ranked by, and which pairs are flagged or a fleet change."""

    surprisal: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    fleet_change: np.ndarray


def decide(
    novelty_part: np.ndarray,
    model_part: np.ndarray,
    model_speaks: np.ndarray,
    new_role: np.ndarray,
    fleet: np.ndarray,
    settings: DetectorSettings,
) -> Decision:
    """Combine the parts and apply the rules.

    Surprisal: where the model knows the entity, -ln P(a sum this large) of the two parts, t - ln(1 + t) for their
    sum t (two independent Exp(1) surprisals sum to a Gamma(2, 1)); elsewhere the novelty part alone. A known
    workload in a role it never had is flagged whatever the surprisal (when flag_new_roles). An address that several
    workloads met for the first time in the same batch (fleet_change_workloads or more) is a fleet-wide change, a
    service moving, reported once as such: its score is divided among them (minus ln n) and it is not flagged per
    workload.
    """
    threshold = float(-np.log(settings.false_positive_rate))
    use_model = model_speaks & settings.use_model
    both = novelty_part + model_part
    surprisal = np.where(use_model, both - np.log1p(both), novelty_part)
    roles = new_role & settings.flag_new_roles
    score = np.where(roles, np.maximum(surprisal, threshold), surprisal)
    if settings.fleet_change_workloads > 0:
        fleet_change = fleet >= settings.fleet_change_workloads
    else:
        fleet_change = np.zeros(len(fleet), dtype=bool)
    score = np.where(fleet_change, score - np.log(np.maximum(fleet, 1)), score)
    return Decision(surprisal, score, (score >= threshold) & ~fleet_change, fleet_change)


class Detector:
    """Fitted on history: novelty calibration from every day, model calibration from one held-out day."""

    def __init__(
        self,
        memory: Memory,
        novelty_table: TailTable,
        model_table: TailTable | None,
        model_entities: frozenset[str],
        settings: DetectorSettings,
    ) -> None:
        self.memory = memory
        self.novelty_table = novelty_table
        self.model_table = model_table
        self.model_entities = model_entities
        self.settings = settings
        self.threshold = float(-np.log(settings.false_positive_rate))

    @staticmethod
    def fit(
        pairs: pd.DataFrame,
        model_scores: ModelScores | None,
        calibration_start_ms: int,
        settings: DetectorSettings | None = None,
    ) -> Detector:
        """`pairs` (entity, ip, time): all history; the model must not have seen times >= calibration_start_ms."""
        settings = settings or DetectorSettings()
        origin = (int(pairs["time"].min()) // DAY_MS) * DAY_MS
        day = _days(pairs["time"].to_numpy(np.int64), origin)
        last = int(day.max())
        frames = []
        first_day = max(1, settings.min_history_days, last - settings.novelty_days + 1)
        for current in range(min(first_day, last), last + 1):
            before = pairs[day < current]
            today = pairs[day == current].drop_duplicates(["entity", "ip"])
            if before.empty or today.empty:
                continue
            ips = today["ip"].tolist()
            values = novelty(Memory(before).nearest(today["entity"].tolist(), ips).nearest, ips)
            frames.append(pd.DataFrame({"entity": today["entity"].to_numpy(), "novelty": values}))
        observed = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"entity": [], "novelty": []})
        entities = observed["entity"].tolist()
        novelty_table = TailTable.build(
            entities, [role_of(e) for e in entities], observed["novelty"].to_numpy(), True, settings.prior_weight
        )
        model_table = None
        if model_scores is not None and settings.use_model:
            held_out = _new_pairs(pairs, calibration_start_ms)
            held_entities = held_out["entity"].tolist()
            dots = model_scores(held_entities, held_out["ip"].tolist())
            model_table = TailTable.build(
                held_entities,
                [role_of(e) for e in held_entities],
                dots,
                False,
                settings.model_prior_weight,
                conformal=True,
            )
        memory = Memory(pairs)
        trained = frozenset(pairs.loc[pairs["time"] < calibration_start_ms, "entity"].unique().tolist())
        return Detector(memory, novelty_table, model_table, trained, settings)

    def score(self, entities: Sequence[str], ips: Sequence[str], dots: np.ndarray | None) -> pd.DataFrame:
        """Parts, total surprisal and evidence for row-aligned pairs; `dots` from the model (None: novelty only)."""
        roles = [role_of(e) for e in entities]
        lookup = self.memory.nearest(entities, ips)
        nearest = lookup.nearest
        values = novelty(nearest, ips)
        novelty_part = (
            self.novelty_table.surprisal(entities, roles, values) if self.settings.use_novelty else np.zeros(len(ips))
        )
        model_speaks = np.zeros(len(ips), dtype=bool)
        model_part = np.zeros(len(ips))
        if dots is not None and self.model_table is not None and self.settings.use_model:
            model_speaks = np.fromiter((e in self.model_entities for e in entities), dtype=bool, count=len(ips))
            model_part = np.where(model_speaks, self.model_table.surprisal(entities, roles, dots), 0.0)
        fleet = fleet_workloads(entities, ips, values > 0)
        decision = decide(novelty_part, model_part, model_speaks, lookup.new_role, fleet, self.settings)
        frame = pd.DataFrame(
            {
                "entity": list(entities),
                "ip": list(ips),
                "dot_product": dots if dots is not None else np.full(len(ips), np.nan),
                "novelty": values,
                "novelty_surprisal": novelty_part,
                "model_surprisal": model_part,
                "model_speaks": model_speaks,
                "surprisal": decision.surprisal,
                "score": decision.score,
                "flagged": decision.flagged,
                "new_role": lookup.new_role,
                "fleet_workloads": fleet,
                "fleet_change": decision.fleet_change,
                "shared_prefix_bits": nearest.shared_bits,
                "nearest_known_ip": nearest.nearest_ip,
                "nearest_first_seen_ms": nearest.first_seen_ms,
                "known_addresses": nearest.known_addresses,
                "compared_with_peer_group": lookup.from_group,
            }
        )
        return frame
