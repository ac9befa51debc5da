"""Resolve definition values as the service does: Parameters, Get, Std:Join, Std:JsonGet, execution variables,
conditions. Pure functions over JSON and the properties recorded so far."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]")


class UnresolvableReferenceError(ValueError):
    """A reference names a parameter, step, property or JSON path that does not exist (yet)."""


@dataclass
class ResolutionContext:
    """What values can refer to: parameters, execution variables, step properties, property files."""

    parameters: Mapping[str, Any]
    execution: Mapping[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)
    property_files: dict[str, dict[str, Any]] = field(default_factory=dict)


def path_tokens(path: str) -> list[str | int]:
    """`A.B['x'].C[0]` -> ['A', 'B', 'x', 'C', 0]."""
    tokens: list[str | int] = []
    position = 0
    while position < len(path):
        if path[position] == ".":
            position += 1
            continue
        match = _TOKEN.match(path, position)
        if match is None:
            message = f"cannot parse property path {path!r} at {path[position:]!r}"
            raise UnresolvableReferenceError(message)
        name, index, key = match.groups()
        tokens.append(int(index) if index is not None else key if key is not None else name)
        position = match.end()
    return tokens


def _select(value: Any, token: str | int, reference: str) -> Any:
    if isinstance(token, int):
        if isinstance(value, list) and -len(value) <= token < len(value):
            return value[token]
    elif isinstance(value, dict) and token in value:
        return value[token]
    elif isinstance(value, list):  # Outputs['train'] selects the element whose name is 'train'
        for item in value:
            if isinstance(item, dict) and token in {
                item.get("OutputName"),
                item.get("InputName"),
                item.get("ChannelName"),
            }:
                return item
    message = f"{reference}: no {token!r} here (found {_describe(value)})"
    raise UnresolvableReferenceError(message)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"keys {sorted(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return repr(value)


def get(reference: str, context: ResolutionContext) -> Any:
    """The value of a `Get` reference."""
    tokens = path_tokens(reference)
    root = tokens[0]
    if root == "Parameters":
        name = str(tokens[1])
        if name not in context.parameters:
            message = f"Get {reference}: no parameter {name!r}; parameters: {sorted(context.parameters)}"
            raise UnresolvableReferenceError(message)
        return context.parameters[name]
    if root == "Execution":
        name = str(tokens[1])
        if name not in context.execution:
            message = f"Get {reference}: no execution variable {name!r}; known: {sorted(context.execution)}"
            raise UnresolvableReferenceError(message)
        return context.execution[name]
    if root == "Steps":
        step = str(tokens[1])
        if step not in context.properties:
            message = f"Get {reference}: step {step!r} has not run (or does not exist) at this point"
            raise UnresolvableReferenceError(message)
        value: Any = context.properties[step]
        for token in tokens[2:]:
            value = _select(value, token, f"Get {reference}")
        return value
    message = f"Get {reference}: unknown root {root!r} (expected Parameters, Execution or Steps)"
    raise UnresolvableReferenceError(message)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def resolve(value: Any, context: ResolutionContext) -> Any:
    """Replace every expression inside a JSON value by what it evaluates to."""
    if isinstance(value, list):
        return [resolve(item, context) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return get(value["Get"], context)
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return str(join["On"]).join(_text(resolve(item, context)) for item in join["Values"])
    if set(value) == {"Std:JsonGet"}:
        return json_get(value["Std:JsonGet"], context)
    return {key: resolve(item, context) for key, item in value.items()}


def json_get(spec: Mapping[str, Any], context: ResolutionContext) -> Any:
    """Std:JsonGet: a dotted path inside a step's PropertyFile."""
    reference = spec["PropertyFile"]["Get"] if isinstance(spec.get("PropertyFile"), dict) else spec["PropertyFile"]
    tokens = path_tokens(reference)
    if len(tokens) != 4 or tokens[0] != "Steps" or tokens[2] != "PropertyFiles":
        message = f"Std:JsonGet: {reference!r} is not Steps.<step>.PropertyFiles.<name>"
        raise UnresolvableReferenceError(message)
    key = f"{tokens[1]}.{tokens[3]}"
    if key not in context.property_files:
        message = f"Std:JsonGet {reference}: no property file {tokens[3]!r} from step {tokens[1]!r} (has it run?)"
        raise UnresolvableReferenceError(message)
    document: Any = context.property_files[key]
    path = resolve(spec["Path"], context)
    for token in path_tokens(str(path)):
        document = _select(document, token, f"Std:JsonGet {reference} path {path!r}")
    return document


_COMPARISONS = {
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
    "LessThan": lambda a, b: a < b,
    "Equals": lambda a, b: a == b,
}


def _number_like(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, str) and isinstance(right, int | float):
        return float(left), right
    if isinstance(right, str) and isinstance(left, int | float):
        return left, float(right)
    return left, right


def evaluate_condition(condition: Mapping[str, Any], context: ResolutionContext) -> bool:
    """One condition of a ConditionStep."""
    kind = condition["Type"]
    if kind in _COMPARISONS:
        left, right = _number_like(resolve(condition["LeftValue"], context), resolve(condition["RightValue"], context))
        if left is None or right is None:
            message = f"condition {kind}: an operand is null ({left!r}, {right!r})"
            raise UnresolvableReferenceError(message)
        return bool(_COMPARISONS[kind](left, right))
    if kind == "In":
        return resolve(condition["QueryValue"], context) in resolve(condition["Values"], context)
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], context)
    if kind == "Or":
        return any(evaluate_condition(c, context) for c in condition["Conditions"])
    message = f"unknown condition type {kind!r}"
    raise UnresolvableReferenceError(message)


def references(value: Any) -> set[str]:
    """Names of the steps a JSON value refers to (Get Steps.X..., Std:JsonGet property files)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str) and value["Get"].startswith("Steps."):
            found.add(str(path_tokens(value["Get"])[1]))
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
