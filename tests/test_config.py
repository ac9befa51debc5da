"""Configuration merges defaults, profile, user file and environment; bad keys and values are named."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import CONFIG_DIR, ConfigError, load_config


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, (*path, str(key)))
    else:
        yield path, tree


@pytest.mark.parametrize("profile", ["local", "prod"])
def test_every_value_of_the_default_file_and_the_profile_reaches_the_config(profile: str) -> None:
    """default.yaml, then the profile's overlay, value by value: a key the model renamed or dropped, or a default the
    model overrides, would leave the file saying one thing and the run doing another."""
    config = load_config(profile, environ={}).model_dump(mode="json")
    expected: dict[tuple[str, ...], Any] = {}
    for name in ("default", profile):
        expected.update(_leaves(yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) or {}))
    assert len(expected) > 20
    for path, value in expected.items():
        found: Any = config
        for key in path:
            found = found[key]
        assert found == value, ".".join(path)


def test_user_file_then_environment_override(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text("sample_lake:\n  days: 5\n  seed: 99\nlake:\n  source_version: 1\n")
    config = load_config(user_file=user, environ={"SECLAKE_SAMPLE_LAKE__DAYS": "9", "SECLAKE_HOME": "/tmp/x"})
    assert config.sample_lake.days == 9
    assert config.sample_lake.seed == 99
    assert config.lake.source_version == 1
    assert config.home == Path("/tmp/x")


def test_unknown_key_names_key_origin_and_allowed(tmp_path: Path) -> None:
    user = tmp_path / "typo.yaml"
    user.write_text("sample_lake:\n  dayz: 5\n")
    with pytest.raises(ConfigError) as raised:
        load_config(user_file=user, environ={})
    message = str(raised.value)
    assert "unknown config key 'sample_lake.dayz'" in message
    assert str(user) in message
    assert "days" in message
    assert "events_per_day" in message


def test_invalid_value_from_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"SECLAKE_LAKE__SOURCE_VERSION": "3"})
    message = str(raised.value)
    assert "'lake.source_version' = 3" in message
    assert "environment variable SECLAKE_LAKE__SOURCE_VERSION" in message
    assert "1 or 2" in message


def test_unknown_profile_and_missing_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'staging'; allowed: local, prod"):
        load_config(profile="staging", environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(user_file=tmp_path / "absent.yaml", environ={})


def test_non_mapping_file_is_rejected(tmp_path: Path) -> None:
    user = tmp_path / "list.yaml"
    user.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping of sections, found list"):
        load_config(user_file=user, environ={})


def test_job_and_monitor_variables_are_not_config() -> None:
    """SECLAKE_DETECTOR_FPR (a monitor variable) and SECLAKE_RUNTIMES (the local runtime's) once broke `seclake`."""
    environ = {
        "SECLAKE_DETECTOR_FPR": "0.001",
        "SECLAKE_RUNTIMES": "/tmp/runtimes",
        "SECLAKE_THRESHOLD": "-3",
        "SECLAKE_PROCESSING_JOB_CONFIG": "/x.json",
        "SECLAKE_DETECTION__FALSE_POSITIVE_RATE": "0.01",
    }
    config = load_config(environ=environ)
    assert config.detection.false_positive_rate == 0.01


def test_a_section_key_with_one_underscore_is_named_with_its_spelling() -> None:
    with pytest.raises(
        ConfigError, match="SECLAKE_PIPELINE_NAME looks like a config override; write it as SECLAKE_PIPELINE__NAME"
    ):
        load_config(environ={"SECLAKE_PIPELINE_NAME": "x"})


def test_default_yaml_states_the_typed_defaults_and_nothing_else() -> None:
    """config/default.yaml documents every default the typed config holds: a scalar set there and a different default
    in pipeline/config.py would be two definitions of one fact."""
    import yaml

    from pipeline.config import CONFIG_DIR, Config

    defaults = Config()
    stated = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    differ: list[tuple[object, ...]] = []
    for section, values in stated.items():
        if not isinstance(values, dict):
            differ += [] if str(getattr(defaults, section)) == str(values) else [(section, values)]
            continue
        for key, value in values.items():
            typed = getattr(getattr(defaults, section), key)
            if not isinstance(value, dict) and typed != value:
                differ.append((f"{section}.{key}", value, typed))
    assert differ == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SECLAKE_LAKE__REGIONS": "[us-east1]"}, "'lake.regions.0' = 'us-east1'"),
        ({"SECLAKE_AWS__REGION": "us-east1"}, "'aws.region' = 'us-east1'"),
        ({"SECLAKE_AWS__ACCOUNT_ID": "１２３４５６７８９０１２"}, "'aws.account_id' = '１２３４５６７８９０１２'"),
        ({"SECLAKE_PIPELINE__SPARK_INSTANCE_COUNT": "[1"}, "SECLAKE_PIPELINE__SPARK_INSTANCE_COUNT='[1' is not a YAML"),
        ({"SECLAKE_AWS__ARTIFACT_PREFIX": "team's/runs"}, "'aws.artifact_prefix' = \"team's/runs\""),
    ],
)
def test_values_a_real_account_would_not_accept_are_named(environ: dict[str, str], expected: str) -> None:
    """A region typo would leave that region unread; full-width digits would reach ARNs; broken YAML in a variable
    would end in a traceback: each is refused, naming the key, the value and where it came from."""
    with pytest.raises(ConfigError) as refused:
        load_config(environ=environ)
    assert expected in str(refused.value)


@pytest.mark.parametrize("account", ["111122223333", "000123456701"])
def test_an_account_id_from_the_environment_stays_the_text_it_was(account: str) -> None:
    """YAML would read 111122223333 as a number and 000123456701 as an octal one: text keys keep the variable's text."""
    assert load_config(environ={"SECLAKE_AWS__ACCOUNT_ID": account}).aws.account_id == account


def test_a_bad_key_in_the_users_file_is_blamed_on_that_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("tuning:\n  integer_ranges:\n    epochs: {min: 10, max: 2}\n")
    with pytest.raises(ConfigError, match=rf"\(from {re.escape(str(mine))}\): Value error, range of epochs"):
        load_config(user_file=mine, environ={})
