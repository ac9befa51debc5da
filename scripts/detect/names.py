"""Which names the organisation asks Route 53 for: per account and name, since when (the preprocessing step's
history/names.parquet), as sorted arrays.

A DNS answer's name tells what a new address is. A name the account has asked for since before today answering
from an address the workload never met is the name's addresses rotating (a CDN, S3, a SaaS); a name no account of
the organisation ever asked for (a bucket of someone else's, a fresh command-and-control domain) is new in a way
the address alone cannot say. Lookups are one binary search per name; the size grows with the names asked, not with
the queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from scripts.detect.history import prefix_range
from scripts.detect.tunnelling import base_domain

UNKNOWN = -1
ARRAY_PREFIX = "names"
KEY_SEPARATOR = "|"  # between the account and the name in a key: no DNS name has one


def _first_seen(keys: np.ndarray, first: np.ndarray, query: Sequence[str]) -> np.ndarray:
    wanted = np.asarray(list(query), dtype=str)
    if len(keys) == 0 or len(wanted) == 0:
        return np.full(len(wanted), UNKNOWN, dtype=np.int64)
    position = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
    return np.where(keys[position] == wanted, first[position], UNKNOWN).astype(np.int64)


@dataclass(frozen=True)
class NameSighting:
    """When the entity's account first asked for the name, and when any account of the organisation did (UNKNOWN:
    never, in the history)."""

    account_first_ms: np.ndarray
    organisation_first_ms: np.ndarray


@dataclass(frozen=True)
class KnownNames:
    """Sorted `<account>|<name>` keys and sorted names, each with the first time it was answered."""

    account_keys: np.ndarray
    account_first_ms: np.ndarray
    names: np.ndarray
    names_first_ms: np.ndarray

    @staticmethod
    def of_rows(accounts: Sequence[str], names: Sequence[str], first_seen_ms: Sequence[int] | np.ndarray) -> KnownNames:
        """From rows of history/names.parquet (an account and name once each)."""
        first = np.asarray(first_seen_ms, dtype=np.int64)
        keys = np.asarray([f"{a}{KEY_SEPARATOR}{n}" for a, n in zip(accounts, names, strict=True)], dtype=str)
        order = np.argsort(keys, kind="stable")
        every = np.asarray(list(names), dtype=str)
        distinct, inverse = np.unique(every, return_inverse=True) if len(every) else (every, np.zeros(0, np.int64))
        earliest = np.full(len(distinct), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(earliest, inverse.reshape(-1), first)
        return KnownNames(keys[order], first[order], np.asarray(distinct, dtype=str), earliest)

    @staticmethod
    def of_table(table: Any) -> KnownNames:
        """From history/names.parquet read with pyarrow."""
        return KnownNames.of_rows(
            table.column("account").to_pylist(),
            table.column("name").to_pylist(),
            table.column("first_seen_ms").to_numpy(zero_copy_only=False),
        )

    def before(self, moment_ms: int) -> KnownNames:
        """The names as they stood before `moment_ms` (what a detector fitted then knew)."""
        mine = self.account_first_ms < moment_ms
        ours = self.names_first_ms < moment_ms
        return KnownNames(
            self.account_keys[mine], self.account_first_ms[mine], self.names[ours], self.names_first_ms[ours]
        )

    def sighting(self, accounts: Sequence[str], names: Sequence[str]) -> NameSighting:
        keys = [f"{a}{KEY_SEPARATOR}{n}" for a, n in zip(accounts, names, strict=True)]
        return NameSighting(
            _first_seen(self.account_keys, self.account_first_ms, keys),
            _first_seen(self.names, self.names_first_ms, names),
        )

    @cached_property
    def account_domains(self) -> frozenset[str]:
        """`<account>|<domain>` of every domain (scripts/detect/tunnelling.py's base_domain) an account asked for,
        built once per loaded detector."""
        domains = set()
        for key in self.account_keys.tolist():
            account, _, name = key.partition(KEY_SEPARATOR)
            domains.add(f"{account}{KEY_SEPARATOR}{base_domain(name)}")
        return frozenset(domains)

    @cached_property
    def organisation_domains(self) -> frozenset[str]:
        """Every domain any account of the organisation asked for."""
        return frozenset(base_domain(name) for name in self.names.tolist())

    def account_asked_domain(self, account: str, domain: str) -> bool:
        return f"{account}{KEY_SEPARATOR}{domain}" in self.account_domains

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            f"{ARRAY_PREFIX}.account_keys": self.account_keys,
            f"{ARRAY_PREFIX}.account_first_ms": self.account_first_ms,
            f"{ARRAY_PREFIX}.names": self.names,
            f"{ARRAY_PREFIX}.names_first_ms": self.names_first_ms,
        }

    def for_account(self, account: str) -> KnownNames:
        """The account's own names, and every name of the organisation (the question "did any account ever ask?")."""
        mine = slice(*prefix_range(self.account_keys, f"{account}{KEY_SEPARATOR}"))
        return KnownNames(self.account_keys[mine], self.account_first_ms[mine], self.names, self.names_first_ms)

    @staticmethod
    def of_arrays(arrays: dict[str, np.ndarray]) -> KnownNames | None:
        """From `arrays()`'s output; None for an artifact saved without names."""
        if f"{ARRAY_PREFIX}.account_keys" not in arrays:
            return None
        return KnownNames(
            arrays[f"{ARRAY_PREFIX}.account_keys"],
            arrays[f"{ARRAY_PREFIX}.account_first_ms"],
            arrays[f"{ARRAY_PREFIX}.names"],
            arrays[f"{ARRAY_PREFIX}.names_first_ms"],
        )
