"""The detector: IP Insights' score and prefix novelty, each calibrated per entity, summed as surprisal.

A pair is unusual when its address shares little with what the entity talked to before (novelty) and when the
model says it does not fit the entity (dot_product). Each is turned into -ln P(this extreme) for that entity, from
days the entity lived through: how novel its new peers usually are, and how low the model scores its traffic on a
day it was not trained on. A load balancer that meets new residential clients every hour is then not alarmed by
one more, while a batch host's first address in a new /8 is. The sum t of two parts becomes one surprisal, -ln P(a
sum this large), which is t - ln(1 + t) when the parts are independent (the sum of two Exp(1) surprisals is
Gamma(2, 1)); the model has no opinion on an entity it was not trained on, and there the novelty part stands
alone. A pair is flagged when its surprisal reaches -ln(false_positive_rate). An address on the instance's own link
(scripts.addresses.ON_LINK_BLOCKS: the metadata service, the Amazon DNS resolver, Amazon Time Sync) is not a peer: it
is never novel, never a new role, and the model is not asked about it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scripts.addresses import on_link
from scripts.detect.addressbook import AddressBook
from scripts.detect.calibration import TailTable
from scripts.detect.decision import (
    days_since,
    decide,
    deployed_service,
    fleet_workloads,
    model_calibration,
    new_pairs,
    novelty,
    novelty_keys,
    serving_entities,
)
from scripts.detect.forked import map_forked
from scripts.detect.memory import Memory, Pairs
from scripts.detect.names import UNKNOWN, KnownNames
from scripts.detect.networks import NetworkTable
from scripts.detect.owners import Ownership
from scripts.detect.settings import DAY_MS, DetectorSettings, ModelScores
from scripts.detect.volume import UploadLimits, large_uploads, uploads_are_the_entitys
from scripts.entity import account_of, role_of


@dataclass(frozen=True)
class _FitDays:
    """What every calibration day's novelty is computed from."""

    pairs: Pairs
    day: np.ndarray
    settings: DetectorSettings
    ownership: Ownership | None


Observed = tuple[np.ndarray, np.ndarray, np.ndarray]  # entities, addresses and novelty of a day's comparable pairs


def _day_novelty(fit: _FitDays, current: int) -> Observed | None:
    """The novelty of the day's distinct pairs against the days before it (None: no history before, or no pairs)."""
    before = fit.pairs.where(fit.day < current)
    today = fit.pairs.where(fit.day == current).distinct()
    if len(before) == 0 or len(today) == 0:
        return None
    settings = fit.settings
    ips = today.ip.tolist()
    memory = Memory.build(before, settings.compare_with_peer_group, settings.young_workload_days, fit.ownership)
    lookup = memory.nearest(today.entity.tolist(), ips)
    # a new role or a group with no history is the rules' business; the instance's own link is no peer
    comparable = (lookup.nearest.shared_bits >= 0) & ~on_link(ips)
    serving = serving_entities(today.entity.tolist())
    owners = (lookup.organisation, lookup.owner_known, lookup.public_owner)
    values = novelty(lookup.nearest, ips, *owners, serving, settings.served_owner_novelty)
    return today.entity[comparable], today.ip[comparable], values[comparable]


# a fit's peak memory per process (benchmarks/growth.py: 272 MiB + 500 MiB per million history rows, one core)
FIT_PROCESS_FIXED_BYTES = 272 * 2**20
FIT_PROCESS_BYTES_PER_ROW = 500 * 2**20 / 1_000_000
MEMORY_SHARE = 0.8  # of the machine's memory, for the fit's processes; the rest for the job and the system


