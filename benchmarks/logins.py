"""Login data shaped like the SageMaker IP Insights tutorial: users with a home and a work network, some travel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.samplelake.addresses import ipv4_to_text


@dataclass
class Logins:
    """(user, ip, day) login events, and the users' normal networks."""

    users: list[str]
    ips: list[str]
    days: np.ndarray


def _random_networks(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Public networks of /16 to /22: (base address, size)."""
    sizes = 2 ** (32 - rng.integers(16, 23, size=count))
    first = rng.choice(np.r_[1:10, 11:100, 101:127, 128:169, 170:172, 173:192, 193:224], size=count)
    bases = (first.astype(np.int64) << 24) + rng.integers(0, 2**24, size=count)
    return (bases // sizes) * sizes, sizes


def simulate_logins(users: int, events: int, days: int = 10, travel: float = 0.02, seed: int = 0) -> Logins:
    """Each user logs in from home (70%), work (25%) or while travelling (random network); IP uniform in range."""
    rng = np.random.default_rng(seed)
    home_base, home_size = _random_networks(rng, users)
    work_base, work_size = _random_networks(rng, users)
    weights = rng.pareto(1.5, size=users) + 1
    user = rng.choice(users, size=events, p=weights / weights.sum())
    place = rng.choice(3, size=events, p=[0.70, 1 - 0.70 - travel, travel])
    travel_base, travel_size = _random_networks(rng, events)
    base = np.select([place == 0, place == 1], [home_base[user], work_base[user]], travel_base)
    size = np.select([place == 0, place == 1], [home_size[user], work_size[user]], travel_size)
    addresses = base + (rng.random(events) * size).astype(np.int64)
    return Logins([f"user_{u}" for u in user.tolist()], ipv4_to_text(addresses), rng.integers(0, days, size=events))


def attack_ips(rng: np.random.Generator, count: int) -> list[str]:
    """Logins from a random network (the tutorial's attack): one random public range per event."""
    base, size = _random_networks(rng, count)
    return ipv4_to_text(base + (rng.random(count) * size).astype(np.int64))
