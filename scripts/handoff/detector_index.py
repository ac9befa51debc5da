"""The detector's index (detector.json): which shard file answers for which account, written by FitDetector
(scripts/detect/shards.py) and read by the monitor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INDEX_FORMAT = "seclake-detector-shards"
INDEX_VERSION = 1
ORGANISATION_SHARD = "organisation"
CUT_ACCOUNT = "account"  # one shard per account, plus the organisation's part
CUT_NONE = "none"  # the entities carry no account: the organisation shard is the whole detector
# the index's keys: written by FitDetector, read by the monitor
FORMAT_KEY, VERSION_KEY, CUT_KEY, SHARDS_KEY, METADATA_KEY = "format", "version", "cut", "shards", "metadata"
FILE_KEY, BYTES_KEY, PAIRS_KEY = "file", "bytes", "history_pairs"


class ShardIndexError(ValueError):
    """A detector index this code cannot read; the message names it and what differs."""


@dataclass(frozen=True)
class ShardIndex:
    """Which file holds each account's shard (relative to the index), and the organisation's."""

    cut: str
    shards: dict[str, dict[str, Any]]  # account (or ORGANISATION_SHARD) -> file, bytes, history pairs
    metadata: dict[str, Any]

    def file_of(self, account: str) -> str:
        """The shard that answers for `account`: its own, else the organisation's (an account the fit never saw)."""
        entry = self.shards.get(account) if account != ORGANISATION_SHARD else None
        return str((entry or self.shards[ORGANISATION_SHARD])[FILE_KEY])

    def to_json(self) -> str:
        document = {
            FORMAT_KEY: INDEX_FORMAT,
            VERSION_KEY: INDEX_VERSION,
            CUT_KEY: self.cut,
            SHARDS_KEY: self.shards,
            METADATA_KEY: self.metadata,
        }
        return json.dumps(document, indent=1, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str, where: str) -> ShardIndex:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            message = f"{where} is not JSON ({error}); the FitDetector step writes it"
            raise ShardIndexError(message) from None
        if not isinstance(document, dict) or document.get(FORMAT_KEY) != INDEX_FORMAT:
            message = f"{where} is not a detector index ({FORMAT_KEY} {INDEX_FORMAT!r} expected)"
            raise ShardIndexError(message)
        if document.get(VERSION_KEY) != INDEX_VERSION:
            message = (
                f"{where} is detector index version {document.get(VERSION_KEY)}; this code reads version "
                f"{INDEX_VERSION}: refit the detector with this release's pipeline"
            )
            raise ShardIndexError(message)
        shards = document.get(SHARDS_KEY)
        if not isinstance(shards, dict) or ORGANISATION_SHARD not in shards:
            message = f"{where} names no {ORGANISATION_SHARD!r} shard; the FitDetector step always writes one"
            raise ShardIndexError(message)
        return ShardIndex(str(document.get(CUT_KEY)), shards, dict(document.get(METADATA_KEY) or {}))
