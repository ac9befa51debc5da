"""IAM's evaluation of identity-based policies for one request: explicit deny, then allow, else implicit deny.

The grammar our generated policies use, as AWS documents it: Effect; Action / NotAction and Resource / NotResource with
`*` and `?` wildcards (actions case-insensitive); Condition blocks whose operators (String*, Arn*, Bool, Null, with
`IfExists` and the `ForAnyValue:` / `ForAllValues:` set qualifiers) are ANDed, and whose values for one key are ORed.
A key missing from the request makes a condition false, except for the negated operators (true), `...IfExists` (true)
and `Null`. Policy variables and numeric or date operators are not used by our policies and are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

ContextValue = str | Sequence[str]


class Decision(StrEnum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


class PolicyGrammarError(ValueError):
    """A policy uses an element or operator this evaluator does not implement: refuse rather than guess."""


@dataclass(frozen=True)
class Request:
    """One API request as IAM sees it: the action (`s3:GetObject`), the resource's ARN and the context keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    statement: str | None  # the Sid of the statement that decided (an allow or a deny), None for implicit deny

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED


@lru_cache(maxsize=4096)
def _compiled(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    escaped = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(escaped, re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def wildcard_match(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM's matching: `*` any run of characters, `?` one character, nothing else special (`[` is literal)."""
    return _compiled(pattern, case_sensitive).fullmatch(value) is not None


def _values(element: Any) -> list[Any]:
    return list(element) if isinstance(element, list) else [element]


def _string_like(expected: str, actual: str) -> bool:
    return wildcard_match(expected, actual)


def _arn_like(expected: str, actual: str) -> bool:
    """ArnLike compares the six colon-separated parts, each with wildcards."""
    want, have = expected.split(":", 5), actual.split(":", 5)
    return len(want) == len(have) == 6 and all(wildcard_match(w, h) for w, h in zip(want, have, strict=True))


_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringEqualsIgnoreCase": lambda expected, actual: expected.lower() == actual.lower(),
    "StringLike": _string_like,
    "ArnEquals": _arn_like,  # AWS treats ArnEquals and ArnLike the same
    "ArnLike": _arn_like,
    "Bool": lambda expected, actual: expected.lower() == actual.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    wanted = [str(v) for v in _values(expected)]
    present = key in context
    actual = [str(v) for v in _values(context[key])] if present else []
    if operator == "Null":
        return (not present) == (wanted[0].lower() == "true")
    negated = operator in _NEGATED
    base = _NEGATED.get(operator, operator)
    if base not in _MATCHERS:
        message = f"condition operator {operator!r} is not implemented by the local evaluator"
        raise PolicyGrammarError(message)
    if not present:  # ForAllValues over no values is true, as AWS documents
        return if_exists or negated or qualifier == "ForAllValues"
    match = _MATCHERS[base]

    def one(value: str) -> bool:
        hit = any(match(w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(value) for value in actual)
    if qualifier in ("", "ForAnyValue"):
        return any(one(value) for value in actual)
    message = f"condition qualifier {qualifier!r} is not one of ForAnyValue, ForAllValues"
    raise PolicyGrammarError(message)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    for element in ("Principal", "NotPrincipal"):
        if element in statement:
            message = f"statement {statement.get('Sid', '?')} has {element}: not an identity-based policy"
            raise PolicyGrammarError(message)
    if "Action" in statement:
        acts = any(wildcard_match(a, request.action, case_sensitive=False) for a in _values(statement["Action"]))
    else:
        acts = not any(wildcard_match(a, request.action, case_sensitive=False) for a in _values(statement["NotAction"]))
    if not acts:
        return False
    if "Resource" in statement:
        on = any(wildcard_match(r, request.resource) for r in _values(statement["Resource"]))
    else:
        on = not any(wildcard_match(r, request.resource) for r in _values(statement["NotResource"]))
    if not on:
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, expected in keys.items():
            if "${" in str(expected):
                message = f"statement {statement.get('Sid', '?')}: policy variables are not implemented locally"
                raise PolicyGrammarError(message)
            if not _condition_holds(operator, key, expected, request.context):
                return False
    return True


def statements(policies: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for policy in policies for s in _values(policy.get("Statement", []))]


def evaluate(policies: Iterable[Mapping[str, Any]], request: Request) -> Verdict:
    """The identity-based part of IAM's evaluation logic for one request."""
    allowed_by: str | None = None
    for statement in statements(policies):
        if not _applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return Verdict(Decision.EXPLICIT_DENY, statement.get("Sid", ""))
        if allowed_by is None:
            allowed_by = str(statement.get("Sid", ""))
    if allowed_by is not None:
        return Verdict(Decision.ALLOWED, allowed_by)
    return Verdict(Decision.IMPLICIT_DENY, None)


def _names_principal(statement: Mapping[str, Any], caller_arn: str, caller_account: str) -> bool:
    """A trust statement's Principal names the caller: its role, its account (`arn:aws:iam::<id>:root` or the bare
    id, which trusts whatever the account's own policies allow) or everyone (`*`)."""
    principal = statement.get("Principal", {})
    if principal == "*":
        return True
    names = _values(principal.get("AWS", [])) if isinstance(principal, Mapping) else []
    trusted = {"*", caller_arn, caller_account, f"arn:aws:iam::{caller_account}:root"}
    return any(name in trusted for name in names)


def trust_allows(
    trust_policy: Mapping[str, Any], caller_arn: str, caller_account: str, context: Mapping[str, ContextValue]
) -> bool:
    """A role's trust policy (resource-based) for sts:AssumeRole by `caller_arn`: an Allow statement naming the caller,
    its conditions held by the request's context (`sts:ExternalId`), and no Deny that applies."""
    allowed = False
    for statement in statements([trust_policy]):
        actions = _values(statement.get("Action", []))
        if not any(wildcard_match(a, "sts:AssumeRole", case_sensitive=False) for a in actions):
            continue
        if not _names_principal(statement, caller_arn, caller_account):
            continue
        conditions = statement.get("Condition", {})
        if not all(
            _condition_holds(op, key, want, context) for op, keys in conditions.items() for key, want in keys.items()
        ):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed
