"""The local IAM evaluator against the rules and examples of AWS's IAM and S3 guides (policy evaluation logic,
condition operators, IfExists, multivalued keys, s3:prefix listing), and against the policies we generate."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.policy_evaluation import Decision, PolicyGrammarError, Request, evaluate, wildcard_match


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_BUCKET_READ = {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}


def test_an_explicit_deny_overrides_any_allow_and_no_allow_is_an_implicit_deny() -> None:
    """IAM guide, policy evaluation logic: deny by default; an explicit deny in any policy wins over allows."""
    deny = {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/secret/*"}
    policies = [policy(ALLOW_BUCKET_READ), policy(deny)]
    assert evaluate(policies, Request("s3:GetObject", "arn:aws:s3:::b/data/x")).decision is Decision.ALLOWED
    assert evaluate(policies, Request("s3:GetObject", "arn:aws:s3:::b/secret/x")).statement == "NoSecrets"
    assert evaluate(policies, Request("s3:GetObject", "arn:aws:s3:::b/secret/x")).decision is Decision.EXPLICIT_DENY
    assert evaluate(policies, Request("s3:PutObject", "arn:aws:s3:::b/data/x")).decision is Decision.IMPLICIT_DENY
    assert evaluate([], Request("s3:GetObject", "arn:aws:s3:::b/x")).decision is Decision.IMPLICIT_DENY


def test_wildcards_actions_and_resources() -> None:
    """`*` is any run, `?` one character; action names are case-insensitive, resource ARNs are not."""
    assert wildcard_match("s3:Get*", "s3:getobject", case_sensitive=False)
    assert wildcard_match("arn:aws:s3:::b/201?/*", "arn:aws:s3:::b/2019/x")
    assert not wildcard_match("arn:aws:s3:::b/201?/*", "arn:aws:s3:::b/20190/x")
    assert not wildcard_match("arn:aws:s3:::B/*", "arn:aws:s3:::b/x")
    assert not wildcard_match("arn:aws:s3:::b/[ab]", "arn:aws:s3:::b/a")  # brackets are literal in IAM
    allow_all_but_iam = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert evaluate([policy(allow_all_but_iam)], Request("s3:ListBucket", "arn:aws:s3:::b")).allowed
    assert not evaluate([policy(allow_all_but_iam)], Request("iam:PassRole", "arn:aws:iam::1:role/r")).allowed
    not_resource = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/private/*"}
    assert evaluate([policy(not_resource)], Request("s3:GetObject", "arn:aws:s3:::b/public/x")).allowed
    assert not evaluate([policy(not_resource)], Request("s3:GetObject", "arn:aws:s3:::b/private/x")).allowed


LIST_HOME = {
    "Sid": "ListHome",
    "Effect": "Allow",
    "Action": "s3:ListBucket",
    "Resource": "arn:aws:s3:::b",
    "Condition": {"StringLike": {"s3:prefix": ["home/David/*", "home/David"]}},
}


@pytest.mark.parametrize(
    ("context", "allowed"),
    [
        ({"s3:prefix": "home/David/"}, True),
        ({"s3:prefix": "home/David"}, True),
        ({"s3:prefix": "home/"}, False),  # listing the parent is not listing the home folder
        ({"s3:prefix": ""}, False),
        ({}, False),  # a listing of the whole bucket sends no prefix: the condition's key is missing, so false
    ],
)
def test_listing_is_allowed_under_the_granted_prefix_only(context: dict[str, str], allowed: bool) -> None:
    """S3 user guide's example of a home folder: s3:ListBucket with a StringLike s3:prefix condition."""
    assert evaluate([policy(LIST_HOME)], Request("s3:ListBucket", "arn:aws:s3:::b", context)).allowed is allowed


