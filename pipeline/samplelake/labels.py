"""The sample lake's labels read back, and a day's findings judged against them (what `seclake run` prints)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.samplelake.writer import BENIGN_LABELS_FILE, LABELS_FILE
from scripts.detect.fleet import SERVICE_MOVING_SEVERITY
from scripts.entity import account_of, base_entity, is_fleet
from scripts.monitor.findings import Finding


def labelled_pairs(root: Path) -> set[tuple[str, str]]:
    """The (entity, ip) pairs the generator injected as anomalies; empty for a lake without labels (a real one)."""
    return set(labelled_kinds(root))


def labelled_kinds(root: Path) -> dict[tuple[str, str], str]:
    """Each injected (entity, ip) pair's kind of attack."""
    return {(row["entity"], row["ip"]): row["kind"] for row in _rows(root / LABELS_FILE)}


def benign_changes(root: Path) -> set[tuple[str, str]]:
    """The (workload, ip) pairs every benign change the generator made (changes.py) created; empty when none was
    asked for."""
    return {(row["entity"], row["ip"]) for row in _rows(root / BENIGN_LABELS_FILE)}


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class AgainstLabels:
    """Alerts (every finding but the informational ones) as distinct (workload, ip) pairs, judged against labels."""

    alerts: frozenset[tuple[str, str]]
    informational: frozenset[tuple[str, str]]
    labelled: frozenset[tuple[str, str]]
    benign: frozenset[tuple[str, str]] = frozenset()  # (workload, ip) pairs of the benign changes
    benign_alerts: frozenset[tuple[str, str]] = frozenset()  # alerts (above Low) on a benign change's pairs

    def recall_by_kind(self, kinds: Mapping[tuple[str, str], str]) -> dict[str, tuple[int, int]]:
        """(found, injected) per kind of attack, for the labelled pairs `kinds` names."""
        counts: dict[str, tuple[int, int]] = {}
        for pair in sorted(self.labelled):
            found, injected = counts.get(kinds.get(pair, "unknown"), (0, 0))
            counts[kinds.get(pair, "unknown")] = (found + (pair in self.alerts), injected + 1)
        return counts

    @property
    def hits(self) -> int:
        return len(self.alerts & self.labelled)

    @property
    def precision(self) -> float:
        return self.hits / len(self.alerts) if self.alerts else 0.0

    @property
    def recall(self) -> float:
        return self.hits / len(self.labelled) if self.labelled else 0.0


def judge_findings(
    findings: Iterable[Finding], labelled: set[tuple[str, str]], benign: set[tuple[str, str]] | None = None
) -> AgainstLabels:
    """A finding's entity carries its role (`#client:web`); a label names the workload, so the role is dropped; a
    sweep is an alert on each address it lists. An alert on a benign change is one on a pair the change made, or a
    grouped fleet finding (`<account>/*`) on an address the change made its account meet; an alert on a labelled
    attack is the attack's, whatever change also touched its address (a scan probing a database a new service
    uses)."""
    findings = list(findings)
    benign = benign or set()
    changed_accounts = {(account_of(entity), ip) for entity, ip in benign}
    alerts = {
        (base_entity(f.entity), ip) for f in findings if f.severity != SERVICE_MOVING_SEVERITY for ip in f.addresses
    }
    informational = {(f.entity, f.ip) for f in findings if f.severity == SERVICE_MOVING_SEVERITY}
    on_benign = {
        (entity, ip)
        for entity, ip in alerts - labelled
        if (entity, ip) in benign or (is_fleet(entity) and (account_of(entity), ip) in changed_accounts)
    }
    return AgainstLabels(
        frozenset(alerts), frozenset(informational), frozenset(labelled), frozenset(benign), frozenset(on_benign)
    )
