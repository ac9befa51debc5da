"""Who owns a public address: an offline table of announced ranges, each with its autonomous system's name, the
organisation behind it and the organisation's kind (cloud, CDN, other network), as plain sorted arrays.

Addresses live in one 128-bit order (IPv4 in ::ffff:0:0/96, as in scripts.detect.history). The table holds the
start of every range and of every gap between ranges, sorted: the owner of an address is that of the last start at
or below it, one binary search. Private and reserved space has no owner (the table leaves it out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scripts.detect.history import address_keys
from scripts.detect.providers import KINDS, RESERVED_NAMES, classify

NO_OWNER = -1
START_DTYPE = np.dtype("S16")
_WORDS = np.dtype(">u8")
_V4_MAPPED = 0xFFFF_0000_0000
_MASK64 = (1 << 64) - 1
_TOP = (1 << 128) - 1


def text_blob(values: Sequence[str]) -> np.ndarray:
    """Strings (without newlines) as one UTF-8 byte array, each ended by a newline: a fixed-width unicode array of
    72,000 autonomous system names would take 27 MB (the longest name sets the width of all)."""
    return np.frombuffer("".join(f"{value}\n" for value in values).encode("utf-8"), dtype=np.uint8)


def blob_text(blob: np.ndarray) -> list[str]:
    """The strings of `text_blob`."""
    return np.asarray(blob, dtype=np.uint8).tobytes().decode("utf-8").split("\n")[:-1]


class NetworkTableError(ValueError):
    """A network table that cannot be used; the message names what is wrong and where it came from."""


def pack_starts(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """One sortable 16-byte key per address (byte order is numeric order)."""
    words = np.empty((len(high), 2), dtype=_WORDS)
    words[:, 0] = high
    words[:, 1] = low
    return words.reshape(-1).view(START_DTYPE)


@dataclass(frozen=True)
class AnnouncedRange:
    """first..last (inclusive) in the 128-bit order, announced by the autonomous system `name`."""

    first: int
    last: int
    name: str

    @staticmethod
    def of_network(first: int, prefix_length: int, name: str, ipv4: bool) -> AnnouncedRange:
        """From a network's first address and prefix length, IPv4 given as a 32-bit value."""
        if ipv4:
            return AnnouncedRange(_V4_MAPPED | first, (_V4_MAPPED | first) + (1 << (32 - prefix_length)) - 1, name)
        return AnnouncedRange(first, first + (1 << (128 - prefix_length)) - 1, name)


@dataclass(frozen=True)
class Owners:
    """For row-aligned addresses: the organisation (-1: none known) and the autonomous system's name."""

    organisation: np.ndarray
    name: np.ndarray


