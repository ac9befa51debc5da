"""Every step of a definition, those inside conditions (at any depth) too, in definition order."""

from __future__ import annotations

from typing import Any


def all_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found.append(step)
            if step["Type"] == "Condition":
                visit(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])

    visit(definition["Steps"])
    return found
