"""Recent findings from where the monitor writes them in the local lake: newest first, filtered, with why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from scripts.monitor.findings import CUSTOM_SOURCE


@dataclass(frozen=True)
class FindingRow:
    """What an analyst reads first about one finding."""

    time_ms: int
    day: str
    account: str
    region: str
    entity: str
    ip: str
    why: str
    uid: str
    model_version: str

    @property
    def time(self) -> str:
        return dt.datetime.fromtimestamp(self.time_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def finding_files(s3_root: Path, prefix: str = "ext") -> list[Path]:
    """Every findings object under any local bucket's custom-source prefix."""
    return sorted(s3_root.glob(f"*/{prefix}/{CUSTOM_SOURCE}/region=*/accountId=*/eventDay=*/*.parquet"))


def recent_findings(
    s3_root: Path,
    entity: str | None = None,
    account: str | None = None,
    day: str | None = None,
    limit: int = 20,
) -> list[FindingRow]:
    """Newest first; `entity` matches any part of the entity (an instance id finds all its roles); one row per uid."""
    import pyarrow.parquet as pq

    rows: dict[str, FindingRow] = {}
    for path in finding_files(s3_root):
        partition = dict(part.split("=", 1) for part in path.parts if "=" in part)
        if (account and partition.get("accountId") != account) or (day and partition.get("eventDay") != day):
            continue
        for record in pq.read_table(path, columns=["time", "finding_info", "observables", "unmapped"]).to_pylist():
            observed = {item["name"]: item["value"] for item in record["observables"]}
            if entity and entity not in observed.get("entity", ""):
                continue
            unmapped = dict(record["unmapped"] or [])
            info = record["finding_info"]
            rows[info["uid"]] = FindingRow(
                time_ms=int(record["time"]),
                day=partition.get("eventDay", ""),
                account=partition.get("accountId", ""),
                region=partition.get("region", ""),
                entity=observed.get("entity", ""),
                ip=observed.get("ip", ""),
                why=str(info["desc"]),
                uid=str(info["uid"]),
                model_version=str(unmapped.get("model_version", "")),
            )
    return sorted(rows.values(), key=lambda r: (r.time_ms, r.uid), reverse=True)[:limit]
