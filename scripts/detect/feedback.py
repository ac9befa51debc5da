"""The analysts' verdicts applied to the detector's history: true positives out, benign pairs known, and the
production precision of the last days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from scripts.addresses import AddressError, parse_address
from scripts.detect.memory import Pairs
from scripts.handoff.detection import FeedbackRecord
from scripts.handoff.verdicts import BENIGN, TRUE_POSITIVE, VerdictsRead

PRODUCTION_DAYS = 7  # the production precision counts the verdicts on the findings of this many days
# A benign pair is remembered as a known address, which makes its network familiar too; so none is remembered inside
# a true positive's network (its /24, or /48 for IPv6): an attacker's neighbouring address stays new.
POSITIVE_NETWORK_BITS = {4: 24, 6: 48}


@dataclass(frozen=True)
class Feedback:
    """The history without the true positives, the benign pairs to remember, and what was done."""

    history: Pairs
    acknowledged: Pairs  # benign pairs, first seen at their finding's day (at most the history's end)
    record: FeedbackRecord


def _day_start_ms(day: str) -> int:
    moment = dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def production_days(validation_day: str, days: int = PRODUCTION_DAYS) -> list[str]:
    """The days whose findings' verdicts make the production precision: `days` days up to the one after the window
    (the day the run's model scores first)."""
    last = dt.datetime.strptime(validation_day, "%Y%m%d").date() + dt.timedelta(days=1)
    return [(last - dt.timedelta(days=back)).strftime("%Y%m%d") for back in reversed(range(days))]


def _network(address: str) -> tuple[int, int] | None:
    """(family, network) of an address at POSITIVE_NETWORK_BITS; None when it does not parse."""
    try:
        family, value = parse_address(address)
    except AddressError:
        return None
    width = 32 if family == 4 else 128
    return family, value >> (width - POSITIVE_NETWORK_BITS[family])


def apply_verdicts(history: Pairs, read: VerdictsRead, validation_day: str) -> Feedback:
    """A pair with a true-positive verdict leaves the history (every day of it) and is never acknowledged, whatever
    another finding's verdict says; a benign pair is acknowledged unless its address is in a true positive's network.
    A pair whose address does not parse, or that is not acknowledged for that network, is skipped and named."""
    skipped = list(read.skipped)
    positives = {pair for pair in read.pairs(TRUE_POSITIVE) if _network(pair[1]) is not None}
    hostile = {_network(ip) for _, ip in positives}
    end_ms = int(history.time.max()) if len(history) else 0
    benign: dict[tuple[str, str], int] = {}
    for verdict in read.of(BENIGN):
        for pair in verdict.pair_tuples:
            network = _network(pair[1])
            if network is None:
                skipped.append(f"{verdict.finding_uid}: {pair[1]!r} is not an IP address")
                continue
            if network in hostile:
                if pair not in positives:
                    bits = POSITIVE_NETWORK_BITS[network[0]]
                    skipped.append(f"{verdict.finding_uid}: {pair[1]} is in a true positive's /{bits}: not learned")
                continue
            first = min(_day_start_ms(verdict.day), end_ms)
            benign[pair] = min(benign.get(pair, first), first)
    kept = history
    removed = 0
    if positives and len(history):
        bad = np.asarray(
            [(e, ip) in positives for e, ip in zip(history.entity.tolist(), history.ip.tolist(), strict=True)],
            dtype=bool,
        )
        removed = int(bad.sum())
        kept = history.where(~bad)
    acknowledged = Pairs.of([e for e, _ in benign], [ip for _, ip in benign], list(benign.values()))
    window = production_days(validation_day)
    recent = [v for v in read.verdicts if window[0] <= v.day <= window[-1]]
    right = sum(v.verdict == TRUE_POSITIVE for v in recent)
    record = FeedbackRecord(
        verdicts=len(read.verdicts),
        skipped=skipped,
        benign_pairs=len(benign),
        true_positive_pairs=len(positives),
        history_rows_removed=removed,
        production_days=[window[0], window[-1]],
        production_true_positives=right,
        production_benign=len(recent) - right,
        production_precision=right / len(recent) if recent else None,
    )
    return Feedback(kept, acknowledged, record)
