"""A change-log object's columns made to fit its Glue table before it lands (the stream change log).

The stream change log's table is projected, so no partition can be kept out of it in a table version (versions),
and one hour partition holds the objects of many batches, each typed by its own records: an ordinary DynamoDB
number is `bigint` in a batch of whole numbers and `decimal(38,s)` in one with a fraction. A column the table
cannot read would fail every retry of the batch (IncompatibleColumnType) or, written, every query of its hour. So
each such column is changed, by a rule that depends only on its values and the table's type:

1. a number the table's number type holds exactly is cast to it (int64 to decimal(38,s); a decimal whose values
   are all whole to bigint; a decimal to another scale when no digit is lost);
2. anything else goes to a column of its own, `<column>__<type>` (hive_types.typed_column), which the
   registration then appends to the table; older objects read NULL there, this one NULL in the old column.

pyarrow is imported inside the functions: the package is also used by functions without the arrow layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snaplake.catalog.errors import IncompatibleColumnType
from snaplake.catalog.footers import glue_type
from snaplake.catalog.hive_types import fits, parse_hive_type, typed_column

_INTEGERS = {"tinyint": "int8", "smallint": "int16", "int": "int32", "bigint": "int64"}


def _number_type(hive: str) -> Any:
    import pyarrow as pa

    parsed = parse_hive_type(hive)
    if parsed.name == "decimal":
        return pa.decimal128(*parsed.params)
    if parsed.name in _INTEGERS:
        return pa.type_for_alias(_INTEGERS[parsed.name])
    return None  # floats are never cast: a float to a decimal (or back) is not exact


def _exact_cast(column: Any, file_type: str, table_type: str) -> Any:
    """`column` cast to the table's number type when no value changes, else None."""
    import pyarrow as pa

    source, target = _number_type(file_type), _number_type(table_type)
    if source is None or target is None:
        return None
    try:
        if pa.types.is_integer(source) and pa.types.is_decimal(target):
            column = column.cast(pa.decimal128(38, 0))  # pyarrow refuses int64 -> decimal(38,s>=20) by type alone
        return column.cast(target, safe=True)  # refuses overflow and lost digits (a fraction to bigint, a scale down)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def conform_to_table(table_name: str, rows: Any, registered: Mapping[str, str]) -> Any:
    """`rows` (a pyarrow Table) with every column the Glue table's `registered` types (name -> type) cannot read
    cast or moved to its typed column (see the module docstring); the same rows when all fit."""
    import pyarrow as pa

    placed: dict[str, Any] = {}
    own = {field.name for field in rows.schema}
    changed = False
    for field, original in zip(rows.schema, rows.columns, strict=True):
        name, kind, column = field.name, glue_type(field.type, field.name), original
        for _ in range(2):  # the column itself, then its typed column
            table_type = registered.get(name)
            if table_type is None or fits(table_name, name, table_type, kind):
                break
            cast = _exact_cast(column, kind, table_type)
            if cast is not None:
                column, kind = cast, table_type
                break
            name = typed_column(field.name, kind)
        if name in placed or (name != field.name and name in own):
            raise IncompatibleColumnType(
                f"table {table_name!r}: column {field.name!r} would move to {name!r}, which the object has already"
            )
        changed = changed or name != field.name or column is not original
        placed[name] = column
    return pa.table(placed) if changed else rows
