"""What the detector delivers on the held-out day: its alerts there, and its recall on attacks injected into it.

The held-out (validation) day was not used to train the model. To judge it, the detector knows only the days before
it (memory and novelty calibration); its model part is calibrated on the day's own new pairs, cross-fitted in two
halves so that no pair is judged by a calibration it took part in. The day's distinct pairs are its traffic: every
one of them the detector flags is an alert a responder would read (on a clean day, a false one). Each injected attack
is judged as if it were added to that day. The deployed detector is then fitted on every day, the held-out one too.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scripts.detect.addressbook import BOOK_FIELDS, AddressBook
from scripts.detect.decision import (
    decide,
    fleet_key,
    fleet_workloads,
    known_owner_changes,
    model_calibration,
    new_pairs,
    rotated_answers,
)
from scripts.detect.detector import Detector
from scripts.detect.explain import describe, gather
from scripts.detect.feedback import Feedback, apply_verdicts
from scripts.detect.fleet import SERVICE_MOVING_SEVERITY, fleet_severity, knew_network
from scripts.detect.memory import Pairs
from scripts.detect.names import KnownNames
from scripts.detect.networks import NetworkTable, NetworkTableError
from scripts.detect.settings import DetectorSettings
from scripts.detect.sweep import find_sweeps
from scripts.entity import account_of, base_entity
from scripts.handoff.artifacts import ADDRESS_BOOK_FILE, HISTORY_FILE, NAMES_COLUMNS, NAMES_FILE
from scripts.handoff.detection import DetectionReport, KindRecall, TopAlert
from scripts.handoff.evalset import INJECTED_KINDS, NORMAL, EvalSet, load_eval_set
from scripts.handoff.quality import read_quality
from scripts.handoff.records import HandoffError
from scripts.handoff.verdicts import read_verdicts
from scripts.pairs.mapping import BYTES_OUT

HISTORY_COLUMNS = ("entity", "ip", "first_seen_ms")
TOP_ALERTS = 20
MISSED_EXAMPLES = 5


class DetectionInputError(HandoffError):
    """The history, eval set, scores or quality report cannot be used together; the message says which and why."""


@dataclass(frozen=True)
class DetectionInputs:
    """The history (each pair once per day), the scored eval set, the held-out day, who owns which network, and
    the address book (all of it, and as it stood before the held-out day)."""

    history: Pairs
    eval_set: EvalSet
    validation_day: str
    validation_start_ms: int
    networks: NetworkTable | None = None
    book: AddressBook | None = None
    book_before: AddressBook | None = None
    names: KnownNames | None = None
    feedback: Feedback | None = None  # the analysts' verdicts: `history` is already without their true positives


def load_history(folder: Path) -> Pairs:
    """The preprocessing step's history/history.parquet as detector pairs (time: first seen that day; bytes_out:
    what the entity sent to the address that day, absent from a history written before the pairs carried it)."""
    import pyarrow.parquet as pq

    path = folder / HISTORY_FILE
    if not path.exists():
        message = f"{path} is missing; the preprocessing step writes history/{HISTORY_FILE}"
        raise DetectionInputError(message)
    present = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[*HISTORY_COLUMNS, *([BYTES_OUT] if BYTES_OUT in present else [])])
    columns = [table.column(name).to_numpy(zero_copy_only=False) for name in HISTORY_COLUMNS]
    sent = table.column(BYTES_OUT).fill_null(0).to_numpy(zero_copy_only=False) if BYTES_OUT in present else None
    return Pairs.of(columns[0], columns[1], columns[2], sent)


def validation_day(folder: Path) -> tuple[str, int]:
    """(YYYYMMDD, its first millisecond) of the held-out day, from the preprocessing step's quality.json."""
    window = read_quality(folder).window
    return window.validation_day, window.validation_start_ms()


