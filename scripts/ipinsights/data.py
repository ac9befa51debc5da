"""Read IP Insights channels: headerless `entity,ip` CSV files, several per channel, as SageMaker provides them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv


class ChannelError(ValueError):
    """A channel is missing, empty or has rows that are not `entity,ip`."""


@dataclass
class Pairs:
    """Entity and IP strings of a channel, row-aligned."""

    entities: list[str]
    ips: list[str]

    def __len__(self) -> int:
        return len(self.entities)


def channel_files(directory: Path) -> list[Path]:
    """Data files of a channel, skipping hidden files and Spark/Hadoop markers (_SUCCESS, .crc)."""
    if not directory.is_dir():
        message = f"channel folder {directory} does not exist"
        raise ChannelError(message)
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def read_file(path: Path) -> Pairs:
    """One headerless `entity,ip` CSV file; a malformed file is an error naming it and what was wrong."""
    if path.stat().st_size == 0:
        return Pairs([], [])
    options = pacsv.ReadOptions(column_names=["entity", "ip"], block_size=1 << 24)
    convert = pacsv.ConvertOptions(column_types={"entity": pa.string(), "ip": pa.string()}, strings_can_be_null=False)
    try:
        table = pacsv.read_csv(path, read_options=options, convert_options=convert)
    except pa.ArrowInvalid as error:
        message = f"{path} is not headerless `entity,ip` CSV: {error}"
        raise ChannelError(message) from None
    return Pairs(table.column("entity").to_pylist(), table.column("ip").to_pylist())


def read_channel(directory: Path) -> Pairs:
    """All rows of a channel's files, in file order."""
    entities: list[str] = []
    ips: list[str] = []
    files = channel_files(directory)
    for path in files:
        pairs = read_file(path)
        entities.extend(pairs.entities)
        ips.extend(pairs.ips)
    if not entities:
        message = f"channel {directory} has no rows (files: {[p.name for p in files] or 'none'})"
        raise ChannelError(message)
    return Pairs(entities, ips)
