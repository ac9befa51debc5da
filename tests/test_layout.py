"""Bucket names and object keys follow the Security Lake layout, both ways."""

from __future__ import annotations

import pytest

from scripts.ocsf.layout import bucket_name, object_key, parse_object_key
from scripts.ocsf.schemas import Source


def test_object_key_round_trips_and_keeps_leading_zeros() -> None:
    key = object_key(Source.VPC_FLOW, 2, "eu-west-1", "012345678901", "20261128", "a" * 32 + ".gz.parquet")
    assert key == f"aws/VPC_FLOW/2.0/region=eu-west-1/accountId=012345678901/eventDay=20261128/{'a' * 32}.gz.parquet"
    location = parse_object_key(f"aws-security-data-lake-eu-west-1-{'x' * 30}/{key}")
    assert location is not None
    assert (location.source, location.version, location.account, location.event_day) == (
        "VPC_FLOW",
        2,
        "012345678901",
        "20261128",
    )


def test_keys_outside_the_layout_are_not_parsed() -> None:
    assert parse_object_key("ext/my-source/region=us-east-1/accountId=1/eventDay=2/x.parquet") is None


def test_bucket_name_validates_suffix() -> None:
    assert bucket_name("us-east-1", "a1" * 15) == f"aws-security-data-lake-us-east-1-{'a1' * 15}"
    with pytest.raises(ValueError, match="30 lowercase letters or digits"):
        bucket_name("us-east-1", "short")


def test_account_must_be_twelve_digits() -> None:
    with pytest.raises(ValueError, match="must be 12 digits"):
        object_key(Source.ROUTE53, 1, "us-east-1", "12345", "20261128", "x.parquet")
