"""Iceberg tables in the emulated Athena: CREATE TABLE ... TBLPROPERTIES ('table_type'='ICEBERG'), ALTER TABLE ADD
COLUMNS, MERGE INTO, and reads at a snapshot (`FOR TIMESTAMP AS OF`, `FOR VERSION AS OF`), computed on DuckDB.

The local representation is not Iceberg's format; it keeps what Athena's answers depend on:

- the Glue table Athena creates (`table_type` ICEBERG, `metadata_location`, the columns), updated by ADD COLUMNS;
- `<location>metadata/<version>.metadata.json`, the emulator's own JSON: every snapshot so far (id, commit time on
  the virtual clock, its data file), written anew by each commit and named by the Glue table's `metadata_location`;
- `<location>data/<snapshot>.parquet`: the whole table as of that snapshot. Each MERGE rewrites the table into one
  new file (copy-on-write of the whole table); Athena writes only the changed rows' files and delete files.

A MERGE runs as Trino's: its source is computed first (over the snapshot the query starts from), a target row that
two source rows match fails with MERGE_TARGET_ROW_MULTIPLE_MATCHES, a value that is not implicitly coercible to its
column fails with TYPE_MISMATCH, and a failed MERGE commits nothing. MERGE into a table that is not Iceberg, INSERT
INTO an Iceberg table, and UPDATE / DELETE are NOT_SUPPORTED here. ALTER TABLE SET TBLPROPERTIES sets the table's
parameters; OPTIMIZE and VACUUM are athena_iceberg_upkeep's.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from snaplake_local.emulator.athena_lake import LakeCatalog, LakeStorage, PartitionFiles, TableFiles, folder, glue_columns
from snaplake_local.emulator.athena_types import AthenaQueryError, insert_coercible

if TYPE_CHECKING:
    from snaplake_local.emulator.athena import _AthenaQuery
    from snaplake_local.emulator.athena_effects import StatementEffects

METADATA_FORMAT = "snaplake-emulated-iceberg/1"
ICEBERG_INPUT_FORMAT = "org.apache.iceberg.mr.hive.HiveIcebergInputFormat"
ICEBERG_OUTPUT_FORMAT = "org.apache.iceberg.mr.hive.HiveIcebergOutputFormat"
ICEBERG_SERDE = "org.apache.iceberg.mr.hive.HiveIcebergSerDe"
_TARGET, _SOURCE = "__snaplake_target", "__snaplake_source"


def is_iceberg(table: dict[str, Any]) -> bool:
    return str((table.get("Parameters") or {}).get("table_type", "")).upper() == "ICEBERG"


def _read_json(storage: LakeStorage, uri: str) -> dict[str, Any]:
    with open(storage.local_path(uri)) as handle:
        document = json.load(handle)
    if document.get("format") != METADATA_FORMAT:
        raise AthenaQueryError(f"ICEBERG_INVALID_METADATA: {uri} is not metadata the emulated Athena wrote")
    return dict(document)


def snapshots(storage: LakeStorage, table: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's snapshots, oldest first: {"id", "committedAt" (ISO), "file" (None: no rows)}."""
    location = (table.get("Parameters") or {}).get("metadata_location")
    return list(_read_json(storage, str(location))["snapshots"]) if location else []


def iceberg_files(storage: LakeStorage, database: str, name: str, table: dict[str, Any], at: dict[str, Any] | None = None) -> TableFiles:
    """What a query reads of an Iceberg table: the data file of snapshot `at` (default: the current one)."""
    columns, _ = glue_columns(table)
    found = snapshots(storage, table)
    chosen = at if at is not None else (found[-1] if found else None)
    location = folder(str(table.get("StorageDescriptor", {}).get("Location", "")))
    files = [chosen["file"]] if chosen is not None and chosen.get("file") else []
    return TableFiles(database, name, columns, [], [PartitionFiles((), location, files)])


