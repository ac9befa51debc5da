"""The deployed detector's shards in a warm container: each loaded when the first object of its account arrives, the
few most recently used kept, so that memory is bounded by the largest shards, not by the organisation."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from scripts.handoff.detector_index import ShardIndex
from scripts.monitor.flagging import Knowledge

LOG = logging.getLogger("seclake.monitor")
SHARDS_HELD = 4  # an SQS batch mixes accounts; a few held spare reloading between them
WHOLE = ""  # the one file of a run fitted before shards, which answers for every account


class ShardedKnowledge:
    """What the monitor knows for each account: `load(file)` reads the shard a file of the index names."""

    def __init__(self, load: Callable[[str], Knowledge], index: ShardIndex | None, held: int = SHARDS_HELD) -> None:
        self._load = load
        self.index = index
        self.held = held
        self._shards: OrderedDict[str, Knowledge] = OrderedDict()
        self.loads = 0  # how many shards this container read (a reload after eviction counts again)

    @staticmethod
    def whole(knowledge: Knowledge) -> ShardedKnowledge:
        """A run's single detector, already loaded, for every account."""
        sharded = ShardedKnowledge(lambda _: knowledge, None)
        sharded._shards[WHOLE] = knowledge
        return sharded

    def of(self, account: str) -> Knowledge:
        """The knowledge that answers for an object of `account`."""
        name = self.index.file_of(account) if self.index is not None else WHOLE
        knowledge = self._shards.pop(name, None)
        if knowledge is None:
            knowledge = self._load(name)
            self.loads += 1
            LOG.info("detector shard %s loaded for account %s", name, account)
        self._shards[name] = knowledge
        while len(self._shards) > self.held:
            self._shards.popitem(last=False)
        return knowledge

    @property
    def loaded(self) -> list[str]:
        """The shards held now, least recently used first."""
        return list(self._shards)
