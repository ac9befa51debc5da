"""Large first uploads: how much each workload sends to an address on the day it first meets it, learnt from its
history, and the pairs whose day's upload goes far past that (GuardDuty's TrafficVolumeUnusual is the bar).

Novelty is capped for an owner the workload already talks to, so 2 GB sent to a storage address of the
organisation's own cloud provider looks like S3 answering from one more address until its volume is looked at. A
workload that ships backups to rotating storage addresses every day learns a large first upload and is not alarmed
by the next; an app server that never sent more than a few MB to a new address is, when it sends gigabytes. Only
what the workload sent on connections it opened counts (a server's answers to new clients are its service, not an
upload); a workload with no history of its own is judged by its peer group's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scripts.detect.history import factorize, pack_keys, prefix_range
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.entity import CLIENT_SIDE, peer_group, side_of, workload_of

ARRAY_PREFIX = "uploads"
LARGE_UPLOAD_SEVERITY = "High"


def uploads_are_the_entitys(entities: Sequence[str]) -> np.ndarray:
    """Whether what each entity sends is an upload: it opened the connections (`#client:...`), or the mapping
    carries no side (the workload itself)."""
    return np.fromiter((side_of(e) in (CLIENT_SIDE, "") for e in entities), dtype=bool, count=len(entities))


def _largest_by(names: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct names and the largest value of each."""
    if len(names) == 0:
        return np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64)
    distinct, code = factorize(names)
    largest = np.zeros(len(distinct), dtype=np.int64)
    np.maximum.at(largest, code, values)
    return np.asarray(distinct, dtype=str), largest


def _lookup(names: np.ndarray, values: np.ndarray, query: Sequence[str]) -> np.ndarray:
    """Each query's value; NaN where the name is unknown."""
    wanted = np.asarray(list(query), dtype=str)
    if len(names) == 0 or len(wanted) == 0:
        return np.full(len(wanted), np.nan)
    position = np.clip(np.searchsorted(names, wanted), 0, len(names) - 1)
    return np.where(names[position] == wanted, values[position].astype(np.float64), np.nan)


@dataclass(frozen=True)
class UploadLimits:
    """Per entity and per peer group, the most bytes it sent in one day to an address it met that day (a day of
    the history after its first: on the first day every address looks new)."""

    entities: np.ndarray
    largest: np.ndarray
    groups: np.ndarray
    group_largest: np.ndarray

    @staticmethod
    def learn(pairs: Pairs) -> UploadLimits | None:
        """From history pairs with their bytes (a row per pair and day, or per event: a day's rows are summed);
        None when they carry no bytes."""
        if pairs.bytes_out is None:
            return None
        client = uploads_are_the_entitys(pairs.entity.tolist())
        if len(pairs) == 0 or not client.any():
            empty = np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64)
            return UploadLimits(*empty, *empty)
        day = pairs.time // DAY_MS
        _, entity_code = factorize(pairs.entity)
        order = np.lexsort((day, pairs.low, pairs.high, entity_code))
        keys = pack_keys(entity_code[order], pairs.high[order], pairs.low[order])
        new_pair = np.concatenate([[True], keys[1:] != keys[:-1]])
        new_day = new_pair | np.concatenate([[True], day[order][1:] != day[order][:-1]])
        starts = np.flatnonzero(new_day)  # one group per (entity, address, day), its rows summed
        sent_that_day = np.add.reduceat(pairs.bytes_out[order], starts)
        first_day = new_pair[starts]
        at = order[starts]
        met = first_day & (day[at] > day.min()) & client[at]
        entities = pairs.entity[at][met].astype(str)
        sent = sent_that_day[met]
        names, largest = _largest_by(entities, sent)
        groups, group_largest = _largest_by(np.asarray([peer_group(e) for e in entities.tolist()], dtype=str), sent)
        return UploadLimits(names, largest, groups, group_largest)

    def reference(self, entities: Sequence[str], established: np.ndarray) -> np.ndarray:
        """Each entity's largest first upload: its own when its workload is established, else the larger of its
        own and its peer group's (a young instance shows what its siblings do); NaN when neither is known."""
        own = _lookup(self.entities, self.largest, entities)
        group = _lookup(self.groups, self.group_largest, [peer_group(e) for e in entities])
        young = np.fmax(own, group)
        return np.where(np.asarray(established, dtype=bool) & ~np.isnan(own), own, young)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            f"{ARRAY_PREFIX}.entities": self.entities,
            f"{ARRAY_PREFIX}.largest": self.largest,
            f"{ARRAY_PREFIX}.groups": self.groups,
            f"{ARRAY_PREFIX}.group_largest": self.group_largest,
        }

    def with_prefix(self, prefix: str) -> UploadLimits:
        """The limits of the entities and peer groups starting with `prefix` (an account's) alone."""
        own = slice(*prefix_range(self.entities, prefix))
        group = slice(*prefix_range(self.groups, prefix))
        return UploadLimits(self.entities[own], self.largest[own], self.groups[group], self.group_largest[group])

    @staticmethod
    def of_arrays(arrays: dict[str, np.ndarray]) -> UploadLimits | None:
        """From `arrays()`'s output; None for an artifact saved before uploads were learnt."""
        if f"{ARRAY_PREFIX}.entities" not in arrays:
            return None
        return UploadLimits(
            arrays[f"{ARRAY_PREFIX}.entities"],
            arrays[f"{ARRAY_PREFIX}.largest"],
            arrays[f"{ARRAY_PREFIX}.groups"],
            arrays[f"{ARRAY_PREFIX}.group_largest"],
        )


def upload_limit(reference: np.ndarray, settings: DetectorSettings) -> np.ndarray:
    """The bytes a first upload must reach to be large: large_upload_factor times the reference, at least
    large_upload_bytes (a workload that never uploaded anything to a new address is held to that floor)."""
    scaled = settings.large_upload_factor * np.nan_to_num(np.asarray(reference, dtype=np.float64), nan=0.0)
    return np.maximum(float(settings.large_upload_bytes), scaled)


def large_uploads(
    sent: np.ndarray, reference: np.ndarray, novel: np.ndarray, uploads: np.ndarray, settings: DetectorSettings
) -> np.ndarray:
    """Pairs whose address the entity (and its peer group) never met, on connections it opened, that carried at
    least `upload_limit` bytes out; none when large_upload_bytes is 0."""
    if settings.large_upload_bytes <= 0:
        return np.zeros(len(sent), dtype=bool)
    volume = np.asarray(sent, dtype=np.float64)
    return np.asarray(novel & uploads & (volume >= upload_limit(reference, settings)), dtype=bool)


def in_words(count: float) -> str:
    """`2.0 GB`, `3.4 MB`, `512 bytes` (decimal units, as AWS's consoles show traffic)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} bytes"


def upload_why(entity: str, ip: str, day_bytes: int, reference: float, floor: float) -> str:
    """`i-0abc sent 2.0 GB to 52.95.1.7 today, an address it and its peers never met; the most it sent to an address
    on the day it met it was 1.2 MB.`"""
    before = (
        f"the most it sent to an address on the day it met it was {in_words(reference)}"
        if not np.isnan(reference)
        else f"it has no first upload to compare with, and {in_words(floor)} is the floor"
    )
    return (
        f"{workload_of(entity)} sent {in_words(day_bytes)} to {ip} today, an address it and its peers never met; "
        f"{before}."
    )