def load_networks(path: Path) -> NetworkTable:
    """The network table (pipeline.network_table writes it; the pipeline ships it with the job code)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return NetworkTable.of_arrays(arrays, where=str(path))
    except (OSError, ValueError) as error:
        if isinstance(error, NetworkTableError):
            raise DetectionInputError(str(error)) from None
        message = f"cannot read the network table {path}: {error}; the FitDetector step's `networks` input holds it"
        raise DetectionInputError(message) from error


def load_address_book(folder: Path, before_ms: int) -> tuple[AddressBook | None, AddressBook | None]:
    """history/address_book.parquet, all of it and its rows first seen before `before_ms` (read once); (None, None)
    when the step wrote none (no flow source)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = folder / ADDRESS_BOOK_FILE
    if not path.exists():
        return None, None
    try:
        table = pq.read_table(path, columns=["ip", "first_seen_ms", "last_seen_ms", *BOOK_FIELDS])
        before = table.filter(pc.less(table.column("first_seen_ms"), before_ms))
        return AddressBook.of_table(table), AddressBook.of_table(before)
    except (OSError, ValueError, KeyError) as error:
        message = f"cannot read the address book {path}: {error}; the preprocessing step writes it"
        raise DetectionInputError(message) from error


def load_names(folder: Path) -> KnownNames | None:
    """history/names.parquet (None when the step wrote none: a history from before names, or no Route 53)."""
    import pyarrow.parquet as pq

    path = folder / NAMES_FILE
    if not path.exists():
        return None
    try:
        return KnownNames.of_table(pq.read_table(path, columns=list(NAMES_COLUMNS)))
    except (OSError, ValueError, KeyError) as error:
        message = f"cannot read the names {path}: {error}; the preprocessing step writes it"
        raise DetectionInputError(message) from error


def load_inputs(
    history: Path,
    eval_dir: Path,
    scores: Path,
    quality: Path,
    networks: Path | None = None,
    feedback: Path | None = None,
) -> DetectionInputs:
    """`feedback`: the folder of analysts' verdicts (None: none); their true positives leave the history here."""
    day, start = validation_day(quality)
    verdicts = apply_verdicts(load_history(history), read_verdicts(feedback), day)
    pairs = verdicts.history
    if not (pairs.time < start).any():
        message = f"{history / HISTORY_FILE} has nothing before the held-out day {day}: nothing to learn from"
        raise DetectionInputError(message)
    table = load_networks(networks) if networks is not None else None
    book, book_before = load_address_book(history, start)
    names = load_names(history)
    eval_set = load_eval_set(eval_dir, scores)
    return DetectionInputs(pairs, eval_set, day, start, table, book, book_before, names, verdicts)


def model_scores_of(data: EvalSet) -> Any:
    """The batch transform's scores of the held-out day's pairs, looked up by pair (NaN for a pair it did not score)."""
    normal = data.label == 0
    known = dict(
        zip(
            zip(data.entity[normal].tolist(), data.ip[normal].tolist(), strict=True),
            data.dot_product[normal].tolist(),
            strict=True,
        )
    )

    def lookup(entities: Sequence[str], ips: Sequence[str]) -> np.ndarray:
        return np.asarray([known.get(pair, np.nan) for pair in zip(entities, ips, strict=True)], dtype=np.float64)

    return lookup


def fit_for_deployment(inputs: DetectionInputs, settings: DetectorSettings, workers: int = 1) -> Detector:
    """Memory and novelty calibration of every day (`workers` days at once); the model part calibrated on the
    held-out day."""
    scores = model_scores_of(inputs.eval_set)
    acknowledged = inputs.feedback.acknowledged if inputs.feedback is not None else None
    return Detector.fit(
        inputs.history,
        scores,
        inputs.validation_start_ms,
        settings,
        inputs.networks,
        inputs.book,
        inputs.names,
        acknowledged,
        workers,
    )


def fold_of(entities: Sequence[str], ips: Sequence[str]) -> np.ndarray:
    """0 or 1 per pair, stable across runs and machines."""
    return np.asarray([zlib.crc32(f"{e}|{ip}".encode()) & 1 for e, ip in zip(entities, ips, strict=True)], np.int64)


