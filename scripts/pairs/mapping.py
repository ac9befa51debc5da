"""The pair mappings, declared once as data: which columns form the entity and the IP, and which rows count."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from scripts.ocsf.schemas import Source

LOCAL = "{local}"
REMOTE = "{remote}"
MISSING_VALUES = ("", "-")
# What the record's sender sent (OCSF network activity: one record per direction of a connection), and the pair
# column both engines carry it in: the bytes the entity sent to the address on that row (0 when the record is the
# other side's, or a Route 53 answer). The detector's large-upload rule reads it (scripts/detect/volume.py).
SENT_BYTES = "traffic.bytes"
ANSWER_ROLE = "client:resolved"  # the role of a Route 53 answer's pair: the workload asked, this address answered
# The pair column both engines carry a Route 53 answer's name in (null for flows): the query's hostname, lower case,
# without its final dot (`deb.debian.org.` -> `deb.debian.org`), the form NAME_TRAILING_DOT strips.
QUERY_NAME = "query_name"
NAME_TRAILING_DOT = r"\.$"
BYTES_OUT = "bytes_out"

IPV4_PATTERN = (
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)
_H = "[0-9a-fA-F]{1,4}"
IPV6_PATTERN = (
    "(?:"
    f"(?:{_H}:){{7}}{_H}"
    f"|(?:{_H}:){{1,7}}:"
    f"|(?:{_H}:){{1,6}}:{_H}"
    f"|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
    f"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}"
    f"|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}"
    f"|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
    f"|{_H}:(?::{_H}){{1,6}}"
    f"|:(?:(?::{_H}){{1,7}}|:)"
    f"|::(?:[fF]{{4}}(?::0{{1,4}})?:)?{IPV4_PATTERN}"
    f"|(?:{_H}:){{1,4}}:{IPV4_PATTERN}"
    f"|(?:{_H}:){{6}}{IPV4_PATTERN}"
    ")"
)
IPV4_REGEX = f"^{IPV4_PATTERN}$"
IPV6_REGEX = f"^{IPV6_PATTERN}$"
IP_REGEX = f"^(?:{IPV4_PATTERN}|{IPV6_PATTERN})$"


class DropReason(StrEnum):
    """Why a candidate row gave no pair; checked in this order, the first that applies is counted."""

    REJECTED = "rejected"
    UNKNOWN_DIRECTION = "unknown_direction"
    NO_ANSWER = "no_answer"
    ANSWER_NOT_ADDRESS = "answer_not_address"
    MISSING_ACCOUNT = "missing_account"
    MISSING_ENTITY = "missing_entity"
    MISSING_IP = "missing_ip"
    MALFORMED_IP = "malformed_ip"
    IPV6_UNSUPPORTED = "ipv6_unsupported_by_builtin"


class EntityRole(StrEnum):
    """What the entity carries besides the workload: nothing, which side opened the connection, or also the service.

    `initiator` appends `#client` (the workload opened the connection) or `#server` (it answered one); `service`
    appends the service's port class too (`#client:web`, `#server:admin`), so a web server's inbound clients do not
    teach the model that any outbound peer is normal, and a first SSH session is a new entity, not an old one.
    """

    WORKLOAD = "workload"
    INITIATOR = "initiator"
    SERVICE = "service"


# Port classes of the listening side; any other port is "other". Checked in this order.
PORT_CLASSES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("web", (80, 443, 8000, 8008, 8080, 8443, 8888)),
    ("dns", (53, 853)),
    ("ntp", (123,)),
    ("admin", (22, 23, 3389, 5900, 5985, 5986)),
    ("smb_rpc", (135, 137, 138, 139, 445)),
    ("db", (1433, 1521, 3306, 5432, 5984, 6379, 9042, 9200, 11211, 27017)),
    ("mail", (25, 110, 143, 465, 587, 993, 995)),
    ("directory", (88, 389, 636, 3268, 3269)),
)
OTHER_PORT_CLASS = "other"
TCP = 6
TCP_SYN = 2
TCP_ACK = 16


def port_class(port: int | None) -> str:
    """The class of a listening port: web, dns, ntp, admin, smb_rpc, db, mail, directory or other."""
    for name, ports in PORT_CLASSES:
        if port in ports:
            return name
    return OTHER_PORT_CLASS


class Algorithm(StrEnum):
    """Which IP Insights consumes the pairs: the SageMaker built-in (IPv4 only) or the open one (IPv4 and IPv6)."""

    BUILTIN = "builtin"
    OPEN = "open"


@dataclass(frozen=True)
class Answers:
    """Route 53: one candidate per answer record of an address type; its `value` field is the IP, `name` the name
    asked for."""

    column: str = "answers"
    value: str = "rdata"
    type_field: str = "type"
    address_types: tuple[str, ...] = ("A", "AAAA")
    name: str = "query.hostname"


@dataclass(frozen=True)
class SourceRule:
    """How one source yields pairs.

    Paths may start with {local} or {remote}: with `sides_by_direction`, {local} is the endpoint the ENI is on
    (dst_endpoint for Inbound, src_endpoint for Outbound) and {remote} the other one; otherwise {local} is
    src_endpoint. `entity` lists candidates, the first present (not null, "" or "-") wins. `role` says what the
    entity carries besides the workload (see EntityRole); rows with answers take `answer_role` as their role.

    Who opened a flow comes from its TCP flags (SYN without ACK: the source did; SYN-ACK: the destination did),
    since VPC flow logs record each connection once per direction; without flags (UDP, ICMP, a connection that
    began in an earlier window) the side on the lower port is taken as the service. Port-less protocols (ICMP, GRE,
    ESP: ports 0 or absent) and equal ports cannot be decided by ports: the record's sender is taken as the opener,
    so an inbound ping makes the logging workload its server and an outbound one its client (VPC flow logs carry no
    ICMP type, so the reply's record, when one is logged, counts the other way).
    """

    source: Source
    entity: tuple[str, ...]
    ip: str | None
    answers: Answers | None = None
    sides_by_direction: bool = False
    namespace_by_account: bool = True
    exclude_rejected: bool = True
    role: EntityRole = EntityRole.WORKLOAD
    answer_role: str = ANSWER_ROLE


@dataclass(frozen=True)
class PairMapping:
    """A named set of source rules."""

    name: str
    description: str
    rules: tuple[SourceRule, ...]

    def rule(self, source: Source) -> SourceRule:
        for rule in self.rules:
            if rule.source == source:
                return rule
        message = (
            f"mapping {self.name!r} has no rule for {source.value}; it covers {[r.source.value for r in self.rules]}"
        )
        raise KeyError(message)


_PEER_FLOW = SourceRule(
    Source.VPC_FLOW,
    entity=(f"{LOCAL}.instance_uid", f"{LOCAL}.interface_uid"),
    ip=f"{REMOTE}.ip",
    sides_by_direction=True,
)
_PEER_DNS = SourceRule(Source.ROUTE53, entity=(f"{LOCAL}.instance_uid",), ip=None, answers=Answers())

MAPPINGS = {
    "role": PairMapping(
        name="role",
        description="peer, with the entity split by what the workload is doing: <account>/<id>#client:<class> for "
        "connections it opened, #server:<class> for connections it answered (class: the listening port's, e.g. web, "
        "admin, db, other), #client:resolved for Route 53 answers. Rejected traffic is not normal history.",
        rules=(
            replace(_PEER_FLOW, role=EntityRole.SERVICE),
            replace(_PEER_DNS, role=EntityRole.SERVICE),
        ),
    ),
    "peer": PairMapping(
        name="peer",
        description="the workload and whom it talks to: flow entity is the local workload (instance, else ENI) on the "
        "side the direction says is ours, ip the other side; Route 53 entity is the querying instance, ip each A/AAAA "
        "answer. Entities are <account>/<id>; rejected traffic is not normal history.",
        rules=(_PEER_FLOW, _PEER_DNS),
    ),
    "blog": PairMapping(
        name="blog",
        description="exactly the original sample: entity src_endpoint.instance_uid, ip src_endpoint.ip, from both "
        "sources, every row.",
        rules=(
            SourceRule(
                Source.VPC_FLOW,
                entity=(f"{LOCAL}.instance_uid",),
                ip=f"{LOCAL}.ip",
                namespace_by_account=False,
                exclude_rejected=False,
            ),
            SourceRule(
                Source.ROUTE53,
                entity=(f"{LOCAL}.instance_uid",),
                ip=f"{LOCAL}.ip",
                namespace_by_account=False,
                exclude_rejected=False,
            ),
        ),
    ),
}


@dataclass(frozen=True)
class AddressBookRule:
    """Who had an address: the logging side of a VPC flow row ({local}: dst_endpoint for Inbound, src_endpoint for
    Outbound) is the ENI the record was logged on, so its address, VPC, subnet and workload (instance, else ENI)
    belong together, in the row's account and region. Rows of unknown direction are left out; rejected rows count
    (the ENI had the address whether or not the traffic was let through)."""

    ip: str = f"{LOCAL}.ip"
    workload: tuple[str, ...] = (f"{LOCAL}.instance_uid", f"{LOCAL}.interface_uid")
    vpc: str = f"{LOCAL}.vpc_uid"
    subnet: str = f"{LOCAL}.subnet_uid"
    region: str = "cloud.region"


ADDRESS_BOOK_RULE = AddressBookRule()
# One row per (address, account, region, VPC, subnet, workload) seen in the window: when first and last, how often
ADDRESS_BOOK_COLUMNS = ("ip", "account", "region", "vpc", "subnet", "workload", "first_seen_ms", "last_seen_ms", "rows")


def mapping(name: str) -> PairMapping:
    """A declared mapping by name, or an error listing the names."""
    if name not in MAPPINGS:
        message = f"unknown pair mapping {name!r}; allowed: {', '.join(sorted(MAPPINGS))}"
        raise ValueError(message)
    return MAPPINGS[name]


def account_column(version: int) -> str:
    """Where the account id sits: cloud.account_uid in source version 1, cloud.account.uid in version 2."""
    return "cloud.account_uid" if version == 1 else "cloud.account.uid"


def resolve(path: str, local: str, remote: str) -> str:
    """A declared path with {local} / {remote} replaced by endpoint struct names."""
    return path.replace(LOCAL, local).replace(REMOTE, remote)
