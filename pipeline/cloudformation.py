"""The monitor's CloudFormation template as data, and a role's policy as a stack would create it: the intrinsic
functions the template uses (Ref, Sub, GetAtt, If, Equals, Not, Join) resolved for given parameter values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import CONFIG_DIR

TEMPLATE = CONFIG_DIR / "cloudformation" / "monitor.yaml"
NO_VALUE = "AWS::NoValue"
_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9:.]+)\}")
# What a resource of the stack is called in an ARN, by type: its physical name stands in for the generated one.
ARN_FORMATS = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
}


class TemplateError(ValueError):
    """The template uses a function or names something this renderer cannot resolve; the message names it."""


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    """`!Ref X` stays the string "!Ref X"; a function of a list or a map becomes {"Fn::<name>": ...}."""
    if isinstance(node, yaml.ScalarNode):
        return f"!{suffix} {loader.construct_scalar(node)}"
    if isinstance(node, yaml.SequenceNode):
        return {f"Fn::{suffix}": loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {f"Fn::{suffix}": loader.construct_mapping(node, deep=True)}


_Loader.add_multi_constructor("!", _tagged)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return dict(yaml.load(path.read_text(), Loader=_Loader))


class Stack:
    """A template deployed with parameter values in one account and region, as far as its policies need."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any], account: str, region: str) -> None:
        self.template = template
        self.account = account
        self.region = region
        declared = template.get("Parameters", {})
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            message = f"parameters {unknown} are not declared by the template"
            raise TemplateError(message)
        self.parameters: dict[str, Any] = {}
        for name, spec in declared.items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                message = f"template parameter {name} has no default: give it a value"
                raise TemplateError(message)
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [item for item in value.split(",") if item] if value else [""]
            self.parameters[name] = value
        self.conditions = {name: bool(self.resolve(body)) for name, body in template.get("Conditions", {}).items()}

    def physical(self, logical: str) -> str:
        kind = self.template["Resources"][logical]["Type"]
        if kind not in ARN_FORMATS:
            message = f"resource {logical} ({kind}) has no ARN format here"
            raise TemplateError(message)
        return ARN_FORMATS[kind].format(region=self.region, account=self.account, name=logical)

    def reference(self, name: str) -> Any:
        pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name == NO_VALUE:
            return NO_VALUE
        if "." in name:
            logical, attribute = name.split(".", 1)
            if attribute != "Arn":
                message = f"GetAtt {name}: only Arn is resolved"
                raise TemplateError(message)
            return self.physical(logical)
        if name in self.template.get("Resources", {}):
            return self.physical(name)
        message = f"Ref {name}: not a parameter, pseudo parameter or resource of the template"
        raise TemplateError(message)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str):
            if node.startswith(("!Ref ", "!GetAtt ")):
                return self.reference(node.split(" ", 1)[1])
            if node.startswith("!Sub "):
                return _SUBSTITUTION.sub(lambda m: str(self.reference(m.group(1))), node[len("!Sub ") :])
            if node.startswith("!"):
                message = f"{node.split(' ')[0]} is not resolved by this renderer"
                raise TemplateError(message)
            return node
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item != NO_VALUE]
        if isinstance(node, dict):
            if len(node) == 1 and next(iter(node)).startswith("Fn::"):
                return self._function(next(iter(node)), next(iter(node.values())))
            resolved = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value != NO_VALUE}
        return node

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::If":
            condition, then, otherwise = argument
            return self.resolve(then if self.conditions[condition] else otherwise)
        if name == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return left == right
        if name == "Fn::Not":
            return not self.resolve(argument[0])
        if name == "Fn::Join":
            separator, items = argument
            return separator.join(str(i) for i in self.resolve(items))
        if name == "Fn::GetAtt":
            return self.reference(".".join(argument))
        message = f"{name} is not resolved by this renderer"
        raise TemplateError(message)

    def role_policy(self, role: str) -> dict[str, Any]:
        """The role's inline policy (its first), resolved: conditional statements kept or dropped."""
        properties = self.template["Resources"][role]["Properties"]
        return dict(self.resolve(properties["Policies"][0]["PolicyDocument"]))