def pin_versions(
    tree: Any, database: str | None, catalog: LakeCatalog, storage: LakeStorage, now: datetime
) -> dict[tuple[str, str], TableFiles]:
    """Replace each `t FOR TIMESTAMP AS OF x` / `FOR VERSION AS OF n` in `tree` by a table of its own name, and return
    what each reads: the snapshot current at `x` (the latest committed at or before it), or snapshot `n`."""
    from sqlglot import exp

    from snaplake_local.emulator.athena_lake import require_table

    pinned: dict[tuple[str, str], TableFiles] = {}
    for index, node in enumerate(list(tree.find_all(exp.Table))):
        version = node.args.get("version")
        if version is None:
            continue
        db = (node.db or database or "").lower()
        name = node.name.lower()
        table = require_table(catalog, db, name)
        if not is_iceberg(table):
            raise AthenaQueryError(f"NOT_SUPPORTED: This connector does not support versioned tables ({db}.{name} is not an Iceberg table)")
        history = snapshots(storage, table)
        kind = str(version.this).upper()
        if kind == "VERSION":
            wanted = str(version.expression.this)
            chosen = next((s for s in history if str(s["id"]) == wanted), None)
            if chosen is None:
                raise AthenaQueryError(f"INVALID_ARGUMENTS: Iceberg snapshot ID does not exists: {wanted}")
        else:
            moment = _evaluate_time(version.expression, now)
            earlier = [s for s in history if datetime.fromisoformat(s["committedAt"]) <= moment]
            if not earlier:
                raise AthenaQueryError(f"INVALID_ARGUMENTS: No version history table {db}.{name} at or before {moment.isoformat()}")
            chosen = earlier[-1]
        alias = f"{name}__snaplake_snapshot_{index}"
        node.set("version", None)
        if not node.alias:
            node.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
        node.set("this", exp.to_identifier(alias))
        node.set("db", exp.to_identifier(db))
        pinned[(db, alias)] = iceberg_files(storage, db, alias, table, chosen)
    return pinned


def _evaluate_time(expression: Any, now: datetime) -> datetime:
    """The instant a FOR TIMESTAMP AS OF expression names (current_timestamp is the query's start)."""
    import duckdb
    from sqlglot import exp

    from snaplake_local.emulator.athena_translate import translate

    translation = translate(exp.select(exp.alias_(expression.copy(), "snaplake_at")), None, {}, now)
    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET TimeZone = 'UTC'")
        row = connection.execute(f"SELECT CAST(snaplake_at AS TIMESTAMPTZ) FROM ({translation.sql})").fetchone()
    except duckdb.Error as error:
        raise AthenaQueryError(f"TYPE_MISMATCH: FOR TIMESTAMP AS OF needs a timestamp with time zone: {error}") from None
    finally:
        connection.close()
    if row is None or row[0] is None:
        raise AthenaQueryError("INVALID_ARGUMENTS: FOR TIMESTAMP AS OF names no instant")
    moment: datetime = row[0]
    return moment.astimezone(UTC)


