"""The offline network-ownership table the detector reads, built from the GeoLite2 ASN data geoip2fast ships.

Built on the machine that upserts the pipeline (the jobs' images do not have geoip2fast), written as a
deterministic .npz (fixed zip timestamps), and uploaded with the job code, content-addressed: the same package
version always gives the same bytes and the same s3:// URI, so the FitDetector step's cache key changes only when
the data does. The table is cached under ~/.cache/seclake-ipinsights/networks/.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import io
import pickle
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from scripts.detect.networks import AnnouncedRange, NetworkTable

DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"  # IPv4 and IPv6 ranges, with ASN names
SUPPORTED_DAT_VERSIONS = (120,)
TABLE_LAYOUT = 3  # NetworkTable.arrays()'s layout: a change must not reuse a cached table
CACHE = Path.home() / ".cache" / "seclake-ipinsights" / "networks"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_IPV4_SPACE = 1 << 32


class NetworkDataError(RuntimeError):
    """geoip2fast's data file is missing or in a format this code does not read."""


def data_path() -> Path:
    """The data file inside the installed geoip2fast package (found without importing it)."""
    spec = importlib.util.find_spec("geoip2fast")
    if spec is None or spec.origin is None:
        message = "geoip2fast is not installed: make install installs the locked version (requirements.lock)"
        raise NetworkDataError(message)
    return Path(spec.origin).resolve().parent / DATA_FILE


def _flatten(chunks: list[list[int]]) -> list[int]:
    return [value for chunk in chunks for value in chunk]


def geoip2fast_ranges(path: Path) -> tuple[list[AnnouncedRange], str]:
    """The announced ranges of geoip2fast's country+ASN data file, and what the data is (source and date)."""
    try:
        with gzip.open(path, "rb") as handle:
            version, info, _, database = pickle.load(handle)
    except (OSError, ValueError, pickle.UnpicklingError) as error:
        message = f"cannot read geoip2fast's data file {path}: {error}; reinstall the locked geoip2fast (make install)"
        raise NetworkDataError(message) from error
    if version not in SUPPORTED_DAT_VERSIONS or not info.get("asn"):
        message = (
            f"{path} is geoip2fast data version {version} (asn: {info.get('asn')}); this code reads versions "
            f"{SUPPORTED_DAT_VERSIONS} with ASN data: install the locked geoip2fast (make install)"
        )
        raise NetworkDataError(message)
    _, _, _, asn_names, _, first_ips, _, asn_ids, _, prefix_lengths = database
    ranges = [
        AnnouncedRange.of_network(first, length, asn_names[asn], first < _IPV4_SPACE and length <= 32)
        for first, asn, length in zip(_flatten(first_ips), _flatten(asn_ids), _flatten(prefix_lengths), strict=True)
    ]
    return ranges, f"{info['info']} (geoip2fast {metadata.version('geoip2fast')})"


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz numpy.load reads, byte-identical for identical arrays (sorted entries, fixed timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entry.getvalue())
    return buffer.getvalue()


@functools.cache
def network_table_bytes() -> bytes:
    """The table as .npz bytes, from the cache when the installed data file has not changed."""
    path = data_path()
    if not path.is_file():
        message = (
            f"geoip2fast's data file {path} is missing; reinstall with make install (requirements.lock pins geoip2fast)"
        )
        raise NetworkDataError(message)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"networks-v{TABLE_LAYOUT}-{digest}.npz"
    if cached.is_file():
        return cached.read_bytes()
    ranges, source = geoip2fast_ranges(path)
    body = npz_bytes(NetworkTable.of_ranges(ranges, source).arrays())
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    partial.write_bytes(body)
    partial.replace(cached)
    return body


def network_table() -> NetworkTable:
    """The table itself (for the benchmarks and the CLI)."""
    with np.load(io.BytesIO(network_table_bytes()), allow_pickle=False) as arrays:
        return NetworkTable.of_arrays(arrays, where=f"the network table built from {data_path()}")
