"""The emulated Athena's query engine: Athena SQL run on DuckDB over the lake's Parquet, as the Glue catalog
describes it.

For each query, a fresh in-memory DuckDB gets one schema per Glue database the query reads and one view per
table: the Parquet files of each partition (athena_lake.table_files) read by column name (lower-cased, as Athena
resolves Parquet columns), each column cast to its Glue type (a file whose column type Athena could not read as
that type fails with HIVE_BAD_DATA), a column a file lacks reads as NULL, and the partition keys are the
partition's values. The query, translated by athena_translate, runs over those views (session time zone UTC,
integer division as in Athena), and its result gets Athena's types (DuckDB's HUGEINT sums become bigint).
DuckDB's errors are reported under Athena's error names (COLUMN_NOT_FOUND, TYPE_MISMATCH, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from snaplake_local.emulator.athena_iceberg import pin_versions
from snaplake_local.emulator.athena_lake import HIVE_DEFAULT_PARTITION, LakeCatalog, LakeStorage, TableFiles, table_files
from snaplake_local.emulator.athena_translate import referenced_tables, static_equalities, translate
from snaplake_local.emulator.athena_types import (
    AthenaQueryError,
    athena_column,
    duckdb_type,
    file_type_fits,
    hive_type,
    insert_coercible,
    java_float,
    output_cast,
    sqlglot_type,
    varchar_value,
)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class ResultColumn:
    name: str
    duck_type: Any  # duckdb's DuckDBPyType

    def column_info(self) -> dict[str, Any]:
        """GetQueryResults' ColumnInfo for this column."""
        return {"Name": self.name, "Label": self.name, "CatalogName": "hive", "Nullable": "UNKNOWN", **athena_column(self.duck_type)}

    def hive_type(self) -> str:
        """The Glue type a CTAS declares for this column."""
        return hive_type(self.duck_type, self.name)


@dataclass
class QueryResult:
    columns: list[ResultColumn]
    table: Any  # pyarrow.Table, the values with Athena's types
    scanned_bytes: int = 0

    @property
    def row_count(self) -> int:
        return int(self.table.num_rows)

    def text_rows(self) -> list[list[str | None]]:
        """The rows as GetQueryResults gives them (VarCharValue text; None for NULL)."""
        import pyarrow.types as t

        columns = []
        for column in self.table.columns:
            values = column.to_pylist(maps_as_pydicts="lossy")
            render = java_float if t.is_float32(column.type) else None
            columns.append([None if v is None else (render(v) if render else varchar_value(v)) for v in values])
        return [list(row) for row in zip(*columns, strict=True)] if columns else []