def _fleet(data: EvalSet, novel: np.ndarray, normal: np.ndarray, by_role: bool = False) -> np.ndarray:
    """Workloads of each pair's account that met its address for the first time that day (`by_role`: in the pair's
    role); an injected pair joins the day's own."""
    counts = np.zeros(len(data), dtype=np.int64)
    entities, ips = data.entity[normal].tolist(), data.ip[normal].tolist()
    counts[normal] = fleet_workloads(entities, ips, novel[normal], by_role)
    keys = [fleet_key(e, ip, by_role) for e, ip in zip(data.entity.tolist(), data.ip.tolist(), strict=True)]
    day = {keys[i]: int(counts[i]) for i in np.flatnonzero(normal).tolist()}
    injected = np.flatnonzero(~normal)
    counts[injected] = [day.get(keys[i], 0) + 1 for i in injected.tolist()]
    return counts


def day_uploads(day: Pairs, data: EvalSet) -> np.ndarray | None:
    """What each normal pair of the eval set sent on the held-out day (the history's row of that day); 0 for an
    injected pair; None when the history carries no bytes."""
    if day.bytes_out is None:
        return None
    sent = dict(zip(zip(day.entity.tolist(), day.ip.tolist(), strict=True), day.bytes_out.tolist(), strict=True))
    normal = (data.kind == NORMAL).tolist()
    pairs = zip(data.entity.tolist(), data.ip.tolist(), strict=True)
    return np.asarray([sent.get(pair, 0) if ok else 0 for pair, ok in zip(pairs, normal, strict=True)], np.int64)


def evaluate_detection(inputs: DetectionInputs, settings: DetectorSettings, workers: int = 1) -> DetectionReport:
    """detection.json: alerts on the held-out day per 1,000 workloads, recall per injected kind, the top alerts."""
    start = inputs.validation_start_ms
    before = inputs.history.where(inputs.history.time < start)
    base = Detector.fit(before, None, start, settings, inputs.networks, inputs.book_before, workers=workers)
    held = new_pairs(inputs.history, start)
    lookup = model_scores_of(inputs.eval_set)
    dots = lookup(held.entity.tolist(), held.ip.tolist())
    folds = fold_of(held.entity.tolist(), held.ip.tolist())
    data = inputs.eval_set
    rows = (data.kind == NORMAL) | np.isin(data.kind, INJECTED_KINDS)
    data = data.subset(rows)
    entities, ips = data.entity.tolist(), data.ip.tolist()
    sent = day_uploads(inputs.history.where(inputs.history.time >= start), data)
    trained = frozenset(np.unique(before.entity).tolist())
    parts = []
    for fold in (0, 1):
        chosen = (folds == fold) & np.isfinite(dots)
        table = model_calibration(held.entity[chosen].tolist(), dots[chosen], settings)
        detector = Detector(base.memory, base.novelty_table, table, trained, settings, base.uploads)
        parts.append(detector.score(entities, ips, data.dot_product, sent))
    own_fold = fold_of(entities, ips)
    model_part = np.where(own_fold == 0, parts[1]["model_surprisal"], parts[0]["model_surprisal"])
    scored = parts[0]
    normal = data.kind == NORMAL
    fleet = _fleet(data, scored["novelty"] > 0, normal)
    role_fleet = _fleet(data, scored["novelty"] > 0, normal, by_role=True)
    decision = decide(
        scored["novelty_surprisal"],
        model_part,
        scored["model_speaks"],
        scored["new_role"],
        fleet,
        settings,
        scored["owner_known"],
        scored["large_upload"],
        role_fleet,
    )
    return detection_report(
        data,
        decision.flagged,
        decision.score,
        fleet,
        base,
        settings,
        inputs.validation_day,
        scored["owner_known"],
        decision.fleet_change,
    )


def fleet_changes(
    data: EvalSet, changed: np.ndarray, base: Detector, owner_known: np.ndarray | None = None
) -> dict[tuple[str, str], bool]:
    """Each (account, address) the fleet met at once, and whether the fleet knew it (scripts/detect/fleet.py's
    verdict): its network, or its owner (`owner_known`, row-aligned with `data`: the workload or its peer group
    talked to the address's owner before)."""
    by_key: dict[tuple[str, str], bool] = {}
    knows_owner = owner_known if owner_known is not None else np.zeros(len(data.entity), dtype=bool)
    for index in np.flatnonzero(changed).tolist():
        key = (account_of(str(data.entity[index])), str(data.ip[index]))
        by_key[key] = by_key.get(key, False) or bool(knows_owner[index])
    keys = sorted(by_key)
    nearest = base.memory.fleet_nearest([a for a, _ in keys], [ip for _, ip in keys])
    return {
        (account, ip): fleet_severity(
            nearest is not None and knew_network(ip, int(nearest.shared_bits[i]), nearest.nearest_ip(i)),
            by_key[(account, ip)],
        )
        == SERVICE_MOVING_SEVERITY
        for i, (account, ip) in enumerate(keys)
    }


