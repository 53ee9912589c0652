"""Table versions: a snapshot whose column types the table cannot read lands in `<table>__v2`, `<table>__v3`, ...

Athena reads every partition of a table with the table's column types (resolving Parquet columns by name), so a
partition holding a column whose type is not a safe widening of the table's (int -> string, a decimal scale
change, struct -> string, ...) cannot join the table: Athena would fail the query (HIVE_PARTITION_SCHEMA_MISMATCH,
HIVE_BAD_DATA). The landed files cannot be rewritten or their columns renamed (a renamed column reads as NULL), so
such a partition goes to another Glue table of the same lake folder, a version, with its own columns. The rule,
the same on every run and every retry:

1. the versions of `<table>` are `<table>` itself (version 1) and `<table>__v2`, `<table>__v3`, ... up to the first
   number with no table snaplake made for `<table>`;
2. a partition already registered in one of them stays there (a retried or redelivered snapshot);
3. otherwise it goes to the newest version whose columns it can be merged into (hive_types.merge_columns);
4. otherwise a new version starts: the next number, created with the partition's own columns.

Older partitions never move, so they stay queryable where they were. Partition projection reads every folder under
the table's location, so it cannot keep a partition out of a table: with projection an incompatible type still
raises IncompatibleColumnType.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from snaplake.catalog.errors import IncompatibleColumnType
from snaplake.catalog.glue import get_table
from snaplake.catalog.hive_types import Column, merge_columns
from snaplake.catalog.partitions import LandedPartition
from snaplake.catalog.settings import CatalogOptions
from snaplake.core.aws import is_not_found
from snaplake.core.names import athena_name

VERSION_OF = "snaplake_version_of"  # a version table's parameter: the base table it is a version of
TABLE_VERSION = "snaplake_table_version"  # its number (2, 3, ...)
STARTED_BY = "snaplake_started_by"  # the location of the partition whose registration created it (set once, at creation)
VERSION_SEPARATOR = "__v"


@dataclass(frozen=True)
class TableVersion:
    table: str  # the Glue table holding the partition
    number: int  # 1: the base table itself
    started: bool  # no table of this version existed before this partition
    started_by: str | None = None  # the existing version table's STARTED_BY

    def parameters(self, base: str) -> dict[str, str]:
        """The parameters marking a version table as snaplake's version of `base` (none for the base table)."""
        return {} if self.number == 1 else {VERSION_OF: base, TABLE_VERSION: str(self.number)}

    def creation_parameters(self, partition: LandedPartition) -> dict[str, str]:
        """What only the registration that creates a version table writes: which partition started it."""
        return {STARTED_BY: partition.location} if self.number > 1 and self.started else {}

    def created_by_another(self, table: Mapping[str, Any] | None) -> TableVersion:
        """This version as another registration created it (`table`, its GetTable)."""
        return TableVersion(self.table, self.number, False, _started_by(table or {}))

    def started_by_partition(self, partition: LandedPartition, created: bool) -> bool:
        """Whether `partition` is the one that started this version: the same answer on every retry and redelivery of it."""
        return self.number > 1 and (created or same_location(self.started_by or "", partition.location))


def version_table_name(base: str, number: int) -> str:
    return base if number == 1 else athena_name(f"{base}{VERSION_SEPARATOR}{number}")


def table_versions(glue: Any, database: str, base: str, options: CatalogOptions) -> list[tuple[int, dict[str, Any]]]:
    """The existing versions of `base` as (number, GetTable's table), oldest first (rule 1)."""
    found: list[tuple[int, dict[str, Any]]] = []
    number = 1
    while True:
        table = get_table(glue, database, version_table_name(base, number), options)
        if table is None or (number > 1 and table.get("Parameters", {}).get(VERSION_OF) != base):
            return found
        found.append((number, table))
        number += 1


def choose_version(
    glue: Any, database: str, base: str, partition: LandedPartition, columns: Sequence[Column], options: CatalogOptions
) -> TableVersion:
    """The version of `base` that `partition` (with its own `columns`) is registered in (see the module docstring)."""
    versions = table_versions(glue, database, base, options)
    if not versions:
        return TableVersion(base, 1, True)
    if len(versions) > 1:
        for number, table in versions:
            if registers(glue, database, table["Name"], partition.values, partition.location):
                return TableVersion(table["Name"], number, False, _started_by(table))
    for number, table in reversed(versions):
        if _readable(base, table, columns):
            return TableVersion(table["Name"], number, False, _started_by(table))
    number = versions[-1][0] + 1
    return TableVersion(version_table_name(base, number), number, True)


def other_versions(glue: Any, database: str, table: Mapping[str, Any], options: CatalogOptions) -> list[str]:
    """The names of the other versions of `table`'s base table (`table` itself left out)."""
    base = str(table.get("Parameters", {}).get(VERSION_OF) or table["Name"])
    return [str(version["Name"]) for _, version in table_versions(glue, database, base, options) if version["Name"] != table["Name"]]


def version_holding(glue: Any, database: str, base: str, partitions: Sequence[LandedPartition], options: CatalogOptions) -> str | None:
    """The newest version of `base` that registers every one of `partitions` (`base` itself when it has no other
    version), or None when no version registers them all."""
    versions = table_versions(glue, database, base, options)
    if len(versions) < 2:
        return base
    for _, version in reversed(versions):
        if all(registers(glue, database, version["Name"], p.values, p.location) for p in partitions):
            return str(version["Name"])
    return None


def registers(glue: Any, database: str, table: str, values: Sequence[str], location: str) -> bool:
    """Whether `table` registers the partition `values` at `location`."""
    try:
        found = glue.get_partition(DatabaseName=database, TableName=table, PartitionValues=list(values))
    except ClientError as error:
        if is_not_found(error, "EntityNotFoundException"):
            return False
        raise
    registered = str(found["Partition"].get("StorageDescriptor", {}).get("Location", ""))
    return same_location(registered, location)


def same_location(first: str, second: str) -> bool:
    return first.rstrip("/") == second.rstrip("/")


def _started_by(table: Mapping[str, Any]) -> str | None:
    value = table.get("Parameters", {}).get(STARTED_BY)
    return str(value) if value else None


def _readable(base: str, table: dict[str, Any], columns: Sequence[Column]) -> bool:
    existing = [Column(c["Name"], c["Type"]) for c in table.get("StorageDescriptor", {}).get("Columns", [])]
    try:
        merge_columns(base, existing, columns)
    except IncompatibleColumnType:
        return False
    return True
