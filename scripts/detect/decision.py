"""How a pair becomes an alert: novelty and the model's score turned into surprisals calibrated per entity, the sum
judged against the false positive rate, fleet-wide changes counted."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

import numpy as np

from scripts.addresses import private_block_bits
from scripts.detect.calibration import TailTable
from scripts.detect.history import History, Nearest, factorize
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, KNOWN_OWNER_NOVELTY, DetectorSettings
from scripts.entity import SERVER_SIDE, account_of, base_entity, role_of, side_of
from scripts.pairs.mapping import ANSWER_ROLE

INTERNAL = "internal/"
ROTATED_ANSWER_SEVERITY = "Low"


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


def fleet_workloads(
    entities: Sequence[str], ips: Sequence[str], novel: np.ndarray, by_role: bool = False
) -> np.ndarray:
    """For each pair, how many workloads of its account met its address for the first time in the batch: a fleet
    change is one account's service moving, and another account's workload meeting the same address (an attacker
    reaching a database that just failed over) is not part of it. `by_role`: only those that met it in the pair's
    own role (how many took that role towards the address at once)."""
    workloads = np.asarray([base_entity(e) for e in entities], dtype=str)
    keys = np.asarray([fleet_key(e, ip, by_role) for e, ip in zip(entities, ips, strict=True)], dtype=str)
    if len(keys) == 0 or not novel.any():
        return np.zeros(len(keys), dtype=np.int64)
    distinct = np.unique(np.stack([keys[novel], workloads[novel]], axis=1), axis=0)
    met, counts = np.unique(distinct[:, 0], return_counts=True)
    position = np.clip(np.searchsorted(met, keys), 0, len(met) - 1)
    return np.where(met[position] == keys, counts[position], 0).astype(np.int64)


def fleet_key(entity: str, ip: str, by_role: bool = False) -> str:
    """`<account>|<ip>`, or `<account>|<role>|<ip>` by role: what the fleet-change rule counts workloads under."""
    return f"{account_of(entity)}|{role_of(entity)}|{ip}" if by_role else f"{account_of(entity)}|{ip}"


def novelty(
    nearest: Nearest,
    ips: Sequence[str],
    organisation: np.ndarray | None = None,
    owner_known: np.ndarray | None = None,
    public_owner: np.ndarray | None = None,
    serving: np.ndarray | None = None,
    served_cap: float = 1.0,
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
    is not another account's, however far its subnet is: IPAM pools interleave accounts' subnets).

    `serving` (the entity answers connections: a `server:` role) caps a public address of an owner it already serves
    at `served_cap`: a public web server's new client from an ISP whose customers it serves every day is ordinary
    however far from the clients it met, while a client from a network no client ever came from keeps its novelty."""
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
        if serving is not None:
            value = np.where(owned & public & owner_known & serving, np.minimum(value, served_cap), value)
    return np.where(nearest.shared_bits < 0, 1.0, value)


def serving_entities(entities: Sequence[str]) -> np.ndarray:
    """Whether each entity answers connections (its role's side is `server`)."""
    return np.fromiter((side_of(e) == SERVER_SIDE for e in entities), dtype=bool, count=len(entities))


def deployed_service(serving: np.ndarray, unknown_workload: np.ndarray, own_account: np.ndarray) -> np.ndarray:
    """Pairs of a workload the history never saw (launched since) answering a workload of its own account: a
    service being deployed (its callers are judged on their own side, where a new role or a fleet change shows);
    novelty is at most served_owner_novelty. A new instance answering the internet, or another account, keeps its
    novelty, and so does anything it opens."""
    return np.asarray(serving & unknown_workload & own_account, dtype=bool)


def days_since(times: np.ndarray, origin_ms: int) -> np.ndarray:
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