class IcebergStatements:
    """CREATE TABLE (Iceberg), ALTER TABLE ADD COLUMNS and MERGE INTO for AthenaEmulator (see the module docstring)."""

    def __init__(self, effects: StatementEffects, clock: Any):
        self.effects, self.clock = effects, clock

    def create(self, query: _AthenaQuery, statement: Any) -> None:
        from sqlglot import exp

        schema = statement.this
        if not isinstance(schema, exp.Schema):
            raise AthenaQueryError("NOT_SUPPORTED: the emulated Athena creates Iceberg tables with a column list only")
        database, name = self.effects._name(schema.this, query)
        self.effects._require_database(database)
        if self.effects._glue_table(database, name) is not None:
            if statement.args.get("exists"):
                return
            raise AthenaQueryError(f"ALREADY_EXISTS: Table '{database}.{name}' already exists")
        properties = statement.args.get("properties")
        found = {p.name.lower(): p.args.get("value") for p in (properties.expressions if properties else []) if isinstance(p, exp.Property)}
        location = next((p.this.name for p in (properties.expressions if properties else []) if isinstance(p, exp.LocationProperty)), None)
        if str(getattr(found.get("table_type"), "name", "")).upper() != "ICEBERG":
            raise AthenaQueryError("NOT_SUPPORTED: the emulated Athena runs CREATE TABLE for Iceberg tables only ('table_type'='ICEBERG')")
        if not location:
            raise AthenaQueryError("INVALID_TABLE_PROPERTY: Iceberg tables need a LOCATION")
        columns = [{"Name": c.name.lower(), "Type": _glue_type(c.args["kind"])} for c in schema.expressions]
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"table_type": "ICEBERG", "EXTERNAL": "TRUE"},
            "StorageDescriptor": {
                "Columns": columns,
                "Location": folder(location),
                "InputFormat": ICEBERG_INPUT_FORMAT,
                "OutputFormat": ICEBERG_OUTPUT_FORMAT,
                "SerdeInfo": {"SerializationLibrary": ICEBERG_SERDE},
            },
        }
        self.effects._glue().create_table(database, name, table_input)
        self._commit(database, name, None, query, new_snapshot=False)

    def add_columns(self, query: _AthenaQuery, statement: Any) -> None:
        from sqlglot import exp

        database, name = self.effects._name(statement.this, query)
        table = self.effects._glue_table(database, name)
        if table is None:
            raise AthenaQueryError(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist")
        columns = list(table["StorageDescriptor"].get("Columns", []))
        taken = {str(c["Name"]).lower() for c in [*columns, *table.get("PartitionKeys", [])]}
        parameters = dict(table.get("Parameters") or {})
        for action in statement.args.get("actions", []):
            if isinstance(action, exp.AlterSet):  # SET TBLPROPERTIES: the VACUUM properties (athena_iceberg_upkeep)
                for properties in action.expressions:
                    found = [p for p in properties.expressions if isinstance(p, exp.Property)]
                    parameters.update({p.this.name.lower(): p.args["value"].name for p in found})
                continue
            for definition in action.expressions if isinstance(action, exp.Schema) else [action]:
                if not isinstance(definition, exp.ColumnDef):
                    raise AthenaQueryError("NOT_SUPPORTED: the emulated Athena runs ALTER TABLE ... ADD COLUMNS only")
                column = definition.name.lower()
                if column in taken:
                    raise AthenaQueryError(f"COLUMN_ALREADY_EXISTS: Column '{column}' already exists")
                taken.add(column)
                columns.append({"Name": column, "Type": _glue_type(definition.args["kind"])})
        self._update_glue(database, name, {**table["StorageDescriptor"], "Columns": columns}, parameters)

    def merge(self, query: _AthenaQuery, statement: Any) -> None:
        import duckdb
        import pyarrow as pa
        from sqlglot import exp

        target_node = statement.this
        database, name = self.effects._name(target_node, query)
        table = self.effects._glue_table(database, name)
        if table is None:
            raise AthenaQueryError(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist")
        if not is_iceberg(table):
            raise AthenaQueryError(f"NOT_SUPPORTED: MERGE INTO is supported for Iceberg tables only ({database}.{name} is not one)")
        using = statement.args["using"]
        source_query = using.this if isinstance(using, exp.Subquery) else exp.select("*").from_(using.copy().set("alias", None))
        source = self.effects._run(query, source_query.copy())
        current = self.effects._run(query, exp.select("*").from_(exp.table_(name, db=database)))
        glue_types = dict(glue_columns(table)[0])
        merged = statement.copy()
        merged.set(
            "this", exp.Table(this=exp.to_identifier(_TARGET), alias=exp.TableAlias(this=exp.to_identifier(target_node.alias or name)))
        )
        merged.set("using", exp.Table(this=exp.to_identifier(_SOURCE), alias=exp.TableAlias(this=exp.to_identifier(using.alias or "s"))))
        self._check_values(merged, {c.name: c.duck_type for c in source.columns}, glue_types)
        connection = duckdb.connect(":memory:")
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.register("__current_rows", current.table)
            connection.register("__source_rows", source.table)
            connection.execute(f'CREATE TABLE "{_TARGET}" AS SELECT * FROM __current_rows')
            connection.execute(f'CREATE TABLE "{_SOURCE}" AS SELECT * FROM __source_rows')
            on = merged.args["on"].sql(dialect="duckdb", identify=True)
            target_alias, source_alias = merged.this.alias, merged.args["using"].alias
            doubled = connection.execute(
                f'SELECT count(*) FROM "{_TARGET}" AS "{target_alias}" JOIN "{_SOURCE}" AS "{source_alias}" ON {on} '
                f'GROUP BY "{target_alias}".rowid HAVING count(*) > 1'
            ).fetchall()
            if doubled:
                raise AthenaQueryError("MERGE_TARGET_ROW_MULTIPLE_MATCHES: One MERGE target table row matched more than one source row")
            changed = connection.execute(merged.sql(dialect="duckdb", identify=True)).fetchone()
            result: pa.Table = connection.sql(f'SELECT * FROM "{_TARGET}"').to_arrow_table()
        except duckdb.Error as error:
            from snaplake_local.emulator.athena_engine import athena_error

            raise athena_error(error) from None
        finally:
            connection.close()
        self._commit(database, name, result, query, new_snapshot=True)
        query.update_count = int(changed[0]) if changed else 0

    def _check_values(self, merged: Any, source_types: dict[str, Any], glue_types: dict[str, str]) -> None:
        """A source column assigned to a target column must be implicitly coercible to its type (TYPE_MISMATCH)."""
        from sqlglot import exp

        pairs: list[tuple[str, Any]] = []
        for when in getattr(merged.args.get("whens"), "expressions", []):
            action = when.args.get("then")
            if isinstance(action, exp.Update):
                pairs += [(eq.this.name, eq.expression) for eq in action.expressions]
            elif isinstance(action, exp.Insert):
                names = [c.name for c in action.this.expressions] if isinstance(action.this, exp.Tuple) else []
                values = action.expression.expressions if isinstance(action.expression, exp.Tuple) else []
                pairs += list(zip(names, values, strict=False))
        for column, value in pairs:
            if column.lower() not in glue_types:
                raise AthenaQueryError(f"COLUMN_NOT_FOUND: line 1:1: Column '{column}' cannot be resolved")
            if isinstance(value, exp.Column) and value.name.lower() in source_types:
                kind, glue = source_types[value.name.lower()], glue_types[column.lower()]
                if not insert_coercible(kind, glue):
                    raise AthenaQueryError(f"TYPE_MISMATCH: MERGE sets column {column!r} ({glue}) from a value of type {kind}")

    def _commit(self, database: str, name: str, rows: Any, query: _AthenaQuery, *, new_snapshot: bool) -> None:
        """Write the table's new metadata (and its data file, for a new snapshot) and point Glue at it."""
        import pyarrow.parquet as pq

        table = self.effects._glue_table(database, name) or {}
        storage = self.effects.engine.storage
        history = snapshots(storage, table)
        location = folder(str(table["StorageDescriptor"]["Location"]))
        if new_snapshot:
            snapshot_id = (history[-1]["id"] + 1) if history else 1
            data = None
            if rows is not None and rows.num_rows:
                data = f"{location}data/{snapshot_id:05d}-{query.id}.parquet"
                buffer = io.BytesIO()
                pq.write_table(rows, buffer)
                storage.put(data, buffer.getvalue())
            committed = self.clock().astimezone(UTC).isoformat()
            history = [*history, {"id": snapshot_id, "committedAt": committed, "file": data, "queryId": query.id}]
        self.write_metadata(database, name, history, query)

    def write_metadata(self, database: str, name: str, history: list[dict[str, Any]], query: _AthenaQuery) -> None:
        """Commit `history` (the snapshots, oldest first) as the table's next metadata version."""
        table = self.effects._glue_table(database, name) or {}
        storage = self.effects.engine.storage
        location = folder(str(table["StorageDescriptor"]["Location"]))
        previous = (table.get("Parameters") or {}).get("metadata_location")
        version = int(_read_json(storage, str(previous)).get("version", 0)) + 1 if previous else 1
        metadata = f"{location}metadata/{version:05d}-{query.id}.metadata.json"
        storage.put(metadata, json.dumps({"format": METADATA_FORMAT, "version": version, "snapshots": history}, indent=1).encode())
        parameters = {**(table.get("Parameters") or {}), "metadata_location": metadata}
        if (table.get("Parameters") or {}).get("metadata_location"):
            parameters["previous_metadata_location"] = table["Parameters"]["metadata_location"]
        self._update_glue(database, name, table["StorageDescriptor"], parameters)

    def _update_glue(self, database: str, name: str, descriptor: dict[str, Any], parameters: dict[str, Any]) -> None:
        table = self.effects._glue_table(database, name) or {}
        table_input = {
            "Name": name,
            "TableType": table.get("TableType", "EXTERNAL_TABLE"),
            "Parameters": parameters,
            "PartitionKeys": table.get("PartitionKeys", []),
            "StorageDescriptor": descriptor,
        }
        self.effects._glue().update_table(database, name, table_input)


def _glue_type(kind: Any) -> str:
    """A DDL column type as Glue holds it (`decimal(38,2)`, `array<string>`)."""
    return str(kind.sql(dialect="hive")).lower().replace(", ", ",")