@dataclass
class AthenaEngine:
    """Athena SQL over a lake: `catalog` (Glue) says which files make up a table, `storage` (S3) holds them."""

    catalog: LakeCatalog
    storage: LakeStorage
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _footers: dict[str, Any] = field(default_factory=dict)

    def run_sql(self, sql: str, database: str | None = None) -> QueryResult:
        """One read-only query (SELECT, WITH ... SELECT, set operations), as `snaplake local query` runs it."""
        import sqlglot
        from sqlglot import exp

        try:
            statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
        except sqlglot.errors.ParseError as error:
            raise AthenaQueryError(f"SYNTAX_ERROR: {str(error).splitlines()[0]}") from None
        if len(statements) != 1:
            raise AthenaQueryError(f"SYNTAX_ERROR: expected one statement, found {len(statements)}")
        if not isinstance(statements[0], exp.Query):
            raise AthenaQueryError("NOT_SUPPORTED: this runs queries (SELECT, WITH ... SELECT); CTAS and INSERT run on the emulated stack")
        return self.query(statements[0], database)

    def query(
        self, tree: Any, database: str | None, *, now: datetime | None = None, target: list[tuple[str, str]] | None = None
    ) -> QueryResult:
        """Run a parsed Athena query. With `target` ((name, Glue type) of a table's columns, INSERT INTO), the
        result is coerced to those types, or the query fails with TYPE_MISMATCH as Athena's does."""
        import duckdb

        moment = now or self.clock()
        tree = tree.copy()
        pinned = pin_versions(tree, database, self.catalog, self.storage, moment)  # Iceberg snapshots read FOR ... AS OF
        injected = static_equalities(tree)
        sources = [
            pinned.get((db, name)) or table_files(self.catalog, self.storage, db, name, moment, injected)
            for db, name in referenced_tables(tree.copy(), database)
        ]
        schema: dict[str, dict[str, dict[str, str]]] = {}
        for source in sources:
            schema.setdefault(source.database, {})[source.name] = {c: sqlglot_type(t) for c, t in [*source.columns, *source.keys]}
        translation = translate(tree, database, schema, moment)
        connection = duckdb.connect(":memory:")
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute("SET integer_division = true")
            scanned = 0
            for source in sources:
                view, size = self._view(source)
                connection.execute(view)
                scanned += size
            bound = connection.sql(translation.sql)
            names = [str(name).lower() for name in bound.columns]
            final = connection.sql(self._shaped(translation.sql, names, list(bound.types), target))
            columns = [ResultColumn(name, kind) for name, kind in zip(names, final.types, strict=True)]
            return QueryResult(columns, final.to_arrow_table(), scanned)
        except duckdb.Error as error:
            raise athena_error(error) from None
        finally:
            connection.close()

    def _shaped(self, sql: str, names: list[str], types: list[Any], target: list[tuple[str, str]] | None) -> str:
        """The query wrapped so its columns get Athena's types (or the INSERT target's)."""
        if target is not None and len(target) != len(names):
            raise AthenaQueryError(f"TYPE_MISMATCH: Insert query has {len(names)} columns; the table has {len(target)}")
        aliases = [f"__c{i}" for i in range(len(names))]
        expressions = []
        for position, (name, kind) in enumerate(zip(names, types, strict=True)):
            source = quoted(aliases[position])
            cast = output_cast(kind)
            if target is not None:
                column, glue = target[position]
                if not insert_coercible(kind, glue):
                    raise AthenaQueryError(
                        f"TYPE_MISMATCH: Insert query has mismatched column types: column {column!r} is {glue} in the table, "
                        f"{athena_column(kind)['Type']} in the query"
                    )
                cast = duckdb_type(glue)
                name = column
            expressions.append(f"CAST({source} AS {cast}) AS {quoted(name)}" if cast else f"{source} AS {quoted(name)}")
        return f"SELECT {', '.join(expressions)} FROM ({sql}) AS {quoted('__q')}({', '.join(map(quoted, aliases))})"

    def _footer(self, path: str, uri: str) -> Any:
        import pyarrow.parquet as pq

        if path not in self._footers:
            try:
                self._footers[path] = pq.read_schema(path)
            except Exception as error:  # pyarrow's ArrowInvalid, OSError
                raise AthenaQueryError(
                    f"HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split {uri}: not a readable Parquet file ({error})"
                ) from None
        return self._footers[path]

    def _view(self, source: TableFiles) -> tuple[str, int]:
        """The DuckDB view of one Glue table, and the bytes of the files it reads."""
        import os

        selects, size = [], 0
        for partition in source.partitions:
            if not partition.files:
                continue
            paths = [self.storage.local_path(uri) for uri in partition.files]
            size += sum(os.path.getsize(path) for path in paths)
            available: dict[str, tuple[str, list[tuple[Any, str]]]] = {}
            for path, uri in zip(paths, partition.files, strict=True):
                for arrow_field in self._footer(path, uri):
                    entry = available.setdefault(arrow_field.name.lower(), (arrow_field.name, []))
                    entry[1].append((arrow_field.type, uri))
            expressions = []
            for column, glue in source.columns:
                if column not in available:
                    expressions.append(f"CAST(NULL AS {duckdb_type(glue)}) AS {quoted(column)}")
                    continue
                actual, found = available[column]
                for arrow_type, uri in found:
                    if not file_type_fits(arrow_type, glue):
                        raise AthenaQueryError(
                            f"HIVE_BAD_DATA: Field {column}'s type {arrow_type} in parquet file {uri} is incompatible with type "
                            f"{glue} defined in table schema ({source.database}.{source.name})"
                        )
                expressions.append(f"CAST({quoted(actual)} AS {duckdb_type(glue)}) AS {quoted(column)}")
            for (key, glue), value in zip(source.keys, partition.values, strict=True):
                text = "NULL" if value == HIVE_DEFAULT_PARTITION else literal(value)
                expressions.append(f"CAST({text} AS {duckdb_type(glue)}) AS {quoted(key)}")
            files = "[" + ", ".join(literal(path) for path in paths) + "]"
            selects.append(f"SELECT {', '.join(expressions)} FROM read_parquet({files}, union_by_name = true, hive_partitioning = false)")
        if not selects:
            empty = [f"CAST(NULL AS {duckdb_type(glue)}) AS {quoted(name)}" for name, glue in [*source.columns, *source.keys]]
            selects.append(f"SELECT {', '.join(empty)} WHERE false")
        schema = quoted(source.database)
        return f"CREATE SCHEMA IF NOT EXISTS {schema}; CREATE VIEW {schema}.{quoted(source.name)} AS {' UNION ALL '.join(selects)}", size