def known_owner_changes(fleet: np.ndarray, owner_known: np.ndarray | None, settings: DetectorSettings) -> np.ndarray:
    """Pairs whose address's owner the workloads already talk to and that known_owner_fleet_workloads or more
    workloads met first (`fleet`): a rollout of a provider's service, grouped before the account-wide five."""
    if owner_known is None or settings.known_owner_fleet_workloads <= 0:
        return np.zeros(len(fleet), dtype=bool)
    return np.asarray(owner_known & (fleet >= settings.known_owner_fleet_workloads), dtype=bool)


def rotated_answers(
    entities: Sequence[str],
    owner_known: np.ndarray | None,
    settings: DetectorSettings,
    known_name: np.ndarray | None = None,
) -> np.ndarray:
    """DNS answers (ANSWER_ROLE pairs) of an address whose owner the workload (or its peer group) already talks to,
    or of a name its account asked for before (`known_name`): a provider's or a name's answers rotate, and the
    connection that may follow is judged by its flow pair. Flagged ones are written Low, not alerted: a new SaaS
    resolved by the first servers of a rollout, before the day's count makes it a fleet change, is not an alert; a
    name never asked for, answered from an owner never met, still is."""
    if owner_known is None or not settings.answers_of_known_owners_low:
        return np.zeros(len(entities), dtype=bool)
    answers = np.fromiter((role_of(e) == ANSWER_ROLE for e in entities), dtype=bool, count=len(entities))
    known = owner_known if known_name is None else owner_known | known_name
    return np.asarray(answers & known, dtype=bool)


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
    owner_known: np.ndarray | None = None,
    large_upload: np.ndarray | None = None,
    role_fleet: np.ndarray | None = None,
) -> Decision:
    """Combine the parts and apply the rules.

    Surprisal: where the model knows the entity, -ln P(a sum this large) of the two parts, t - ln(1 + t) for their
    sum t (two independent Exp(1) surprisals sum to a Gamma(2, 1)); elsewhere the novelty part alone. A known
    workload in a role it never had is flagged whatever the surprisal (when flag_new_roles). An address that several
    workloads met for the first time in the same batch (fleet_change_workloads or more) is a fleet-wide change, a
    service moving, reported once as such: its score is divided among them (minus ln n) and it is not flagged per
    workload. An address whose owner the workloads already talk to (`owner_known`: a provider, an account) is one
    from known_owner_fleet_workloads on: a rollout reaches a few servers in the day's first object, and the grouped
    finding is Low for such an owner (scripts/detect/fleet.py). A large first upload (`large_upload`,
    scripts/detect/volume.py) is flagged whatever the surprisal, and is never part of a fleet change: data leaving in
    volume to an address never met, from several workloads at once, is a worm's exfiltration as much as a rollout.
    A pair in a role its workload never had joins a fleet change only when as many workloads met the address in that
    same role (`role_fleet`): an autoscaled instance launched today is met by its load balancer and databases at once,
    and the SSH session it opens to a server that never served SSH is not part of that.
    """
    threshold = float(-np.log(settings.false_positive_rate))
    use_model = model_speaks & settings.use_model
    both = novelty_part + model_part
    surprisal = np.where(use_model, both - np.log1p(both), novelty_part)
    roles = new_role & settings.flag_new_roles
    forced = roles if large_upload is None else roles | large_upload
    score = np.where(forced, np.maximum(surprisal, threshold), surprisal)
    if settings.fleet_change_workloads > 0:
        fleet_change = fleet >= settings.fleet_change_workloads
    else:
        fleet_change = np.zeros(len(fleet), dtype=bool)
    fleet_change = fleet_change | known_owner_changes(fleet, owner_known, settings)
    if large_upload is not None:  # a large first upload is its own finding, whoever else met the address
        fleet_change = fleet_change & ~large_upload
    if role_fleet is not None:  # a new role joins a fleet change only when the fleet took that role towards it too
        shared = (role_fleet >= max(settings.fleet_change_workloads, 1)) | known_owner_changes(
            role_fleet, owner_known, settings
        )
        fleet_change = fleet_change & (~new_role | shared)
    score = np.where(fleet_change, score - np.log(np.maximum(fleet, 1)), score)
    return Decision(surprisal, score, (score >= threshold) & ~fleet_change, fleet_change)
