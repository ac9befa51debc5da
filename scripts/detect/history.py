"""What each entity talked to before: the longest prefix a new address shares with any known one, and which one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scripts.addresses import address_arrays

_V4_MAPPED = np.uint64(0xFFFF_0000_0000)  # IPv4 addresses live in ::ffff:0:0/96, so one 128-bit order holds both
NO_HISTORY = -1


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


@dataclass(frozen=True)
class Nearest:
    """For each queried pair: bits shared with the nearest known address (-1: entity unseen), and that address."""

    shared_bits: np.ndarray
    nearest_ip: list[str | None]
    known_addresses: np.ndarray
    first_seen_ms: np.ndarray


class History:
    """Distinct (entity, address) pairs seen before, sorted by entity then address, with when each was first seen."""

    def __init__(self, entities: Sequence[str], ips: Sequence[str], times_ms: Sequence[int] | np.ndarray) -> None:
        frame = pd.DataFrame({"entity": list(entities), "ip": list(ips), "time": np.asarray(times_ms, np.int64)})
        frame = frame.groupby(["entity", "ip"], sort=False, as_index=False).agg(time=("time", "min"))
        self.entities = pd.Index(sorted(frame["entity"].unique()))
        families, high, low = address_keys(frame["ip"].tolist())
        entity_id = self.entities.get_indexer(frame["entity"])
        order = np.lexsort((low, high, entity_id))
        self.entity_id = entity_id[order]
        self.families = families[order]
        self.high = high[order]
        self.low = low[order]
        self.ips = frame["ip"].to_numpy(dtype=object)[order]
        self.first_seen_ms = frame["time"].to_numpy(np.int64)[order]
        self.counts = np.bincount(self.entity_id, minlength=len(self.entities))

    def __len__(self) -> int:
        return len(self.entity_id)

    def entity_ids(self, entities: Sequence[str]) -> np.ndarray:
        return np.asarray(self.entities.get_indexer(list(entities)), dtype=np.int64)

    def nearest(self, entities: Sequence[str], ips: Sequence[str]) -> Nearest:
        """The known address of the same entity sharing the longest prefix with each queried address."""
        count = len(ips)
        families, high, low = address_keys(ips)
        query_entity = self.entity_ids(entities)
        known = len(self)
        all_entity = np.concatenate([self.entity_id, query_entity])
        all_high = np.concatenate([self.high, high])
        all_low = np.concatenate([self.low, low])
        is_query = np.concatenate([np.zeros(known, bool), np.ones(count, bool)])
        order = np.lexsort((is_query, all_low, all_high, all_entity))
        positions = np.arange(len(order))
        history_at = np.where(~is_query[order], order, -1)
        before = np.maximum.accumulate(np.where(history_at >= 0, positions, -1))
        after_positions = np.where(history_at >= 0, positions, len(order))
        after = np.minimum.accumulate(after_positions[::-1])[::-1]
        where_query = np.flatnonzero(is_query[order])
        query_index = order[where_query] - known
        best_bits = np.full(count, NO_HISTORY, dtype=np.int64)
        best_row = np.full(count, -1, dtype=np.int64)
        for neighbour_position in (before[where_query], after[where_query]):
            valid = (neighbour_position >= 0) & (neighbour_position < len(order))
            row = np.where(valid, order[np.clip(neighbour_position, 0, len(order) - 1)], 0)
            same = valid & (self.entity_id[np.clip(row, 0, max(known - 1, 0))] == query_entity[query_index])
            if known == 0:
                same[:] = False
            bits = shared_prefix_bits(
                families[query_index],
                high[query_index],
                low[query_index],
                self.high[np.clip(row, 0, max(known - 1, 0))] if known else high[query_index],
                self.low[np.clip(row, 0, max(known - 1, 0))] if known else low[query_index],
            )
            bits = np.where(same, bits, NO_HISTORY)
            better = bits > best_bits[query_index]
            best_bits[query_index[better]] = bits[better]
            best_row[query_index[better]] = row[better]
        known_entity = query_entity >= 0
        has_row = best_row >= 0
        best_bits = np.where(known_entity & ~has_row, 0, best_bits)
        nearest_ip = [str(self.ips[r]) if r >= 0 else None for r in best_row.tolist()]
        counts = np.where(known_entity, self.counts[np.clip(query_entity, 0, None)] if len(self.counts) else 0, 0)
        first = np.where(has_row, self.first_seen_ms[np.clip(best_row, 0, None)] if known else 0, -1)
        return Nearest(best_bits, nearest_ip, counts, first)
