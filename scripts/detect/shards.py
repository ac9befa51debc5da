"""The fitted detector cut by account: one artifact per account, so that a monitor holds only the accounts it sees.

A Security Lake object is one account's (and one region's), and everything the detector remembers is an entity's,
a peer group's or a fleet's of one account (`<account>/...`), or the organisation's (who owns addresses, the pooled
calibration levels, the names any account asked for). An account's shard is the detector restricted to that account
plus the organisation's part: for every pair of an entity of that account it answers exactly as the whole detector
(tests/test_shards.py). The organisation shard alone answers for an account the fit never saw. When the entities
carry no account (a mapping that does not namespace them), there is no cut: the organisation shard is the whole
detector.

    detector/detector.json              the index (DETECTOR_INDEX_FILE): which file holds which account, and their sizes
    detector/shards/organisation.npz    the organisation's part (ORGANISATION_SHARD)
    detector/shards/<account>.npz       each account's shard (an ordinary detector artifact: artifact.py)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from scripts.detect.artifact import detector_bytes
from scripts.detect.calibration import TailTable
from scripts.detect.decision import INTERNAL
from scripts.detect.detector import Detector
from scripts.detect.forked import map_forked
from scripts.entity import ACCOUNT_SEPARATOR, account_of, account_prefix
from scripts.handoff.artifacts import DETECTOR_INDEX_FILE, DETECTOR_SHARDS
from scripts.handoff.detector_index import (
    BYTES_KEY,
    CUT_ACCOUNT,
    CUT_NONE,
    FILE_KEY,
    ORGANISATION_SHARD,
    PAIRS_KEY,
    ShardIndex,
)


def accounts_of(detector: Detector) -> list[str] | None:
    """The accounts the detector knows, sorted; None when its entities carry no account (no cut is possible)."""
    entities = detector.memory.history.entities
    if len(entities) and not bool(np.char.find(entities, ACCOUNT_SEPARATOR).min() >= 0):
        return None
    return sorted({account_of(workload) for workload in detector.memory.workloads.tolist()})


def _entity_table(table: TailTable, prefix: str) -> TailTable:
    """The table with the entity levels of one account alone (keys `<entity>` or `internal/<entity>`); the role,
    side and pooled levels are the organisation's and stay whole."""
    kept = {key: values for key, values in table.by_entity.items() if key.removeprefix(INTERNAL).startswith(prefix)}
    return dataclasses.replace(table, by_entity=kept)


def account_shard(detector: Detector, account: str) -> Detector:
    """The detector restricted to one account's entities, with the organisation's part."""
    prefix = account_prefix(account)
    model_table = _entity_table(detector.model_table, prefix) if detector.model_table is not None else None
    return Detector(
        detector.memory.for_account(account),
        _entity_table(detector.novelty_table, prefix),
        model_table,
        frozenset(entity for entity in detector.model_entities if entity.startswith(prefix)),
        detector.settings,
        detector.uploads.with_prefix(prefix) if detector.uploads is not None else None,
        detector.names.for_account(account) if detector.names is not None else None,
    )


def organisation_shard(detector: Detector) -> Detector:
    """The organisation's part: no entity's, peer group's or account's memory (ACCOUNT_SEPARATOR alone is the
    prefix of no account's entities)."""
    return account_shard(detector, "")


def _write_shard(detector: Detector, job: tuple[str, str, str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    account, cut, folder, metadata = job
    if account == ORGANISATION_SHARD:
        shard = detector if cut == CUT_NONE else organisation_shard(detector)
    else:
        shard = account_shard(detector, account)
    name = f"{DETECTOR_SHARDS}/{account}.npz"
    body = detector_bytes(shard, {**metadata, "shard": account})
    (Path(folder) / name).write_bytes(body)
    return account, {FILE_KEY: name, BYTES_KEY: len(body), PAIRS_KEY: len(shard.memory.history)}


def write_shards(detector: Detector, folder: Path, metadata: dict[str, Any], workers: int | None = None) -> ShardIndex:
    """Write every shard under `folder`/shards/ (in `workers` forked processes: the machine's cores by default) and
    the index `folder`/detector.json; returns the index."""
    accounts = accounts_of(detector)
    cut = CUT_NONE if accounts is None else CUT_ACCOUNT
    jobs = [(name, cut, str(folder), metadata) for name in [ORGANISATION_SHARD, *(accounts or [])]]
    (folder / DETECTOR_SHARDS).mkdir(parents=True, exist_ok=True)
    written = map_forked(_write_shard, detector, jobs, workers or os.cpu_count() or 1)
    index = ShardIndex(cut, dict(written), metadata)
    (folder / DETECTOR_INDEX_FILE).write_text(index.to_json())
    return index
