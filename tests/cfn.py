"""The monitor's CloudFormation template as data: `!Ref X` stays the string "!Ref X"; a function of a list or a map
becomes {"Fn::<name>": ...}, as CloudFormation's JSON spells it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "config" / "cloudformation" / "monitor.yaml"


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return f"!{suffix} {loader.construct_scalar(node)}"
    if isinstance(node, yaml.SequenceNode):
        return {f"Fn::{suffix}": loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {f"Fn::{suffix}": loader.construct_mapping(node, deep=True)}


_Loader.add_multi_constructor("!", _tagged)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return dict(yaml.load(path.read_text(), Loader=_Loader))


def role_statements(template: dict[str, Any], role: str = "MonitorRole") -> list[dict[str, Any]]:
    """A role's statements, a conditional one (Fn::If) as the statement it adds when its condition holds."""
    statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return [s["Fn::If"][1] if "Fn::If" in s else s for s in statements]


def roles(template: dict[str, Any]) -> list[str]:
    return sorted(name for name, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role")