def test_missing_keys_negated_operators_if_exists_and_null() -> None:
    """IAM guide, condition operators: a missing key makes a condition false, except a negated operator (true),
    `...IfExists` (true) and Null (which tests exactly that)."""

    def allowed(condition: dict[str, Any], context: dict[str, Any]) -> bool:
        statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": condition}
        return evaluate([policy(statement)], Request("s3:GetObject", "arn:aws:s3:::b/k", context)).allowed

    assert not allowed({"StringEquals": {"aws:SourceAccount": "111122223333"}}, {})
    assert allowed({"StringNotEquals": {"aws:SourceAccount": "111122223333"}}, {})
    assert not allowed(
        {"StringNotEquals": {"aws:SourceAccount": "111122223333"}}, {"aws:SourceAccount": "111122223333"}
    )
    assert allowed({"StringEqualsIfExists": {"ec2:InstanceType": "t2.micro"}}, {})
    assert not allowed({"StringEqualsIfExists": {"ec2:InstanceType": "t2.micro"}}, {"ec2:InstanceType": "m5.large"})
    assert allowed({"Null": {"aws:TokenIssueTime": "true"}}, {})
    assert not allowed({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": "2026-12-06T00:00:00Z"})
    assert allowed({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"})
    assert not allowed({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"})


def test_values_of_one_key_are_ored_and_keys_and_operators_are_anded() -> None:
    """IAM guide, multiple values and keys: values for one key are ORed; keys within an operator, and operators,
    are ANDed."""
    statement = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"sts:ExternalId": ["one", "two"], "aws:SourceAccount": "111122223333"},
            "ArnLike": {"aws:SourceArn": "arn:aws:securitylake:*:111122223333:*"},
        },
    }
    good = {
        "sts:ExternalId": "two",
        "aws:SourceAccount": "111122223333",
        "aws:SourceArn": "arn:aws:securitylake:us-east-1:111122223333:subscriber/x",
    }
    assert evaluate([policy(statement)], Request("sts:AssumeRole", "r", good)).allowed
    for key, wrong in (
        ("sts:ExternalId", "three"),
        ("aws:SourceAccount", "444455556666"),
        ("aws:SourceArn", "arn:aws:securitylake:us-east-1:444455556666:subscriber/x"),
    ):
        assert not evaluate([policy(statement)], Request("sts:AssumeRole", "r", {**good, key: wrong})).allowed


def test_set_qualifiers_over_multivalued_keys() -> None:
    """ForAnyValue: at least one request value matches; ForAllValues: every one does (true over none)."""

    def allowed(operator: str, tags: list[str] | None) -> bool:
        statement = {
            "Effect": "Allow",
            "Action": "sagemaker:AddTags",
            "Resource": "*",
            "Condition": {operator: {"aws:TagKeys": ["team", "cost-centre"]}},
        }
        context = {} if tags is None else {"aws:TagKeys": tags}
        return evaluate([policy(statement)], Request("sagemaker:AddTags", "arn", context)).allowed

    assert allowed("ForAnyValue:StringEquals", ["team", "other"])
    assert not allowed("ForAllValues:StringEquals", ["team", "other"])
    assert allowed("ForAllValues:StringEquals", ["team"])
    assert allowed("ForAllValues:StringEquals", None)
    assert not allowed("ForAnyValue:StringEquals", None)


def test_what_the_evaluator_does_not_implement_is_refused_by_name() -> None:
    numeric = {
        "Effect": "Allow",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"NumericLessThan": {"s3:max-keys": "10"}},
    }
    with pytest.raises(PolicyGrammarError, match="NumericLessThan"):
        evaluate([policy(numeric)], Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:max-keys": "5"}))
    variable = {**LIST_HOME, "Condition": {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}}
    with pytest.raises(PolicyGrammarError, match="policy variables"):
        evaluate([policy(variable)], Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "home/x/"}))


def test_a_trust_policy_names_the_callers_account_or_role_and_asks_for_the_external_id() -> None:
    """Resource-based trust for sts:AssumeRole, as the IAM guide's confused-deputy example writes it."""
    from pipeline.policy_evaluation import trust_allows

    caller = "arn:aws:iam::111122223333:role/Pipeline"
    by_account = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "Unique-ID-1"}},
            }
        ]
    }
    assert trust_allows(by_account, caller, "111122223333", {"sts:ExternalId": "Unique-ID-1"})
    assert not trust_allows(by_account, caller, "111122223333", {"sts:ExternalId": "other"})
    assert not trust_allows(by_account, caller, "111122223333", {})
    assert not trust_allows(
        by_account, "arn:aws:iam::444455556666:role/Pipeline", "444455556666", {"sts:ExternalId": "Unique-ID-1"}
    )
    by_role = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": [caller]}, "Action": "sts:AssumeRole"}]}
    assert trust_allows(by_role, caller, "111122223333", {})
    assert not trust_allows(by_role, "arn:aws:iam::111122223333:role/Other", "111122223333", {})
    denied = {"Statement": [*by_role["Statement"], {"Effect": "Deny", "Principal": "*", "Action": "sts:*"}]}
    assert not trust_allows(denied, caller, "111122223333", {})
