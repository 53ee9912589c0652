"""RegisterCatalog: landed Parquet partitions made queryable in Athena through the Glue Data Catalog.

Columns come from Parquet footers only: each landed data file is read with a
ranged GET of its tail (never the whole object). Arrow types map to Hive types
as Athena declares them. Snapshots are merged into one table definition:

- new columns are appended, existing columns keep their position, columns a
  snapshot no longer has are kept (older partitions still hold them);
- safe widenings are applied, because Athena's Parquet reader coerces the
  narrower physical type of older files: tinyint < smallint < int < bigint,
  float < double, decimal(p1,s) < decimal(p2,s) with the same scale, and the
  same rules inside array/map/struct (struct fields may be appended);
- anything else (int vs string, a decimal scale change, timestamp vs string...)
  cannot share the table: the snapshot goes to a table version `<table>__v<N>`
  by the rule in catalog.versions (logged as a WARNING and named in the
  Registration); the older partitions stay where they are, queryable. With
  partition projection there are no versions: it raises `IncompatibleColumnType`
  before the table is touched.

Column names are lower-cased (Athena resolves Parquet columns by lower-cased
name) but not otherwise renamed: renaming a column would make Athena read it
as all NULL. Database and table names are made Athena-safe with
`snaplake.core.names.athena_name`.

A partition is registered with BatchCreatePartition (an existing partition is
reported, never registered twice), or, in projection mode, the table carries
partition projection properties and nothing is registered per snapshot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from snaplake.catalog.errors import DuplicateColumn, IncompatibleColumnType, LandedManifestInvalid, UnsupportedPartitionLayout
from snaplake.catalog.footers import landed_columns
from snaplake.catalog.glue import TableChange, ensure_database, get_table, register_partitions, upsert_table
from snaplake.catalog.hive_types import Column
from snaplake.catalog.latest import LATEST_SNAPSHOT_TIME, LatestMove, latest_location, point_latest
from snaplake.catalog.partitions import SNAPSHOT_TIME_VALUE, LandedPartition
from snaplake.catalog.retention import RetentionPass, apply_retention, change_hour_end, snapshot_time
from snaplake.catalog.settings import CatalogOptions, RetentionPolicy
from snaplake.catalog.versions import TableVersion, choose_version, table_versions
from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import athena_identifier, s3_key
from snaplake.core.names import athena_name
from snaplake.core.s3 import Bucket

log = logging.getLogger(__name__)

_MAX_VERSION_ATTEMPTS = 5  # version choices when other snapshots keep changing the chosen version's columns meanwhile


@dataclass(frozen=True)
class Registration:
    database: str
    table: str
    partition_values: tuple[str, ...]
    location: str
    table_created: bool
    table_updated: bool
    added_columns: tuple[str, ...]
    widened_columns: tuple[str, ...]
    partition_registered: bool  # False: it already existed, or projection mode
    latest: LatestMove | None = None  # an RDS snapshot's `<table>_latest`
    base_table: str = ""  # the table `table` is a version of (catalog.versions); itself for version 1
    table_version: int = 1
    table_version_started: bool = False  # this registration created `table`, version 2 or later

    def as_json(self) -> dict[str, Any]:
        return {
            **({"latest": self.latest.as_json()} if self.latest else {}),
            "database": self.database,
            "table": self.table,
            "partitionValues": list(self.partition_values),
            "location": self.location,
            "tableCreated": self.table_created,
            "tableUpdated": self.table_updated,
            "addedColumns": list(self.added_columns),
            "widenedColumns": list(self.widened_columns),
            "partitionRegistered": self.partition_registered,
            "baseTable": self.base_table or self.table,
            "tableVersion": self.table_version,
            "tableVersionStarted": self.table_version_started,
        }


def register_partition(
    glue: Any,
    s3: Any,
    *,
    database: str,
    table: str,
    bucket: str,
    partition_prefix: str,
    options: CatalogOptions | None = None,
) -> Registration:
    """Bring the Glue table of one landed partition up to date and make the partition visible.

    `partition_prefix` is the key prefix of the landed partition, e.g.
    `lake/rds/world/users/snapshot_time=20240502T120555Z/` (the `partition` of
    a landed.json table entry) or `lake/dynamodb_changes/orders/dt=2024-05-02/hour=07/`.
    """
    return _register(glue, s3, database, table, bucket, partition_prefix, options or CatalogOptions())[0]


def _register(
    glue: Any,
    s3: Any,
    database: str,
    table: str,
    bucket: str,
    partition_prefix: str,
    options: CatalogOptions,
    partition_parameters: Mapping[str, str] | None = None,
) -> tuple[Registration, list[Column], LandedPartition]:
    """register_partition, also returning the partition's own columns (from its footers) and the partition."""
    database, table = athena_name(database), athena_name(table)
    partition = LandedPartition.parse(bucket, partition_prefix)
    columns = landed_columns(s3, table, partition, options.expected_bucket_owner)
    reserved = {c.name for c in columns} & set(partition.keys)
    if reserved:
        raise DuplicateColumn(f"table {table!r}: data columns {sorted(reserved)} clash with the partition keys")
    ensure_database(glue, database, options=options)
    version: TableVersion
    version, change = _upsert_version(glue, database, table, partition, columns, options)
    registered = False
    if not options.projection:
        registered = bool(register_partitions(glue, database, version.table, [partition], change.columns, options, partition_parameters))
    log.info("catalog registered", extra={"database": database, "table": version.table, "partition": partition.values, "new": registered})
    if version.number > 1:
        log.warning(
            "incompatible column types: partition registered in a table version",
            extra={"database": database, "table": table, "version_table": version.table, "started": change.created},
        )
    registration = Registration(
        database=database,
        table=version.table,
        partition_values=partition.values,
        location=partition.location,
        table_created=change.created,
        table_updated=change.updated,
        added_columns=tuple(c.name for c in change.added),
        widened_columns=tuple(c.name for c in change.widened),
        partition_registered=registered,
        base_table=table,
        table_version=version.number,
        table_version_started=version.started_by_partition(partition, change.created),
    )
    return registration, list(columns), partition


