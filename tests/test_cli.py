"""The seclake CLI: config show, lake generate and summary, and one-line errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.javacheck import parse_java_major

runner = CliRunner()


def test_config_show_prints_merged_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECLAKE_SAMPLE_LAKE__SEED", "1234")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "seed: 1234" in result.output
    assert "source_version: 2" in result.output


def test_generate_then_summary(tmp_path: Path) -> None:
    arguments = [
        "lake",
        "generate",
        "--root",
        str(tmp_path),
        "--days",
        "2",
        "--events-per-day",
        "4000",
        "--end-day",
        "20261128",
        "--source-version",
        "1",
        "--seed",
        "3",
    ]
    result = runner.invoke(app, arguments, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "rows/s" in result.output
    assert "VPC_FLOW" in result.output
    assert "lateral_movement" in result.output
    summary = runner.invoke(app, ["lake", "summary", "--root", str(tmp_path)], env={"COLUMNS": "160"})
    assert summary.exit_code == 0, summary.output
    assert "event days 20261127 .. 20261128" in summary.output
    again = runner.invoke(app, arguments)
    assert again.exit_code != 0
    assert "already holds a lake" in str(again.exception)


def test_bad_end_day_is_named() -> None:
    result = runner.invoke(app, ["lake", "generate", "--end-day", "2026-11-28"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "is not a date in the form YYYYMMDD" in result.output


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("no version here", None),
    ],
)
def test_java_version_parsing(text: str, major: int | None) -> None:
    assert parse_java_major(text) == major


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    """The console script as a user runs it: its exit status and everything it printed."""
    import sys

    from pipeline.cli import main

    monkeypatch.setattr(sys, "argv", ["seclake", *arguments])
    with pytest.raises(SystemExit) as stopped:
        main()
    captured = capsys.readouterr()
    return int(stopped.value.code or 0), captured.out + captured.err


def test_values_with_brackets_print_as_they_are_and_a_bad_day_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rich would read `[/x]` as a closing tag (MarkupError) or eat `[a-z]`; the CLI prints user values literally.
    A day given as 2026-12-05 is refused with the value and the form, never a silent rc 0."""
    monkeypatch.setenv("SECLAKE_HOME", str(tmp_path))
    code, output = _main(monkeypatch, capsys, "monitor", "--replay-day", "[/x][a-z]")
    assert code == 2 and "'[/x][a-z]' is not a day" in output
    code, output = _main(monkeypatch, capsys, "monitor", "--replay-day", "2026-12-05")
    assert code == 2 and "'2026-12-05' is not a day: give it as YYYYMMDD" in output
    code, output = _main(monkeypatch, capsys, "findings", "--limit", "-1")
    assert code == 2 and "--limit" in output and "no findings" not in output


def test_execution_show_draws_nested_conditions_with_their_steps(tmp_path: Path) -> None:
    """The approval gate is a condition inside the quality gate: its branches and steps are drawn, as Studio does."""
    from pipeline.local.executor import LocalExecutor

    def condition(name: str, holds: bool, if_steps: list[dict[str, object]]) -> dict[str, object]:
        return {
            "Name": name,
            "Type": "Condition",
            "Arguments": {
                "Conditions": [{"Type": "Equals", "LeftValue": "a", "RightValue": "a" if holds else "b"}],
                "IfSteps": if_steps,
                "ElseSteps": [],
            },
        }

    stop: dict[str, object] = {"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "reached"}}
    definition = {
        "Version": "2020-12-01",
        "Parameters": [],
        "Steps": [condition("Outer", True, [condition("Inner", True, [stop])])],
    }
    result = LocalExecutor(tmp_path).execute(definition, "p")
    shown = runner.invoke(app, ["execution", "show", result.execution], env={"SECLAKE_HOME": str(tmp_path)})
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    inner = next(i for i, line in enumerate(lines) if "Inner (Condition)" in line)
    assert any("Stop (Fail)" in line for line in lines[inner:]), shown.output
