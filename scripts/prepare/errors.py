"""The preprocessing job's error: what cannot be prepared, with the value and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


class PreprocessError(ValueError):
    """The lake or the arguments cannot give training data; the message says what was found and what to do."""
