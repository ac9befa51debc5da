"""Which network owners (organisations of the network table) each entity talked to before: one sorted key per
(entity id, organisation), so "has this workload ever talked to Google?" is one binary search."""

from __future__ import annotations

import numpy as np

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

    def knows(self, entity_ids: np.ndarray, organisations: np.ndarray) -> np.ndarray:
        """Whether each entity id (-1: unseen) talked to each organisation (-1: none) before."""
        ids = np.asarray(entity_ids, dtype=np.int64)
        organisations = np.asarray(organisations, dtype=np.int64)
        if len(self.keys) == 0 or len(ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        query = (np.maximum(ids, 0) << _SHIFT) | np.maximum(organisations, 0)
        position = np.clip(np.searchsorted(self.keys, query), 0, len(self.keys) - 1)
        return np.asarray((self.keys[position] == query) & (ids >= 0) & (organisations >= 0), dtype=bool)
