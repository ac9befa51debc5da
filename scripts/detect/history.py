"""What each entity talked to before: the longest prefix a new address shares with any known one, and which one.

Numpy only (the fitting job runs in the scikit-learn image, which promises no pandas). Each known (entity, address)
is one 24-byte big-endian key (entity id, high and low 64 bits of the address), sorted: a lookup is a binary search,
so its cost grows with the log of the history, and a fitted history is saved and loaded as plain arrays.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scripts.addresses import address_arrays

_V4_MAPPED = np.uint64(0xFFFF_0000_0000)  # IPv4 addresses live in ::ffff:0:0/96, so one 128-bit order holds both
NO_HISTORY = -1
KEY_DTYPE = np.dtype("S24")
_WORDS = np.dtype(">u8")


def address_keys(ips: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Family, and the high and low 64 bits of each address, IPv4 placed in ::ffff:0:0/96."""
    families, high, low = address_arrays(ips)
    is_v4 = families == 4
    return families, np.where(is_v4, np.uint64(0), high), np.where(is_v4, low | _V4_MAPPED, low)


def bit_length(values: np.ndarray) -> np.ndarray:
    """The number of significant bits of each uint64 (0 for 0), exactly."""
    remaining = values.astype(np.uint64).copy()
    length = np.zeros(len(values), dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):
        above = remaining >= (np.uint64(1) << np.uint64(shift))
        length[above] += shift
        remaining[above] >>= np.uint64(shift)
    return length + (remaining > 0)


def shared_prefix_bits(
    families: np.ndarray, high: np.ndarray, low: np.ndarray, other_high: np.ndarray, other_low: np.ndarray
) -> np.ndarray:
    """Leading bits each address shares with its counterpart: 0..32 for IPv4, 0..128 for IPv6."""
    upper = high ^ other_high
    lower = low ^ other_low
    bits = np.where(upper > 0, 64 - bit_length(upper), 128 - bit_length(lower))
    return np.where(families == 4, np.clip(bits - 96, 0, 32), bits)