def _upsert_version(
    glue: Any, database: str, table: str, partition: LandedPartition, columns: Sequence[Column], options: CatalogOptions
) -> tuple[TableVersion, TableChange]:
    """The version of `table` the partition goes to (catalog.versions), created or merged with its columns."""
    for attempt in range(1, _MAX_VERSION_ATTEMPTS + 1):
        if options.projection:  # a projected table cannot keep a partition out (date ranges): one table, no versions
            version = TableVersion(table, 1, False)
        else:
            version = choose_version(glue, database, table, partition, columns, options)
        try:
            marks, creation_marks = version.parameters(table), version.creation_parameters(partition)
            change = upsert_table(glue, database, version.table, partition, columns, options, marks, creation_marks)
            if version.started and not change.created:
                # Another registration created this version first (perhaps of this very partition, redelivered): it
                # wrote which partition started it.
                version = version.created_by_another(get_table(glue, database, version.table, options))
            return version, change
        except IncompatibleColumnType:
            # Another snapshot changed the chosen version's columns after it was chosen: choose again.
            if options.projection or attempt == _MAX_VERSION_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def register_projected_table(
    glue: Any,
    *,
    database: str,
    table: str,
    bucket: str,
    partition_prefix: str,
    columns: Sequence[Column],
    options: CatalogOptions | None = None,
) -> TableChange:
    """The Glue table of a partition about to be written, with partition projection, holding `columns`.

    For writers that land continuously (the stream change log): they call it before each write whose columns
    the table may not have yet, so a failed registration fails the write and its retry registers again; no
    partition is ever registered (Athena projects them), so nothing that landed can be left unregistered.
    """
    options = replace(options or CatalogOptions(), projection=True)
    database, table = athena_name(database), athena_name(table)
    partition = LandedPartition.parse(bucket, partition_prefix)
    reserved = {c.name for c in columns} & set(partition.keys)
    if reserved:
        raise DuplicateColumn(f"table {table!r}: data columns {sorted(reserved)} clash with the partition keys")
    ensure_database(glue, database, options=options)
    return upsert_table(glue, database, table, partition, columns, options)


def register_landed(
    glue: Any, s3: Any, landed: Mapping[str, Any], *, database: str | None = None, options: CatalogOptions | None = None
) -> list[Registration]:
    """Register every table of a landed manifest (`landed.json` of FinalizeCopy), each snapshot also as its table's
    `<table>_latest` when it is the newest (see catalog.latest).

    `database` overrides the per-source database named in the manifest.
    """
    options = options or CatalogOptions()
    bucket = landed["lakeBucket"]
    tables: Iterable[Mapping[str, Any]] = landed["tables"]
    registrations = []
    registration: Registration
    for entry in tables:
        prefix = str(entry["partition"])
        when = entry.get("snapshotTime") or next(
            (v for v in LandedPartition.parse(bucket, prefix).values if SNAPSHOT_TIME_VALUE.match(v)), None
        )
        registration, columns, partition = _register(
            glue,
            s3,
            database or str(entry["database"]),
            str(entry["table"]),
            bucket,
            prefix,
            options,
            {LATEST_SNAPSHOT_TIME: when} if when else None,
        )
        if when is None:  # a manifest of a plan made before snapshotTime was recorded, with a template naming no time
            log.warning("no snapshot time: <table>_latest not moved", extra={"table": registration.table, "partition": prefix})
        else:
            latest = point_latest(glue, registration.database, registration.base_table, partition, when, columns, options)
            registration = replace(registration, latest=latest)
        registrations.append(registration)
    return registrations


