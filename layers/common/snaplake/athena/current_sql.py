"""The SQL that keeps a DynamoDB table's `<table>_current` Iceberg table: its DDL and the MERGE of one export.

Every statement is built from Glue names and types checked here and from the export's times, so the text is the
same for the same export (a retried step starts the same query). Two MERGEs, both idempotent (running one again
right after it leaves the table as it was):

- a window (`window_merge`): the window's rows of `<table>_changes` (write time in [windowFrom, exportedTo)), the
  latest per key; REMOVE deletes the item, INSERT / MODIFY replace it whole with its new image (an attribute the
  image lacks becomes NULL);
- a full export (`snapshot_merge`): the export's items replace the table's (every item upserted), and every item of
  the table the export does not hold is deleted, in one statement, so no query sees the table half rebuilt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from snaplake.athena.errors import CurrentTableSchemaMismatch
from snaplake.athena.sql import ddl_name, ddl_table, dml_name, dml_table, sql_literal, validate_identifier, validate_location

KEY_PREFIX = "key__"
NEW_PREFIX = "new__"
REMOVED = "snaplake_removed"  # the source's flag: the item is gone
_RANK = "snaplake_rank"
_GLUE_TYPE = re.compile(r"[a-z0-9_<>(),: ]{1,2000}")

Columns = Sequence[tuple[str, str]]  # (name, Glue type), in table order


def glue_type(kind: str, column: str) -> str:
    """A Glue type written into DDL as is: only the characters type names are made of."""
    if not _GLUE_TYPE.fullmatch(kind):
        raise CurrentTableSchemaMismatch(f"column {column!r} has a Glue type {kind[:100]!r} the _current table cannot declare")
    return kind


def build_create(database: str, table: str, columns: Columns, location: str) -> str:
    """The Iceberg table, created once (a retry finds it and does nothing)."""
    body = ", ".join(f"{ddl_name(name)} {glue_type(kind, name)}" for name, kind in columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {ddl_table(database, table)} ({body}) "
        f"LOCATION {sql_literal(validate_location(location))} TBLPROPERTIES ('table_type'='ICEBERG')"
    )


def build_add_columns(database: str, table: str, columns: Columns) -> str:
    body = ", ".join(f"{ddl_name(name)} {glue_type(kind, name)}" for name, kind in columns)
    return f"ALTER TABLE {ddl_table(database, table)} ADD COLUMNS ({body})"


@dataclass(frozen=True)
class MergeTarget:
    """The `_current` table a MERGE writes: its key columns and all its columns (keys included), in table order."""

    database: str
    table: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]

    def merge(self, source: str, provided: Sequence[str]) -> str:
        """MERGE `source` (a query yielding the columns `provided`, the keys among them, and REMOVED) into the table;
        a column it does not provide becomes NULL in every item it writes."""
        on = " AND ".join(f"t.{dml_name(k)} = s.{dml_name(k)}" for k in self.keys)
        values = [f"s.{dml_name(c)}" if c in provided else "NULL" for c in self.columns]
        updates = ", ".join(f"{dml_name(c)} = {v}" for c, v in zip(self.columns, values, strict=True) if c not in self.keys)
        names = ", ".join(dml_name(c) for c in self.columns)
        return (
            f"MERGE INTO {dml_table(self.database, self.table)} AS t USING ({source}) AS s ON {on} "
            f"WHEN MATCHED AND s.{REMOVED} THEN DELETE "
            + (f"WHEN MATCHED THEN UPDATE SET {updates} " if updates else "")
            + f"WHEN NOT MATCHED AND NOT s.{REMOVED} THEN INSERT ({names}) VALUES ({', '.join(values)})"
        )


def timestamp_literal(moment: datetime) -> str:
    """A Trino timestamp literal to the millisecond (Athena reads Parquet timestamps at millisecond precision)."""
    return f"TIMESTAMP '{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}'"


Sources = Mapping[str, str | None]  # a `_current` column -> the attribute it is written from (None: none); absent: itself


def _attribute(sources: Sources, column: str) -> str | None:
    return sources.get(column, column)


def window_merge(
    target: MergeTarget, changes_table: str, change_columns: Sequence[str], window_from: datetime, window_to: datetime, sources: Sources
) -> str:
    """MERGE the window's changes (rows of `changes_table` written in [window_from, window_to)), the latest per key."""
    present = set(change_columns)
    values = {
        c: a for c in target.columns if c not in target.keys and (a := _attribute(sources, c)) is not None and NEW_PREFIX + a in present
    }
    projections = [f"{dml_name(KEY_PREFIX + k)} AS {dml_name(k)}" for k in target.keys]
    projections += [f"{dml_name(NEW_PREFIX + a)} AS {dml_name(c)}" for c, a in values.items()]
    projections.append(f"\"change_type\" = 'REMOVE' AS {dml_name(REMOVED)}")
    partition = ", ".join(dml_name(KEY_PREFIX + k) for k in target.keys)
    last_day = (window_to - timedelta(microseconds=1)).astimezone(UTC)
    where = (
        f'"write_time" >= {timestamp_literal(window_from)} AND "write_time" < {timestamp_literal(window_to)} '
        f"AND \"dt\" BETWEEN '{window_from.astimezone(UTC):%Y-%m-%d}' AND '{last_day:%Y-%m-%d}'"
    )
    ranked = (
        f'SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY "write_time" DESC) AS {dml_name(_RANK)} '
        f"FROM {dml_table(target.database, changes_table)} WHERE {where}"
    )
    source = f"SELECT {', '.join(projections)} FROM ({ranked}) AS c WHERE c.{dml_name(_RANK)} = 1"
    return target.merge(source, [*target.keys, *values])