def pack_keys(entity_ids: np.ndarray, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """One sortable 24-byte key per (entity id, address): byte order is numeric order."""
    words = np.empty((len(entity_ids), 3), dtype=_WORDS)
    words[:, 0] = np.asarray(entity_ids, dtype=np.uint64)
    words[:, 1] = high
    words[:, 2] = low
    return words.reshape(-1).view(KEY_DTYPE)


def unpack_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entity ids, high and low halves of packed keys (native-endian copies)."""
    words = np.ascontiguousarray(keys, dtype=KEY_DTYPE).view(_WORDS).reshape(-1, 3)
    return (
        words[:, 0].astype(np.int64),
        words[:, 1].astype(np.uint64),
        words[:, 2].astype(np.uint64),
    )


def address_text(high: int, low: int) -> str:
    """The text of an address from its halves (IPv4 from ::ffff:0:0/96)."""
    value = (int(high) << 64) | int(low)
    if value >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(value))


def factorize(values: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values as a str array, the index of each value among them)."""
    array = np.asarray(values, dtype=object)
    if len(array) == 0:
        return np.asarray([], dtype=str), np.zeros(0, dtype=np.int64)
    uniques, codes = np.unique(array, return_inverse=True)
    return np.asarray(uniques.tolist(), dtype=str), codes.astype(np.int64).reshape(-1)


def prefix_range(sorted_values: np.ndarray, prefix: str) -> tuple[int, int]:
    """[start, end) of the values starting with `prefix` in a sorted str array: values sharing a prefix are
    contiguous in sorted order."""
    start = int(np.searchsorted(sorted_values, prefix))
    end = int(np.searchsorted(sorted_values, prefix + "\U0010ffff"))
    return start, end


@dataclass(frozen=True)
class Nearest:
    """For each queried pair: bits shared with the nearest known address (-1: entity unseen), and that address."""

    shared_bits: np.ndarray
    nearest_high: np.ndarray
    nearest_low: np.ndarray
    known_addresses: np.ndarray
    first_seen_ms: np.ndarray

    def nearest_ip(self, index: int) -> str | None:
        """The nearest known address of one queried pair, as text; None when the entity has no history."""
        if self.first_seen_ms[index] < 0:
            return None
        return address_text(int(self.nearest_high[index]), int(self.nearest_low[index]))


class History:
    """Distinct (entity, address) pairs seen before, sorted by entity then address, with when each was first seen."""

    def __init__(self, entities: Sequence[str], ips: Sequence[str], times_ms: Sequence[int] | np.ndarray) -> None:
        names, entity_id = factorize(entities)
        _, high, low = address_keys(list(ips))
        self._build(names, entity_id, high, low, np.asarray(times_ms, dtype=np.int64))

    @classmethod
    def of_codes(
        cls, names: np.ndarray, codes: np.ndarray, high: np.ndarray, low: np.ndarray, times_ms: np.ndarray
    ) -> History:
        """From addresses already parsed: entity `names[codes[i]]` met address (high[i], low[i]) at times_ms[i]."""
        history = cls.__new__(cls)
        history._build(np.asarray(names, dtype=str), codes, high, low, np.asarray(times_ms, dtype=np.int64))
        return history

    def _build(
        self, names: np.ndarray, entity_id: np.ndarray, high: np.ndarray, low: np.ndarray, times: np.ndarray
    ) -> None:
        order = np.lexsort((times, low, high, entity_id))
        keys = pack_keys(entity_id[order], high[order], low[order])
        first = np.concatenate([[True], keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, bool)
        self._set(names, keys[first], times[order][first])

    @classmethod
    def from_arrays(cls, entities: np.ndarray, keys: np.ndarray, first_seen_ms: np.ndarray) -> History:
        """A history saved with `arrays()`: no sorting, no parsing."""
        history = cls.__new__(cls)
        history._set(np.asarray(entities, dtype=str), np.asarray(keys, dtype=KEY_DTYPE), first_seen_ms)
        return history

    def _set(self, entities: np.ndarray, keys: np.ndarray, first_seen_ms: np.ndarray) -> None:
        """Only the sorted keys and first-seen times are held: a lookup unpacks the few rows it compares with, so a
        loaded history costs 32 bytes per known (entity, address) and nothing is rebuilt at load."""
        self.entities = entities
        self.keys = keys
        self.first_seen_ms = np.asarray(first_seen_ms, dtype=np.int64)

    def arrays(self) -> dict[str, np.ndarray]:
        """What `from_arrays` needs."""
        return {"entities": self.entities, "keys": self.keys, "first_seen_ms": self.first_seen_ms}

    def __len__(self) -> int:
        return len(self.keys)

    def entity_range(self, start: int, end: int) -> History:
        """The history of entities start..end-1 alone (their ids renumbered from 0): its rows are contiguous, as the
        keys sort by entity id first."""
        zero = np.zeros(2, dtype=np.uint64)
        bounds = np.searchsorted(self.keys, pack_keys(np.asarray([start, end]), zero, zero))
        ids, high, low = unpack_keys(self.keys[bounds[0] : bounds[1]])
        keys = pack_keys(ids - start, high, low)
        return History.from_arrays(self.entities[start:end], keys, self.first_seen_ms[bounds[0] : bounds[1]])

    def with_prefix(self, prefix: str) -> tuple[History, int]:
        """The history of the entities starting with `prefix`, and the id its first entity had here."""
        start, end = prefix_range(self.entities, prefix)
        return self.entity_range(start, end), start

    def entity_ids(self, entities: Sequence[str]) -> np.ndarray:
        """Each entity's id, -1 for one never seen."""
        query = np.asarray(list(entities), dtype=str)
        if len(self.entities) == 0 or len(query) == 0:
            return np.full(len(query), -1, dtype=np.int64)
        position = np.clip(np.searchsorted(self.entities, query), 0, len(self.entities) - 1)
        return np.where(self.entities[position] == query, position, -1).astype(np.int64)

    def known_addresses(self, entity_ids: np.ndarray) -> np.ndarray:
        """How many addresses each entity id met (0 for -1), by binary search on the sorted keys."""
        if len(self.keys) == 0:
            return np.zeros(len(entity_ids), dtype=np.int64)
        zero = np.zeros(len(entity_ids), dtype=np.uint64)
        ids = np.maximum(entity_ids, 0)
        start = np.searchsorted(self.keys, pack_keys(ids, zero, zero))
        end = np.searchsorted(self.keys, pack_keys(ids + 1, zero, zero))
        return np.where(entity_ids >= 0, end - start, 0).astype(np.int64)

    def nearest(self, entities: Sequence[str], ips: Sequence[str]) -> Nearest:
        """The known address of the same entity sharing the longest prefix with each queried address."""
        count = len(ips)
        families, high, low = address_keys(list(ips))
        query_entity = self.entity_ids(entities)
        best_bits = np.full(count, NO_HISTORY, dtype=np.int64)
        best_high = np.zeros(count, dtype=np.uint64)
        best_low = np.zeros(count, dtype=np.uint64)
        best_row = np.full(count, -1, dtype=np.int64)
        known = len(self)
        if known:
            position = np.searchsorted(self.keys, pack_keys(np.maximum(query_entity, 0), high, low))
            for neighbour in (position - 1, position):
                row = np.clip(neighbour, 0, known - 1)
                row_entity, row_high, row_low = unpack_keys(self.keys[row])
                same = (neighbour >= 0) & (neighbour < known) & (row_entity == query_entity)
                bits = shared_prefix_bits(families, high, low, row_high, row_low)
                better = same & (bits > best_bits)
                best_bits[better] = bits[better]
                best_high[better] = row_high[better]
                best_low[better] = row_low[better]
                best_row[better] = row[better]
        known_entity = query_entity >= 0
        has_row = best_row >= 0
        best_bits = np.where(known_entity & ~has_row, 0, best_bits)
        first = self.first_seen_ms[np.maximum(best_row, 0)] if known else np.zeros(count, dtype=np.int64)
        return Nearest(
            best_bits,
            best_high,
            best_low,
            self.known_addresses(query_entity),
            np.where(has_row, first, -1),
        )
