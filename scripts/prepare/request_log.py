"""The S3 requests the Spark job's driver makes to the lake (each listing's prefix, each object read) and the access
key that signs them (the subscriber role's session, or the job's own role), kept so that the local runtime can check
them against that principal as S3 would have, and written next to the job's log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

REQUEST_LOG_VARIABLE = "SECLAKE_REQUEST_LOG"  # set by the local runtime: where the job writes its requests
LIST = "s3:ListBucket"
GET = "s3:GetObject"
WILDCARDS = "*?[{"


def listing_prefix(pattern: str) -> str:
    """The URI up to the first wildcard of a glob: the prefix a lister sends as ListObjectsV2's Prefix."""
    cut = min((pattern.index(c) for c in WILDCARDS if c in pattern), default=len(pattern))
    return pattern[:cut]


@dataclass
class RequestLog:
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    key: str = ""  # the access key id of the credentials the lake is read with; empty: the job's role

    def signed_by(self, access_key_id: str) -> None:
        self.key = access_key_id

    def listed(self, pattern: str) -> None:
        self.requests.append((LIST, listing_prefix(pattern), self.key))

    def read(self, uris: list[str]) -> None:
        self.requests.extend((GET, uri, self.key) for uri in uris)

    def write(self, path: Path) -> None:
        entries = [{"action": a, "uri": u, "key": k} for a, u, k in self.requests]
        path.write_text(json.dumps(entries, indent=0))


REQUESTS = RequestLog()  # the driver's, for the job's lifetime