def fit_workers(cores: int, memory_bytes: int, history_rows: int) -> int:
    """How many calibration days to compute at once: one per core, as many as the memory holds (each process builds
    its own memory of the days before its day), at least one."""
    one = FIT_PROCESS_FIXED_BYTES + FIT_PROCESS_BYTES_PER_ROW * history_rows
    return max(1, min(cores, int(MEMORY_SHARE * memory_bytes // one)))


def _days_novelty(fit: _FitDays, days: list[int], workers: int) -> list[Observed]:
    """Each day's observations, in day order: in `workers` forked processes when there are several days."""
    found = map_forked(_day_novelty, fit, days, workers)
    return [observed for observed in found if observed is not None]


class Detector:
    """Fitted on history: novelty calibration from every day, model calibration from one held-out day, and each
    entity's largest first upload (None: the history carried no bytes, and the large-upload rule is off)."""

    def __init__(
        self,
        memory: Memory,
        novelty_table: TailTable,
        model_table: TailTable | None,
        model_entities: frozenset[str],
        settings: DetectorSettings,
        uploads: UploadLimits | None = None,
        names: KnownNames | None = None,
    ) -> None:
        self.memory = memory
        self.novelty_table = novelty_table
        self.model_table = model_table
        self.model_entities = model_entities
        self.settings = settings
        self.uploads = uploads
        self.names = names  # which names each account asked for, since when (None: no Route 53 history)
        self.threshold = float(-np.log(settings.false_positive_rate))

    @staticmethod
    def fit(
        pairs: Pairs,
        model_scores: ModelScores | None,
        calibration_start_ms: int,
        settings: DetectorSettings | None = None,
        networks: NetworkTable | None = None,
        book: AddressBook | None = None,
        names: KnownNames | None = None,
        acknowledged: Pairs | None = None,
        workers: int = 1,
    ) -> Detector:
        """`pairs`: all history; the model must not have seen times >= calibration_start_ms (its held-out day);
        `networks`: who owns public addresses (used when settings.use_networks); `book`: which account had each
        internal address (used when settings.use_address_book); `acknowledged`: pairs
        analysts judged benign (scripts/detect/feedback.py), known to the memory but left out of the calibration;
        `workers`: processes that compute the calibration days' novelty at once (each day is independent)."""
        settings = settings or DetectorSettings()
        networks = networks if settings.use_networks else None
        book = book if settings.use_address_book else None
        ownership = Ownership(networks, book) if networks is not None or book is not None else None
        if ownership is not None:
            pairs = pairs.with_owners(ownership)
        if len(pairs) == 0:
            message = "cannot fit the detector on an empty history"
            raise ValueError(message)
        origin = (int(pairs.time.min()) // DAY_MS) * DAY_MS
        day = days_since(pairs.time, origin)
        last = int(day.max())
        first_day = max(1, settings.min_history_days, last - settings.novelty_days + 1)
        days = list(range(min(first_day, last), last + 1))
        by_day = _days_novelty(_FitDays(pairs, day, settings, ownership), days, workers)
        observed_entities = [entities for entities, _, _ in by_day]
        observed_ips = [ips for _, ips, _ in by_day]
        observed_novelty = [values for _, _, values in by_day]
        entities = np.concatenate(observed_entities) if observed_entities else np.zeros(0, dtype=str)
        observed = np.concatenate(observed_ips) if observed_ips else np.zeros(0, dtype=str)
        values = np.concatenate(observed_novelty) if observed_novelty else np.zeros(0)
        keys, roles = novelty_keys(entities.tolist(), observed.tolist(), settings)
        novelty_table = TailTable.build(keys, roles, values, True, settings.prior_weight)
        model_table = None
        if model_scores is not None and settings.use_model:
            held_out = new_pairs(pairs, calibration_start_ms)
            dots = np.asarray(model_scores(held_out.entity.tolist(), held_out.ip.tolist()), dtype=np.float64)
            model_table = model_calibration(held_out.entity.tolist(), dots, settings)
        remembered = pairs if acknowledged is None or len(acknowledged) == 0 else pairs.plus(acknowledged)
        if ownership is not None and remembered is not pairs:
            remembered = remembered.with_owners(ownership)
        memory = Memory.build(remembered, settings.compare_with_peer_group, settings.young_workload_days, ownership)
        trained = frozenset(np.unique(pairs.entity[pairs.time < calibration_start_ms]).tolist())
        return Detector(memory, novelty_table, model_table, trained, settings, UploadLimits.learn(pairs), names)

    def with_false_positive_rate(self, rate: float) -> Detector:
        """The same fitted detector flagging at another false positive rate."""
        settings = dataclasses.replace(self.settings, false_positive_rate=rate)
        return Detector(
            self.memory, self.novelty_table, self.model_table, self.model_entities, settings, self.uploads, self.names
        )

    def upload_reference(self, entities: Sequence[str]) -> np.ndarray:
        """Each entity's largest first upload in the history (NaN: none known, or no uploads learnt)."""
        if self.uploads is None:
            return np.full(len(entities), np.nan)
        return self.uploads.reference(entities, self.memory.established_workload(entities))

    def name_sightings(
        self, entities: Sequence[str], names: Sequence[str | None] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """When each pair's name was first asked for in its entity's account, and in the organisation (UNKNOWN:
        never, no name, or no names learnt)."""
        unknown = np.full(len(entities), UNKNOWN, dtype=np.int64)
        if names is None or self.names is None:
            return unknown, unknown.copy()
        asked = [i for i, name in enumerate(names) if name]
        if not asked:
            return unknown, unknown.copy()
        sighting = self.names.sighting([account_of(entities[i]) for i in asked], [str(names[i]) for i in asked])
        account_first, organisation_first = unknown, unknown.copy()
        account_first[asked] = sighting.account_first_ms
        organisation_first[asked] = sighting.organisation_first_ms
        return account_first, organisation_first

    def large_first_uploads(
        self, sent: np.ndarray, reference: np.ndarray, novel: np.ndarray, uploads: np.ndarray
    ) -> np.ndarray:
        """Which pairs are a large first upload (scripts/detect/volume.py); none without learnt uploads."""
        if self.uploads is None:
            return np.zeros(len(sent), dtype=bool)
        return large_uploads(sent, reference, novel, uploads, self.settings)

    def score(
        self,
        entities: Sequence[str],
        ips: Sequence[str],
        dots: np.ndarray | None,
        bytes_out: np.ndarray | None = None,
        names: Sequence[str | None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Parts, total surprisal and evidence for row-aligned pairs (one array per column); `dots` from the model
        (None: novelty only); `bytes_out`, what each entity sent to the address (None: unknown, no upload is
        large)."""
        entities = list(entities)
        ips = list(ips)
        roles = [role_of(e) for e in entities]
        lookup = self.memory.nearest(entities, ips)
        nearest = lookup.nearest
        link = on_link(ips)
        owners = (lookup.organisation, lookup.owner_known, lookup.public_owner)
        serving = serving_entities(entities)
        values = novelty(nearest, ips, *owners, serving, self.settings.served_owner_novelty)
        deploying = deployed_service(serving, lookup.unknown_workload, lookup.own_account)
        values = np.where(deploying, np.minimum(values, self.settings.served_owner_novelty), values)
        values = np.where(link, 0.0, values)
        new_role = lookup.new_role & ~link
        novelty_part = np.zeros(len(ips))
        if self.settings.use_novelty:
            keys, role_keys = novelty_keys(entities, ips, self.settings, self.novelty_table.by_role)
            novelty_part = self.novelty_table.surprisal(keys, role_keys, values)
        model_speaks = np.zeros(len(ips), dtype=bool)
        model_part = np.zeros(len(ips))
        if dots is not None and self.model_table is not None and self.settings.use_model:
            model_speaks = np.fromiter((e in self.model_entities for e in entities), dtype=bool, count=len(ips))
            model_speaks &= ~link
            model_part = np.where(model_speaks, self.model_table.surprisal(entities, roles, dots), 0.0)
        fleet = fleet_workloads(entities, ips, values > 0)
        role_fleet = fleet_workloads(entities, ips, values > 0, by_role=True)
        owner_known = lookup.owner_known & ~link
        sent = np.zeros(len(ips), dtype=np.int64) if bytes_out is None else np.asarray(bytes_out, dtype=np.int64)
        reference = self.upload_reference(entities)
        uploads = uploads_are_the_entitys(entities)
        asked_first, organisation_first = self.name_sightings(entities, names)
        known_name = asked_first != UNKNOWN
        first_meeting = (values > 0) & ~link
        large = self.large_first_uploads(sent, reference, first_meeting, uploads)
        parts = (novelty_part, model_part, model_speaks, new_role)
        decision = decide(*parts, fleet, self.settings, owner_known, large, role_fleet)
        return {
            "entity": np.asarray(entities, dtype=object),
            "ip": np.asarray(ips, dtype=object),
            "dot_product": np.asarray(dots, dtype=np.float64) if dots is not None else np.full(len(ips), np.nan),
            "novelty": values,
            "novelty_surprisal": novelty_part,
            "model_surprisal": model_part,
            "model_speaks": model_speaks,
            "surprisal": decision.surprisal,
            "score": decision.score,
            "flagged": decision.flagged,
            "new_role": new_role,
            "on_link": link,
            "fleet_workloads": fleet,
            "role_fleet_workloads": role_fleet,
            "fleet_change": decision.fleet_change,
            "shared_prefix_bits": nearest.shared_bits,
            "nearest_first_seen_ms": nearest.first_seen_ms,
            "known_addresses": nearest.known_addresses,
            "compared_with_peer_group": lookup.from_group,
            "network_owner": lookup.organisation,
            "owner_known": owner_known,
            "bytes_out": sent,
            "upload_reference": reference,
            "uploads": uploads,
            "first_meeting": first_meeting,
            "large_upload": large,
            "name_account_first_ms": asked_first,
            "name_organisation_first_ms": organisation_first,
            "known_name": known_name,
        }
