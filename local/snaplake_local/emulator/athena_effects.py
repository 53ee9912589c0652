"""What a finished Athena statement does to the Glue Data Catalog and S3 (AthenaEmulator applies it
when a query completes), and the SQL helpers that work it out from the statement parsed with sqlglot.

_StatementAnalysis reads: the tables a statement names (which must exist), the columns and types
its SELECT outputs, the partitions a write covers. StatementEffects applies CTAS, INSERT INTO,
DROP TABLE, ALTER TABLE ADD / DROP PARTITION, CREATE DATABASE and a SELECT's result file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from snaplake_local.emulator.s3 import emulated_s3

if TYPE_CHECKING:
    from snaplake_local.emulator.athena import _AthenaQuery


class _AthenaFailure(Exception):
    """A query the emulated Athena fails; the message becomes its StateChangeReason."""


_PARTITION_CLAUSE = re.compile(r"PARTITION\s*\((?P<spec>(?:[^)']|'[^']*')*)\)(?:\s*LOCATION\s*'(?P<location>[^']*)')?", re.IGNORECASE)
_PARTITION_VALUE = re.compile(r"`?(?P<column>[A-Za-z0-9_]+)`?\s*=\s*(?:'(?P<text>[^']*)'|(?P<number>-?\d+))")
_ALTER_PARTITIONS = re.compile(
    r"^\s*ALTER\s+TABLE\s+(?P<table>\S+)\s+(?P<action>ADD|DROP)\s+(?P<guard>IF\s+(?:NOT\s+)?EXISTS\s+)?(?P<clauses>PARTITION\b.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TRINO_TYPES = {"string": "varchar", "int": "integer"}
# Hive's FileUtils.escapePathName list, which Athena's engine uses to name partition folders.
_PATH_ESCAPED = frozenset(map(chr, range(0x20))) | frozenset("\"#%'*/:=?\\\x7f{[]^")


def hive_path_name(text: str) -> str:
    """A partition column or value as Athena writes it in a folder name: those characters as %XX."""
    return "".join(f"%{ord(c):02X}" if c in _PATH_ESCAPED else c for c in text)


def _partition_folder(keys: list[str], values: tuple[str, ...] | list[str]) -> str:
    return "".join(f"{hive_path_name(k)}={hive_path_name(str(v))}/" for k, v in zip(keys, values, strict=True))


_PLACEHOLDER = b"snaplake local emulator: Athena would write this query's data files here\n"


class _StatementAnalysis:
    """What a statement means against the Glue Data Catalog: the tables it names, the (name, Glue type)
    columns its SELECT outputs, and the partitions a batched write covers.

    Part of AthenaEmulator, whose __init__ sets these attributes."""

    account: str
    region: str

    def _glue(self) -> Any:
        from moto.glue.models import glue_backends

        return glue_backends[self.account][self.region]

    def _glue_table(self, database: str, table: str) -> dict[str, Any] | None:
        glue = self._glue()
        if database not in glue.databases or table not in glue.databases[database].tables:
            return None
        return dict(glue.databases[database].tables[table].as_dict())

    def _require_database(self, database: str) -> None:
        if database not in self._glue().databases:
            raise _AthenaFailure(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")

    def _name(self, table: Any, query: _AthenaQuery) -> tuple[str, str]:
        database = table.db or query.database
        if not database:
            raise _AthenaFailure(f"SYNTAX_ERROR: table {table.name} has no database and the query has no database context")
        return str(database), str(table.name)

    def _schema(self, query: _AthenaQuery, select: Any) -> dict[str, dict[str, dict[str, str]]]:
        """The Glue columns (and partition keys) of every table the SELECT reads; a missing one fails the query."""
        from sqlglot import exp

        ctes = {cte.alias_or_name for cte in select.find_all(exp.CTE)}
        schema: dict[str, dict[str, dict[str, str]]] = {}
        for table in select.find_all(exp.Table):
            if not table.db and table.name in ctes:
                continue
            database, name = self._name(table, query)
            found = self._glue_table(database, name)
            if found is None:
                raise _AthenaFailure(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist")
            columns = [*found["StorageDescriptor"].get("Columns", []), *found.get("PartitionKeys", [])]
            schema.setdefault(database, {})[name] = {c["Name"]: _sqlglot_type(c["Type"]) for c in columns}
        return schema

    def _columns(self, query: _AthenaQuery, select: Any) -> list[tuple[str, str]]:
        """(name, Glue type) of the SELECT's output, as Athena's CTAS would declare them."""
        from sqlglot.errors import OptimizeError
        from sqlglot.optimizer.annotate_types import annotate_types
        from sqlglot.optimizer.qualify import qualify
        from sqlglot.schema import MappingSchema

        tables: dict[str, Any] = dict(self._schema(query, select))
        schema = MappingSchema(tables, dialect="hive")
        try:
            qualified = qualify(select.copy(), schema=schema, db=query.database, dialect="athena", validate_qualify_columns=True)
            annotated = annotate_types(qualified, schema=schema, dialect="athena")
        except OptimizeError as error:
            raise _AthenaFailure(f"COLUMN_NOT_FOUND: {error}") from None
        return [(str(p.alias_or_name).lower(), _glue_type(p.type)) for p in annotated.selects]

    def _written_partitions(self, select: Any, keys: list[str]) -> list[tuple[str, ...]] | None:
        """The partitions a write covers: [] for WHERE false, None when the emulator cannot tell."""
        from sqlglot import exp

        where = select.args.get("where")
        if where is not None and isinstance(where.this, exp.Boolean) and not where.this.this:
            return []
        if where is not None:
            found = []
            for term in _or_terms(where.this):
                pairs = {}
                for eq in _and_terms(term):
                    column = eq.this.this if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Cast) else getattr(eq, "this", None)
                    if isinstance(eq, exp.EQ) and isinstance(column, exp.Column) and isinstance(eq.expression, exp.Literal):
                        pairs[column.name] = str(eq.expression.this)
                if set(pairs) != set(keys):
                    break
                found.append(tuple(pairs[k] for k in keys))
            else:
                return found
        constants = {
            alias.alias: str(alias.this.this)
            for node in select.find_all(exp.Select)
            for alias in node.expressions
            if isinstance(alias, exp.Alias) and isinstance(alias.this, exp.Literal)
        }
        if keys and all(k in constants for k in keys):
            return [tuple(constants[k] for k in keys)]
        return None


class StatementEffects(_StatementAnalysis):
    """Athena's documented effects of a statement on Glue and S3 (see AthenaEmulator).

    Part of AthenaEmulator, whose __init__ sets these attributes."""

    write_placeholders: bool
    _results: list[tuple[str, list[tuple[str, str]], list[tuple[Any, ...]]]]

    def _apply(self, query: _AthenaQuery) -> None:
        import sqlglot
        from sqlglot import exp

        alter = _ALTER_PARTITIONS.match(query.sql)
        if alter:
            self._alter_partitions(query, alter)
            return
        try:
            statements = [s for s in sqlglot.parse(query.sql, read="athena") if s is not None]
        except sqlglot.errors.ParseError as error:
            raise _AthenaFailure(f"SYNTAX_ERROR: {error}") from None
        if len(statements) != 1 or isinstance(statements[0], exp.Command):
            raise _AthenaFailure(f"SYNTAX_ERROR: the emulator cannot parse this statement: {query.sql[:200]}")
        statement = statements[0]
        if isinstance(statement, exp.Create) and str(statement.args.get("kind", "")).upper() in ("DATABASE", "SCHEMA"):
            name = statement.this.name
            if name not in self._glue().databases:
                self._glue().create_database(name, {"Name": name})
        elif isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query):
            self._ctas(query, statement)
        elif isinstance(statement, exp.Insert):
            self._insert(query, statement)
        elif isinstance(statement, exp.Drop) and str(statement.args.get("kind", "")).upper() == "TABLE":
            self._drop_table(query, statement)
        elif isinstance(statement, exp.Query):
            self._select(query, statement)

    def _write(self, query: _AthenaQuery, location: str, keys: list[str], partitions: list[tuple[str, ...]] | None) -> list[str]:
        """Placeholder data objects for the folders written; returns the partition locations."""
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        folders = [prefix] if not keys else [_partition_folder(keys, p) for p in partitions or []]
        if keys:
            folders = [prefix + folder for folder in folders]
        if self.write_placeholders and partitions != []:
            with emulated_s3(self.account) as s3:
                for folder in folders:
                    s3.put_object(bucket, f"{folder}{query.id}_00000", _PLACEHOLDER)
        return [f"s3://{bucket}/{folder}" for folder in folders]

    def _add_partitions(self, database: str, table: str, keys: list[str], values: list[tuple[str, ...]], locations: list[str]) -> None:
        glue_table = self._glue().databases[database].tables[table]
        descriptor = self._glue_table(database, table) or {}
        for row, location in zip(values, locations, strict=True):
            try:
                glue_table.get_partition(list(row))
                continue
            except Exception:  # moto's PartitionNotFoundException: add it
                pass
            storage = {**descriptor.get("StorageDescriptor", {}), "Location": location}
            glue_table.create_partition({"Values": list(row), "StorageDescriptor": storage, "Parameters": {}})

    def _ctas(self, query: _AthenaQuery, statement: Any) -> None:
        from snaplake.catalog import PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE

        database, table = self._name(statement.this, query)
        self._require_database(database)
        if self._glue_table(database, table) is not None:
            raise _AthenaFailure(f"AlreadyExistsException: Table {database}.{table} already exists")
        properties = _ctas_properties(statement)
        select = statement.expression
        columns = self._columns(query, select)
        keys = [str(k) for k in properties.get("partitioned_by", [])]
        if [name for name, _ in columns[len(columns) - len(keys) :]] != keys:
            raise _AthenaFailure("HIVE_COLUMN_ORDER_MISMATCH: Partition keys must be the last columns in the table and in the same order")
        location = str(properties.get("external_location") or f"{(query.output_location or 's3://athena-results/')}tables/{query.id}/")
        if properties.get("external_location"):
            bucket, _, prefix = location.removeprefix("s3://").partition("/")
            try:
                with emulated_s3(self.account) as s3:
                    listed = s3.list_objects(s3.get_bucket(bucket), prefix, None, None, 1)[0]
            except Exception as error:  # moto's MissingBucket
                raise _AthenaFailure(f"HIVE_PATH_ALREADY_EXISTS: cannot use {location}: {error}") from None
            if listed:
                raise _AthenaFailure(
                    f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{database}.{table}' already exists: {location}"
                )
        data_columns = [{"Name": n, "Type": t} for n, t in columns if n not in keys]
        partition_keys = [{"Name": n, "Type": t} for n, t in columns if n in keys]
        parquet = str(properties.get("format", "PARQUET")).upper() == "PARQUET"
        table_input = {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", "classification": str(properties.get("format", "parquet")).lower()},
            "PartitionKeys": partition_keys,
            "StorageDescriptor": {
                "Columns": data_columns,
                "Location": location,
                "InputFormat": PARQUET_INPUT_FORMAT if parquet else "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": PARQUET_OUTPUT_FORMAT if parquet else "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE if parquet else "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"},
            },
        }
        self._glue().create_table(database, table, table_input)
        partitions = self._written_partitions(select, keys) if keys else None
        locations = self._write(query, location, keys, partitions if keys else ([] if _selects_nothing(select) else None))
        if keys and partitions:
            self._add_partitions(database, table, keys, partitions, locations)

    def _insert(self, query: _AthenaQuery, statement: Any) -> None:
        database, table = self._name(statement.this, query)
        target = self._glue_table(database, table)
        if target is None:
            raise _AthenaFailure(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{table}' does not exist")
        select = statement.expression
        columns = self._columns(query, select)
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        expected = len(target["StorageDescriptor"].get("Columns", [])) + len(keys)
        if len(columns) != expected:
            raise _AthenaFailure(f"TYPE_MISMATCH: Insert query has {len(columns)} columns; table {database}.{table} has {expected}")
        partitions = self._written_partitions(select, keys) if keys else None
        location = target["StorageDescriptor"]["Location"]
        locations = self._write(query, location, keys, partitions if keys else ([] if _selects_nothing(select) else None))
        if keys and partitions:
            self._add_partitions(database, table, keys, partitions, locations)

    def _drop_table(self, query: _AthenaQuery, statement: Any) -> None:
        from sqlglot import exp

        for table in statement.find_all(exp.Table):
            database, name = self._name(table, query)
            if self._glue_table(database, name) is not None:
                self._glue().delete_table(database, name)  # the data stays: the tables are external
            elif not statement.args.get("exists"):
                raise _AthenaFailure(f"Table {database}.{name} not found")

    def _alter_partitions(self, query: _AthenaQuery, match: re.Match[str]) -> None:
        names = [part.strip('`"') for part in match["table"].split(".")]
        database, table = (names[0], names[1]) if len(names) == 2 else (query.database or "", names[0])
        target = self._glue_table(database, table)
        if target is None:
            raise _AthenaFailure(f"TABLE_NOT_FOUND: Table {database}.{table} not found")
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        glue_table = self._glue().databases[database].tables[table]
        guarded = bool(match["guard"])
        for clause in _PARTITION_CLAUSE.finditer(match["clauses"]):
            given = {v["column"]: v["text"] if v["text"] is not None else v["number"] for v in _PARTITION_VALUE.finditer(clause["spec"])}
            if set(given) != set(keys):
                raise _AthenaFailure(
                    f"HIVE_METASTORE_ERROR: partition {given} does not match the partition keys {keys} of {database}.{table}"
                )
            values = [str(given[k]) for k in keys]
            try:
                glue_table.get_partition(values)
                exists = True
            except Exception:  # moto's PartitionNotFoundException
                exists = False
            if match["action"].upper() == "DROP":
                if exists:
                    glue_table.delete_partition(values)
                elif not guarded:
                    raise _AthenaFailure(f"Partition {values} of {database}.{table} not found")
                continue
            if exists:
                if not guarded:
                    raise _AthenaFailure(f"AlreadyExistsException: Partition {values} already exists")
                continue
            default = target["StorageDescriptor"]["Location"].rstrip("/") + "/" + _partition_folder(keys, values).rstrip("/")
            location = clause["location"] or default
            storage = {**target["StorageDescriptor"], "Location": location}
            glue_table.create_partition({"Values": values, "StorageDescriptor": storage, "Parameters": {}})

    def _select(self, query: _AthenaQuery, statement: Any) -> None:
        columns = self._columns(query, statement)
        query.columns = [(name, _TRINO_TYPES.get(kind, kind)) for name, kind in columns]
        rows = next((rows for text, _, rows in self._results if text in query.sql), [])
        query.rows = [[None if value is None else str(value) for value in row] for row in rows]
        if query.output_location:
            bucket, _, prefix = query.output_location.removeprefix("s3://").partition("/")
            lines = [",".join(f'"{name}"' for name, _ in columns)]
            lines += [",".join("" if value is None else f'"{value}"' for value in row) for row in query.rows]
            folder = prefix if prefix.endswith("/") or not prefix else prefix + "/"
            with emulated_s3(self.account) as s3:
                s3.put_object(bucket, f"{folder}{query.id}.csv", ("\n".join(lines) + "\n").encode())


def _sqlglot_type(glue_type: str) -> str:
    """A Glue column type sqlglot can read (unknown ones as string, as the emulator cannot type them anyway)."""
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        exp.DataType.build(glue_type, dialect="hive")
    except (ParseError, ValueError):
        return "string"
    return glue_type


def _glue_type(data_type: Any) -> str:
    from sqlglot import exp

    if data_type is None or data_type.this in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL):
        return "string"
    return re.sub(r"\s+", "", data_type.sql(dialect="hive").lower())


def _ctas_properties(statement: Any) -> dict[str, Any]:
    from sqlglot import exp

    found: dict[str, Any] = {}
    properties = statement.args.get("properties")
    for prop in properties.expressions if properties is not None else []:
        if isinstance(prop, exp.FileFormatProperty):
            found["format"] = prop.this.name
        elif isinstance(prop, exp.PartitionedByProperty):
            found["partitioned_by"] = [item.name for item in prop.this.expressions]
        elif isinstance(prop, exp.Property):
            value = prop.args.get("value")
            if isinstance(value, exp.Array):
                found[prop.name.lower()] = [item.name for item in value.expressions]
            elif value is not None:
                found[prop.name.lower()] = value.name
    return found


def _or_terms(node: Any) -> list[Any]:
    from sqlglot import exp

    node = node.unnest() if isinstance(node, exp.Paren) else node
    return [*_or_terms(node.this), *_or_terms(node.expression)] if isinstance(node, exp.Or) else [node]


def _and_terms(node: Any) -> list[Any]:
    from sqlglot import exp

    node = node.unnest() if isinstance(node, exp.Paren) else node
    return [*_and_terms(node.this), *_and_terms(node.expression)] if isinstance(node, exp.And) else [node]


def _selects_nothing(select: Any) -> bool:
    from sqlglot import exp

    where = select.args.get("where")
    return where is not None and isinstance(where.this, exp.Boolean) and not where.this.this
