"""What a finished Athena statement does (AthenaEmulator applies it when a query completes): the statement parsed
with sqlglot (Athena dialect), its query run on DuckDB by the emulator's AthenaEngine, and the results applied to
S3 and the Glue Data Catalog as Athena applies them:

- CREATE TABLE ... WITH (...) AS SELECT: the rows written as Parquet at `external_location` (which must be
  empty, else HIVE_PATH_ALREADY_EXISTS), one folder per partition written; a Glue table whose columns are the
  result's (Glue types of the DuckDB result types), `partitioned_by` keys last, and each written partition registered;
- INSERT INTO: the rows coerced to the table's column types (TYPE_MISMATCH otherwise), written into each
  partition's folder (a registered partition's location), new partitions registered;
- SELECT: the rows kept for GetQueryResults and written to the output location as CSV;
- ALTER TABLE ADD / DROP PARTITION, DROP TABLE, CREATE DATABASE: the Glue change;
- CREATE TABLE (Iceberg), ALTER TABLE ADD COLUMNS / SET TBLPROPERTIES, MERGE INTO: athena_iceberg;
- OPTIMIZE, VACUUM: athena_iceberg_upkeep.
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING, Any

from snaplake_local.emulator.athena_engine import AthenaEngine, QueryResult
from snaplake_local.emulator.athena_iceberg import IcebergStatements, is_iceberg
from snaplake_local.emulator.athena_iceberg_upkeep import UPKEEP_STATEMENT, run_upkeep
from snaplake_local.emulator.athena_lake import split_uri
from snaplake_local.emulator.athena_types import AthenaQueryError
from snaplake_local.emulator.athena_writes import parquet_compression, partition_folder, write_result
from snaplake_local.emulator.s3 import emulated_s3

if TYPE_CHECKING:
    from snaplake_local.emulator.athena import _AthenaQuery

_PARTITION_CLAUSE = re.compile(r"PARTITION\s*\((?P<spec>(?:[^)']|'[^']*')*)\)(?:\s*LOCATION\s*'(?P<location>[^']*)')?", re.IGNORECASE)
_PARTITION_VALUE = re.compile(r"`?(?P<column>[A-Za-z0-9_]+)`?\s*=\s*(?:'(?P<text>[^']*)'|(?P<number>-?\d+))")
_ALTER_PARTITIONS = re.compile(
    r"^\s*ALTER\s+TABLE\s+(?P<table>\S+)\s+(?P<action>ADD|DROP)\s+(?P<guard>IF\s+(?:NOT\s+)?EXISTS\s+)?(?P<clauses>PARTITION\b.*)$",
    re.IGNORECASE | re.DOTALL,
)
_UNNAMED = re.compile(r"^_col(\d+)$")


class _GlueStatements:
    """The Glue side of statements: tables and partitions, and the DDL (DROP TABLE, ALTER TABLE ADD / DROP PARTITION).

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
            raise AthenaQueryError(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")

    def _name(self, table: Any, query: _AthenaQuery) -> tuple[str, str]:
        database = table.db or query.database
        if not database:
            raise AthenaQueryError(f"SYNTAX_ERROR: table {table.name} has no database and the query has no database context")
        return str(database).lower(), str(table.name).lower()

    def _add_partitions(self, database: str, table: str, written: list[tuple[tuple[str, ...], str]]) -> None:
        glue_table = self._glue().databases[database].tables[table]
        descriptor = self._glue_table(database, table) or {}
        for values, location in written:
            try:
                glue_table.get_partition(list(values))
                continue
            except Exception:  # moto's PartitionNotFoundException: add it
                pass
            storage = {**descriptor.get("StorageDescriptor", {}), "Location": location}
            glue_table.create_partition({"Values": list(values), "StorageDescriptor": storage, "Parameters": {}})

    def _drop_table(self, query: _AthenaQuery, statement: Any) -> None:
        from sqlglot import exp

        for table in statement.find_all(exp.Table):
            database, name = self._name(table, query)
            if self._glue_table(database, name) is not None:
                self._glue().delete_table(database, name)  # the data stays: the tables are external
            elif not statement.args.get("exists"):
                raise AthenaQueryError(f"Table {database}.{name} not found")

    def _alter_partitions(self, query: _AthenaQuery, match: re.Match[str]) -> None:
        names = [part.strip('`"') for part in match["table"].split(".")]
        database, table = (names[0], names[1]) if len(names) == 2 else (query.database or "", names[0])
        target = self._glue_table(database, table)
        if target is None:
            raise AthenaQueryError(f"TABLE_NOT_FOUND: Table {database}.{table} not found")
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        glue_table = self._glue().databases[database].tables[table]
        guarded = bool(match["guard"])
        for clause in _PARTITION_CLAUSE.finditer(match["clauses"]):
            given = {v["column"]: v["text"] if v["text"] is not None else v["number"] for v in _PARTITION_VALUE.finditer(clause["spec"])}
            if set(given) != set(keys):
                raise AthenaQueryError(
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
                    raise AthenaQueryError(f"Partition {values} of {database}.{table} not found")
                continue
            if exists:
                if not guarded:
                    raise AthenaQueryError(f"AlreadyExistsException: Partition {values} already exists")
                continue
            default = target["StorageDescriptor"]["Location"].rstrip("/") + "/" + partition_folder(keys, values).rstrip("/")
            location = clause["location"] or default
            storage = {**target["StorageDescriptor"], "Location": location}
            glue_table.create_partition({"Values": values, "StorageDescriptor": storage, "Parameters": {}})


class StatementEffects(_GlueStatements):
    """Athena's documented effects of a statement on Glue and S3 (see AthenaEmulator).

    Part of AthenaEmulator, whose __init__ sets these attributes."""

    engine: AthenaEngine
    iceberg: IcebergStatements

    def _apply(self, query: _AthenaQuery) -> None:
        import sqlglot
        from sqlglot import exp

        alter = _ALTER_PARTITIONS.match(query.sql)
        if alter:
            self._alter_partitions(query, alter)
            return
        upkeep = UPKEEP_STATEMENT.match(query.sql)
        if upkeep:
            run_upkeep(self.iceberg, query, upkeep)
            return
        try:
            statements = [s for s in sqlglot.parse(query.sql, read="athena") if s is not None]
        except sqlglot.errors.ParseError as error:
            raise AthenaQueryError(f"SYNTAX_ERROR: {str(error).splitlines()[0]}") from None
        if len(statements) != 1 or isinstance(statements[0], exp.Command):
            raise AthenaQueryError(f"SYNTAX_ERROR: the emulator cannot parse this statement: {query.sql[:200]}")
        statement = statements[0]
        if isinstance(statement, exp.Create) and str(statement.args.get("kind", "")).upper() in ("DATABASE", "SCHEMA"):
            name = statement.this.name
            if name not in self._glue().databases:
                self._glue().create_database(name, {"Name": name})
        elif isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query):
            self._ctas(query, statement)
        elif isinstance(statement, exp.Create) and str(statement.args.get("kind", "")).upper() == "TABLE":
            self.iceberg.create(query, statement)
        elif isinstance(statement, exp.Alter) and str(statement.args.get("kind", "")).upper() == "TABLE":
            self.iceberg.add_columns(query, statement)
        elif isinstance(statement, exp.Merge):
            self.iceberg.merge(query, statement)
        elif isinstance(statement, exp.Insert) and self._writes_iceberg(query, statement):
            raise AthenaQueryError("NOT_SUPPORTED: the emulated Athena changes Iceberg tables with MERGE INTO only")
        elif isinstance(statement, exp.Insert):
            self._insert(query, statement)
        elif isinstance(statement, exp.Drop) and str(statement.args.get("kind", "")).upper() == "TABLE":
            self._drop_table(query, statement)
        elif isinstance(statement, exp.Query):
            self._select(query, statement)
        else:
            raise AthenaQueryError(f"NOT_SUPPORTED: the emulated Athena does not run {type(statement).__name__.upper()} statements")

    def _writes_iceberg(self, query: _AthenaQuery, statement: Any) -> bool:
        from sqlglot import exp

        target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
        found = self._glue_table(*self._name(target, query))
        return found is not None and is_iceberg(found)

    def _run(self, query: _AthenaQuery, select: Any, target: list[tuple[str, str]] | None = None) -> QueryResult:
        result = self.engine.query(select, query.database, now=query.started, target=target)
        query.scanned_bytes = result.scanned_bytes
        return result

    def _ctas(self, query: _AthenaQuery, statement: Any) -> None:
        from snaplake.catalog import PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE

        database, table = self._name(statement.this, query)
        self._require_database(database)
        if self._glue_table(database, table) is not None:
            raise AthenaQueryError(f"AlreadyExistsException: Table {database}.{table} already exists")
        properties = _ctas_properties(statement)
        file_format = str(properties.get("format", "PARQUET")).upper()
        if file_format != "PARQUET":
            raise AthenaQueryError(f"NOT_SUPPORTED: the emulated Athena writes CTAS tables as PARQUET only, not {file_format}")
        compression = parquet_compression(properties.get("write_compression"))
        location = str(properties.get("external_location") or f"{(query.output_location or 's3://athena-results/')}tables/{query.id}/")
        if properties.get("external_location"):
            self._require_empty(database, table, location)
        result = self._run(query, statement.expression)
        columns = [(column.name, column.hive_type()) for column in result.columns]
        for position, (name, _) in enumerate(columns):
            if _UNNAMED.match(name):
                raise AthenaQueryError(f"NOT_SUPPORTED: Column name not specified at position {position + 1}")
            if [n for n, _ in columns].count(name) > 1:
                raise AthenaQueryError(f"NOT_SUPPORTED: Column name '{name}' specified more than once")
        keys = [str(k).lower() for k in properties.get("partitioned_by", [])]
        if [name for name, _ in columns[len(columns) - len(keys) :]] != keys:
            raise AthenaQueryError("HIVE_COLUMN_ORDER_MISMATCH: Partition keys must be the last columns in the table and in the same order")
        written = write_result(self.engine.storage, result.table, location, keys, f"{query.id}_00000", compression)
        table_input = {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet", "parquet.compression": compression.upper()},
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in columns if n in keys],
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in columns if n not in keys],
                "Location": location,
                "InputFormat": PARQUET_INPUT_FORMAT,
                "OutputFormat": PARQUET_OUTPUT_FORMAT,
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
            },
        }
        self._glue().create_table(database, table, table_input)
        if keys:
            self._add_partitions(database, table, written)
        query.update_count = result.row_count

    def _require_empty(self, database: str, table: str, location: str) -> None:
        bucket, prefix = split_uri(location)
        try:
            with emulated_s3(self.account) as s3:
                listed = s3.list_objects(s3.get_bucket(bucket), prefix, None, None, 1)[0]
        except Exception as error:  # moto's MissingBucket
            raise AthenaQueryError(f"HIVE_PATH_ALREADY_EXISTS: cannot use {location}: {error}") from None
        if listed:
            raise AthenaQueryError(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{database}.{table}' already exists: {location}")

    def _insert(self, query: _AthenaQuery, statement: Any) -> None:
        from sqlglot import exp

        if isinstance(statement.this, exp.Schema):
            raise AthenaQueryError("NOT_SUPPORTED: the emulator runs INSERT INTO without a column list only")
        database, table = self._name(statement.this, query)
        target = self._glue_table(database, table)
        if target is None:
            raise AthenaQueryError(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{table}' does not exist")
        data = [(str(c["Name"]).lower(), str(c["Type"])) for c in target["StorageDescriptor"].get("Columns", [])]
        keys = [(str(k["Name"]).lower(), str(k.get("Type", "string"))) for k in target.get("PartitionKeys", [])]
        result = self._run(query, statement.expression, target=[*data, *keys])
        glue_table = self._glue().databases[database].tables[table]
        existing = {
            tuple(p.as_dict()["Values"]): str(p.as_dict()["StorageDescriptor"].get("Location", "")) for p in glue_table.partitions.values()
        }
        compression = parquet_compression((target.get("Parameters") or {}).get("parquet.compression", "GZIP"))
        location = target["StorageDescriptor"]["Location"]
        written = write_result(
            self.engine.storage, result.table, location, [k for k, _ in keys], f"{query.id}_00000", compression, existing
        )
        if keys:
            self._add_partitions(database, table, written)
        query.update_count = result.row_count

    def _select(self, query: _AthenaQuery, statement: Any) -> None:
        result = self._run(query, statement)
        query.columns = [column.column_info() for column in result.columns]
        query.rows = result.text_rows()
        if query.output_location:
            bucket, prefix = split_uri(query.output_location)
            body = io.StringIO()
            writer = csv.writer(body, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow([column.name for column in result.columns])
            for row in query.rows:
                # Athena leaves NULL cells empty and unquoted; csv quotes every other cell.
                body.write(",".join("" if value is None else '"' + value.replace('"', '""') + '"' for value in row) + "\n")
            folder = prefix if prefix.endswith("/") or not prefix else prefix + "/"
            with emulated_s3(self.account) as s3:
                s3.put_object(bucket, f"{folder}{query.id}.csv", body.getvalue().encode())


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
