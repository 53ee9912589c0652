"""What an Athena job does, as data: a Plan is a list of steps (SQL statements, Glue and S3 actions) decided from the
job and what Glue holds, so every decision is testable without Athena (the runner executes the steps in order).

- CTAS save modes: error_if_exists, skip_if_exists, none, and overwrite (a new table in a fresh folder, its Glue
  definition swapped onto the target, only then the old data deleted).
- APAS: a schema dry-run compared with the target, the partition's rows written with INSERT INTO, the partition added.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from snaplake.athena.errors import InvalidOption, LocationNotEmpty, PartitionAlreadyExists, SchemaMismatch, TableAlreadyExists
from snaplake.athena.sql import (
    MAX_IDENTIFIER,
    CtasOptions,
    PartitionValues,
    build_add_partition,
    build_ctas,
    build_drop_partition,
    build_drop_table,
    build_insert_partition,
    build_partitioned_ctas,
    build_schema_probe,
    partition_location,
    validate_identifier,
    validate_location,
    validate_select,
)


class SaveMode(StrEnum):
    OVERWRITE = "overwrite"
    SKIP_IF_EXISTS = "skip_if_exists"
    ERROR_IF_EXISTS = "error_if_exists"
    NONE = "none"

    @classmethod
    def parse(cls, raw: Any) -> SaveMode:
        try:
            return cls(str(raw).lower())
        except ValueError:
            raise InvalidOption(f"save mode {raw!r} is not one of {[m.value for m in cls]}") from None


@dataclass(frozen=True)
class Step:
    """One action of a plan.

    kinds: `query` (run `sql`), `require_empty` (fail unless `location` holds no
    objects), `replace_table` (give `table` the Glue definition of `source_table`,
    then delete `source_table`), `delete_location` (delete every object under
    `location` except those under `keep`), `check_schema` (`check_schema()` on
    `table`'s data columns and `source_table`'s columns).
    """

    kind: str
    description: str
    sql: str | None = None
    location: str | None = None
    table: str | None = None
    source_table: str | None = None
    keep: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    skipped: bool = False
    reason: str = ""

    def statements(self) -> list[str]:
        return [s.sql for s in self.steps if s.sql is not None]

    def as_json(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "reason": self.reason, "steps": [s.as_json() for s in self.steps]}


@dataclass(frozen=True)
class ExistingTable:
    """What the executor found in Glue for the target before planning."""

    location: str


def plan_ctas(
    database: str,
    table: str,
    select: str,
    options: CtasOptions,
    mode: SaveMode,
    existing: ExistingTable | None,
    *,
    run_id: str,
    partition_values: Sequence[PartitionValues] | None = None,
    empty: bool = False,
) -> Plan:
    """What a CTAS job does for its save mode (`empty`: the table without rows, tableMode empty).

    - error_if_exists: an existing table raises `TableAlreadyExists`.
    - skip_if_exists: an existing table means nothing to do.
    - none: run the CTAS as is (Athena fails if the table exists).
    - overwrite: build the new table as `<table>__snaplake_<run_id>` at
      `<external_location><run_id>/` (a fresh, empty folder), swap its Glue
      definition onto the target, and only then delete the old table's data.
      Without an existing table it is a plain CTAS into that folder.
    The CTAS location must be empty (`require_empty`): Athena never deletes data.
    """
    validate_identifier(database, "database")
    validate_identifier(table, "table")
    validate_select(select)
    options.validated()
    if options.external_location is None:
        raise InvalidOption("a CTAS job needs external_location (the table's data folder)")
    if existing is not None and mode is SaveMode.ERROR_IF_EXISTS:
        raise TableAlreadyExists(f"table {database}.{table} exists (save mode error_if_exists)")
    if existing is not None and mode is SaveMode.SKIP_IF_EXISTS:
        return Plan((), skipped=True, reason=f"table {database}.{table} exists (save mode skip_if_exists)")

    def writes(target: str, target_options: CtasOptions) -> list[Step]:
        if empty:  # Athena's WITH NO DATA, written as a WHERE false every parser here reads
            sqls = [build_ctas(database, target, select, target_options, where="false")]
        elif partition_values is None:
            sqls = [build_ctas(database, target, select, target_options)]
        else:
            sqls = build_partitioned_ctas(database, target, select, target_options, partition_values)
        return [Step("query", f"write {database}.{target} ({i + 1}/{len(sqls)})", sql=s) for i, s in enumerate(sqls)]

    if mode is not SaveMode.OVERWRITE:
        location = options.external_location
        return Plan((Step("require_empty", f"{location} must be empty", location=location), *writes(table, options)))
    validate_identifier(run_id, "run id")
    location = f"{options.external_location}{run_id}/"
    new_options = CtasOptions(
        options.format, options.write_compression, location, options.partitioned_by, options.bucketed_by, options.bucket_count
    )
    if existing is None:
        return Plan((Step("require_empty", f"{location} must be empty", location=location), *writes(table, new_options)))
    staging = validate_identifier(f"{table}__snaplake_{run_id}"[:MAX_IDENTIFIER], "staging table")
    steps = [
        Step("require_empty", f"{location} must be empty", location=location),
        Step("query", f"drop a leftover {database}.{staging}", sql=build_drop_table(database, staging)),
        *writes(staging, new_options),
        Step("replace_table", f"point {database}.{table} at the new data", table=table, source_table=staging),
    ]
    if existing.location.rstrip("/") != location.rstrip("/"):
        # The new folder may lie inside the old one (a table first written to external_location itself): keep it.
        keep = location if location.startswith(existing.location.rstrip("/") + "/") else None
        steps.append(Step("delete_location", "delete the old table's data", location=existing.location, keep=keep))
    return Plan(tuple(steps))


def plan_data_only(
    database: str,
    table: str,
    select: str,
    options: CtasOptions,
    mode: SaveMode,
    occupied: bool,
    *,
    run_id: str,
    partition_values: Sequence[PartitionValues] | None = None,
) -> Plan:
    """tableMode data_only: the SELECT's data files in `external_location`, and no table.

    Written by a CTAS into `<table>__snaplake_<run_id>` whose definition is then dropped (an external table's data
    stays). The save mode looks at the folder: error_if_exists and none need it empty (`LocationNotEmpty`),
    skip_if_exists does nothing when it holds objects, overwrite deletes them first.
    """
    location = options.external_location
    if location is None:
        raise InvalidOption("a CTAS job needs external_location (the table's data folder)")
    if occupied and mode in (SaveMode.ERROR_IF_EXISTS, SaveMode.NONE):
        raise LocationNotEmpty(f"{location} holds objects (save mode {mode.value}); tableMode data_only writes only into an empty folder")
    if occupied and mode is SaveMode.SKIP_IF_EXISTS:
        return Plan((), skipped=True, reason=f"{location} holds data (save mode skip_if_exists)")
    staging = validate_identifier(f"{table}__snaplake_{run_id}"[:MAX_IDENTIFIER], "staging table")
    written = plan_ctas(database, staging, select, options, SaveMode.NONE, None, run_id=run_id, partition_values=partition_values)
    steps = [Step("query", f"drop a leftover {database}.{staging}", sql=build_drop_table(database, staging))]
    if occupied:
        steps.append(Step("delete_location", "delete the folder's old data", location=location))
    keep_data = Step("query", f"drop the definition of {database}.{staging}, keeping its data", sql=build_drop_table(database, staging))
    steps += [*written.steps, keep_data]
    return Plan(tuple(steps))


@dataclass(frozen=True)
class ColumnDiff:
    missing: tuple[str, ...]  # in the target, not produced by the SELECT
    extra: tuple[str, ...]  # produced by the SELECT, not in the target
    type_changes: tuple[tuple[str, str, str], ...]  # (column, target type, select type)
    order_differs: bool  # same columns, another order (INSERT INTO is positional)

    @property
    def matches(self) -> bool:
        return not (self.missing or self.extra or self.type_changes or self.order_differs)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing {list(self.missing)}")
        if self.extra:
            parts.append(f"unexpected {list(self.extra)}")
        parts.extend(f"{name}: table {old}, select {new}" for name, old, new in self.type_changes)
        if self.order_differs:
            parts.append("columns in another order")
        return "; ".join(parts) or "no differences"


def diff_columns(target: Sequence[tuple[str, str]], produced: Sequence[tuple[str, str]]) -> ColumnDiff:
    """Compare (name, type) lists: the target table's data columns vs the dry-run's columns.

    Types are compared case-insensitively with spaces removed (Glue may write `decimal(10, 2)`).
    """

    def norm(kind: str) -> str:
        return re.sub(r"\s+", "", kind.lower())

    target_types = {name.lower(): norm(kind) for name, kind in target}
    produced_types = {name.lower(): norm(kind) for name, kind in produced}
    missing = tuple(n for n in target_types if n not in produced_types)
    extra = tuple(n for n in produced_types if n not in target_types)
    changes = tuple(
        (n, target_types[n], produced_types[n]) for n in target_types if n in produced_types and target_types[n] != produced_types[n]
    )
    order = not missing and not extra and list(target_types) != list(produced_types)
    return ColumnDiff(missing, extra, changes, order)


def plan_apas(
    database: str,
    table: str,
    select: str,
    *,
    partition_columns: Sequence[str],
    partition_values: PartitionValues,
    table_location: str,
    mode: SaveMode,
    partition_exists: bool,
    run_id: str,
    probe_location: str,
    ignore_schema_mismatch: bool = False,
) -> Plan:
    """Add one partition of `database.table` from `select`.

    Steps: dry-run CTAS (`<table>__probe_<run_id>`, no rows) and `check_schema`
    against the target (the executor raises `SchemaMismatch` using
    `diff_columns` unless ignored), drop the probe, write the rows with INSERT
    INTO, then `ADD IF NOT EXISTS PARTITION ... LOCATION`. Save modes:
    skip_if_exists / error_if_exists look at `partition_exists`; overwrite drops
    the partition and deletes its data before writing (the partition is absent
    while the job runs); none writes regardless (rows are appended).
    """
    validate_identifier(database, "database")
    validate_identifier(table, "table")
    validate_identifier(run_id, "run id")
    for column in partition_columns:
        validate_identifier(column, "partition column")
    validate_select(select)
    if partition_exists and mode is SaveMode.ERROR_IF_EXISTS:
        raise PartitionAlreadyExists(f"{database}.{table} partition {tuple(partition_values)} exists (save mode error_if_exists)")
    if partition_exists and mode is SaveMode.SKIP_IF_EXISTS:
        return Plan((), skipped=True, reason=f"{database}.{table} partition {tuple(partition_values)} exists (save mode skip_if_exists)")
    location = partition_location(table_location, partition_columns, partition_values)
    probe = validate_identifier(f"{table}__probe_{run_id}"[:MAX_IDENTIFIER], "probe table")
    probe_folder = f"{validate_location(probe_location)}{run_id}/"
    steps = [
        Step("query", "drop a leftover probe table", sql=build_drop_table(database, probe)),
        Step("require_empty", f"{probe_folder} must be empty", location=probe_folder),
        Step("query", "dry-run the SELECT (no rows)", sql=build_schema_probe(database, probe, select, probe_folder)),
    ]
    if not ignore_schema_mismatch:
        steps.append(Step("check_schema", f"compare the SELECT's columns with {database}.{table}", table=table, source_table=probe))
    steps.append(Step("query", "drop the probe table", sql=build_drop_table(database, probe)))
    if partition_exists and mode is SaveMode.OVERWRITE:
        steps += [
            Step("query", "drop the old partition", sql=build_drop_partition(database, table, partition_columns, partition_values)),
            Step("delete_location", "delete the old partition's data", location=location),
        ]
    steps += [
        Step("query", "write the partition", sql=build_insert_partition(database, table, select, partition_columns, partition_values)),
        Step(
            "query",
            "register the partition",
            sql=build_add_partition(database, table, [(partition_values, location)], partition_columns),
        ),
    ]
    return Plan(tuple(steps))


def check_schema(table: str, target: Sequence[tuple[str, str]], produced: Sequence[tuple[str, str]]) -> ColumnDiff:
    """Raise `SchemaMismatch` naming the differences; the executor calls it for a `check_schema` step."""
    diff = diff_columns(target, produced)
    if not diff.matches:
        raise SchemaMismatch(f"the SELECT does not match table {table!r}: {diff.describe()}")
    return diff
