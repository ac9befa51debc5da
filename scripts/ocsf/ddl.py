"""Parse the Hive/Glue column DDL Security Lake publishes into a small engine-neutral type tree."""

from __future__ import annotations

from dataclasses import dataclass

PRIMITIVES = ("string", "int", "bigint", "timestamp")


@dataclass(frozen=True)
class Primitive:
    """A leaf type: one of PRIMITIVES."""

    name: str


@dataclass(frozen=True)
class Field:
    """A named member of a struct."""

    name: str
    type: DataType


@dataclass(frozen=True)
class Struct:
    """An ordered record of named fields."""

    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        names = ", ".join(f.name for f in self.fields)
        message = f"no field {name!r} in struct; fields are: {names}"
        raise KeyError(message)

    def names(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class Array:
    """A variable-length list of one element type."""

    element: DataType


@dataclass(frozen=True)
class Map:
    """A map from key type to value type."""

    key: DataType
    value: DataType


DataType = Primitive | Struct | Array | Map


class DdlSyntaxError(ValueError):
    """The DDL text does not follow `name:type,name:type` with struct/array/map nesting."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = "".join(text.split())
        self.pos = 0

    def fail(self, expected: str) -> DdlSyntaxError:
        found = self.text[self.pos : self.pos + 30] or "end of text"
        message = f"DDL syntax error at character {self.pos}: expected {expected}, found {found!r}"
        return DdlSyntaxError(message)

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        if not self.peek(token):
            raise self.fail(repr(token))
        self.pos += len(token)

    def identifier(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "_"):
            self.pos += 1
        if start == self.pos:
            raise self.fail("an identifier")
        return self.text[start : self.pos]

    def fields(self, closing: str | None) -> tuple[Field, ...]:
        fields = [self.field()]
        while self.peek(","):
            self.expect(",")
            fields.append(self.field())
        if closing is not None:
            self.expect(closing)
        elif self.pos != len(self.text):
            raise self.fail("',' or end of text")
        return tuple(fields)

    def field(self) -> Field:
        name = self.identifier()
        self.expect(":")
        return Field(name, self.type())

    def type(self) -> DataType:
        name = self.identifier().lower()
        if name == "struct":
            self.expect("<")
            return Struct(self.fields(">"))
        if name == "array":
            self.expect("<")
            element = self.type()
            self.expect(">")
            return Array(element)
        if name == "map":
            self.expect("<")
            key = self.type()
            self.expect(",")
            value = self.type()
            self.expect(">")
            return Map(key, value)
        if name in PRIMITIVES:
            return Primitive(name)
        self.pos -= len(name)
        raise self.fail(f"a type ({', '.join(PRIMITIVES)}, struct, array, map)")


def parse_columns(ddl: str) -> Struct:
    """Parse a top-level `name:type,...` column list into a Struct."""
    return Struct(_Parser(ddl).fields(None))


def render(data_type: DataType) -> str:
    """Render a type back to DDL text (the inverse of parse for one type)."""
    if isinstance(data_type, Primitive):
        return data_type.name
    if isinstance(data_type, Array):
        return f"array<{render(data_type.element)}>"
    if isinstance(data_type, Map):
        return f"map<{render(data_type.key)},{render(data_type.value)}>"
    inner = ",".join(f"{f.name}:{render(f.type)}" for f in data_type.fields)
    return f"struct<{inner}>"
