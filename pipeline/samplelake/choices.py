"""The generator's named choices (kinds of attack, benign changes) checked in one place, naming what exists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def refuse_unknown(names: Iterable[str], allowed: Sequence[str], what: str) -> None:
    """Raise ValueError naming every unknown name of `names` and the `allowed` ones (`what`: `anomaly kinds`)."""
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        message = f"unknown {what} {unknown}; allowed: {', '.join(allowed)}"
        raise ValueError(message)
