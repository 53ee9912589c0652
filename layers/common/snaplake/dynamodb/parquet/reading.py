"""DynamoDB JSON lines -> Arrow tables with pyarrow's C++ JSON reader, never trusting an inferred type.

Every block is read with an explicit schema built from the DynamoDB JSON grammar and the shapes seen so far;
inference only discovers new attribute names. A block that cannot be read is located: the error names the line
and what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.json as pj

from snaplake.core.errors import SnaplakeError
from snaplake.dynamodb.attribute_values import (
    SET_DESCRIPTORS,
    check_attributes,
)
from snaplake.dynamodb.errors import (
    AttributeNotInSchema,
    InvalidAttributeValue,
    MalformedExportLine,
)
from snaplake.dynamodb.parquet.options import CHUNK_BYTES, PRIME_BYTES, READ_TYPES, SECTIONS, ExportKind


def _read(data: bytes, schema: pa.Schema | None, unexpected: str, single_chunk: bool = False) -> pa.Table:
    """pyarrow's JSON reader on complete lines; lines longer than a chunk are retried with bigger chunks."""
    buffer = pa.py_buffer(data)
    block_size = len(data) + 1 if single_chunk else CHUNK_BYTES
    parse_options = pj.ParseOptions(explicit_schema=schema, newlines_in_values=False, unexpected_field_behavior=unexpected)
    while True:
        try:
            return pj.read_json(pa.BufferReader(buffer), read_options=pj.ReadOptions(block_size=block_size), parse_options=parse_options)
        except pa.ArrowInvalid as error:
            if "straddl" not in str(error) or block_size > len(data):
                raise
            block_size = min(block_size * 8, len(data) + 1)


def parse_discovering(data: bytes, known: pa.Schema | None, kind: ExportKind, first_line: int) -> pa.Table:
    """Parse a block exactly, learning attribute names the known schema lacks."""
    if known is None:
        known = _discover(_head(data, PRIME_BYTES), None, kind, first_line)
    try:
        table: pa.Table | None = _read(data, known, "infer")
    except pa.ArrowException:
        table = None  # e.g. a new field inferred differently in two chunks
    if table is not None and table.schema == known:
        return table
    if table is None:
        complete = _discover(data, known, kind, first_line)
    else:
        try:
            complete = _merged_schema(known, normalized_row(table.schema, kind))
        except SnaplakeError as error:
            raise located_problem(data, kind, first_line, None, error) from None
    return read_exact(data, complete, kind, first_line)


def _discover(data: bytes, known: pa.Schema | None, kind: ExportKind, first_line: int) -> pa.Schema:
    """The explicit schema (grammar types) of `data`'s lines, in one chunk so the reader cannot disagree with itself."""
    try:
        inferred = _read(data, known, "infer", single_chunk=True).schema
        normalized = normalized_row(inferred, kind)
    except (pa.ArrowException, SnaplakeError) as error:
        raise located_problem(data, kind, first_line, None, error) from None
    return normalized if known is None else _merged_schema(known, normalized)


def read_exact(data: bytes, schema: pa.Schema, kind: ExportKind, first_line: int) -> pa.Table:
    try:
        return _read(data, schema, "error")
    except pa.ArrowException as error:
        raise located_problem(data, kind, first_line, schema, error) from None


def _head(data: bytes, size: int) -> bytes:
    end = data.find(b"\n", size)
    return data if end < 0 else data[: end + 1]


def normalized_row(schema: pa.Schema, kind: ExportKind) -> pa.Schema:
    """The inferred schema of a block with every type replaced by the DynamoDB JSON grammar's."""
    sections = SECTIONS[kind]
    fields = []
    for section in schema:
        if section.name not in sections:
            raise MalformedExportLine(f"unexpected field {section.name!r}; a {kind} export line has {', '.join(sections)}")
        fields.append(pa.field(section.name, _normalized_attributes(section.type, section.name)))
    return pa.schema(fields)


def _normalized_attributes(inferred: pa.DataType, path: str) -> pa.StructType:
    if pa.types.is_null(inferred):
        return pa.struct([])
    if not pa.types.is_struct(inferred):
        raise InvalidAttributeValue(f"{path}: expected an object of attributes")
    return pa.struct([pa.field(f.name, _normalized_value(f.type, f"{path}.{f.name}")) for f in inferred])