class NetworkTable:
    """Sorted range starts, the owner of each (an index into `names`, -1 for a gap), and per name its organisation."""

    def __init__(
        self,
        starts: np.ndarray,
        owner: np.ndarray,
        names: Sequence[str],
        organisation_of_name: np.ndarray,
        organisations: Sequence[str],
        kinds: Sequence[str],
        source: str,
    ) -> None:
        self.starts = np.asarray(starts, dtype=START_DTYPE)
        self.owner = np.asarray(owner, dtype=np.int32)
        self.names = list(names)
        self.organisation_of_name = np.asarray(organisation_of_name, dtype=np.int32)
        self.organisations = list(organisations)
        self.kinds = list(kinds)
        self.source = source

    @staticmethod
    def of_ranges(ranges: Iterable[AnnouncedRange], source: str) -> NetworkTable:
        """From announced ranges; reserved names (IANA.ORG, <unknown>) are left out, and so is a range that
        overlaps one before it (by start, the wider first): GeoLite2's ranges do not overlap."""
        cleaned = (AnnouncedRange(r.first, r.last, " ".join(r.name.split())) for r in ranges)
        kept = sorted((r for r in cleaned if r.name not in RESERVED_NAMES), key=lambda r: (r.first, -r.last))
        names = sorted({r.name for r in kept})
        index = {name: position for position, name in enumerate(names)}
        starts: list[int] = []
        owners: list[int] = []
        end = -1  # the last address covered so far
        for announced in kept:
            if announced.first <= end or announced.last < announced.first:
                continue
            if announced.first > end + 1:
                starts.append(end + 1)
                owners.append(NO_OWNER)
            starts.append(announced.first)
            owners.append(index[announced.name])
            end = announced.last
        if end < _TOP:
            starts.append(end + 1)
            owners.append(NO_OWNER)
        classified = [classify(name) for name in names]
        organisations = sorted({organisation for organisation, _ in classified})
        org_index = {organisation: position for position, organisation in enumerate(organisations)}
        kind_of = dict(classified)
        high = np.asarray([value >> 64 for value in starts], dtype=np.uint64)
        low = np.asarray([value & _MASK64 for value in starts], dtype=np.uint64)
        return NetworkTable(
            pack_starts(high, low),
            np.asarray(owners, dtype=np.int32),
            names,
            np.asarray([org_index[organisation] for organisation, _ in classified], dtype=np.int32),
            organisations,
            [kind_of[organisation] for organisation in organisations],
            source,
        )

    def __len__(self) -> int:
        return int((self.owner >= 0).sum())

    def name_index(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """The index into `names` of each address's autonomous system (-1: none), from parsed halves."""
        if len(self.starts) == 0 or len(high) == 0:
            return np.full(len(high), NO_OWNER, dtype=np.int64)
        position = np.searchsorted(self.starts, pack_starts(high, low), side="right") - 1
        return np.where(position >= 0, self.owner[np.maximum(position, 0)], NO_OWNER).astype(np.int64)

    def _organisation_of(self, names: np.ndarray) -> np.ndarray:
        return np.where(names >= 0, self.organisation_of_name[np.maximum(names, 0)], NO_OWNER).astype(np.int64)

    def organisation_codes(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """The organisation of each address (an index into `organisations`, -1: none), from parsed halves."""
        return self._organisation_of(self.name_index(high, low))

    def owners_of(self, high: np.ndarray, low: np.ndarray) -> Owners:
        """Organisation codes and autonomous system names of addresses, from parsed halves."""
        names = self.name_index(high, low)
        text = np.asarray([self.names[n] if n >= 0 else "" for n in names.tolist()], dtype=object)
        return Owners(self._organisation_of(names), text)

    def owners(self, ips: Sequence[str]) -> Owners:
        """Organisation codes and autonomous system names of addresses given as text."""
        _, high, low = address_keys(list(ips))
        return self.owners_of(high, low)

    def describe(self, organisation: int, name: str) -> str:
        """`Google (GOOGLE-CLOUD-PLATFORM, cloud)`, or "" for no owner."""
        if organisation < 0:
            return ""
        label = self.organisations[organisation]
        kind = self.kinds[organisation]
        return f"{label} ({name}, {kind})" if name and name != label else f"{label} ({kind})"

    def arrays(self, prefix: str = "networks") -> dict[str, np.ndarray]:
        """Plain arrays (no objects) for an .npz; `of_arrays` reads them back."""
        return {
            f"{prefix}.starts": self.starts,
            f"{prefix}.owner": self.owner,
            f"{prefix}.names": text_blob(self.names),
            f"{prefix}.organisation_of_name": self.organisation_of_name,
            f"{prefix}.organisations": text_blob(self.organisations),
            f"{prefix}.kinds": np.asarray([KINDS.index(kind) for kind in self.kinds], dtype=np.int8),
            f"{prefix}.source": np.asarray(self.source),
        }

    @staticmethod
    def of_arrays(arrays: Any, prefix: str = "networks", where: str = "the table") -> NetworkTable:
        """From arrays saved by `arrays()` (a dict or an open .npz); raises NetworkTableError naming what is wrong."""
        try:
            table = NetworkTable(
                arrays[f"{prefix}.starts"],
                arrays[f"{prefix}.owner"],
                blob_text(arrays[f"{prefix}.names"]),
                arrays[f"{prefix}.organisation_of_name"],
                blob_text(arrays[f"{prefix}.organisations"]),
                [KINDS[code] for code in np.asarray(arrays[f"{prefix}.kinds"]).tolist()],
                str(arrays[f"{prefix}.source"]),
            )
        except KeyError as error:
            message = f"{where} is not a network table: it lacks {error}; build it with pipeline.network_table"
            raise NetworkTableError(message) from None
        except (IndexError, UnicodeDecodeError) as error:
            message = f"{where} is not a consistent network table ({error}); build it with pipeline.network_table"
            raise NetworkTableError(message) from None
        consistent = (
            len(table.owner) == len(table.starts)
            and len(table.organisation_of_name) == len(table.names)
            and len(table.kinds) == len(table.organisations)
        )
        if not consistent:
            message = (
                f"{where} is not a consistent network table ({len(table.starts)} starts, {len(table.owner)} owners, "
                f"{len(table.names)} names, {len(table.organisations)} organisations); build it with "
                "pipeline.network_table"
            )
            raise NetworkTableError(message)
        return table
