"""The eval set's kinds of rows: what the preprocessing step writes and the detector's evaluation reads.

Normal rows are the held-out day's distinct pairs. Two kinds are the model's negatives, one per normal row of an
entity seen in training: a random public IPv4 address, and an address only workloads outside the entity's peer
group (its account's workloads in its role) ever talked to, a true negative in a fleet whose workloads share their
peers. The injected kinds are attacks the detector must catch on that day: a network none of the entity's peer
group ever reached, reached from a side that opens connections (a server's next client from a network its ISP
customers come from is ordinary), an internal address of another account, a known workload in a role it never had
(not a DNS answer's: a workload's first logged lookup is no new behaviour). Another group's address is not among
them: a load balancer's next residential client was some other host's client before.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scripts.handoff.artifacts import EVAL_OUTPUT
from scripts.handoff.records import HandoffError

NORMAL = "normal"
RANDOM_IPV4 = "random_ipv4"
OTHER_GROUP_IP = "other_group_ip"
NEW_NETWORK = "new_network"
OTHER_ACCOUNT_INTERNAL = "other_account_internal"
NEW_ROLE = "new_role"

MODEL_NEGATIVE_KINDS = (RANDOM_IPV4, OTHER_GROUP_IP)
INJECTED_KINDS = (NEW_NETWORK, OTHER_ACCOUNT_INTERNAL, NEW_ROLE)
KIND_ORDER = (NORMAL, RANDOM_IPV4, OTHER_GROUP_IP, NEW_NETWORK, OTHER_ACCOUNT_INTERNAL, NEW_ROLE)

PAIRS_FILE = "pairs.csv"  # headerless entity,ip rows: what the batch transform scores
LABELS_FILE = "labels.csv"  # row-aligned with pairs.csv, with a header
TRANSFORM_SUFFIX = ".out"  # batch transform names its output <input>.out
SCORES_FILE = f"{PAIRS_FILE}{TRANSFORM_SUFFIX}"
LABEL = "label"  # 1: anomalous
KIND = "kind"
ENTITY_IN_TRAINING = "entity_in_training"
MODEL_NEGATIVE = "model_negative"  # 1: one of the model's negatives (MODEL_NEGATIVE_KINDS)
LABEL_COLUMNS = (LABEL, KIND, ENTITY_IN_TRAINING, MODEL_NEGATIVE)


class EvalSetError(HandoffError):
    """The eval set and its scores cannot be read together; the message says why and what to check."""


@dataclass
class EvalSet:
    """Eval pairs with labels, row-aligned with their scores: one array per column."""

    entity: np.ndarray
    ip: np.ndarray
    label: np.ndarray
    kind: np.ndarray
    entity_in_training: np.ndarray
    dot_product: np.ndarray
    model_negative: np.ndarray

    def __len__(self) -> int:
        return len(self.entity)

    def subset(self, mask: np.ndarray) -> EvalSet:
        return EvalSet(
            self.entity[mask],
            self.ip[mask],
            self.label[mask],
            self.kind[mask],
            self.entity_in_training[mask],
            self.dot_product[mask],
            self.model_negative[mask],
        )


def _score_lines(path: Path) -> list[float]:
    """dot_product values of one transform output file, in row order.

    Accepts the built-in's JSON Lines (`{"dot_product": x}` per line), JSON (`{"predictions": [...]}` per line or
    per file), and lines that start with the joined input (`entity,ip,{...}`).
    """
    values: list[float] = []
    text = path.read_text()
    stripped = text.strip()
    if stripped.startswith("{") and "\n" not in stripped:
        lines = [stripped]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        payload = line[line.index("{") :] if "{" in line else line
        try:
            document = json.loads(payload)
        except json.JSONDecodeError:
            try:
                values.append(float(payload.split(",")[-1]))
                continue
            except ValueError:
                message = f"{path}, line {number}: not a score line ({line[:80]!r})"
                raise EvalSetError(message) from None
        records = document["predictions"] if isinstance(document, dict) and "predictions" in document else [document]
        for record in records:
            if not isinstance(record, dict) or "dot_product" not in record:
                message = f"{path}, line {number}: no dot_product in {json.dumps(record)[:80]}"
                raise EvalSetError(message)
            values.append(float(record["dot_product"]))
    return values


def load_eval_set(eval_dir: Path, scores_dir: Path) -> EvalSet:
    """Join eval/pairs.csv, eval/labels.csv and the transform output, checking that they line up."""
    pairs_path, labels_path = eval_dir / PAIRS_FILE, eval_dir / LABELS_FILE
    for path in (pairs_path, labels_path):
        if not path.exists():
            written = f"{EVAL_OUTPUT}/{PAIRS_FILE} and {EVAL_OUTPUT}/{LABELS_FILE}"
            message = f"{path} is missing; the preprocessing step writes {written}"
            raise EvalSetError(message)
    with pairs_path.open(newline="") as handle:
        pairs = [row for row in csv.reader(handle) if row]
    with labels_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        labels = list(reader)
    missing = {LABEL, KIND} - set(columns)
    if missing:
        message = f"{labels_path} lacks columns {sorted(missing)}; found {columns}"
        raise EvalSetError(message)
    if len(pairs) != len(labels):
        message = f"{pairs_path} has {len(pairs)} rows but {labels_path} has {len(labels)}: they must be row-aligned"
        raise EvalSetError(message)
    bad = next((number for number, row in enumerate(pairs, 1) if len(row) != 2), None)
    if bad is not None:
        message = f"{pairs_path}, line {bad}: expected entity,ip, found {pairs[bad - 1]!r}"
        raise EvalSetError(message)
    candidates = sorted(scores_dir.glob(SCORES_FILE)) or sorted(scores_dir.glob(f"*{TRANSFORM_SUFFIX}"))
    if len(candidates) != 1:
        message = (
            f"expected one transform output for {PAIRS_FILE} in {scores_dir} ({SCORES_FILE}), found "
            f"{[p.name for p in candidates] or 'none'}"
        )
        raise EvalSetError(message)
    scores = _score_lines(candidates[0])
    if len(scores) != len(pairs):
        message = (
            f"{candidates[0]} has {len(scores)} scores for {len(pairs)} eval pairs: the transform output is not "
            f"row-aligned with {EVAL_OUTPUT}/{PAIRS_FILE} (check the transform's split and assemble settings: "
            "Line/Line)"
        )
        raise EvalSetError(message)
    _check_joined_input(candidates[0], pairs)
    return EvalSet(
        entity=np.array([row[0] for row in pairs], dtype=object),
        ip=np.array([row[1] for row in pairs], dtype=object),
        label=np.array([int(row[LABEL]) for row in labels], dtype=np.int64),
        kind=np.array([row[KIND] for row in labels], dtype=object),
        entity_in_training=np.array([int(row.get(ENTITY_IN_TRAINING) or 1) for row in labels], dtype=np.int64),
        dot_product=np.asarray(scores, dtype=np.float64),
        model_negative=np.array([int(row.get(MODEL_NEGATIVE) or int(row[LABEL])) for row in labels], dtype=np.int64),
    )


def _check_joined_input(path: Path, pairs: list[list[str]]) -> None:
    """When the transform joined its input to each output line, the input must be the eval pair of that row."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0].startswith("{"):
        return
    for number, (line, (entity, ip)) in enumerate(zip(lines, pairs, strict=True), 1):
        if not line.startswith(f"{entity},{ip},"):
            message = f"{path}, line {number}: joined input {line[:60]!r} is not eval pair {entity},{ip}"
            raise EvalSetError(message)