def expire_snapshots(
    glue: Any, lake: Bucket, registrations: Sequence[Registration], policy: RetentionPolicy, now: datetime, options: CatalogOptions
) -> list[RetentionPass]:
    """A retention pass over each table just registered, each of its versions (see expire_snapshot_table)."""
    tables: set[tuple[str, str]] = set()
    registration: Registration
    for registration in registrations:
        tables.add((registration.database, registration.base_table or registration.table))
    return [
        expire_snapshot_table(glue, lake, database, version, policy, now, options, latest_of=table)
        for database, table in sorted(tables)
        for version in _version_names(glue, database, table, options)
    ]


def _version_names(glue: Any, database: str, table: str, options: CatalogOptions) -> list[str]:
    return [found["Name"] for _, found in table_versions(glue, database, table, options)] or [table]


def expire_snapshot_table(
    glue: Any,
    lake: Bucket,
    database: str,
    table: str,
    policy: RetentionPolicy,
    now: datetime,
    options: CatalogOptions,
    latest_of: str | None = None,
) -> RetentionPass:
    """A retention pass over an RDS table (or a version of `latest_of`) by snapshot time, keeping the snapshot its
    `<table>_latest` reads."""
    keep = latest_location(glue, database, latest_of or table, options)
    return apply_retention(
        glue,
        lake,
        database=database,
        table=table,
        policy=policy,
        partition_time=snapshot_time,
        now=now,
        options=options,
        keep_location=keep,
    )


def expire_change_log(
    glue: Any, lake: Bucket, database: str, table: str, policy: RetentionPolicy, now: datetime, options: CatalogOptions
) -> list[RetentionPass]:
    """A retention pass over a DynamoDB change-log table (`<t>_changes`, partitions `dt`/`hour`) and each of its
    versions, by the end of each hour."""
    return [
        apply_retention(glue, lake, database=database, table=name, policy=policy, partition_time=change_hour_end, now=now, options=options)
        for name in _version_names(glue, database, table, options)
    ]


def parse_landed_manifest(body: bytes, where: str, *, lake_bucket: str) -> dict[str, Any]:
    """`landed.json` as FinalizeCopy writes it (read from `where`), checked whole before anything is registered.

    Its names must already be Athena names (FinalizeCopy writes them so): a
    name that is not did not come from FinalizeCopy and is refused, not made safe.
    """
    try:
        landed = json.loads(body)
    except ValueError as error:  # also UnicodeDecodeError
        raise LandedManifestInvalid(f"landed manifest {where} is not JSON: {str(error)[:200]}") from None
    if not isinstance(landed, dict) or not isinstance(landed.get("tables"), list):
        raise LandedManifestInvalid(f"landed manifest {where} is not an object with a 'tables' list")
    if landed.get("lakeBucket") != lake_bucket:
        named = str(landed.get("lakeBucket"))[:100]
        raise LandedManifestInvalid(f"landed manifest {where} names lake bucket {named!r}, not {lake_bucket!r}")
    for index, entry in enumerate(landed["tables"]):
        try:
            if not isinstance(entry, dict):
                raise InvalidEvent(f"the entry is a {type(entry).__name__}, not an object")
            athena_identifier(entry.get("database"), "database")
            athena_identifier(entry.get("table"), "table")
            if entry.get("snapshotTime") is not None and not SNAPSHOT_TIME_VALUE.fullmatch(str(entry["snapshotTime"])):
                raise InvalidEvent(f"snapshotTime {str(entry['snapshotTime'])[:40]!r} is not YYYYMMDDTHHMMSSZ")
            LandedPartition.parse(lake_bucket, s3_key(entry.get("partition"), "partition", folder=True))
        except (InvalidEvent, UnsupportedPartitionLayout) as error:
            raise LandedManifestInvalid(f"landed manifest {where} tables[{index}]: {error}") from None
    return landed


def dynamodb_partitions(kind: str, table: str, partitions: Sequence[Any]) -> list[str]:
    """The partition prefixes FinalizeConversion published for `table`, checked before any is registered.

    Each must be a Hive partition under the table's own folder: `.../dynamodb/<table>/...`
    for a full export, `.../dynamodb_changes/<table>/...` for an incremental one.
    """
    folder = ("dynamodb" if kind == "full" else "dynamodb_changes", table)
    checked = []
    for index, raw in enumerate(partitions):
        prefix = s3_key(raw, f"partitions[{index}]", folder=True)
        try:
            partition = LandedPartition.parse("", prefix)
        except UnsupportedPartitionLayout as error:
            raise InvalidEvent(f"partitions[{index}]: {error}") from None
        if tuple(partition.table_prefix.rstrip("/").split("/")[-2:]) != folder:
            raise InvalidEvent(f"partitions[{index}] {prefix[:200]!r} is not a partition of {'/'.join(folder)}/")
        checked.append(prefix)
    return checked
