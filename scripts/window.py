"""The window a run reads: its days, its bounds in epoch milliseconds, and how EndDay and --sources are read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from scripts.ocsf.schemas import Source

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Window:
    """The days to read: [start_ms, end_ms), the last day is validation."""

    end_day: dt.date
    lookback_days: int

    @property
    def days(self) -> list[str]:
        return [(self.end_day - dt.timedelta(days=d)).strftime("%Y%m%d") for d in reversed(range(self.lookback_days))]

    @property
    def start_ms(self) -> int:
        first = self.end_day - dt.timedelta(days=self.lookback_days - 1)
        return int(dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC).timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.lookback_days * DAY_MS

    @property
    def validation_start_ms(self) -> int:
        return self.end_ms - DAY_MS


def parse_end_day(text: str, today: dt.date | None = None) -> dt.date:
    """The window's last day from YYYYMMDD; an ISO-8601 time (the last full UTC day before it: what the schedule
    passes, so each scheduled run has its own cache key); or 'latest' (the day before the job starts, UTC)."""
    value = text.strip()
    if value.lower() == "latest":
        return (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=1)
    if len(value) == 8 and value.isdigit():
        return dt.datetime.strptime(value, "%Y%m%d").replace(tzinfo=dt.UTC).date()
    instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC).date() - dt.timedelta(days=1)


END_DAY_HELP = (
    "is not YYYYMMDD (e.g. 20261128), an ISO-8601 time (e.g. 2026-11-29T03:00:00Z) or 'latest'"  # after the value
)


def parse_sources(text: str) -> list[Source]:
    """`vpc_flow,route53` -> the Source members, or a ValueError naming the unknown ones and the allowed names."""
    names = {source.value.lower(): source for source in Source}
    chosen = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in names]
    if unknown or not chosen:
        message = f"--sources {text!r}: unknown {unknown or 'empty list'}; allowed: {', '.join(sorted(names))}"
        raise ValueError(message)
    return [names[name] for name in chosen]
