"""DuckDB as the reference engine of `ddb_convert.py --vs-duckdb`, on one thread, in two forms:

- `typed_unwrap`: DuckDB is told the items' shape and types (hand-written SQL for the generated items) and only
  reads, casts and writes Parquet. This is the figure issue 13 names.
- `discovering_unwrap`: DuckDB does the whole job snaplake does: it learns every attribute path and type descriptor
  from every line of the file (whole-file detection), learns each number path's shape (integral, digits, scale)
  from every value, derives the column types by snaplake's rules from what it found, and writes Parquet. Same
  output schema as `typed_unwrap` for the generated items (tests/unit/test_ddb_parquet.py checks it).

Both keep strings as text: DuckDB's detection would otherwise turn ISO-8601-looking strings into timestamps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SEPARATOR = "__"  # snaplake's ConvertOptions.separator
MAX_DEPTH = 3  # snaplake's ConvertOptions.max_depth: map paths flattened to this many segments
_KEEP_STRINGS = "dateformat = 'X', timestampformat = 'X'"

# The generated items' attributes unwrapped by hand, with the types snaplake infers for them: exact decimals, a
# string set as a list, L as JSON text.
ITEM_TYPE = (
    "STRUCT(pk STRUCT(S VARCHAR), sk STRUCT(S VARCHAR), status STRUCT(S VARCHAR), created_at STRUCT(S VARCHAR), "
    "qty STRUCT(N VARCHAR), price STRUCT(N VARCHAR), weight_kg STRUCT(N VARCHAR), active STRUCT(BOOL BOOLEAN), "
    "address STRUCT(M STRUCT(city STRUCT(S VARCHAR), zip STRUCT(S VARCHAR), "
    "geo STRUCT(M STRUCT(lat STRUCT(N VARCHAR), lon STRUCT(N VARCHAR))))), tags STRUCT(SS VARCHAR[]), history STRUCT(L JSON), "
    '"note" STRUCT("NULL" BOOLEAN), comment STRUCT(S VARCHAR), discount STRUCT(N VARCHAR))'
)
TYPED_SELECT = """
SELECT Item.pk.S AS pk, Item.sk.S AS sk, Item.status.S AS status, Item.created_at.S AS created_at,
       CAST(Item.qty.N AS BIGINT) AS qty, CAST(Item.price.N AS DECIMAL(38, 2)) AS price,
       CAST(Item.weight_kg.N AS DECIMAL(38, 6)) AS weight_kg, Item.active.BOOL AS active,
       Item.address.M.city.S AS address__city, Item.address.M.zip.S AS address__zip,
       CAST(Item.address.M.geo.M.lat.N AS DECIMAL(38, 6)) AS address__geo__lat,
       CAST(Item.address.M.geo.M.lon.N AS DECIMAL(38, 6)) AS address__geo__lon,
       Item.tags.SS AS tags, CAST(Item.history.L AS VARCHAR) AS history, CAST(NULL AS VARCHAR) AS note,
       Item.comment.S AS comment, CAST(Item.discount.N AS BIGINT) AS discount
FROM read_json('{path}', format = 'newline_delimited', compression = 'gzip', columns = {{'Item': '{item}'}})
"""


def _connect() -> Any:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET threads = 1")
    return connection


def _copy(connection: Any, select: str, out: Path) -> int:
    connection.execute(f"COPY ({select}) TO '{out}' (FORMAT PARQUET, COMPRESSION SNAPPY)")
    found = connection.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
    return int(found[0]) if found else 0


def typed_unwrap(gz_path: Path, out: Path) -> int:
    """DuckDB told the item shape: the gzip file read, typed as snaplake types it, written to Parquet. Rows written."""
    connection = _connect()
    try:
        return _copy(connection, TYPED_SELECT.format(path=gz_path, item=ITEM_TYPE), out)
    finally:
        connection.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _leaves(value_type: Any, expression: str, path: list[str]) -> list[tuple[str, str, str]]:
    """(column name, SQL expression, kind) of one attribute whose detected type is `value_type` (a struct of the
    type descriptors seen). kind: S, N, BOOL, SS, NULL or JSON (lists, mixed types, maps at the depth limit)."""
    descriptors = dict(value_type.children)
    name = SEPARATOR.join(path)
    if len(descriptors) > 1 or ("M" in descriptors and len(path) >= MAX_DEPTH):
        return [(name, f"CAST(to_json({expression}) AS VARCHAR)", "JSON")]
    if "L" in descriptors:
        return [(name, f"CAST(to_json({expression}.L) AS VARCHAR)", "JSON")]
    (descriptor,) = descriptors
    if descriptor == "M":
        members = descriptors["M"].children
        return [leaf for child, child_type in members for leaf in _leaves(child_type, f"{expression}.M.{_quoted(child)}", [*path, child])]
    return [(name, f"{expression}.{_quoted(descriptor)}", descriptor)]


def _number_type(integral: bool, integer_digits: int, scale: int) -> str:
    """snaplake's rule for an N path (snaplake.dynamodb.parquet.numbers): int64 when every value is integral and fits,
    else an exact decimal with the largest scale seen, else the number's text."""
    if integral and integer_digits <= 18:
        return "BIGINT"
    if integer_digits + scale <= 38:
        return f"DECIMAL(38, {scale})"
    return "VARCHAR"


def discovering_unwrap(gz_path: Path, out: Path) -> int:
    """DuckDB learning the schema from the data, as snaplake's scan must, then converting. Rows written."""
    connection = _connect()
    try:
        connection.execute(
            "CREATE TEMP TABLE items AS SELECT Item FROM read_json("
            f"'{gz_path}', format = 'newline_delimited', compression = 'gzip', sample_size = -1, maximum_depth = -1, {_KEEP_STRINGS})"
        )
        (item_type,) = connection.sql("SELECT Item FROM items").types
        leaves = [leaf for name, value_type in item_type.children for leaf in _leaves(value_type, f"Item.{_quoted(name)}", [name])]
        numbers = [expression for _, expression, kind in leaves if kind == "N"]
        shapes: list[Any] = []
        if numbers:
            aggregates = ", ".join(
                f"bool_and(NOT regexp_matches({e}, '[.eE]')), max(length(split_part(ltrim({e}, '-'), '.', 1))), "
                f"max(CASE WHEN contains({e}, '.') THEN length({e}) - strpos({e}, '.') ELSE 0 END)"
                for e in numbers
            )
            shapes = list(connection.execute(f"SELECT {aggregates} FROM items").fetchone() or ())
        columns = []
        for name, expression, kind in leaves:
            if kind == "N":
                integral, digits, scale, *shapes = shapes
                sql = f"CAST({expression} AS {_number_type(integral is not False, digits or 0, scale or 0)})"
            elif kind == "NULL":
                sql = "CAST(NULL AS VARCHAR)"
            else:
                sql = expression
            columns.append(f"{sql} AS {_quoted(name)}")
        return _copy(connection, f"SELECT {', '.join(columns)} FROM items", out)
    finally:
        connection.close()
