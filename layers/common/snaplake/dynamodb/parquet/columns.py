"""Typed columns from parsed AttributeValues: numbers as int64/decimal/text, binary, sets, JSON text for lists,
cut maps and mixed types, and the incremental export's change type and write time."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from snaplake.core.errors import SnaplakeError
from snaplake.dynamodb.attribute_values import (
    SET_DESCRIPTORS,
    attribute_json,
    decode_binary,
    json_string,
)
from snaplake.dynamodb.errors import (
    AttributeNotInSchema,
    InvalidAttributeValue,
    UnexpectedWriteTime,
)
from snaplake.dynamodb.parquet.numbers import canonical_numbers
from snaplake.dynamodb.parquet.options import CONTROL_CHARACTERS, NEEDS_ESCAPE, SHORT_ESCAPES, WRITE_TIME_TYPE, ConvertOptions, ExportKind
from snaplake.dynamodb.parquet.reading import combined, located_problem, read_exact, require_items
from snaplake.dynamodb.parquet.schema import ColumnPlan, ExportSchema, LeafColumn


def _descriptor(values: pa.Array, descriptor: str, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_struct(values.type) and values.type.get_field_index(descriptor) >= 0:
        return pc.struct_field(values, [descriptor])
    return pa.nulls(len(values), arrow_type)


def _numbers(texts: pa.Array, arrow_type: pa.DataType, path: str) -> pa.Array:
    if pa.types.is_string(arrow_type):
        return texts
    try:
        return pc.cast(texts, arrow_type)
    except pa.ArrowInvalid:
        pass
    try:
        return pc.cast(canonical_numbers(texts), arrow_type)
    except (pa.ArrowInvalid, InvalidAttributeValue) as error:
        raise AttributeNotInSchema(f"{path}: a number does not fit the schema's {arrow_type} ({error})") from None


def _binaries(texts: pa.Array) -> pa.Array:
    return pa.array([None if text is None else decode_binary(text) for text in texts.to_pylist()], pa.binary())


def _with_values(lists: pa.Array, values: pa.Array) -> pa.Array:
    """A list array shaped like `lists` (same lengths, same nulls) holding `values`."""
    lengths = pc.cast(pc.list_value_length(lists).fill_null(0), pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths)]) if len(lists) else pa.array([0], pa.int32())
    mask = pc.is_null(lists) if lists.null_count else None
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def _leaf_array(column: LeafColumn, values: pa.Array, rows: int) -> pa.Array:
    kind = column.kind
    where = ".".join((column.section, *column.path))
    if kind == "null":
        return pa.nulls(rows, pa.string())
    if kind == "json":
        return _json_texts(values, top=True)
    if kind == "string":
        return _descriptor(values, "S", pa.string())
    if kind == "bool":
        return _descriptor(values, "BOOL", pa.bool_())
    if kind == "number":
        return _numbers(_descriptor(values, "N", pa.string()), column.arrow_type, where)
    if kind == "binary":
        return _binaries(_descriptor(values, "B", pa.string()))
    if kind == "ss":
        return _descriptor(values, "SS", pa.list_(pa.string()))
    lists = _descriptor(values, "NS" if kind == "ns" else "BS", pa.list_(pa.string()))
    members = pc.list_flatten(lists)
    if kind == "ns":
        return _with_values(lists, _numbers(members, column.arrow_type.value_type, where))
    return _with_values(lists, _binaries(members))


def _json_quote(texts: pa.Array) -> pa.Array:
    """JSON string literals, escaped exactly as json.dumps(..., ensure_ascii=False) does."""
    if pc.any(pc.match_substring_regex(texts, NEEDS_ESCAPE)).as_py():
        texts = pc.replace_substring(texts, "\\", "\\\\")
        texts = pc.replace_substring(texts, '"', '\\"')
        if pc.any(pc.match_substring_regex(texts, CONTROL_CHARACTERS)).as_py():
            for code in range(0x20):
                character = chr(code)
                escaped = SHORT_ESCAPES.get(character, f"\\u{code:04x}")
                texts = pc.replace_substring(texts, character, escaped)
    return pc.binary_join_element_wise('"', texts, '"', "")


def _json_texts(values: pa.Array, top: bool) -> pa.Array:
    """The canonical JSON text (snaplake.dynamodb.attribute_values.attribute_json) of each AttributeValue, vectorized.

    At the top of a column a NULL value is a null cell; inside lists and maps it is `null`.
    """
    rows = len(values)
    if not pa.types.is_struct(values.type) or values.null_count == rows:
        return pa.nulls(rows, pa.string())
    pieces = []
    for descriptor_field, payload in zip(values.type, values.flatten(), strict=True):
        descriptor = descriptor_field.name
        if payload.null_count == rows:
            continue
        if descriptor in ("S", "B"):
            pieces.append(_json_quote(payload))
        elif descriptor == "N":
            pieces.append(canonical_numbers(payload))
        elif descriptor == "BOOL":
            pieces.append(pc.if_else(payload, pa.scalar("true"), pa.scalar("false")))
        elif descriptor == "NULL":
            if not top:
                pieces.append(pc.if_else(pc.is_null(payload), pa.scalar(None, pa.string()), pa.scalar("null")))
        elif descriptor in SET_DESCRIPTORS:
            sets = payload.to_pylist()
            pieces.append(pa.array([None if members is None else attribute_json({descriptor: members}) for members in sets], pa.string()))
        elif descriptor == "L":
            elements = _json_texts(pc.list_flatten(payload), top=False).fill_null("null")
            joined = pc.binary_join(_with_values(payload, elements), ",")
            pieces.append(pc.binary_join_element_wise("[", joined, "]", ""))
        else:
            pieces.append(_json_object(payload))
    if not pieces:
        return pa.nulls(rows, pa.string())
    return pieces[0] if len(pieces) == 1 else pc.coalesce(*pieces)


def _json_object(maps: pa.Array) -> pa.Array:
    """JSON objects (keys sorted) for a struct array of map members; null where the map is null."""
    rows = len(maps)
    members = []
    for name, values in sorted(zip((f.name for f in maps.type), maps.flatten(), strict=True), key=lambda member: member[0]):
        texts = _json_texts(values, top=False)
        if texts.null_count < rows:
            members.append((json_string(name) + ":", texts))
    if all(texts.null_count == maps.null_count for _, texts in members):
        # Every member present in every map (the common case): one concatenation.
        parts: list[Any] = ["{"]
        for index, (key, texts) in enumerate(members):
            parts.extend(("," + key if index else key, texts))
        parts.append("}")
        return pc.binary_join_element_wise(*parts, "") if members else _maybe_null(maps, pa.array(["{}"] * rows, pa.string()))
    # Members with a leading comma, absent ones as "", then the first comma dropped. (Not
    # binary_join_element_wise(null_handling="skip"): pyarrow 26 drops rows where all inputs are null.)
    with_commas = [pc.binary_join_element_wise("," + key, texts, "") for key, texts in members]
    joined = pc.binary_join_element_wise(*with_commas, "", null_handling="replace", null_replacement="")
    objects = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    return _maybe_null(maps, objects)


def _maybe_null(maps: pa.Array, objects: pa.Array) -> pa.Array:
    if maps.null_count:
        return pc.if_else(pc.is_valid(maps), objects, pa.scalar(None, pa.string()))
    return objects


def _change_types(sections: dict[str, pa.Array], rows: int) -> pa.Array:
    has_new = pc.is_valid(sections["NewImage"]) if "NewImage" in sections else pa.array([False] * rows)
    has_old = pc.is_valid(sections["OldImage"]) if "OldImage" in sections else pa.array([False] * rows)
    modify_or_insert = pc.if_else(has_old, pa.scalar("MODIFY"), pa.scalar("INSERT"))
    return pc.if_else(has_new, modify_or_insert, pa.scalar("REMOVE"))


WRITE_TIME_FIELD = "WriteTimestampMicros"  # Metadata field of a real incremental export line: {"N": "<microseconds since epoch>"}


def _write_times(sections: dict[str, pa.Array], rows: int) -> pa.Array:
    """Each line's `Metadata.WriteTimestampMicros` (microseconds since the epoch, as DynamoDB writes it); null where absent."""
    metadata = sections.get("Metadata")
    if metadata is None or metadata.type.get_field_index(WRITE_TIME_FIELD) < 0:
        return pa.nulls(rows, WRITE_TIME_TYPE)
    write_time = pc.struct_field(metadata, [WRITE_TIME_FIELD])
    texts = _descriptor(write_time, "N", pa.string())
    if write_time.null_count != texts.null_count:
        raise UnexpectedWriteTime(f"Metadata.{WRITE_TIME_FIELD} is not a number (N)")
    try:
        epoch = pc.cast(texts, pa.int64())
    except pa.ArrowInvalid as error:
        raise UnexpectedWriteTime(f"Metadata.{WRITE_TIME_FIELD} is not integral microseconds since the epoch ({error})") from None
    return pc.cast(epoch, WRITE_TIME_TYPE)


