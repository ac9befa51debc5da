"""How the detector calibrates (its settings and their defaults), shared by its parts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000


DEFAULT_FALSE_POSITIVE_RATE = 1e-4  # pipeline/config.py's detection.false_positive_rate default is this one


# An address whose owner (Amazon, Google, an ISP; the account of an internal address) the entity already talked to
# is at most as novel as one sharing only its /8 with what it knew; an internal address of an account the entity
# never talked to is as novel as an address never seen.
KNOWN_OWNER_NOVELTY = 0.75


ModelScores = Callable[[Sequence[str], Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector calibrates: see config `detection`."""

    false_positive_rate: float = DEFAULT_FALSE_POSITIVE_RATE
    prior_weight: float = 20.0
    model_prior_weight: float = 20.0
    novelty_days: int = 6
    min_history_days: int = 3
    use_model: bool = True
    use_novelty: bool = True
    flag_new_roles: bool = True
    fleet_change_workloads: int = 5
    # an address whose owner the workloads already talk to (a provider, an account) is a fleet change from this many
    # workloads of the account (a rollout reaches a few servers in the day's first object); 0 disables
    known_owner_fleet_workloads: int = 3
    young_workload_days: int = 2  # a workload first seen this recently is compared with its peer group, new roles too
    compare_with_peer_group: bool = True
    use_networks: bool = True  # novelty knows who owns public addresses (when the detector has a network table)
    use_address_book: bool = True  # novelty knows which account an internal address belongs to (with a book)
    internal_apart: bool = True  # novelty of internal (private) peers is calibrated apart from public peers'
    # a first upload (bytes a workload sent in a day, on connections it opened, to an address it and its peers never
    # met) is flagged from large_upload_factor times its largest first upload in the history, and never below
    # large_upload_bytes (scripts/detect/volume.py); 0 disables the rule
    large_upload_bytes: int = 50_000_000
    large_upload_factor: float = 10.0
    # the monitor adds up a pair's bytes across the day's objects (the state table) only for first connections that
    # sent at least this much in one object: small ones cannot reach the floor in a sensible number of objects
    upload_tracked_bytes: int = 1_000_000
    # a flagged DNS answer (the answer role) of an address whose owner the workload already talks to is reported Low:
    # a provider's answers rotate, and a connection to the address is judged by its own flow pair
    answers_of_known_owners_low: bool = True
    # a public address of an owner a serving entity (a `server:` role) already serves is at most this novel: a public
    # web server's new client from an ISP it serves every day is ordinary; 1.0 turns it off
    served_owner_novelty: float = 0.25
    # DNS tunnelling (scripts/detect/tunnelling.py): one entity asking, in one object, for at least tunnel_min_names
    # distinct names under one domain its account never asked for, their labels at least tunnel_min_subdomain_length
    # characters long (median); tunnel_min_names 0 disables the rule
    tunnel_min_names: int = 50
    tunnel_min_subdomain_length: int = 20
