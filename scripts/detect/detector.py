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

import dataclasses
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass

import numpy as np

from scripts.addresses import private_block_bits
from scripts.detect.addressbook import AddressBook
from scripts.detect.calibration import TailTable
from scripts.detect.history import History, Nearest, address_keys, factorize, pack_keys
from scripts.detect.networks import NO_OWNER, NetworkTable
from scripts.detect.owners import KnownOwners, Ownership
from scripts.entity import account_of, base_entity, peer_group, role_of

DAY_MS = 86_400_000
DEFAULT_FALSE_POSITIVE_RATE = 1e-4  # pipeline/config.py's detection.false_positive_rate default is this one
# An address whose owner (Amazon, Google, an ISP; the account of an internal address) the entity already talked to
# is at most as novel as one sharing only its /8 with what it knew; an internal address of an account the entity
# never talked to is as novel as an address never seen.
KNOWN_OWNER_NOVELTY = 0.75
ModelScores = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector calibrates: see config `detection`."""

    false_positive_rate: float = DEFAULT_FALSE_POSITIVE_RATE
    prior_weight: float = 20.0
    model_prior_weight: float = 20.0
    novelty_days: int = 6
    min_history_days: int = 3
    use_model: bool = True
    use_novelty: bool = True
    flag_new_roles: bool = True
    fleet_change_workloads: int = 5
    young_workload_days: int = 2  # a workload first seen this recently is compared with its peer group, new roles too
    compare_with_peer_group: bool = True
    use_networks: bool = True  # novelty knows who owns public addresses (when the detector has a network table)
    use_address_book: bool = True  # novelty knows which account an internal address belongs to (with a book)
    internal_apart: bool = True  # novelty of internal (private) peers is calibrated apart from public peers'


INTERNAL = "internal/"


def novelty_keys(
    entities: Sequence[str],
    ips: Sequence[str],
    settings: DetectorSettings,
    calibrated_roles: Container[str] | None = None,
) -> tuple[list[str], list[str]]:
    """The entity and role keys novelty is calibrated under: a pair with an internal (private) peer counts as
    `internal/<entity>` in the role `internal/<role>` (and so the side `internal/client` or `internal/server`), so
    that how often a web server meets new public clients (from networks it never met: novelty 1) says nothing about
    how often it meets new internal peers: its first client from another account is judged against the internal
    peers it, its role and its side met. An entity with no internal peer yet is judged by its role's internal
    level. When scoring, an internal role that had no internal peers while the detector was fitted (not in
    `calibrated_roles`) keeps its plain keys: an empty level is no evidence, and skipping every level would judge
    the pair by the pooled level alone."""
    entities = list(entities)
    roles = [role_of(e) for e in entities]
    if not settings.internal_apart:
        return entities, roles
    internal = private_block_bits(list(ips)) > 0
    entity_keys, role_keys = [], []
    for entity, role, inside in zip(entities, roles, internal.tolist(), strict=True):
        split = inside and (calibrated_roles is None or f"{INTERNAL}{role}" in calibrated_roles)
        entity_keys.append(f"{INTERNAL}{entity}" if split else entity)
        role_keys.append(f"{INTERNAL}{role}" if split else role)
    return entity_keys, role_keys


@dataclass(frozen=True)
class Lookup:
    """The nearest known addresses, which came from the account's peer group, which pairs are a new role, and who
    owns each address (-1: no owner known) and whether the entity (or its peer group) talked to that owner before."""

    nearest: Nearest
    from_group: np.ndarray
    new_role: np.ndarray
    organisation: np.ndarray
    owner_known: np.ndarray
    public_owner: np.ndarray


def _choose(own: Nearest, group: Nearest, use_group: np.ndarray) -> Nearest:
    def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(use_group, b, a)

    return Nearest(
        pick(own.shared_bits, group.shared_bits),
        pick(own.nearest_high, group.nearest_high),
        pick(own.nearest_low, group.nearest_low),
        pick(own.known_addresses, group.known_addresses),
        pick(own.first_seen_ms, group.first_seen_ms),
    )


class Memory:
    """Each entity's history, and each account's pooled history per role (the entity's peer group).

    Instances of one autoscaling group, or the web servers behind one load balancer, talk to the same peers: an
    address any of them met is known to all, so each pair is compared with the nearer of the entity's own history
    and its peer group's (when `with_group`). A workload never seen is compared with its peer group alone. A known
    workload in a role it never had (its first outbound SSH, a web server's first outbound connection) is a new
    role; unless the workload is young (first seen less than `young_days` before the end of the history: an
    instance still showing its roles) and an established workload of its account holds every role it has shown and
    that one too (a new web server's first DNS lookups, as its siblings do): then it is compared with the peer group.
    """

    def __init__(
        self,
        history: History,
        groups: History,
        workloads: np.ndarray,
        with_group: bool = True,
        accounts: History | None = None,
        established: np.ndarray | None = None,
        role_sets: np.ndarray | None = None,
        ownership: Ownership | None = None,
        owners: tuple[KnownOwners, KnownOwners] | None = None,
    ) -> None:
        self.history = history
        self.groups = groups
        self.workloads = np.asarray(workloads, dtype=str)
        self.with_group = with_group
        self.accounts = accounts  # each account's fleet: every address any of its workloads talked to
        self.established = (
            np.ones(len(self.workloads), dtype=bool) if established is None else np.asarray(established, dtype=bool)
        )
        # `<account>|<role>,<role>,...`: the distinct sets of roles the account's established workloads hold
        self.role_sets = np.asarray(role_sets if role_sets is not None else [], dtype=str)
        self._roles: dict[str, list[str]] | None = None
        self._sets: dict[str, list[frozenset[str]]] | None = None
        self.ownership = ownership  # who owns addresses; None: novelty from prefixes alone
        # the owners each entity (first) and each peer group (second) talked to
        self.owners = owners if owners is not None else (KnownOwners(np.zeros(0)), KnownOwners(np.zeros(0)))

    @staticmethod
    def build(pairs: Pairs, with_group: bool = True, young_days: int = 0, ownership: Ownership | None = None) -> Memory:
        """From (entity, ip, time) pairs; each address was parsed once, when the pairs were made, and its owner
        looked up once (`Pairs.with_owners`) when there is an ownership."""
        names, codes = factorize(pairs.entity)
        history = History.of_codes(names, codes, pairs.high, pairs.low, pairs.time)
        group_names, group_of_name = factorize([peer_group(n) for n in names.tolist()])
        groups = History.of_codes(group_names, group_of_name[codes], pairs.high, pairs.low, pairs.time)
        account_names, account_of_name = factorize([account_of(n) for n in names.tolist()])
        accounts = History.of_codes(account_names, account_of_name[codes], pairs.high, pairs.low, pairs.time)
        workloads, workload_of_name = factorize([base_entity(e) for e in names.tolist()])
        first_seen = np.full(len(workloads), np.iinfo(np.int64).max, dtype=np.int64)
        if len(pairs):
            np.minimum.at(first_seen, workload_of_name[codes], pairs.time)
        end = int(pairs.time.max()) if len(pairs) else 0
        established = first_seen <= end - young_days * DAY_MS
        roles: dict[str, set[str]] = {}
        for name in names.tolist():
            roles.setdefault(base_entity(name), set()).add(role_of(name))
        mature = set(workloads[established].tolist())
        sets = sorted(
            {f"{account_of(w)}|{','.join(sorted(held))}" for w, held in roles.items() if w in mature and len(held) > 1}
        )
        owners = None
        if ownership is not None:
            organisation = pairs.organisation
            if organisation is None:
                organisation = ownership.codes(pairs.high, pairs.low)
            owners = (KnownOwners.of(codes, organisation), KnownOwners.of(group_of_name[codes], organisation))
        role_sets = np.asarray(sets, dtype=str)
        return Memory(history, groups, workloads, with_group, accounts, established, role_sets, ownership, owners)

    def fleet_nearest(self, accounts: Sequence[str], ips: Sequence[str]) -> Nearest | None:
        """The nearest address any workload of each account talked to (None for a memory saved without it)."""
        return self.accounts.nearest(accounts, ips) if self.accounts is not None else None

    def _roles_of(self, workload: str) -> list[str]:
        if self._roles is None:
            self._roles = {}
            for name in self.history.entities.tolist():
                self._roles.setdefault(base_entity(name), []).append(role_of(name))
        return self._roles.get(workload, [])

    def role_is_usual(self, entity: str) -> bool:
        """An established workload of the account holds this entity's role and every role its workload has shown."""
        if self._sets is None:
            self._sets = {}
            for text in self.role_sets.tolist():
                account, _, held = text.partition("|")
                self._sets.setdefault(account, []).append(frozenset(held.split(",")))
        wanted = {role_of(entity), *self._roles_of(base_entity(entity))}
        return any(wanted <= held for held in self._sets.get(account_of(entity), []))

    def _workload_rows(self, entities: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(whether each entity's workload is known, its row in `workloads`)."""
        query = np.asarray([base_entity(e) for e in entities], dtype=str)
        if len(self.workloads) == 0 or len(query) == 0:
            return np.zeros(len(query), dtype=bool), np.zeros(len(query), dtype=np.int64)
        position = np.clip(np.searchsorted(self.workloads, query), 0, len(self.workloads) - 1)
        return np.asarray(self.workloads[position] == query, dtype=bool), position

    def knows_workload(self, entities: Sequence[str]) -> np.ndarray:
        return self._workload_rows(entities)[0]

    def established_workload(self, entities: Sequence[str]) -> np.ndarray:
        """Whether each entity's workload is known and past its first days."""
        known, position = self._workload_rows(entities)
        return known & self.established[position] if len(position) else known

    def nearest(self, entities: Sequence[str], ips: Sequence[str]) -> Lookup:
        """The nearest known address: the entity's own, or its peer group's when that is nearer or it is new."""
        entities = list(entities)
        own = self.history.nearest(entities, ips)
        group = self.groups.nearest([peer_group(e) for e in entities], ips)
        unseen = own.shared_bits < 0
        established = self.established_workload(entities)
        young = unseen & ~established & self.knows_workload(entities)
        usual = np.zeros(len(entities), dtype=bool)
        for index in np.flatnonzero(young).tolist():
            usual[index] = self.role_is_usual(entities[index])
        new_role = unseen & (established | (young & ~usual))
        new_workload = unseen & ~new_role
        nearer = group.shared_bits > own.shared_bits
        use_group = new_workload | (nearer & ~new_role & self.with_group)
        organisation, owner_known = self._owners(entities, ips, new_workload | (~new_role & self.with_group))
        public = self.ownership.public(organisation) if self.ownership is not None else organisation >= 0
        return Lookup(
            _choose(own, group, use_group),
            use_group & (group.shared_bits >= 0),
            new_role,
            organisation,
            owner_known,
            public,
        )

    def _owners(self, entities: list[str], ips: Sequence[str], group_counts: np.ndarray) -> tuple[np.ndarray, ...]:
        """Each address's organisation, and whether the entity, or its peer group where `group_counts`, met it."""
        if self.ownership is None:
            return np.full(len(entities), NO_OWNER, dtype=np.int64), np.zeros(len(entities), dtype=bool)
        _, high, low = address_keys(list(ips))
        organisation = self.ownership.codes(high, low)
        own, group = self.owners
        by_entity = own.knows(self.history.entity_ids(entities), organisation)
        by_group = group.knows(self.groups.entity_ids([peer_group(e) for e in entities]), organisation)
        return organisation, by_entity | (by_group & group_counts)


@dataclass(frozen=True)
class Pairs:
    """(entity, ip, time) rows as arrays, each address parsed once (its high and low 64 bits, IPv4 mapped), and
    its owner's code once there is an ownership (`with_owners`)."""

    entity: np.ndarray
    ip: np.ndarray
    time: np.ndarray
    high: np.ndarray
    low: np.ndarray
    organisation: np.ndarray | None = None

    @staticmethod
    def of(entities: Sequence[str], ips: Sequence[str], times: Sequence[int] | np.ndarray) -> Pairs:
        """Raises scripts.addresses.AddressError naming the first value that is not an address."""
        ip = np.asarray(list(ips), dtype=object)
        _, high, low = address_keys(ip.tolist())
        return Pairs(np.asarray(list(entities), dtype=object), ip, np.asarray(times, dtype=np.int64), high, low)

    def __len__(self) -> int:
        return len(self.entity)

    def where(self, mask: np.ndarray) -> Pairs:
        organisation = self.organisation[mask] if self.organisation is not None else None
        return Pairs(self.entity[mask], self.ip[mask], self.time[mask], self.high[mask], self.low[mask], organisation)

    def with_owners(self, ownership: Ownership) -> Pairs:
        """The same pairs with each address's owner looked up."""
        return dataclasses.replace(self, organisation=ownership.codes(self.high, self.low))

    def distinct(self) -> Pairs:
        """One row per (entity, ip), its earliest."""
        if len(self) == 0:
            return self
        _, entity_code = factorize(self.entity)
        order = np.lexsort((self.time, self.low, self.high, entity_code))
        keys = pack_keys(entity_code[order], self.high[order], self.low[order])
        first = np.concatenate([[True], keys[1:] != keys[:-1]])
        return self.where(np.sort(order[first]))


def fleet_workloads(entities: Sequence[str], ips: Sequence[str], novel: np.ndarray) -> np.ndarray:
    """For each pair, how many workloads of its account met its address for the first time in the batch: a fleet
    change is one account's service moving, and another account's workload meeting the same address (an attacker
    reaching a database that just failed over) is not part of it."""
    workloads = np.asarray([base_entity(e) for e in entities], dtype=str)
    keys = np.asarray([f"{account_of(e)}|{ip}" for e, ip in zip(entities, ips, strict=True)], dtype=str)
    if len(keys) == 0 or not novel.any():
        return np.zeros(len(keys), dtype=np.int64)
    distinct = np.unique(np.stack([keys[novel], workloads[novel]], axis=1), axis=0)
    met, counts = np.unique(distinct[:, 0], return_counts=True)
    position = np.clip(np.searchsorted(met, keys), 0, len(met) - 1)
    return np.where(met[position] == keys, counts[position], 0).astype(np.int64)


def novelty(
    nearest: Nearest,
    ips: Sequence[str],
    organisation: np.ndarray | None = None,
    owner_known: np.ndarray | None = None,
    public_owner: np.ndarray | None = None,
) -> np.ndarray:
    """1 - shared bits / address bits (IPv6 counted to /64); 1 when the entity has no history at all. Inside a
    private block, with the nearest known address in the same block, only the bits after the block count: 10.5.2.9
    against a known 10.3.1.4 shares 13 of 32 bits but only 5 of the 24 that tell one VPC from another.

    With owners (`organisation`, -1 where none is known, and `owner_known`): a public address of an organisation the
    entity already talked to is at most KNOWN_OWNER_NOVELTY novel (S3 answering from a /16 it never used is still
    Amazon, and no longer hides another cloud); one of an organisation it never talked to keeps its prefix novelty
    (setting it to 1 made every public server's new client as novel as possible, and a database's first public
    client no more surprising than that). An internal address owned by an account (`public_owner` false) the
    entity never talked to is 1 (an app server's first connection into another account: rare by nature); one of a
    known account is at most KNOWN_OWNER_NOVELTY (a database that failed over to another subnet of its own account
    is not another account's, however far its subnet is: IPAM pools interleave accounts' subnets)."""
    is_v6 = np.fromiter((":" in ip for ip in ips), dtype=bool, count=len(ips))
    full = np.where(is_v6, 64, 32)
    shared = np.minimum(nearest.shared_bits, full)
    block = private_block_bits(list(ips))
    inside = (block > 0) & (shared >= block)
    value = np.where(inside, 1.0 - (shared - block) / (full - block), 1.0 - shared / full)
    if organisation is not None and owner_known is not None:
        owned = np.asarray(organisation) >= 0
        public = owned if public_owner is None else owned & public_owner
        value = np.where(owned & owner_known, np.minimum(value, KNOWN_OWNER_NOVELTY), value)
        value = np.where(owned & ~public & ~owner_known, 1.0, value)
    return np.where(nearest.shared_bits < 0, 1.0, value)


def _days(times: np.ndarray, origin_ms: int) -> np.ndarray:
    return ((times - origin_ms) // DAY_MS).astype(np.int64)


def new_pairs(pairs: Pairs, start_ms: int) -> Pairs:
    """Distinct pairs from start_ms on whose address the entity had not met before start_ms."""
    before = pairs.where(pairs.time < start_ms)
    after = pairs.where(pairs.time >= start_ms).distinct()
    names, codes = factorize(before.entity)
    known = History.of_codes(names, codes, before.high, before.low, before.time)
    nearest = known.nearest(after.entity.tolist(), after.ip.tolist())
    return after.where(novelty(nearest, after.ip.tolist()) > 0)


def model_calibration(entities: Sequence[str], dots: np.ndarray, settings: DetectorSettings) -> TailTable:
    """How low the model scores each entity's new pairs on a day it was not trained on (pairs without a score are
    left out)."""
    finite = np.isfinite(dots)
    kept = [e for e, keep in zip(entities, finite.tolist(), strict=True) if keep]
    return TailTable.build(
        kept, [role_of(e) for e in kept], dots[finite], False, settings.model_prior_weight, conformal=True
    )


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
        pairs: Pairs,
        model_scores: ModelScores | None,
        calibration_start_ms: int,
        settings: DetectorSettings | None = None,
        networks: NetworkTable | None = None,
        book: AddressBook | None = None,
    ) -> Detector:
        """`pairs`: all history; the model must not have seen times >= calibration_start_ms (its held-out day);
        `networks`: who owns public addresses (used when settings.use_networks); `book`: which account had each
        internal address (used when settings.use_address_book)."""
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
        day = _days(pairs.time, origin)
        last = int(day.max())
        observed_entities: list[np.ndarray] = []
        observed_ips: list[np.ndarray] = []
        observed_novelty: list[np.ndarray] = []
        first_day = max(1, settings.min_history_days, last - settings.novelty_days + 1)
        for current in range(min(first_day, last), last + 1):
            before = pairs.where(day < current)
            today = pairs.where(day == current).distinct()
            if len(before) == 0 or len(today) == 0:
                continue
            ips = today.ip.tolist()
            memory = Memory.build(before, settings.compare_with_peer_group, settings.young_workload_days, ownership)
            lookup = memory.nearest(today.entity.tolist(), ips)
            comparable = lookup.nearest.shared_bits >= 0  # a new role or a group with no history: the rules' business
            values = novelty(lookup.nearest, ips, lookup.organisation, lookup.owner_known, lookup.public_owner)
            observed_novelty.append(values[comparable])
            observed_entities.append(today.entity[comparable])
            observed_ips.append(today.ip[comparable])
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
        memory = Memory.build(pairs, settings.compare_with_peer_group, settings.young_workload_days, ownership)
        trained = frozenset(np.unique(pairs.entity[pairs.time < calibration_start_ms]).tolist())
        return Detector(memory, novelty_table, model_table, trained, settings)

    def with_false_positive_rate(self, rate: float) -> Detector:
        """The same fitted detector flagging at another false positive rate."""
        settings = dataclasses.replace(self.settings, false_positive_rate=rate)
        return Detector(self.memory, self.novelty_table, self.model_table, self.model_entities, settings)

    def score(self, entities: Sequence[str], ips: Sequence[str], dots: np.ndarray | None) -> dict[str, np.ndarray]:
        """Parts, total surprisal and evidence for row-aligned pairs (one array per column); `dots` from the model
        (None: novelty only)."""
        entities = list(entities)
        ips = list(ips)
        roles = [role_of(e) for e in entities]
        lookup = self.memory.nearest(entities, ips)
        nearest = lookup.nearest
        values = novelty(nearest, ips, lookup.organisation, lookup.owner_known, lookup.public_owner)
        novelty_part = np.zeros(len(ips))
        if self.settings.use_novelty:
            keys, role_keys = novelty_keys(entities, ips, self.settings, self.novelty_table.by_role)
            novelty_part = self.novelty_table.surprisal(keys, role_keys, values)
        model_speaks = np.zeros(len(ips), dtype=bool)
        model_part = np.zeros(len(ips))
        if dots is not None and self.model_table is not None and self.settings.use_model:
            model_speaks = np.fromiter((e in self.model_entities for e in entities), dtype=bool, count=len(ips))
            model_part = np.where(model_speaks, self.model_table.surprisal(entities, roles, dots), 0.0)
        fleet = fleet_workloads(entities, ips, values > 0)
        decision = decide(novelty_part, model_part, model_speaks, lookup.new_role, fleet, self.settings)
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
            "new_role": lookup.new_role,
            "fleet_workloads": fleet,
            "fleet_change": decision.fleet_change,
            "shared_prefix_bits": nearest.shared_bits,
            "nearest_first_seen_ms": nearest.first_seen_ms,
            "known_addresses": nearest.known_addresses,
            "compared_with_peer_group": lookup.from_group,
            "network_owner": lookup.organisation,
            "owner_known": lookup.owner_known,
        }
