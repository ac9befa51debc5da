"""Who owns an address (a public network's organisation, an internal address's account), and which owners each
entity talked to before: one sorted key per (entity id, owner), so "has this workload ever talked to Google, or to
account 222233334444?" is one binary search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from scripts.detect.history import address_keys
from scripts.detect.networks import NO_OWNER

if TYPE_CHECKING:
    from scripts.detect.addressbook import AddressBook
    from scripts.detect.networks import NetworkTable

_SHIFT = np.int64(20)  # organisations fit in 20 bits (the GeoLite2 data has about 72,000 names)
MAX_ORGANISATIONS = 1 << 20


class KnownOwners:
    """Sorted distinct keys `entity id << 20 | organisation` for the entity ids of one History."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.asarray(keys, dtype=np.int64)

    @staticmethod
    def of(entity_ids: np.ndarray, organisations: np.ndarray) -> KnownOwners:
        """From row-aligned entity ids and organisation codes; rows without an owner (-1) are left out."""
        owned = np.asarray(organisations) >= 0
        if owned.any() and int(np.max(organisations)) >= MAX_ORGANISATIONS:
            message = (
                f"a network table with {int(np.max(organisations)) + 1} organisations; at most {MAX_ORGANISATIONS}"
            )
            raise ValueError(message)
        keys = (np.asarray(entity_ids, dtype=np.int64)[owned] << _SHIFT) | np.asarray(organisations)[owned]
        return KnownOwners(np.unique(keys))

    def entity_range(self, start: int, end: int) -> KnownOwners:
        """The keys of entity ids start..end-1 alone, renumbered from 0 (as History.entity_range renumbers them)."""
        bounds = np.searchsorted(self.keys, np.asarray([start, end], dtype=np.int64) << _SHIFT)
        return KnownOwners(self.keys[bounds[0] : bounds[1]] - (np.int64(start) << _SHIFT))

    def knows(self, entity_ids: np.ndarray, organisations: np.ndarray) -> np.ndarray:
        """Whether each entity id (-1: unseen) talked to each organisation (-1: none) before."""
        ids = np.asarray(entity_ids, dtype=np.int64)
        organisations = np.asarray(organisations, dtype=np.int64)
        if len(self.keys) == 0 or len(ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        query = (np.maximum(ids, 0) << _SHIFT) | np.maximum(organisations, 0)
        position = np.clip(np.searchsorted(self.keys, query), 0, len(self.keys) - 1)
        return np.asarray((self.keys[position] == query) & (ids >= 0) & (organisations >= 0), dtype=bool)


class Ownership:
    """Who owns an address, as one code per address: a public address's organisation from the network table (codes
    0..n-1), an address in the address book its holder's account (codes n..): "first connection from this workload
    to Google" and "first connection from this workload to account 222233334444" are the same question."""

    def __init__(self, networks: NetworkTable | None, book: AddressBook | None) -> None:
        self.networks = networks
        self.book = book
        self.offset = len(networks.organisations) if networks is not None else 0
        accounts = len(book.accounts) if book is not None else 0
        if self.offset + accounts > MAX_ORGANISATIONS:
            message = f"{self.offset} organisations and {accounts} accounts; at most {MAX_ORGANISATIONS} owners"
            raise ValueError(message)

    def codes(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """The owner of each address (-1: none known); see `attribute`."""
        return self.attribute(high, low)[0]

    def attribute(self, high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The owner of each address (-1: none known), and which addresses the book never saw but attributes to a
        subnet by their neighbours (an instance launched since the history). The address book wins over the network
        table, and an address it never saw in a subnet it knows (AddressBook.neighbour_rows) is that subnet's
        account's. One lookup of the book for both."""
        codes = np.full(len(high), NO_OWNER, dtype=np.int64)
        fresh = np.zeros(len(high), dtype=bool)
        if self.networks is not None:
            codes = self.networks.organisation_codes(high, low)
        if self.book is not None:
            booked = self.book.rows(high, low)
            neighbours = self.book.neighbour_rows(high, low, booked)
            fresh = neighbours >= 0
            rows = np.where(booked >= 0, booked, neighbours)
            codes = np.where(rows >= 0, self.offset + self.book.account_codes[np.maximum(rows, 0)], codes)
        return codes, fresh

    def account_codes(self, accounts: Sequence[str]) -> np.ndarray:
        """The owner code of each account (-1: not an account of the address book)."""
        if self.book is None:
            return np.full(len(accounts), NO_OWNER, dtype=np.int64)
        index = {account: self.offset + position for position, account in enumerate(self.book.accounts)}
        return np.asarray([index.get(account, NO_OWNER) for account in accounts], dtype=np.int64)

    def public(self, codes: np.ndarray) -> np.ndarray:
        """Which codes are organisations of the network table (not accounts of the address book)."""
        return np.asarray((codes >= 0) & (codes < self.offset), dtype=bool)

    def describe(self, ips: Sequence[str]) -> list[str | None]:
        """Each address's owner in words: `Google (GOOGLE-CLOUD-PLATFORM, cloud)`, `i-0abc in vpc-1 (subnet-2),
        account 222233334444, us-east-1`, or None."""
        _, high, low = address_keys(list(ips))
        described: list[str | None] = [None] * len(high)
        if self.networks is not None:
            owners = self.networks.owners_of(high, low)
            for index, (organisation, name) in enumerate(zip(owners.organisation, owners.name, strict=True)):
                described[index] = self.networks.describe(int(organisation), str(name)) or None
        if self.book is not None:
            neighbours = self.book.neighbour_rows(high, low).tolist()
            for index, row in enumerate(self.book.rows(high, low).tolist()):
                holder = self.book.holder(row)
                if holder is not None:
                    described[index] = holder.describe()
                elif (neighbour := self.book.holder(neighbours[index])) is not None:
                    described[index] = neighbour.describe_neighbourhood()
        return described
