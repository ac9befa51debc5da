"""Per-entity tail probabilities, shrunk towards the entity's role, its side, then everything: surprisal in nats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scripts.entity import SIDE_SEPARATOR


@dataclass(frozen=True)
class TailTable:
    """Observed values by entity, role and side (client / server); `upper` tails count values >= x, else <= x.

    P(level) = (tail + prior * P(parent)) / (n + prior) at each level, entity -> role -> side -> all (the posterior
    mean of a Beta prior centred on the parent), and P(all) = (tail + 1) / (n + 1): an entity with few observations
    borrows from its role, one with many speaks for itself, and no probability is ever zero. `conformal` adds one
    to every count, so a value beyond all n observations of a level claims at most about ln(n) nats: for unbounded
    scores, whose tail beyond the data cannot be known.
    """

    upper: bool
    prior_weight: float
    conformal: bool
    everything: np.ndarray
    by_side: dict[str, np.ndarray]
    by_role: dict[str, np.ndarray]
    by_entity: dict[str, np.ndarray]

    @staticmethod
    def build(
        entities: Sequence[str],
        roles: Sequence[str],
        values: np.ndarray,
        upper: bool,
        prior_weight: float,
        conformal: bool = False,
    ) -> TailTable:
        values = np.asarray(values, dtype=np.float64)
        entity_array = np.asarray(entities, dtype=object)
        role_array = np.asarray(roles, dtype=object)
        return TailTable(
            upper=upper,
            prior_weight=prior_weight,
            conformal=conformal,
            everything=np.sort(values),
            by_side=_grouped(np.asarray([side_of(r) for r in role_array], dtype=object), values),
            by_role=_grouped(role_array, values),
            by_entity=_grouped(entity_array, values),
        )

    def _tail(self, sorted_values: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.upper:
            return len(sorted_values) - np.searchsorted(sorted_values, x, side="left")
        return np.searchsorted(sorted_values, x, side="right")

    def surprisal(self, entities: Sequence[str], roles: Sequence[str], values: np.ndarray) -> np.ndarray:
        """-ln P(a value this extreme) for each (entity, role, value)."""
        values = np.asarray(values, dtype=np.float64)
        overall = (self._tail(self.everything, values) + 1.0) / (len(self.everything) + 1.0)
        sides = np.asarray([side_of(r) for r in roles], dtype=object)
        side_p = _shrunk(self, sides, values, self.by_side, overall)
        role_p = _shrunk(self, np.asarray(roles, dtype=object), values, self.by_role, side_p)
        entity_p = _shrunk(self, np.asarray(entities, dtype=object), values, self.by_entity, role_p)
        return np.asarray(-np.log(entity_p), dtype=np.float64)


def side_of(role: str) -> str:
    """`client` or `server` of a role such as `client:web`; the role itself when it has no side."""
    return role.split(SIDE_SEPARATOR, 1)[0]


def _grouped(keys: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    if len(keys) == 0:
        return {}
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.concatenate([starts[1:], [len(keys)]])
    return {str(keys[s]): values[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)}


def _shrunk(
    table: TailTable, keys: np.ndarray, values: np.ndarray, groups: dict[str, np.ndarray], prior: np.ndarray
) -> np.ndarray:
    """Each row's posterior tail probability at its key's level; rows are grouped once (sorted), so the cost is
    n log n in the queries, not queries x keys."""
    result = prior.copy()
    if len(keys) == 0:
        return result
    distinct, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(distinct) + 1))
    extra = 1.0 if table.conformal else 0.0
    for position, key in enumerate(distinct.tolist()):
        observed = groups.get(str(key))
        if observed is None:
            continue
        where = order[bounds[position] : bounds[position + 1]]
        tail = table._tail(observed, values[where])
        result[where] = (tail + extra + table.prior_weight * prior[where]) / (
            len(observed) + extra + table.prior_weight
        )
    return result
