"""JSON records: dataclasses whose field names are the keys, read back with every key checked."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar


class HandoffError(ValueError):
    """A file one step hands another is missing or not what its writer writes; the message names it and the writer."""


Record = TypeVar("Record")


def field_key(record: type, name: str) -> str:
    """`name`, checked to be a field of `record`: a JSON path built from it fails at import if the field is renamed."""
    names = {f.name for f in dataclasses.fields(record)}
    if name not in names:
        message = f"{record.__name__} has no field {name!r}; its fields: {', '.join(sorted(names))}"
        raise AttributeError(message)
    return name


def json_path(*keys: str) -> str:
    """The dotted path SageMaker's JsonGet and the monitor read."""
    return ".".join(keys)


def json_get(document: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (what the pipeline's JsonGet reads)."""
    value: Any = document
    for part in path.split("."):
        value = value[part]
    return value


def from_json(record: type[Record], document: Any, where: str) -> Record:
    """A record from its JSON: every field without a default must be there; unknown keys are ignored (a newer
    writer may add some)."""
    if not isinstance(document, Mapping):
        message = f"{where}: expected a JSON object for {record.__name__}, found {type(document).__name__}"
        raise HandoffError(message)
    fields = dataclasses.fields(record)  # type: ignore[arg-type]
    required = [
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in document
    ]
    if required:
        message = f"{where} lacks {', '.join(required)} ({record.__name__}); found {', '.join(sorted(document))}"
        raise HandoffError(message)
    return record(**{f.name: document[f.name] for f in fields if f.name in document})


def parse_json(text: str, where: str, writer: str = "") -> dict[str, Any]:
    """A JSON object from text; anything else is a HandoffError naming where it came from and who writes it."""
    said = f"; {writer} writes it" if writer else ""
    try:
        document = json.loads(text)
    except ValueError as error:
        message = f"{where} is not readable JSON ({error}){said}"
        raise HandoffError(message) from error
    if not isinstance(document, dict):
        message = f"{where} holds a {type(document).__name__}, not a JSON object{said}"
        raise HandoffError(message)
    return document


def read_json(path: Path, writer: str) -> dict[str, Any]:
    """A JSON object from a file; a missing or unreadable file is a HandoffError naming the step that writes it."""
    if not path.exists():
        message = f"{path} is missing; {writer} writes it"
        raise HandoffError(message)
    try:
        text = path.read_text()
    except OSError as error:
        message = f"{path} is not readable ({error}); {writer} writes it"
        raise HandoffError(message) from error
    return parse_json(text, str(path), writer)


def dumps(document: Mapping[str, Any]) -> str:
    """How every hand-off JSON is written: sorted keys, indented, one trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
