"""Analysts' verdicts: feedback/verdicts/<finding uid>/<decided at>-<source>.json, written by `seclake findings
verdict` and by the Security Hub workflow's function, read by the FitDetector step (benign pairs become known, true
positives leave the history, and the verdicts of the last days give the production precision)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.handoff.records import HandoffError, dumps, field_key, from_json, parse_json

TRUE_POSITIVE = "true-positive"  # the finding was right: its pairs are never learned as normal
BENIGN = "benign"  # the finding was expected traffic: its pairs are known to the next detector
VERDICTS = (TRUE_POSITIVE, BENIGN)
VERDICT_SUFFIX = ".json"
FORMAT_FILE = "_format.json"  # put with the job code so the folder is never empty (an empty S3 input fails a job)
SKIPPED_PREFIXES = ("_", ".")  # the format note, and whatever a tool leaves beside the verdicts
FINDING_UID = re.compile(r"[0-9a-f]{8,64}")
WRITER = "`seclake findings verdict` or the Security Hub workflow's function (feedback/verdicts/)"


class VerdictError(ValueError):
    """A verdict that cannot be recorded: the message names the value and the fix."""


@dataclass(frozen=True)
class Verdict:
    """One analyst's decision on one finding, with the (entity, ip) pairs it covers (a grouped finding has many)."""

    finding_uid: str
    verdict: str  # TRUE_POSITIVE or BENIGN
    day: str  # YYYYMMDD: the finding's event day
    account: str
    pairs: list[list[str]]  # [[entity, ip], ...]: `<account>/<workload>#<role>`, as the history names entities
    decided_at: str  # ISO 8601, UTC
    author: str = ""
    note: str = ""
    source: str = ""  # `seclake findings verdict`, or Security Hub

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            message = f"verdict {self.verdict!r} of finding {self.finding_uid}: give one of {', '.join(VERDICTS)}"
            raise VerdictError(message)
        if not FINDING_UID.fullmatch(self.finding_uid):
            message = f"finding uid {self.finding_uid!r} is not a finding's uid (8 to 64 lowercase hex digits)"
            raise VerdictError(message)
        if not re.fullmatch(r"\d{8}", self.day):
            message = f"day {self.day!r} of finding {self.finding_uid} must be YYYYMMDD"
            raise VerdictError(message)
        if not self.pairs or any(len(pair) != 2 or not all(pair) for pair in self.pairs):
            message = f"finding {self.finding_uid}: pairs {self.pairs!r} must be [entity, ip] pairs, at least one"
            raise VerdictError(message)

    @property
    def file_name(self) -> str:
        """<finding uid>/<decided at>-<source>.json: one file per decision, so a redelivered or retried write is the
        same file and a later decision never loses to an earlier one written last."""
        stamp = re.sub(r"[^0-9TZ]", "", self.decided_at)
        source = re.sub(r"[^a-z0-9]+", "-", self.source.lower()).strip("-") or "unknown"
        return f"{self.finding_uid}/{stamp}-{source}{VERDICT_SUFFIX}"

    @property
    def pair_tuples(self) -> list[tuple[str, str]]:
        return [(entity, ip) for entity, ip in self.pairs]

    def dumps(self) -> str:
        return dumps(dataclasses.asdict(self))

    @staticmethod
    def of(
        finding_uid: str,
        verdict: str,
        day: str,
        account: str,
        pairs: Sequence[tuple[str, str]],
        decided_at: dt.datetime,
        author: str = "",
        note: str = "",
        source: str = "",
    ) -> Verdict:
        stamp = decided_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        unique = list(dict.fromkeys((entity, ip) for entity, ip in pairs))
        return Verdict(finding_uid, verdict, day, account, [[e, ip] for e, ip in unique], stamp, author, note, source)

    @staticmethod
    def parse(text: str, where: str) -> Verdict:
        """Raises HandoffError naming `where` for anything that is not a verdict."""
        document = parse_json(text, where, WRITER)
        try:
            return from_json(Verdict, document, where)
        except (VerdictError, TypeError) as error:
            message = f"{where}: {error}"
            raise HandoffError(message) from None


VERDICT_KEY = field_key(Verdict, "verdict")


@dataclass(frozen=True)
class VerdictsRead:
    """The verdicts of a folder, the latest per finding, and the files skipped (named, with why)."""

    verdicts: list[Verdict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def of(self, verdict: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict == verdict]

    def pairs(self, verdict: str) -> set[tuple[str, str]]:
        return {pair for v in self.of(verdict) for pair in v.pair_tuples}


def read_verdicts(folder: Path | None) -> VerdictsRead:
    """Every verdict file under `folder` (None or missing: none); an unreadable one is skipped and named."""
    if folder is None or not folder.exists():
        return VerdictsRead()
    verdicts: dict[str, Verdict] = {}
    skipped = []
    for path in sorted(folder.rglob(f"*{VERDICT_SUFFIX}")):
        if path.name.startswith(SKIPPED_PREFIXES):
            continue
        try:
            verdict = Verdict.parse(path.read_text(encoding="utf-8"), str(path))
        except (HandoffError, OSError, UnicodeDecodeError) as error:
            skipped.append(f"{path.name}: {error}")
            continue
        known = verdicts.get(verdict.finding_uid)
        if known is None or verdict.decided_at >= known.decided_at:
            verdicts[verdict.finding_uid] = verdict
    return VerdictsRead(sorted(verdicts.values(), key=lambda v: (v.decided_at, v.finding_uid)), skipped)


def format_note() -> bytes:
    """feedback/verdicts/_format.json: what the folder holds, for whoever opens it, and so it is never empty."""
    document: dict[str, Any] = {
        "format": "seclake-ipinsights analyst verdicts: <finding uid>/<decided at>-<source>.json, the latest counts",
        "verdicts": list(VERDICTS),
        "fields": [f.name for f in dataclasses.fields(Verdict)],
        "writers": WRITER,
        "reader": "the FitDetector step (scripts/jobs/fit_detector.py --feedback)",
    }
    return dumps(document).encode()