_ERRORS: list[tuple[str, str, str]] = [
    # (DuckDB exception class name, pattern in its message, Athena's message with {0} for the pattern's group)
    ("BinderException", r'Referenced column "([^"]+)" not found', "COLUMN_NOT_FOUND: line 1:1: Column '{0}' cannot be resolved"),
    ("BinderException", r'does not have a column named "([^"]+)"', "COLUMN_NOT_FOUND: line 1:1: Column '{0}' cannot be resolved"),
    (
        "BinderException",
        r'Column "([^"]+)" referenced that exists in the SELECT clause',
        "COLUMN_NOT_FOUND: line 1:1: Column '{0}' cannot be resolved",
    ),
    (
        "BinderException",
        r'column "([^"]+)" must appear in the GROUP BY',
        "EXPRESSION_NOT_AGGREGATE: line 1:1: '{0}' must be an aggregate expression or appear in GROUP BY clause",
    ),
    ("BinderException", r"No function matches .*'([^']+)'", "FUNCTION_NOT_FOUND: line 1:1: Unexpected parameters for function {0}"),
    ("BinderException", r"(Cannot (?:compare|mix) .*)", "TYPE_MISMATCH: line 1:1: {0}"),
    ("CatalogException", r"Function with name (\S+) does not exist", "FUNCTION_NOT_FOUND: line 1:1: Function '{0}' not registered"),
    ("CatalogException", r'Table with name "?([^" ]+)"? does not exist', "TABLE_NOT_FOUND: line 1:1: Table '{0}' does not exist"),
    ("ConversionException", r"(out of range.*)", "NUMERIC_VALUE_OUT_OF_RANGE: {0}"),
    ("ConversionException", r"(.*)", "INVALID_CAST_ARGUMENT: {0}"),
    ("OutOfRangeException", r"(.*)", "NUMERIC_VALUE_OUT_OF_RANGE: {0}"),
    ("InvalidInputException", r"(Division by zero)", "DIVISION_BY_ZERO: {0}"),
    ("InvalidInputException", r"(.*)", "INVALID_FUNCTION_ARGUMENT: {0}"),
    ("ParserException", r"(.*)", "SYNTAX_ERROR: {0}"),
    ("IOException", r"(.*)", "HIVE_CANNOT_OPEN_SPLIT: {0}"),
]


def athena_error(error: Exception) -> AthenaQueryError:
    """A DuckDB error under the name Athena gives the same failure (the DuckDB message follows, for the detail)."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    kinds = {cls.__name__ for cls in type(error).__mro__}
    for kind, pattern, athena in _ERRORS:
        match = re.search(pattern, message, re.IGNORECASE)
        if kind in kinds and match:
            return AthenaQueryError(f"{athena.format(match.group(1))} (emulated on DuckDB: {message})")
    return AthenaQueryError(f"GENERIC_INTERNAL_ERROR: {message} (emulated on DuckDB)")