def detection_report(
    data: EvalSet,
    flagged: np.ndarray,
    score: np.ndarray,
    fleet: np.ndarray,
    base: Detector,
    settings: DetectorSettings,
    day: str,
    owner_known: np.ndarray | None = None,
    fleet_change: np.ndarray | None = None,
) -> DetectionReport:
    """`flagged` pairs are alerts as the monitor writes them: a sweep counted once, a fleet change once per account
    and address when it is High, a DNS answer of an owner the workload knows (Low) not at all."""
    normal = data.kind == NORMAL
    workloads = len({base_entity(e) for e in data.entity[normal].tolist()})
    changed = (fleet >= max(settings.fleet_change_workloads, 1)) | known_owner_changes(fleet, owner_known, settings)
    if fleet_change is not None:  # the decision's own (large uploads and new roles taken out)
        changed = fleet_change
    changes = fleet_changes(data, normal & changed, base, owner_known)
    unknown_network_changes = sum(1 for knew in changes.values() if not knew)
    flagged = flagged & ~rotated_answers(data.entity.tolist(), owner_known, settings)
    sweeps = find_sweeps(
        data.entity[normal].tolist(), data.ip[normal].tolist(), flagged[normal], np.zeros(int(normal.sum()), dtype=bool)
    )
    swept = sum(len(sweep.rows) - 1 for sweep in sweeps)  # a sweep's flagged pairs are one finding
    alerts = int((flagged & normal).sum()) - swept + unknown_network_changes
    per_kind: dict[str, KindRecall] = {}
    for kind in INJECTED_KINDS:
        chosen = data.kind == kind
        if not chosen.any():
            continue
        caught = flagged & chosen
        missed = np.flatnonzero(chosen & ~flagged)[:MISSED_EXAMPLES]
        per_kind[kind] = KindRecall(
            count=int(chosen.sum()),
            recall=float(caught.sum() / chosen.sum()),
            missed_examples=[{"entity": str(data.entity[i]), "ip": str(data.ip[i])} for i in missed.tolist()],
        )
    recall = float(np.mean([v.recall for v in per_kind.values()])) if per_kind else 0.0
    top = [i for i in np.argsort(-score, kind="stable").tolist() if normal[i] and flagged[i]][:TOP_ALERTS]
    evidence = gather(base.memory, [str(data.entity[i]) for i in top], [str(data.ip[i]) for i in top])
    return DetectionReport(
        held_out_day=day,
        false_positive_rate=settings.false_positive_rate,
        workloads=workloads,
        pairs=int(normal.sum()),
        alerts=alerts,
        alerts_per_1000_workloads=1000.0 * alerts / max(workloads, 1),
        fleet_changes=len(changes) if settings.fleet_change_workloads > 0 else 0,
        fleet_changes_in_unknown_networks=unknown_network_changes if settings.fleet_change_workloads > 0 else 0,
        alerts_rule="flagged pairs (a workload's sweep of five or more counted once, as the monitor reports it), plus "
        "fleet changes (one per account and address) into networks and owners the fleet never reached: those are "
        "high-severity findings; fleet changes into a known network or to a known owner are low-severity",
        recall=recall,
        recall_rule="mean over the injected kinds present of the share of their pairs flagged",
        per_kind=per_kind,
        sweeps=len(sweeps),
        top_alerts=[
            TopAlert(
                entity=str(data.entity[i]),
                ip=str(data.ip[i]),
                score=float(score[i]),
                why=describe(str(data.entity[i]), str(data.ip[i]), found),
            )
            for i, found in zip(top, evidence, strict=True)
        ],
    )
