"""The fitted detector as one versioned file (detector.npz, compressed): plain arrays and a JSON header, no pickle.

The pipeline's FitDetector step writes it next to the model; the monitor loads it at cold start instead of reading
the raw history and calling the endpoint. Loading is `numpy.load` of arrays already sorted for lookup, so its cost
grows with the number of distinct (entity, address) pairs, not with events or days.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from scripts.detect.addressbook import AddressBook
from scripts.detect.calibration import TailTable
from scripts.detect.detector import Detector
from scripts.detect.history import History
from scripts.detect.memory import Memory
from scripts.detect.names import KnownNames
from scripts.detect.networks import NetworkTable
from scripts.detect.owners import KnownOwners, Ownership
from scripts.detect.settings import DetectorSettings
from scripts.detect.volume import UploadLimits
from scripts.handoff.artifacts import DETECTOR, DETECTOR_FILE

LOG = logging.getLogger("seclake.detector")
FORMAT = "seclake-detector"
FORMAT_VERSION = 2  # 2: the network table, its known owners, novelty calibrated apart for internal peers


class DetectorArtifactError(ValueError):
    """A file is not a detector artifact this code can read; the message names it and what differs."""


def _table_arrays(prefix: str, table: TailTable) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}.everything": table.everything}
    for level, groups in (("side", table.by_side), ("role", table.by_role), ("entity", table.by_entity)):
        keys = sorted(groups)
        lengths = np.asarray([len(groups[k]) for k in keys], dtype=np.int64)
        arrays[f"{prefix}.{level}.keys"] = np.asarray(keys, dtype=str)
        arrays[f"{prefix}.{level}.offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        arrays[f"{prefix}.{level}.values"] = (
            np.concatenate([groups[k] for k in keys]) if keys else np.zeros(0, dtype=np.float64)
        )
    return arrays


def _table_from(prefix: str, arrays: Any, header: dict[str, Any]) -> TailTable:
    levels = {}
    for level in ("side", "role", "entity"):
        keys = arrays[f"{prefix}.{level}.keys"].tolist()
        offsets = arrays[f"{prefix}.{level}.offsets"]
        values = arrays[f"{prefix}.{level}.values"]
        levels[level] = {key: values[offsets[i] : offsets[i + 1]] for i, key in enumerate(keys)}
    return TailTable(
        upper=bool(header["upper"]),
        prior_weight=float(header["prior_weight"]),
        conformal=bool(header["conformal"]),
        everything=arrays[f"{prefix}.everything"],
        by_side=levels["side"],
        by_role=levels["role"],
        by_entity=levels["entity"],
    )


def _table_header(table: TailTable) -> dict[str, Any]:
    return {"upper": table.upper, "prior_weight": table.prior_weight, "conformal": table.conformal}


def detector_bytes(detector: Detector, metadata: dict[str, Any] | None = None) -> bytes:
    """The detector as .npz bytes; `metadata` (what it was fitted on) is kept in its header."""
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "settings": dataclasses.asdict(detector.settings),
        "novelty_table": _table_header(detector.novelty_table),
        "model_table": _table_header(detector.model_table) if detector.model_table is not None else None,
        "metadata": metadata or {},
    }
    arrays: dict[str, np.ndarray] = {
        "header": np.asarray(json.dumps(header, sort_keys=True)),
        "model_entities": np.asarray(sorted(detector.model_entities), dtype=str),
        "workloads": detector.memory.workloads,
        "established_workloads": detector.memory.established,
        "role_sets": detector.memory.role_sets,
    }
    memories = [("history", detector.memory.history), ("groups", detector.memory.groups)]
    if detector.memory.accounts is not None:
        memories.append(("accounts", detector.memory.accounts))
    for name, history in memories:
        arrays.update({f"{name}.{key}": value for key, value in history.arrays().items()})
    arrays.update(_table_arrays("novelty", detector.novelty_table))
    if detector.model_table is not None:
        arrays.update(_table_arrays("model", detector.model_table))
    if detector.uploads is not None:  # absent from an artifact fitted on a history without bytes: the rule is off
        arrays.update(detector.uploads.arrays())
    if detector.names is not None:  # absent without Route 53 in the history: answers carry their name, unjudged
        arrays.update(detector.names.arrays())
    ownership = detector.memory.ownership
    if ownership is not None:
        if ownership.networks is not None:  # the whole table: the monitor looks up addresses it never saw
            arrays.update(ownership.networks.arrays())
        if ownership.book is not None:
            arrays.update(ownership.book.arrays())
        arrays["owners.entity"] = detector.memory.owners[0].keys
        arrays["owners.group"] = detector.memory.owners[1].keys
    buffer = io.BytesIO()
    # compressed: sorted keys shrink about 4.6x (74 -> 16 MiB at 1M history rows), which the Lambda downloads and
    # holds in /tmp, for about 0.16 s more loading per million rows; numpy 2.1 (the scikit-learn image) has no
    # allow_pickle argument here, and nothing saved is an object array
    save_arrays: Any = np.savez_compressed
    save_arrays(buffer, **arrays)
    return buffer.getvalue()


def save_detector(detector: Detector, path: Path, metadata: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(detector_bytes(detector, metadata))


def header_of(path: Path) -> dict[str, Any]:
    """The artifact's header (format, settings, metadata) without loading its arrays."""
    with np.load(path, allow_pickle=False) as arrays:
        return _checked_header(path, arrays)


