"""Export lines already decoded from JSON (dicts, e.g. a Lambda event's stream records) -> a table typed by their own
schema, with the same columns and values as the JSON text of the same lines gives (`convert_block`).

pyarrow converts the Python objects once, with the explicit type of the DynamoDB JSON grammar (`normalized_row` of
the type it infers), which is as strict as the JSON reader: a wrong type fails instead of being coerced. Before
pyarrow sees them, the lines' maps and lists are checked against DynamoDB's nesting limit: pyarrow's time grows with
the square of the depth (5,000 levels: over a minute).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from snaplake.core.errors import SnaplakeError
from snaplake.dynamodb.attribute_values import MAX_NESTING_DEPTH, nested_too_deep
from snaplake.dynamodb.errors import InvalidAttributeValue, MalformedExportLine
from snaplake.dynamodb.parquet.columns import convert_sections
from snaplake.dynamodb.parquet.options import ConvertOptions, ExportKind
from snaplake.dynamodb.parquet.reading import line_problem, normalized_row
from snaplake.dynamodb.parquet.schema import ExportSchema


def convert_lines(
    lines: Sequence[Mapping[str, Any]], kind: ExportKind, options: ConvertOptions, schema: ExportSchema | None = None
) -> pa.Table:
    """Export lines already decoded from JSON -> a table typed by their own schema.

    The lines are observed into `schema` (a new ExportSchema unless one is given, e.g. to ask it afterwards which
    attribute path each column holds). A line that is not well-formed raises MalformedExportLine naming it.
    """
    if schema is None:
        schema = ExportSchema()
    schema.bind(kind, options)
    if not lines:
        return schema.column_plan(kind, options).arrow_schema.empty_table()
    try:
        if _too_deep(lines):
            raise InvalidAttributeValue(f"maps and lists nested more than {MAX_NESTING_DEPTH} levels deep")
        inferred = pa.array(lines)
        if not pa.types.is_struct(inferred.type) or inferred.null_count:
            raise MalformedExportLine("an export line is a JSON object")
        row_type = _row_type(inferred.type, kind)
        rows = inferred if inferred.type == row_type else pa.array(lines, type=row_type)
        sections = {field.name: rows.field(index) for index, field in enumerate(row_type)}
        schema.observe_sections(sections, kind, options)
        return convert_sections(sections, len(rows), schema.column_plan(kind, options), kind)
    except (SnaplakeError, pa.ArrowException, UnicodeError, RecursionError, OverflowError, TypeError, ValueError) as error:
        # pyarrow raises UnicodeEncodeError for a string with a lone surrogate and OverflowError for an integer beyond
        # int64 where text belongs; the schema code recurses per map level.
        raise _located_line_problem(lines, kind, error) from None


# The grammar types of recently inferred row types: batches of one table mostly infer the same type, and comparing
# two types is far cheaper than normalizing one (or hashing it, which Arrow does not cache).
_RECENT_ROW_TYPES: list[tuple[str, pa.DataType, pa.StructType]] = []
_RECENT_KEPT = 8


def _row_type(inferred: pa.DataType, kind: ExportKind) -> pa.StructType:
    for known_kind, known, row_type in _RECENT_ROW_TYPES:
        if known_kind == kind and known == inferred:
            return row_type
    row_type = pa.struct(list(normalized_row(pa.schema(list(inferred)), kind)))
    _RECENT_ROW_TYPES.insert(0, (kind, inferred, row_type))
    del _RECENT_ROW_TYPES[_RECENT_KEPT:]
    return row_type


def _too_deep(lines: Sequence[Any]) -> bool:
    # Lines that are not objects, and sections that are not, are left to the conversion to refuse.
    return nested_too_deep(*(section for line in lines if type(line) is dict for section in line.values() if type(section) is dict))


def _located_line_problem(lines: Sequence[Any], kind: ExportKind, cause: Exception) -> SnaplakeError:
    """A named error for the first of the decoded lines that is wrong (slow; only on the error path)."""
    for number, line in enumerate(lines, 1):
        problem = line_problem(line, kind)
        if problem:
            return MalformedExportLine(f"line {number}: {problem}")
    if isinstance(cause, SnaplakeError):
        return cause
    return MalformedExportLine(f"lines from 1: {cause}")