def convert(block: bytes, schema: ExportSchema, kind: ExportKind, options: ConvertOptions, first_line: int) -> pa.Table:
    plan = schema.column_plan(kind, options)
    if not block or block.isspace():
        return plan.arrow_schema.empty_table()
    table = read_exact(block, plan.parse_schema, kind, first_line)
    rows = table.num_rows
    sections = {name: combined(table.column(name)) for name in table.column_names}
    del table
    try:
        return convert_sections(sections, rows, plan, kind)
    except SnaplakeError as error:
        raise located_problem(block, kind, first_line, None, error) from None


def convert_sections(sections: dict[str, pa.Array], rows: int, plan: ColumnPlan, kind: ExportKind) -> pa.Table:
    if kind == "full":
        require_items(sections)
    arrays = []
    fields = _StructFields()
    for column in plan.columns:
        if column.kind == "change_type":
            arrays.append(_change_types(sections, rows))
        elif column.kind == "write_time":
            arrays.append(_write_times(sections, rows))
        else:
            values = sections[column.section]
            for step in _field_path(column.path):
                values = fields.field(values, step)
            arrays.append(_leaf_array(column, values, rows))
    return pa.Table.from_arrays(arrays, schema=plan.arrow_schema)


def _field_path(path: tuple[str, ...]) -> list[str]:
    steps = [path[0]]
    for name in path[1:]:
        steps.extend(("M", name))
    return steps


class _StructFields:
    """The fields of struct arrays, with the struct's nulls, each struct flattened once: StructArray.flatten() gives
    all of a struct's fields for about the cost of one pc.struct_field call (which also merges the nulls)."""

    def __init__(self) -> None:
        self._flattened: dict[int, tuple[pa.Array, dict[str, pa.Array]]] = {}  # id -> (the struct, kept alive; its fields)

    def field(self, struct: pa.Array, name: str) -> pa.Array:
        found = self._flattened.get(id(struct))
        if found is None:
            found = self._flattened[id(struct)] = (struct, dict(zip((f.name for f in struct.type), struct.flatten(), strict=True)))
        return found[1][name]
