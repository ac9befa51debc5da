"""The monitor's CloudFormation template as data (pipeline/cloudformation.py loads it): `!Ref X` stays the string
"!Ref X"; a function of a list or a map becomes {"Fn::<name>": ...}, as CloudFormation's JSON spells it."""

from __future__ import annotations

from typing import Any

from pipeline.cloudformation import TEMPLATE, load_template

__all__ = ["TEMPLATE", "load_template", "role_statements", "roles"]


def role_statements(template: dict[str, Any], role: str = "MonitorRole") -> list[dict[str, Any]]:
    """A role's statements, a conditional one (Fn::If) as the statement it adds when its condition holds."""
    statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return [s["Fn::If"][1] if "Fn::If" in s else s for s in statements]


def roles(template: dict[str, Any]) -> list[str]:
    return sorted(name for name, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role")
