"""Assemble an Arrow table of a nested schema from flat `a.b.c` column arrays; missing leaves become nulls."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa


def _build(path: str, data_type: pa.DataType, columns: Mapping[str, pa.Array], length: int, used: set[str]) -> pa.Array:
    if path in columns:
        used.add(path)
        column = columns[path]
        if len(column) != length:
            message = f"column {path!r} has {len(column)} values, the table has {length}"
            raise ValueError(message)
        return column if column.type == data_type else column.cast(data_type)
    if pa.types.is_struct(data_type):
        children = [_build(f"{path}.{child.name}", child.type, columns, length, used) for child in data_type]
        return pa.StructArray.from_arrays(children, fields=list(data_type))
    return pa.nulls(length, type=data_type)


def assemble(schema: pa.Schema, columns: Mapping[str, pa.Array], length: int) -> pa.Table:
    """A table of `schema` from flat dotted-path columns; an unknown path is an error, not silently dropped."""
    used: set[str] = set()
    arrays = [_build(f.name, f.type, columns, length, used) for f in schema]
    unknown = sorted(set(columns) - used)
    if unknown:
        message = f"columns not in the schema: {', '.join(unknown)}"
        raise ValueError(message)
    return pa.Table.from_arrays(arrays, schema=schema)


def constant(value: object, data_type: pa.DataType, length: int) -> pa.Array:
    """An array repeating one value."""
    if length == 0:
        return pa.array([], type=data_type)
    return pa.repeat(pa.scalar(value, type=data_type), length)
