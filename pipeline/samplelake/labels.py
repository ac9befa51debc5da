"""The sample lake's labels read back, and a day's findings judged against them (what `seclake run` prints)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.samplelake.writer import LABELS_FILE
from scripts.detect.fleet import SERVICE_MOVING_SEVERITY
from scripts.entity import base_entity
from scripts.monitor.findings import Finding


def labelled_pairs(root: Path) -> set[tuple[str, str]]:
    """The (entity, ip) pairs the generator injected as anomalies; empty for a lake without labels (a real one)."""
    path = root / LABELS_FILE
    if not path.exists():
        return set()
    with path.open(newline="") as handle:
        return {(row["entity"], row["ip"]) for row in csv.DictReader(handle)}


@dataclass(frozen=True)
class AgainstLabels:
    """Alerts (every finding but the informational ones) as distinct (workload, ip) pairs, judged against labels."""

    alerts: frozenset[tuple[str, str]]
    informational: frozenset[tuple[str, str]]
    labelled: frozenset[tuple[str, str]]

    @property
    def hits(self) -> int:
        return len(self.alerts & self.labelled)

    @property
    def precision(self) -> float:
        return self.hits / len(self.alerts) if self.alerts else 0.0

    @property
    def recall(self) -> float:
        return self.hits / len(self.labelled) if self.labelled else 0.0


def judge_findings(findings: Iterable[Finding], labelled: set[tuple[str, str]]) -> AgainstLabels:
    """A finding's entity carries its role (`#client:web`); a label names the workload, so the role is dropped."""
    findings = list(findings)
    alerts = {(base_entity(f.entity), f.ip) for f in findings if f.severity != SERVICE_MOVING_SEVERITY}
    informational = {(f.entity, f.ip) for f in findings if f.severity == SERVICE_MOVING_SEVERITY}
    return AgainstLabels(frozenset(alerts), frozenset(informational), frozenset(labelled))
