"""The pair mappings, declared once as data: which columns form the entity and the IP, and which rows count."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from scripts.ocsf.schemas import Source

LOCAL = "{local}"
REMOTE = "{remote}"
MISSING_VALUES = ("", "-")

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


class Algorithm(StrEnum):
    """Which IP Insights consumes the pairs: the SageMaker built-in (IPv4 only) or the open one (IPv4 and IPv6)."""

    BUILTIN = "builtin"
    OPEN = "open"


@dataclass(frozen=True)
class Answers:
    """Route 53: one candidate per answer record of an address type; its `value` field is the IP."""

    column: str = "answers"
    value: str = "rdata"
    type_field: str = "type"
    address_types: tuple[str, ...] = ("A", "AAAA")


@dataclass(frozen=True)
class SourceRule:
    """How one source yields pairs.

    Paths may start with {local} or {remote}: with `sides_by_direction`, {local} is the endpoint the ENI is on
    (dst_endpoint for Inbound, src_endpoint for Outbound) and {remote} the other one; otherwise {local} is
    src_endpoint. `entity` lists candidates, the first present (not null, "" or "-") wins.
    """

    source: Source
    entity: tuple[str, ...]
    ip: str | None
    answers: Answers | None = None
    sides_by_direction: bool = False
    namespace_by_account: bool = True
    exclude_rejected: bool = True


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


MAPPINGS = {
    "peer": PairMapping(
        name="peer",
        description="the workload and whom it talks to: flow entity is the local workload (instance, else ENI) on the "
        "side the direction says is ours, ip the other side; Route 53 entity is the querying instance, ip each A/AAAA "
        "answer. Entities are <account>/<id>; rejected traffic is not normal history.",
        rules=(
            SourceRule(
                Source.VPC_FLOW,
                entity=(f"{LOCAL}.instance_uid", f"{LOCAL}.interface_uid"),
                ip=f"{REMOTE}.ip",
                sides_by_direction=True,
            ),
            SourceRule(Source.ROUTE53, entity=(f"{LOCAL}.instance_uid",), ip=None, answers=Answers()),
        ),
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