def _checked_header(path: Path, arrays: Any) -> dict[str, Any]:
    if "header" not in arrays.files:
        message = (
            f"{path} is not a detector artifact (no header); the FitDetector step writes {DETECTOR}/{DETECTOR_FILE}"
        )
        raise DetectorArtifactError(message)
    header: dict[str, Any] = json.loads(str(arrays["header"]))
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        message = (
            f"{path} is {header.get('format')} version {header.get('version')}; this code reads {FORMAT} version "
            f"{FORMAT_VERSION}: refit the detector with this release's pipeline"
        )
        raise DetectorArtifactError(message)
    return header


def settings_of(saved: dict[str, Any], path: Path) -> DetectorSettings:
    """The saved settings this code knows. A detector fitted by a newer release (a pipeline upgraded before the
    monitor) may carry settings this one does not: they are left out and logged, so that monitoring goes on with
    the rules this code has instead of failing every message until the monitor is redeployed."""
    known = {field.name for field in dataclasses.fields(DetectorSettings)}
    unknown = sorted(set(saved) - known)
    if unknown:
        LOG.warning(
            "%s was fitted with settings this code does not know (%s): they are ignored; deploy the monitor of the "
            "release that fitted it to apply them",
            path,
            ", ".join(unknown),
        )
    return DetectorSettings(**{name: value for name, value in saved.items() if name in known})


def load_detector(path: Path) -> tuple[Detector, dict[str, Any]]:
    """The detector saved at `path`, and its metadata."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            header = _checked_header(path, arrays)
            loaded = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, KeyError) as error:
        if isinstance(error, DetectorArtifactError):
            raise
        message = f"cannot read the detector artifact {path}: {type(error).__name__}: {error}"
        raise DetectorArtifactError(message) from error
    settings = settings_of(header["settings"], path)
    histories = {
        name: History.from_arrays(loaded[f"{name}.entities"], loaded[f"{name}.keys"], loaded[f"{name}.first_seen_ms"])
        for name in ("history", "groups", "accounts")
        if f"{name}.keys" in loaded
    }
    networks = NetworkTable.of_arrays(loaded, where=str(path)) if "networks.starts" in loaded else None
    book = AddressBook.of_arrays(loaded, where=str(path)) if "book.keys" in loaded else None
    ownership = Ownership(networks, book) if networks is not None or book is not None else None
    owners = None
    if ownership is not None:
        owners = (KnownOwners(loaded["owners.entity"]), KnownOwners(loaded["owners.group"]))
    memory = Memory(
        histories["history"],
        histories["groups"],
        loaded["workloads"],
        settings.compare_with_peer_group,
        histories.get("accounts"),
        loaded.get("established_workloads"),
        loaded.get("role_sets"),
        ownership,
        owners,
    )
    novelty_table = _table_from("novelty", loaded, header["novelty_table"])
    model_table = _table_from("model", loaded, header["model_table"]) if header["model_table"] else None
    model_entities = frozenset(loaded["model_entities"].tolist())
    uploads, names = UploadLimits.of_arrays(loaded), KnownNames.of_arrays(loaded)
    detector = Detector(memory, novelty_table, model_table, model_entities, settings, uploads, names)
    return detector, dict(header["metadata"])
