"""The analyst lists the monitor applies, read from the artifacts (lists/<kind>/<name>.txt) and kept a few minutes
per container: an analyst's new list reaches every warm container within LIST_TTL_SECONDS, with one read per list."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from scripts.handoff.artifacts import ArtifactLayout
from scripts.monitor.iplists import THREAT, TRUSTED, AnalystLists, IpList
from scripts.monitor.settings import Settings
from scripts.monitor.store import ObjectMissingError, ObjectStore

LOG = logging.getLogger("seclake.monitor")
LIST_TTL_SECONDS = 300.0


class MissingListError(LookupError):
    """A list the settings name is not where it should be; the message names its URI and the fix."""


class ListLoader:
    """Reads the lists `settings` names through `objects`; `clock` (seconds) decides when they are read again."""

    def __init__(self, settings: Settings, objects: ObjectStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.objects = objects
        self.clock = clock
        self._lists: AnalystLists | None = None
        self._read_at = 0.0

    def current(self) -> AnalystLists:
        """The lists as they stand (read again when older than LIST_TTL_SECONDS); none named, none read."""
        if not self.settings.trusted_lists and not self.settings.threat_lists:
            return AnalystLists()
        now = self.clock()
        if self._lists is None or now - self._read_at >= LIST_TTL_SECONDS:
            trusted = [self._read(TRUSTED, name) for name in self.settings.trusted_lists]
            threat = [self._read(THREAT, name) for name in self.settings.threat_lists]
            self._lists, self._read_at = AnalystLists.of(trusted, threat), now
            for name, count in sorted(self._lists.skipped.items()):
                LOG.warning("analyst list %s: %d lines are no IP address or CIDR and were skipped", name, count)
        return self._lists

    def _read(self, kind: str, name: str) -> IpList:
        uri = ArtifactLayout(self.settings.artifact_uri).analyst_list(kind, name)
        try:
            # a byte that is not UTF-8 (a comment saved in cp1252) spoils its line only, never the list or the batch
            return IpList.parse(name, self.objects.get_bytes(uri).decode("utf-8-sig", errors="replace"))
        except ObjectMissingError:
            message = (
                f"the {kind} list {name!r} is not at {uri}: upload it with `seclake lists put {kind} {name} FILE`, "
                f"or remove it from detection.{kind}_lists"
            )
            raise MissingListError(message) from None
