"""Types as the emulated Athena sees them: Glue (Hive) column types, the DuckDB types the emulator computes with, the
type names Athena puts in GetQueryResults' ColumnInfo, and values as Athena prints them (VarCharValue).

AthenaQueryError is a query the emulated Athena fails; its message (starting with Athena's error name, such as
COLUMN_NOT_FOUND or TYPE_MISMATCH) becomes the query's StateChangeReason.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from decimal import Decimal
from typing import Any

# Athena's result type names (Trino's) for DuckDB type ids.
_ATHENA_NAMES = {
    "boolean": "boolean",
    "tinyint": "tinyint",
    "smallint": "smallint",
    "integer": "integer",
    "bigint": "bigint",
    "hugeint": "bigint",
    "utinyint": "smallint",
    "usmallint": "integer",
    "uinteger": "bigint",
    "ubigint": "bigint",
    "float": "real",
    "double": "double",
    "decimal": "decimal",
    "varchar": "varchar",
    "blob": "varbinary",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamp_s": "timestamp",
    "timestamp_ms": "timestamp",
    "timestamp_ns": "timestamp",
    "timestamp with time zone": "timestamp with time zone",
    "interval": "interval day to second",
    "uuid": "uuid",
    "list": "array",
    "array": "array",
    "map": "map",
    "struct": "row",
    "null": "unknown",
}
# Glue (Hive) types a CTAS declares for DuckDB type ids; the others cannot be stored in a Hive table.
_HIVE_NAMES = {
    "boolean": "boolean",
    "tinyint": "tinyint",
    "smallint": "smallint",
    "integer": "int",
    "bigint": "bigint",
    "hugeint": "bigint",
    "utinyint": "smallint",
    "usmallint": "int",
    "uinteger": "bigint",
    "ubigint": "bigint",
    "float": "float",
    "double": "double",
    "varchar": "string",
    "blob": "binary",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_s": "timestamp",
    "timestamp_ms": "timestamp",
    "timestamp_ns": "timestamp",
}
# DuckDB types Athena has no counterpart for, cast to the one Athena would give (values out of range fail the query).
_OUTPUT_CASTS = {
    "hugeint": "BIGINT",
    "uhugeint": "BIGINT",
    "ubigint": "BIGINT",
    "uinteger": "BIGINT",
    "usmallint": "INTEGER",
    "utinyint": "SMALLINT",
    "timestamp_s": "TIMESTAMP",
    "timestamp_ms": "TIMESTAMP",
    "timestamp_ns": "TIMESTAMP",
}
_INTEGER_RANK = {"tinyint": 1, "smallint": 2, "int": 3, "integer": 3, "bigint": 4}
_TEXT = ("string", "varchar", "char")


class AthenaQueryError(Exception):
    """A query the emulated Athena fails; the message becomes its StateChangeReason."""


def glue_base(glue_type: str) -> str:
    """`decimal` for `decimal(12,2)`, `array` for `array<int>`: the type's name."""
    return glue_type.strip().lower().split("(")[0].split("<")[0].strip()


def duckdb_type(glue_type: str) -> str:
    """The DuckDB type a Glue column is read as (`string` -> TEXT, `array<struct<a:int>>` -> STRUCT(a INT)[])."""
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        return exp.DataType.build(glue_type, dialect="hive").sql("duckdb")
    except (ParseError, ValueError):
        raise AthenaQueryError(f"HIVE_INVALID_METADATA: the emulator cannot read Glue column type {glue_type!r}") from None


def file_type_fits(arrow_type: Any, glue_type: str) -> bool:
    """Whether Athena reads a Parquet column of this (Arrow) type as the Glue type; otherwise the query fails with
    HIVE_BAD_DATA (Athena coerces widening integers and floats, never text to numbers or numbers to text)."""
    import pyarrow as pa
    import pyarrow.types as t

    base = glue_base(glue_type)
    if t.is_null(arrow_type):
        return True
    if t.is_dictionary(arrow_type):
        return file_type_fits(arrow_type.value_type, glue_type)
    if base in _TEXT:
        return bool(t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_binary(arrow_type) or arrow_type == pa.string_view())
    if base in _INTEGER_RANK:
        return t.is_integer(arrow_type) and arrow_type.bit_width <= {1: 8, 2: 16, 3: 32, 4: 64}[_INTEGER_RANK[base]]
    if base == "double":
        return t.is_floating(arrow_type)
    if base == "float":
        return bool(t.is_float32(arrow_type))
    if base == "decimal":
        return t.is_decimal(arrow_type)
    checks = {
        "boolean": t.is_boolean,
        "date": t.is_date,
        "timestamp": t.is_timestamp,
        "binary": lambda a: t.is_binary(a) or t.is_large_binary(a) or t.is_fixed_size_binary(a),
        "array": lambda a: t.is_list(a) or t.is_large_list(a),
        "map": t.is_map,
        "struct": t.is_struct,
    }
    check = checks.get(base)
    return bool(check(arrow_type)) if check else False


