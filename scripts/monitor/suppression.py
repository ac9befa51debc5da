"""Suppression rules, GuardDuty's model: criteria over a finding's fields, a reason, an author, an expiry. A finding a
live rule matches is still written, with status Suppressed and the rule named, but never notified nor imported as
new; every criterion of a rule must match (an empty rule matches nothing)."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from scripts.entity import account_of, role_of, workload_of
from scripts.monitor.findings import SUPPRESSED, Finding

# What a rule may test, each against one field of the finding: globs (`*`, `?`) except `ip` (an address or CIDR)
# and `severity` (one of Low, Medium, High)
CRITERIA = ("account", "workload", "role", "ip", "owner", "severity", "kind")
KINDS = ("pair", "fleet", "sweep", "tunnel", "large_upload", "threat")
SEVERITIES = ("Low", "Medium", "High")


class RuleError(ValueError):
    """A rule that cannot be applied; the message names the field and what it allows."""


@dataclass(frozen=True)
class SuppressionRule:
    """One rule: its id, criteria (CRITERIA -> pattern), why, who, and until when (epoch ms; None: until removed)."""

    rule_id: str
    criteria: dict[str, str]
    reason: str
    author: str
    created_ms: int
    expires_ms: int | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.criteria) - set(CRITERIA))
        if unknown:
            message = f"rule {self.rule_id}: unknown criteria {unknown}; allowed: {', '.join(CRITERIA)}"
            raise RuleError(message)
        if not self.criteria:
            message = f"rule {self.rule_id}: no criteria; give at least one of {', '.join(CRITERIA)}"
            raise RuleError(message)
        if "ip" in self.criteria:
            try:
                ipaddress.ip_network(self.criteria["ip"], strict=False)
            except ValueError:
                message = f"rule {self.rule_id}: ip {self.criteria['ip']!r} is no address nor CIDR"
                raise RuleError(message) from None
        severity = self.criteria.get("severity")
        if severity is not None and not set("*?[") & set(severity) and severity not in SEVERITIES:
            message = f"rule {self.rule_id}: severity {severity!r}; allowed: {', '.join(SEVERITIES)} (or a glob)"
            raise RuleError(message)
        if "kind" in self.criteria and self.criteria["kind"] not in KINDS:
            message = f"rule {self.rule_id}: kind {self.criteria['kind']!r}; allowed: {', '.join(KINDS)}"
            raise RuleError(message)
        if not self.reason.strip():
            message = f"rule {self.rule_id}: give a reason (an analyst reading a suppressed finding needs it)"
            raise RuleError(message)

    def live(self, now_ms: int) -> bool:
        return self.expires_ms is None or now_ms < self.expires_ms

    def to_item(self) -> dict[str, str]:
        """Plain strings, as the rule store keeps them."""
        return {
            "rule_id": self.rule_id,
            "criteria": json.dumps(self.criteria, sort_keys=True),
            "reason": self.reason,
            "author": self.author,
            "created_ms": str(self.created_ms),
            "expires_ms": "" if self.expires_ms is None else str(self.expires_ms),
        }

    @staticmethod
    def of_item(item: Mapping[str, Any]) -> SuppressionRule:
        expires = str(item.get("expires_ms") or "")
        return SuppressionRule(
            str(item["rule_id"]),
            dict(json.loads(str(item["criteria"]))),
            str(item["reason"]),
            str(item.get("author", "")),
            int(item.get("created_ms") or 0),
            int(expires) if expires else None,
        )


def kind_of(finding: Finding) -> str:
    """What a finding is about, in CRITERIA's `kind` words."""
    if "threat_list" in finding.evidence:
        return "threat"
    if finding.tunnel:
        return "tunnel"
    if finding.fleet:
        return "fleet"
    if finding.sweep:
        return "sweep"
    if finding.evidence.get("large_upload") == "true":
        return "large_upload"
    return "pair"


def _field(finding: Finding, name: str) -> str:
    values = {
        "account": finding.account or account_of(finding.entity),
        "workload": workload_of(finding.entity),
        "role": role_of(finding.entity),
        "owner": finding.evidence.get("network_owner", ""),
        "severity": finding.severity,
        "kind": kind_of(finding),
    }
    return values[name]


def matches(rule: SuppressionRule, finding: Finding) -> bool:
    """Every criterion of the rule matches the finding (an `ip` one: any address the finding is about)."""
    for name, pattern in rule.criteria.items():
        if name == "ip":
            network = ipaddress.ip_network(pattern, strict=False)
            if not any(_in(address, network) for address in finding.addresses):
                return False
        elif not fnmatch.fnmatchcase(_field(finding, name), pattern):
            return False
    return True


def _in(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False


@dataclass(frozen=True)
class Suppressed:
    findings: list[Finding] = field(default_factory=list)
    suppressed: int = 0


def suppress(findings: list[Finding], rules: Iterable[SuppressionRule], now_ms: int) -> Suppressed:
    """The findings, those a live rule matches marked Suppressed with the rule's id and reason (the first rule, by
    id, that matches)."""
    live = sorted((r for r in rules if r.live(now_ms)), key=lambda r: r.rule_id)
    marked, count = [], 0
    for finding in findings:
        rule = next((r for r in live if matches(r, finding)), None)
        if rule is None:
            marked.append(finding)
            continue
        count += 1
        evidence = {**finding.evidence, "suppression_rule": rule.rule_id, "suppression_reason": rule.reason}
        marked.append(replace(finding, status=SUPPRESSED, evidence=evidence))
    return Suppressed(marked, count)
