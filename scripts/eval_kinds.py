"""The eval set's kinds of rows: what the preprocessing step writes and the detector's evaluation reads.

Normal rows are the held-out day's distinct pairs. Two kinds are the model's negatives, one per normal row of an
entity seen in training: a random public IPv4 address, and an address only workloads outside the entity's peer
group (its account's workloads in its role) ever talked to, a true negative in a fleet whose workloads share their
peers. The injected kinds are attacks the detector must catch on that day: a network none of the entity's peer
group ever reached, an internal address of another account, a known workload in a role it never had. Another
group's address is not among them: a load balancer's next residential client was some other host's client before.
"""

from __future__ import annotations

NORMAL = "normal"
RANDOM_IPV4 = "random_ipv4"
OTHER_GROUP_IP = "other_group_ip"
NEW_NETWORK = "new_network"
OTHER_ACCOUNT_INTERNAL = "other_account_internal"
NEW_ROLE = "new_role"

MODEL_NEGATIVE_KINDS = (RANDOM_IPV4, OTHER_GROUP_IP)
INJECTED_KINDS = (NEW_NETWORK, OTHER_ACCOUNT_INTERNAL, NEW_ROLE)
KIND_ORDER = (NORMAL, RANDOM_IPV4, OTHER_GROUP_IP, NEW_NETWORK, OTHER_ACCOUNT_INTERNAL, NEW_ROLE)
LABEL_COLUMNS = ("label", "kind", "entity_in_training", "model_negative")