def athena_column(duck_type: Any) -> dict[str, Any]:
    """GetQueryResults' ColumnInfo type fields for a DuckDB result column: Type, Precision, Scale."""
    type_id = str(duck_type.id)
    name = _ATHENA_NAMES.get(type_id, type_id)
    precision, scale = {"integer": (10, 0), "bigint": (19, 0), "double": (17, 0), "varchar": (2147483647, 0)}.get(name, (0, 0))
    if type_id == "decimal":
        children = dict(duck_type.children)
        precision, scale = int(children["precision"]), int(children["scale"])
    return {"Type": name, "Precision": precision, "Scale": scale}


def hive_type(duck_type: Any, column: str) -> str:
    """The Glue type Athena's CTAS declares for a result column; NOT_SUPPORTED for one no Hive table can hold."""
    type_id = str(duck_type.id)
    if type_id in _HIVE_NAMES:
        return _HIVE_NAMES[type_id]
    if type_id == "decimal":
        children = dict(duck_type.children)
        return f"decimal({children['precision']},{children['scale']})"
    if type_id in ("list", "array"):
        return f"array<{hive_type(dict(duck_type.children)['child'], column)}>"
    if type_id == "map":
        children = dict(duck_type.children)
        return f"map<{hive_type(children['key'], column)},{hive_type(children['value'], column)}>"
    if type_id == "struct":
        return "struct<" + ",".join(f"{name.lower()}:{hive_type(child, column)}" for name, child in duck_type.children) + ">"
    shown = "unknown" if type_id == "null" else _ATHENA_NAMES.get(type_id, type_id)
    raise AthenaQueryError(f"NOT_SUPPORTED: Unsupported Hive type: {shown} (column {column!r}); CAST it to a type a table can hold")


def output_cast(duck_type: Any) -> str | None:
    """The DuckDB type a result column is cast to so that it has Athena's type (HUGEINT sums are bigint in Athena)."""
    return _OUTPUT_CASTS.get(str(duck_type.id))


def insert_coercible(duck_type: Any, glue_type: str) -> bool:
    """Whether INSERT INTO coerces a query column of this type to the table column's type, as Trino does implicitly
    (integers and decimals widen, numbers become double, date becomes timestamp); otherwise TYPE_MISMATCH."""
    source, target = str(duck_type.id), glue_base(glue_type)
    if source == "null":
        return True
    integers = {"tinyint": 1, "smallint": 2, "integer": 3, "bigint": 4, "hugeint": 4, "utinyint": 2, "usmallint": 3, "uinteger": 4}
    if target in _TEXT:
        return source == "varchar"
    if target in _INTEGER_RANK:
        return source in integers and integers[source] <= _INTEGER_RANK[target]
    if target == "decimal":
        return source in integers or source == "decimal"
    if target in ("double", "float"):
        return source in integers or source in ("decimal", "float") or (source == "double" and target == "double")
    if target == "timestamp":
        return (source.startswith("timestamp") and source != "timestamp with time zone") or source == "date"
    same = {"boolean": "boolean", "date": "date", "binary": "blob", "array": "list", "map": "map", "struct": "struct"}
    return same.get(target) == source or (target == "array" and source == "array")


def varchar_value(value: Any) -> str | None:
    """A value as Athena prints it in GetQueryResults (None stays None: a cell without VarCharValue)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
        return text + (" UTC" if value.tzinfo is not None else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return " ".join(f"{byte:02x}" for byte in bytes(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_nested(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_nested(key)}={_nested(item)}" for key, item in value.items()) + "}"
    return str(value)


def _nested(value: Any) -> str:
    text = varchar_value(value)
    return "null" if text is None else text


def java_double(value: float) -> str:
    """A double as Java's Double.toString writes it (Athena's engine runs on the JVM): 2.5, 3.0, 1.0E7, 1.0E-4."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    return _java_digits(repr(value), value)


def java_float(value: float) -> str:
    """A real (32-bit) as Java's Float.toString writes it: the shortest digits that read back as the same float."""
    if math.isnan(value) or math.isinf(value) or value == 0:
        return java_double(value)
    single = struct.unpack("f", struct.pack("f", value))[0]
    digits = next(f"{value:.{p}g}" for p in range(1, 10) if struct.unpack("f", struct.pack("f", float(f"{value:.{p}g}")))[0] == single)
    return _java_digits(digits, value)


def _java_digits(shortest: str, value: float) -> str:
    exact = Decimal(shortest)
    if 1e-3 <= abs(value) < 1e7:
        text = format(exact, "f")
        return text if "." in text else text + ".0"
    sign, digits, exponent = exact.normalize().as_tuple()
    mantissa = "".join(map(str, digits))
    power = len(digits) - 1 + int(exponent)
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{power}"


def sqlglot_type(glue_type: str) -> str:
    """A Glue column type sqlglot can read (one it cannot as `unknown`: the type checks then skip it)."""
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        exp.DataType.build(glue_type, dialect="hive")
    except (ParseError, ValueError):
        return "unknown"
    return glue_type