def snapshot_merge(
    target: MergeTarget, full_table: str | None, full_columns: Sequence[str], export_time: str | None, sources: Sources
) -> str:
    """MERGE a full export (partition `export_time` of `full_table`): its items upserted, every other item deleted.

    Without a partition (the export held no items) every item of the table is deleted."""
    current = dml_table(target.database, target.table)
    if full_table is None or export_time is None:
        keys = ", ".join(f"c.{dml_name(k)} AS {dml_name(k)}" for k in target.keys)
        return target.merge(f"SELECT {keys}, true AS {dml_name(REMOVED)} FROM {current} AS c", target.keys)
    present = set(full_columns)
    provided = [c for c in target.columns if c in target.keys or _attribute(sources, c) in present]
    snapshot = f'{dml_table(target.database, full_table)} AS f WHERE f."export_time" = {sql_literal(export_time)}'
    items = ", ".join(f"f.{dml_name(str(_attribute(sources, c)))} AS {dml_name(c)}" for c in provided)
    # The same columns in the same order, NULL but the keys: the items of the table the export does not hold.
    gone = ", ".join(f"c.{dml_name(c)} AS {dml_name(c)}" if c in target.keys else f"NULL AS {dml_name(c)}" for c in provided)
    matched = " AND ".join(f"f.{dml_name(k)} = c.{dml_name(k)}" for k in target.keys)
    source = (
        f"SELECT {items}, false AS {dml_name(REMOVED)} FROM {snapshot} UNION ALL "
        f"SELECT {gone}, true AS {dml_name(REMOVED)} FROM {current} AS c WHERE NOT EXISTS (SELECT 1 FROM {snapshot} AND {matched})"
    )
    return target.merge(source, provided)


# Upkeep after each MERGE (current_upkeep): Athena's VACUUM expires the snapshots older than
# vacuum_max_snapshot_age_seconds (keeping at least vacuum_min_snapshots_to_keep) and deletes the files no kept
# snapshot needs; OPTIMIZE ... BIN_PACK first folds the MERGEs' delete files and small files into larger data files.
MAX_SNAPSHOT_AGE = "vacuum_max_snapshot_age_seconds"
MIN_SNAPSHOTS = "vacuum_min_snapshots_to_keep"


def build_set_properties(database: str, table: str, properties: dict[str, str]) -> str:
    body = ", ".join(f"{sql_literal(name)}={sql_literal(value)}" for name, value in sorted(properties.items()))
    return f"ALTER TABLE {ddl_table(database, table)} SET TBLPROPERTIES ({body})"


def build_optimize(database: str, table: str) -> str:
    # Names as the OPTIMIZE synopsis writes them, unquoted (checked identifiers; a `_current` name is never reserved).
    return f"OPTIMIZE {validate_identifier(database, 'database')}.{validate_identifier(table, 'table')} REWRITE DATA USING BIN_PACK"


def build_vacuum(database: str, table: str) -> str:
    # VACUUM takes backticks (not double quotes) around the table name, and none around the database's.
    return f"VACUUM {validate_identifier(database, 'database')}.{ddl_name(table)}"