def _normalized_value(inferred: pa.DataType, path: str) -> pa.StructType:
    if pa.types.is_null(inferred):
        return pa.struct([])
    if not pa.types.is_struct(inferred):
        raise InvalidAttributeValue(f'{path}: an AttributeValue is an object such as {{"S": "..."}}')
    fields = []
    for f in inferred:
        descriptor = f.name
        if descriptor in READ_TYPES:
            if descriptor in SET_DESCRIPTORS and not (pa.types.is_list(f.type) or pa.types.is_null(f.type)):
                # Told list<string>, pyarrow would turn a Python string into a list of its characters.
                raise InvalidAttributeValue(f"{path}: {descriptor} must hold a list of strings")
            fields.append(pa.field(descriptor, READ_TYPES[descriptor]))
        elif descriptor == "L":
            if pa.types.is_null(f.type):
                element = pa.struct([])
            elif pa.types.is_list(f.type):
                element = _normalized_value(f.type.value_type, f"{path}[]")
            else:
                raise InvalidAttributeValue(f"{path}: L must hold a list")
            fields.append(pa.field(descriptor, pa.list_(element)))
        elif descriptor == "M":
            fields.append(pa.field(descriptor, _normalized_attributes(f.type, path)))
        else:
            raise InvalidAttributeValue(f"{path}: unknown type descriptor {descriptor!r}")
    return pa.struct(fields)


def _merged_schema(a: pa.Schema, b: pa.Schema) -> pa.Schema:
    return pa.schema(list(_merged_type(pa.struct(list(a)), pa.struct(list(b)))))


def _merged_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a == b:
        return a
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        theirs = {f.name: f for f in b}
        fields = [pa.field(f.name, _merged_type(f.type, theirs[f.name].type)) if f.name in theirs else f for f in a]
        mine = {f.name for f in a}
        fields.extend(f for f in b if f.name not in mine)
        return pa.struct(fields)
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(_merged_type(a.value_type, b.value_type))
    raise InvalidAttributeValue(f"conflicting JSON types {a} and {b}")  # both come from the grammar: cannot happen


def combined(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks()


def require_items(sections: dict[str, pa.Array]) -> None:
    items = sections.get("Item")
    if items is None or items.null_count:
        raise MalformedExportLine("a full export line has no Item")


# --------------------------------------------------------------------------- error location


def located_problem(data: bytes, kind: ExportKind, first_line: int, schema: pa.Schema | None, cause: Exception | None) -> SnaplakeError:
    """A named error for the first line of `data` that is wrong (slow; only on the error path)."""
    for offset, raw in enumerate(data.split(b"\n")):
        line = first_line + offset
        if not raw.strip():
            continue
        try:
            parsed = json.loads(raw)
        except ValueError as error:
            return MalformedExportLine(f"line {line}: not JSON ({error})")
        problem = line_problem(parsed, kind)
        if problem:
            return MalformedExportLine(f"line {line}: {problem}")
        if schema is not None:
            unknown = _unexpected_section_path(parsed, schema)
            if unknown:
                return AttributeNotInSchema(f"line {line}: {unknown} is not in the export schema (was the file changed after the scan?)")
    if isinstance(cause, SnaplakeError):
        return cause
    return MalformedExportLine(f"lines from {first_line}: {cause}")


def line_problem(parsed: Any, kind: ExportKind) -> str | None:
    if not isinstance(parsed, dict):
        return "not a JSON object"
    sections = SECTIONS[kind]
    for name in parsed:
        if name not in sections:
            return f"unexpected field {name!r}; a {kind} export line has {', '.join(sections)}"
    if kind == "full" and "Item" not in parsed:
        return "no Item"
    for name, attributes in parsed.items():
        try:
            check_attributes(attributes, name)
        except InvalidAttributeValue as error:
            return str(error)
    return None


def _unexpected_section_path(parsed: dict[str, Any], schema: pa.Schema) -> str | None:
    sections = {f.name: f.type for f in schema}
    for section, attributes in parsed.items():
        if section not in sections:
            return section
        if isinstance(attributes, dict):
            found = _unexpected_path(attributes, sections[section], section)
            if found:
                return found
    return None


def _unexpected_path(value: Any, expected: pa.DataType, path: str) -> str | None:
    """The first path of a parsed line (attributes object) that the explicit schema type lacks."""
    if not pa.types.is_struct(expected):
        return None
    names = {f.name: f.type for f in expected}
    for name, child in value.items():
        where = f"{path}.{name}" if path else name
        if name not in names:
            return where
        child_type = names[name]
        if not isinstance(child, dict):
            continue
        for descriptor, payload in child.items():
            descriptors = {f.name: f.type for f in child_type} if pa.types.is_struct(child_type) else {}
            if descriptor not in descriptors:
                return f"{where} ({descriptor})"
            if descriptor == "M" and isinstance(payload, dict):
                found = _unexpected_path(payload, descriptors["M"], where)
                if found:
                    return found
            if descriptor == "L" and isinstance(payload, list):
                element_type = descriptors["L"].value_type
                for element in payload:
                    found = _unexpected_path({"[]": element}, pa.struct([pa.field("[]", element_type)]), where)
                    if found:
                        return found
    return None
