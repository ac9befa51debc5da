"""An object's columns against its source's and version's: a misfiled or foreign file fails with what it looks like."""

from __future__ import annotations

from typing import Any

from scripts.ocsf.schemas import SOURCE_VERSIONS, Source, arrow_mismatches


class ObjectSchemaError(ValueError):
    """An object's columns are not its source's and version's (a misfiled or foreign file); the message says what
    was expected, what differs, and what the file looks like instead."""


def check_object_schema(schema: Any, source: Source, version: int, where: str) -> None:
    """Missing or mistyped columns fail the object; columns a newer Security Lake adds are allowed."""
    problems = [p for p in arrow_mismatches(schema, source, version) if not p.endswith("unexpected column")]
    if not problems:
        return
    looks_like = [
        f"{other.value}/{SOURCE_VERSIONS[number].folder}"
        for other in Source
        for number in SOURCE_VERSIONS
        if (other, number) != (source, version)
        and not [p for p in arrow_mismatches(schema, other, number) if not p.endswith("unexpected column")]
    ]
    hint = f"; it looks like {' or '.join(looks_like)}" if looks_like else ""
    message = (
        f"{where} is filed under {source.value}/{SOURCE_VERSIONS[version].folder} but its columns differ: "
        f"{'; '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}{hint}. Nothing was scored; the message goes "
        "to the dead-letter queue: move the object under its source's prefix, or drop it from the queue"
    )
    raise ObjectSchemaError(message)
