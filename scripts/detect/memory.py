"""What the detector remembers: the pairs of the history (each once per day), each entity's and each peer group's
known addresses, who owns them, and which roles each workload had."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scripts.detect.history import History, Nearest, address_keys, factorize, pack_keys, prefix_range
from scripts.detect.networks import NO_OWNER
from scripts.detect.owners import KnownOwners, Ownership
from scripts.detect.settings import DAY_MS
from scripts.entity import account_of, account_prefix, base_entity, peer_group, role_of
from scripts.pairs.mapping import ANSWER_ROLE

ROLE_SET_SEPARATOR = "|"  # between the account and its roles in a role set: `<account>|<role>,<role>`


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
    own_account: np.ndarray  # the address is an account's of the address book: the entity's own account
    unknown_workload: np.ndarray  # the entity's workload never appeared in the history (launched since)


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
    A DNS answer (ANSWER_ROLE) is never a new role: resolver caches and query logging that starts late make a
    workload's first recorded lookup no new behaviour, so its first answers are compared with its peer group's.
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
            {
                f"{account_of(w)}{ROLE_SET_SEPARATOR}{','.join(sorted(held))}"
                for w, held in roles.items()
                if w in mature and len(held) > 1
            }
        )
        owners = None
        if ownership is not None:
            organisation = pairs.organisation
            if organisation is None:
                organisation = ownership.codes(pairs.high, pairs.low)
            owners = (KnownOwners.of(codes, organisation), KnownOwners.of(group_of_name[codes], organisation))
        role_sets = np.asarray(sets, dtype=str)
        return Memory(history, groups, workloads, with_group, accounts, established, role_sets, ownership, owners)

    def for_account(self, account: str) -> Memory:
        """What the memory knows of one account's entities, peer groups, fleet and workloads, with the organisation's
        ownership: every lookup for an entity of the account answers as the whole memory would."""
        prefix = account_prefix(account)
        history, first_entity = self.history.with_prefix(prefix)
        groups, first_group = self.groups.with_prefix(prefix)
        accounts = None
        if self.accounts is not None:
            start = int(np.searchsorted(self.accounts.entities, account, side="left"))
            end = int(np.searchsorted(self.accounts.entities, account, side="right"))
            accounts = self.accounts.entity_range(start, end)
        workloads = slice(*prefix_range(self.workloads, prefix))
        role_sets = self.role_sets[np.char.startswith(self.role_sets, f"{account}{ROLE_SET_SEPARATOR}")]
        owners = (
            self.owners[0].entity_range(first_entity, first_entity + len(history.entities)),
            self.owners[1].entity_range(first_group, first_group + len(groups.entities)),
        )
        return Memory(
            history,
            groups,
            self.workloads[workloads],
            self.with_group,
            accounts,
            self.established[workloads],
            role_sets,
            self.ownership,
            owners,
        )

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
                account, _, held = text.partition(ROLE_SET_SEPARATOR)
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
        return known & self.established[position] if len(self.workloads) and len(position) else known

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
        answers = np.fromiter((role_of(e) == ANSWER_ROLE for e in entities), dtype=bool, count=len(entities))
        new_role = unseen & (established | (young & ~usual)) & ~answers
        new_workload = unseen & ~new_role
        nearer = group.shared_bits > own.shared_bits
        use_group = new_workload | (nearer & ~new_role & self.with_group)
        organisation, owner_known, fresh = self._owners(entities, ips, new_workload | (~new_role & self.with_group))
        public = self.ownership.public(organisation) if self.ownership is not None else organisation >= 0
        own_account = np.zeros(len(entities), dtype=bool)
        if self.ownership is not None:
            own_account = organisation == self.ownership.account_codes([account_of(e) for e in entities])
        own_account &= organisation >= 0
        # in a role it never had, a workload knows no owner by that role's history; its own account's instance
        # launched since the history (a service deployed today) it knows as its account's. An established host of
        # its account in a new role (SSH to a database: lateral movement) stays unknown by that role
        owner_known = owner_known | (new_role & own_account & fresh)
        return Lookup(
            _choose(own, group, use_group),
            use_group & (group.shared_bits >= 0),
            new_role,
            organisation,
            owner_known,
            public,
            own_account,
            ~self.knows_workload(entities),
        )

    def _owners(self, entities: list[str], ips: Sequence[str], group_counts: np.ndarray) -> tuple[np.ndarray, ...]:
        """Each address's organisation, and whether the entity, or its peer group where `group_counts`, met it."""
        if self.ownership is None:
            none = np.zeros(len(entities), dtype=bool)
            return np.full(len(entities), NO_OWNER, dtype=np.int64), none, none
        _, high, low = address_keys(list(ips))
        organisation, fresh = self.ownership.attribute(high, low)
        own, group = self.owners
        by_entity = own.knows(self.history.entity_ids(entities), organisation)
        by_group = group.knows(self.groups.entity_ids([peer_group(e) for e in entities]), organisation)
        return organisation, by_entity | (by_group & group_counts), fresh


@dataclass(frozen=True)
class Pairs:
    """(entity, ip, time) rows as arrays, each address parsed once (its high and low 64 bits, IPv4 mapped), its
    owner's code once there is an ownership (`with_owners`), and the bytes the entity sent on the row when the
    source says (`bytes_out`; None: a history written before the pairs carried bytes)."""

    entity: np.ndarray
    ip: np.ndarray
    time: np.ndarray
    high: np.ndarray
    low: np.ndarray
    organisation: np.ndarray | None = None
    bytes_out: np.ndarray | None = None

    @staticmethod
    def of(
        entities: Sequence[str],
        ips: Sequence[str],
        times: Sequence[int] | np.ndarray,
        bytes_out: Sequence[int] | np.ndarray | None = None,
    ) -> Pairs:
        """Raises scripts.addresses.AddressError naming the first value that is not an address."""
        ip = np.asarray(list(ips), dtype=object)
        _, high, low = address_keys(ip.tolist())
        sent = np.asarray(bytes_out, dtype=np.int64) if bytes_out is not None else None
        return Pairs(
            np.asarray(list(entities), dtype=object), ip, np.asarray(times, dtype=np.int64), high, low, None, sent
        )

    def __len__(self) -> int:
        return len(self.entity)

    def where(self, mask: np.ndarray) -> Pairs:
        organisation = self.organisation[mask] if self.organisation is not None else None
        sent = self.bytes_out[mask] if self.bytes_out is not None else None
        return Pairs(
            self.entity[mask], self.ip[mask], self.time[mask], self.high[mask], self.low[mask], organisation, sent
        )

    def plus(self, other: Pairs) -> Pairs:
        """These rows, then `other`'s (which sent nothing where these carry bytes); owners are looked up again."""

        def sent(pairs: Pairs) -> np.ndarray:
            return pairs.bytes_out if pairs.bytes_out is not None else np.zeros(len(pairs), dtype=np.int64)

        return Pairs(
            np.concatenate([self.entity, other.entity]),
            np.concatenate([self.ip, other.ip]),
            np.concatenate([self.time, other.time]),
            np.concatenate([self.high, other.high]),
            np.concatenate([self.low, other.low]),
            None,
            np.concatenate([sent(self), sent(other)]) if self.bytes_out is not None else None,
        )

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
