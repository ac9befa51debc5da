"""Findings as incidents: one workload's findings of one day are one incident, and a grouped fleet finding stays one,
so an internal scan's forty pairs reach the analyst as one line with its pairs beneath (issue 28, item 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.findings_view import FindingRow
from scripts.entity import base_entity, is_fleet, workload_of

SEVERITY_RANK = {"Low": 0, "Medium": 1, "High": 2}
SHOWN_ADDRESSES = 3


@dataclass(frozen=True)
class Incident:
    """One workload's findings of one day (or one grouped fleet finding), earliest first."""

    account: str
    workload: str  # the workload id (`i-0abc`), or `<account>/*` for a fleet change
    day: str
    findings: tuple[FindingRow, ...]

    @property
    def severity(self) -> str:
        return max((f.severity for f in self.findings), key=lambda s: SEVERITY_RANK.get(s, -1))

    @property
    def first(self) -> FindingRow:
        return self.findings[0]

    @property
    def latest_ms(self) -> int:
        return max(f.time_ms for f in self.findings)

    @property
    def addresses(self) -> str:
        """The addresses it is about, first met first: `a, b, c and 4 more`."""
        distinct = list(dict.fromkeys(f.ip for f in self.findings))
        more = len(distinct) - SHOWN_ADDRESSES
        return ", ".join(distinct[:SHOWN_ADDRESSES]) + (f" and {more} more" if more > 0 else "")


def incidents(rows: Sequence[FindingRow]) -> list[Incident]:
    """Group findings by the incident the monitor gave them (Finding.incident_uid); a finding written before it had
    one is grouped by the same rule (account, workload, day; a fleet finding alone). Newest incident first."""
    groups: dict[tuple[str, str, str], list[FindingRow]] = {}
    for row in rows:
        workload = row.uid if is_fleet(row.entity) else base_entity(row.entity)
        key = (row.account, row.incident or workload, row.day)
        groups.setdefault(key, []).append(row)
    made = [
        Incident(
            account,
            row_group[0].entity if is_fleet(row_group[0].entity) else workload_of(row_group[0].entity),
            day,
            tuple(sorted(row_group, key=lambda f: (f.time_ms, f.uid))),
        )
        for (account, _, day), row_group in groups.items()
    ]
    return sorted(made, key=lambda i: (i.latest_ms, i.first.uid), reverse=True)
