"""IP addresses as numbers: strict parsing, and the family and 64-bit halves of many addresses at once."""

from __future__ import annotations

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


def private_block_bits(addresses: Sequence[str]) -> np.ndarray:
    """The prefix length of the private block each address is in (10/8, 172.16/12, 192.168/16, 100.64/10 shared
    address space, fc00::/7 unique local), 0 for a public address: inside a private block only the bits after the
    block's tell one network from another (every VPC of an organisation is in 10/8)."""
    bits = np.zeros(len(addresses), dtype=np.int64)
    for index, text in enumerate(addresses):
        if text.startswith("10."):
            bits[index] = 8
        elif text.startswith("192.168."):
            bits[index] = 16
        elif text.startswith("172.") and text[4:7].rstrip(".").isdigit() and 16 <= int(text[4:7].rstrip(".")) <= 31:
            bits[index] = 12
        elif text.startswith("100.") and text[4:7].rstrip(".").isdigit() and 64 <= int(text[4:7].rstrip(".")) <= 127:
            bits[index] = 10
        elif text[:2].lower() in {"fc", "fd"} and ":" in text:
            bits[index] = 7
    return bits
