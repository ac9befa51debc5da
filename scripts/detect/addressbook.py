"""The organisation's address book, learned from the lake: which account, VPC, subnet and workload had each address
the flow logs were logged on (the preprocessing step's history/address_book.parquet), as sorted arrays.

An address that moved (an ENI deleted, its address reused) is booked to its latest holder. Lookups are one binary
search per address; the book's size grows with the organisation's addresses, not with its traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scripts.detect.history import address_keys
from scripts.detect.networks import START_DTYPE, NetworkTableError, blob_text, pack_starts, text_blob

NOT_BOOKED = -1
BOOK_FIELDS = ("account", "region", "vpc", "subnet", "workload")
# An address the book never saw belongs to the subnet of its booked neighbours when they share its /24 (IPv4; /64 for
# IPv6) and agree on the subnet: an instance launched today in a known subnet is its account's.
V4_SUBNET_SHIFT = np.uint64(8)
_V4_MAPPED_HIGH_WORD = np.uint64(0xFFFF)
_WORDS = np.dtype(">u8")


@dataclass(frozen=True)
class Holder:
    """Who had an address: the workload (instance, else ENI), its VPC and subnet, account and region."""

    account: str
    region: str
    vpc: str
    subnet: str
    workload: str

    def describe(self) -> str:
        """`i-0abc in vpc-1 (subnet-2), account 111122223333, us-east-1`."""
        where = f" in {self.vpc}" if self.vpc else ""
        subnet = f" ({self.subnet})" if self.subnet else ""
        parts = [f"{self.workload}{where}{subnet}", f"account {self.account}", self.region]
        return ", ".join(part for part in parts if part)

    def describe_neighbourhood(self) -> str:
        """An address never booked, in this holder's subnet: `an address new to the book in subnet-2 of vpc-1,
        account 111122223333, us-east-1`."""
        where = f" in {self.subnet or 'a subnet'}" + (f" of {self.vpc}" if self.vpc else "")
        parts = [f"an address new to the book{where}", f"account {self.account}", self.region]
        return ", ".join(part for part in parts if part)


class AddressBook:
    """Sorted address keys and, per key, its holder's fields (strings) and its account's index in `accounts`."""

    def __init__(self, keys: np.ndarray, fields: Mapping[str, Sequence[str]]) -> None:
        self.keys = np.asarray(keys, dtype=START_DTYPE)
        self.fields = {name: list(fields[name]) for name in BOOK_FIELDS}
        self.accounts = sorted(set(self.fields["account"]))
        index = {account: position for position, account in enumerate(self.accounts)}
        self.account_codes = np.asarray([index[a] for a in self.fields["account"]], dtype=np.int64)
        subnets = [f"{a}|{s}" for a, s in zip(self.fields["account"], self.fields["subnet"], strict=True)]
        self.subnet_codes = np.unique(np.asarray(subnets, dtype=str), return_inverse=True)[1].reshape(-1)
        words = self.keys.view(_WORDS).reshape(-1, 2) if len(self.keys) else np.zeros((0, 2), dtype=_WORDS)
        self.high, self.low = words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)

    @staticmethod
    def of_rows(
        ips: Sequence[str], last_seen_ms: Sequence[int] | np.ndarray, fields: Mapping[str, Sequence[str | None]]
    ) -> AddressBook:
        """From rows of history/address_book.parquet (text addresses); each address booked to its latest holder.
        Raises scripts.addresses.AddressError naming the first value that is not an address."""
        _, high, low = address_keys(list(ips))
        keys = pack_starts(high, low)
        last = np.asarray(last_seen_ms, dtype=np.int64)
        order = np.lexsort((last, keys))  # by address, then by last seen: the last row of each address is its latest
        sorted_keys = keys[order]
        latest = np.concatenate([sorted_keys[1:] != sorted_keys[:-1], [True]]) if len(keys) else np.zeros(0, bool)
        chosen = order[latest]
        return AddressBook(
            sorted_keys[latest], {name: [str(fields[name][i] or "") for i in chosen.tolist()] for name in BOOK_FIELDS}
        )

    @staticmethod
    def of_table(table: Any) -> AddressBook:
        """From a pyarrow table with the columns of history/address_book.parquet (ip, last_seen_ms, BOOK_FIELDS)."""
        fields = {name: table.column(name).to_pylist() for name in BOOK_FIELDS}
        return AddressBook.of_rows(table.column("ip").to_pylist(), table.column("last_seen_ms").to_numpy(), fields)

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """The book row of each address (-1: not booked), from parsed halves."""
        if len(self.keys) == 0 or len(high) == 0:
            return np.full(len(high), NOT_BOOKED, dtype=np.int64)
        query = pack_starts(high, low)
        position = np.clip(np.searchsorted(self.keys, query), 0, len(self.keys) - 1)
        return np.where(self.keys[position] == query, position, NOT_BOOKED).astype(np.int64)

    def neighbour_rows(self, high: np.ndarray, low: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """For each address the book does not hold, the row of a booked address of its /24 (IPv4) or /64 (IPv6) when
        every booked address there is of one account and subnet; -1 for a booked address, or one whose /24 the book
        has nothing of, or addresses of several subnets (subnets smaller than a /24). A subnet smaller than a /24
        whose neighbour subnet no flow has shown yet is the blind spot. `rows`: `self.rows(high, low)` when the caller
        has it already."""
        count = len(self.keys)
        rows = self.rows(high, low) if rows is None else rows
        found = np.full(len(high), NOT_BOOKED, dtype=np.int64)
        if count == 0 or len(high) == 0:
            return found
        is_v4 = (high == 0) & ((low >> np.uint64(32)) == _V4_MAPPED_HIGH_WORD)
        v4_mask = ~((np.uint64(1) << V4_SUBNET_SHIFT) - np.uint64(1))
        first_low = np.where(is_v4, low & v4_mask, np.uint64(0))
        last_low = np.where(is_v4, low | ~v4_mask, ~np.uint64(0))
        starts = np.searchsorted(self.keys, pack_starts(high, first_low), side="left")
        ends = np.searchsorted(self.keys, pack_starts(high, last_low), side="right")
        for index in np.flatnonzero((rows < 0) & (ends > starts)).tolist():
            codes = self.subnet_codes[starts[index] : ends[index]]
            if codes.min() == codes.max():
                found[index] = starts[index]
        return found

    def holder(self, row: int) -> Holder | None:
        if row < 0:
            return None
        return Holder(**{name: self.fields[name][row] for name in BOOK_FIELDS})

    def arrays(self, prefix: str = "book") -> dict[str, np.ndarray]:
        """Plain arrays (no objects) for an .npz; `of_arrays` reads them back."""
        return {f"{prefix}.keys": self.keys, **{f"{prefix}.{n}": text_blob(self.fields[n]) for n in BOOK_FIELDS}}

    @staticmethod
    def of_arrays(arrays: Any, prefix: str = "book", where: str = "the address book") -> AddressBook:
        try:
            keys = arrays[f"{prefix}.keys"]
            fields = {name: blob_text(arrays[f"{prefix}.{name}"]) for name in BOOK_FIELDS}
        except KeyError as error:
            message = f"{where} is not an address book: it lacks {error}"
            raise NetworkTableError(message) from None
        if any(len(values) != len(keys) for values in fields.values()):
            message = f"{where} is not a consistent address book ({len(keys)} addresses, fields of other lengths)"
            raise NetworkTableError(message)
        return AddressBook(keys, fields)
