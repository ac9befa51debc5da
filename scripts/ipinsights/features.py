"""Stable hashing of entities and IP prefixes into embedding buckets: the same bucket in every process and machine."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from scripts.addresses import AddressError, address_arrays, parse_address

# Prefix lengths embedded for each address; an address's vector is the mean of its prefixes' vectors, so addresses in
# the same network share most of their representation and an unseen address still lands near its network.
IPV4_PREFIXES = (8, 16, 20, 24, 32)
IPV6_PREFIXES = (16, 32, 48, 64, 128)
FEATURES_PER_IP = len(IPV4_PREFIXES)
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(values: np.ndarray) -> np.ndarray:
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def prefix_features(families: np.ndarray, high: np.ndarray, low: np.ndarray, buckets: int, seed: int) -> np.ndarray:
    """Bucket ids (n, FEATURES_PER_IP) of each address's prefixes; `high`/`low` are the top/bottom 64 bits.

    IPv4 addresses are in `low` (high = 0). Each prefix is hashed with its family and length, so 10.0.0.0/8 and
    10.0.0.0/16 are different features.
    """
    count = len(families)
    result = np.empty((count, FEATURES_PER_IP), dtype=np.int64)
    is_v4 = families == 4
    salt = _splitmix(np.array([seed], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        for position, (v4_length, v6_length) in enumerate(zip(IPV4_PREFIXES, IPV6_PREFIXES, strict=True)):
            v4_value = (low >> np.uint64(32 - v4_length)) if v4_length < 32 else low
            if v6_length <= 64:
                v6_high = high >> np.uint64(64 - v6_length) if v6_length < 64 else high
                v6_value = _splitmix(v6_high)
            else:
                v6_value = _splitmix(high ^ _splitmix(low))
            tag_v4 = np.uint64((4 << 8) | v4_length)
            tag_v6 = np.uint64((6 << 8) | v6_length)
            mixed = np.where(
                is_v4, _splitmix(v4_value ^ (tag_v4 << np.uint64(40)) ^ salt), _splitmix(v6_value ^ tag_v6 ^ salt)
            )
            result[:, position] = (mixed % np.uint64(buckets)).astype(np.int64)
    return result


def entity_buckets(entities: Iterable[str], num_entity_vectors: int, seed: int) -> np.ndarray:
    """Each entity's bucket: BLAKE2b of its UTF-8 bytes keyed by the seed, modulo num_entity_vectors."""
    key = seed.to_bytes(8, "big", signed=False)
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(e.encode(), digest_size=8, key=key).digest(), "big") % num_entity_vectors
            for e in entities
        ),
        dtype=np.int64,
    )


def random_ipv4(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random negatives as the built-in draws them: each octet uniform in 0..255."""
    return (
        np.full(count, 4, dtype=np.int8),
        np.zeros(count, dtype=np.uint64),
        rng.integers(0, 2**32, size=count, dtype=np.uint64) & _MASK64,
    )


__all__ = [
    "FEATURES_PER_IP",
    "IPV4_PREFIXES",
    "IPV6_PREFIXES",
    "AddressError",
    "address_arrays",
    "entity_buckets",
    "parse_address",
    "prefix_features",
    "random_ipv4",
]
