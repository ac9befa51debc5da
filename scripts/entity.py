"""The entity string, built and parsed here only: `<account>/<workload>#<role>`, its peer group and its fleet."""

from __future__ import annotations

ACCOUNT_SEPARATOR = "/"  # between the account and the workload (when the mapping namespaces by account)
ROLE_SEPARATOR = "#"  # between the workload and its role (`client:web`, `server:db`, `dns`)
SIDE_SEPARATOR = ":"  # between a role's side and its port class (`client:web`)
CLIENT_SIDE = "client"  # the workload opened the connections
SERVER_SIDE = "server"  # the workload answered them
WILDCARD = "*"  # every workload of an account: `<account>/*` (its fleet), `<account>/*#<role>` (a peer group)


def entity_of(workload: str, role: str = "", account: str = "") -> str:
    """`<account>/<workload>#<role>`; without an account or a role, those parts are left out."""
    base = f"{account}{ACCOUNT_SEPARATOR}{workload}" if account else workload
    return f"{base}{ROLE_SEPARATOR}{role}" if role else base


def base_entity(entity: str) -> str:
    """The workload an entity names, without the role suffix: `<account>/<id>`."""
    return entity.split(ROLE_SEPARATOR, 1)[0]


def side_of(entity: str) -> str:
    """The side of an entity's role (`client`, `server`), or "" for a workload-only entity."""
    return role_of(entity).partition(SIDE_SEPARATOR)[0]


def role_of(entity: str) -> str:
    """The role suffix of an entity (`client:web`), or "" for a workload-only entity."""
    return entity.split(ROLE_SEPARATOR, 1)[1] if ROLE_SEPARATOR in entity else ""


def account_of(entity: str) -> str:
    """The account an entity belongs to: `111122223333` of `111122223333/i-0abc#client:web`."""
    return entity.split(ACCOUNT_SEPARATOR, 1)[0]


def workload_of(entity: str) -> str:
    """The workload id alone: `i-0abc` of `111122223333/i-0abc#client:web`."""
    return base_entity(entity).split(ACCOUNT_SEPARATOR, 1)[-1]


def account_prefix(account: str) -> str:
    """What every entity, peer group and workload of an account starts with: `<account>/`."""
    return f"{account}{ACCOUNT_SEPARATOR}"


def fleet_of(account: str) -> str:
    """The entity that stands for every workload of an account: `<account>/*`."""
    return f"{account}{ACCOUNT_SEPARATOR}{WILDCARD}"


def is_fleet(entity: str) -> bool:
    """Whether an entity stands for an account's whole fleet (a grouped finding) rather than one workload."""
    return entity.endswith(f"{ACCOUNT_SEPARATOR}{WILDCARD}")


def peer_group(entity: str) -> str:
    """The account's pooled history for the entity's role: `<account>/*#client:web`."""
    return entity_of(WILDCARD, role_of(entity), account_of(entity))
