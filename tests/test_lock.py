"""requirements.lock: every package pinned with hashes, in step with pyproject.toml and the job stand-ins."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from pipeline.code_bundle import PROJECT_ROOT
from pipeline.containers import SPARK_PROCESSING

LOCK = PROJECT_ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def locked(text: str) -> dict[str, tuple[Version, int]]:
    """Each pinned package of a lock's text: its version and how many hashes it carries."""
    found: dict[str, tuple[Version, int]] = {}
    name = ""
    for line in text.splitlines():
        pinned = PIN.match(line)
        if pinned:
            name = canonicalize_name(pinned.group(1))
            found[name] = (Version(pinned.group(2)), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in lines]


def test_every_declared_requirement_is_locked_at_a_version_it_allows() -> None:
    lock = locked(LOCK.read_text())
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is in pyproject.toml but not in the lock: run make lock"
        version, _ = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"the lock has {name} {version}, which pyproject.toml's {requirement} excludes: run make lock"
        )


def test_every_locked_package_carries_a_hash_and_nothing_floats() -> None:
    text = LOCK.read_text()
    lock = locked(text)
    assert len(lock) > 100
    assert {name for name, (_, hashes) in lock.items() if hashes == 0} == set()
    unpinned = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line) and not PIN.match(line)]
    assert unpinned == []


def test_torch_is_the_cpu_build_and_the_local_spark_is_the_stand_ins() -> None:
    lock = locked(LOCK.read_text())
    assert str(lock["torch"][0]) == "2.13.0+cpu"
    assert str(lock["pyspark"][0]) == SPARK_PROCESSING.local_packages["pyspark"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a==1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via b\n", {"a": ("1.0", 2)}),
        ("Torch==2.13.0+cpu \\\n    --hash=sha256:cc\n", {"torch": ("2.13.0+cpu", 1)}),
        ("c==2\n", {"c": ("2", 0)}),
    ],
)
def test_the_lock_reader(text: str, expected: dict[str, tuple[str, int]]) -> None:
    assert {name: (str(v), n) for name, (v, n) in locked(text).items()} == expected


def test_the_readme_names_the_lock_and_its_commands() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for target in ("lock", "test-latest"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
        assert f"make {target}" in readme, target
    assert not (PROJECT_ROOT / "constraints.txt").exists()
    assert "requirements.lock" in readme
