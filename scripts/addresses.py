"""IP addresses as numbers: strict parsing, and the family and 64-bit halves of many addresses at once."""

from __future__ import annotations

import functools
import socket
from collections.abc import Sequence

import numpy as np


class AddressError(ValueError):
    """A value is not an IPv4 or IPv6 address in standard text form."""


def parse_address(text: str) -> tuple[int, int]:
    """(family, value): family 4 or 6, value the address as an integer. Strict: no leading zeros, no zone ids."""
    candidate = text.strip()
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, candidate), "big")
    except OSError:
        pass
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, candidate), "big")
    except OSError:
        message = f"{text!r} is not an IPv4 or IPv6 address"
        raise AddressError(message) from None
    if value >> 32 == 0xFFFF:  # IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address
        return 4, value & 0xFFFFFFFF
    return 6, value


def address_arrays(addresses: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Families, high and low 64-bit halves of each address; raises AddressError naming the first bad one."""
    dotted = _ipv4_arrays(addresses)
    if dotted is not None:
        return dotted
    count = len(addresses)
    families = np.empty(count, dtype=np.int8)
    high = np.zeros(count, dtype=np.uint64)
    low = np.zeros(count, dtype=np.uint64)
    for index, text in enumerate(addresses):
        try:
            family, value = parse_address(text)
        except AddressError as error:
            message = f"row {index + 1}: {error}"
            raise AddressError(message) from None
        families[index] = family
        high[index] = value >> 64
        low[index] = value & 0xFFFFFFFFFFFFFFFF
    return families, high, low


def _ipv4_arrays(addresses: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The arrays when every address is IPv4 in standard text form, in one pass of C calls (the common case: a flow
    log is mostly IPv4); None when one is not, for the general path to parse and name it."""
    try:
        packed = b"".join(map(_PACK_IPV4, addresses))
    except (OSError, TypeError):
        return None
    count = len(addresses)
    low = np.frombuffer(packed, dtype=">u4").astype(np.uint64)
    return np.full(count, 4, dtype=np.int8), np.zeros(count, dtype=np.uint64), low


_PACK_IPV4 = functools.partial(socket.inet_pton, socket.AF_INET)


# The private blocks, the one table of them: inside one, only the bits after the block tell one network from another
# (every VPC of an organisation is in 10/8). (family, network address, prefix length).
PRIVATE_BLOCKS: tuple[tuple[int, str, int], ...] = (
    (4, "10.0.0.0", 8),
    (4, "172.16.0.0", 12),
    (4, "192.168.0.0", 16),
    (4, "100.64.0.0", 10),  # shared address space (carrier-grade NAT)
    (6, "fc00::", 7),  # unique local
)


# The instance's own link, never a peer the workload chose: link-local space, where AWS serves the instance metadata
# service, the Amazon DNS resolver and Amazon Time Sync (169.254.169.254, .253, .123; ECS task metadata 169.254.170.2),
# and the IPv6 addresses of the same services on Nitro instances (fd00:ec2::254, ::253, ::123). AWS leaves most of this
# traffic out of flow logs; what a log or a generator still carries is not judged.
ON_LINK_BLOCKS: tuple[tuple[int, str, int], ...] = (
    (4, "169.254.0.0", 16),
    (6, "fe80::", 10),
    (6, "fd00:ec2::", 32),
)


def _blocks(table: tuple[tuple[int, str, int], ...] = PRIVATE_BLOCKS) -> list[tuple[int, int, int, int]]:
    """(family, bits, network value, prefix length) of each block of `table`."""
    return [
        (family, 32 if family == 4 else 128, parse_address(network)[1], length) for family, network, length in table
    ]


def on_link(addresses: Sequence[str]) -> np.ndarray:
    """Whether each address is on the instance's own link (ON_LINK_BLOCKS); False for one that is not an address."""
    return _block_bits(addresses, _blocks(ON_LINK_BLOCKS)) > 0


def private_block_bits(addresses: Sequence[str]) -> np.ndarray:
    """The prefix length of the private block (PRIVATE_BLOCKS) each address is in, 0 for a public address or one
    that is not an address."""
    return _block_bits(addresses, _blocks())


def _block_bits(addresses: Sequence[str], blocks: list[tuple[int, int, int, int]]) -> np.ndarray:
    """The prefix length of the first of `blocks` each address is in, 0 when none is."""
    bits = np.zeros(len(addresses), dtype=np.int64)
    for index, text in enumerate(addresses):
        try:
            family, value = parse_address(text)
        except AddressError:
            continue
        for block_family, width, network, length in blocks:
            if family == block_family and value >> (width - length) == network >> (width - length):
                bits[index] = length
                break
    return bits


def private_ipv4_blocks() -> list[tuple[int, int]]:
    """(network value, prefix length) of the IPv4 private blocks, for engines that test numbers (Spark)."""
    return [(network, length) for family, width, network, length in _blocks() if family == 4]
