"""`<table>_latest`: the newest complete snapshot of an RDS table, as a Glue table of its own.

It is an unpartitioned Parquet table whose location is the folder of one snapshot partition (Athena reads every
data file under it, and skips the `_SUCCESS` markers, whose names start with `_`). RegisterCatalog moves it after
the snapshot's partition is registered, and FinalizeCopy wrote `_SUCCESS` before that, so it only ever names a
complete snapshot. The move is one UpdateTable naming the version it read (Glue's optimistic locking): a query
sees the old snapshot or the new one, never a mix, and of two RegisterCatalog runs at once the one whose
snapshot is older never wins, whatever the order: each run compares its snapshot time with the one the table
holds (`LATEST_SNAPSHOT_TIME`, canonical `YYYYMMDDTHHMMSSZ` strings, which sort as times) and moves it only forward.

A table of that name that is not snaplake's latest-view of `<table>` (a user's table, or the base table of a
source table literally named `<table>_latest`) is refused with `GlueTableCollision` and never changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from snaplake.catalog.errors import GlueTableCollision
from snaplake.catalog.glue import MANAGED_BY, TABLE_TYPE, get_table, storage_descriptor
from snaplake.catalog.hive_types import Column
from snaplake.catalog.partitions import LandedPartition
from snaplake.catalog.settings import CatalogOptions
from snaplake.core.aws import error_code
from snaplake.core.names import athena_name

log = logging.getLogger(__name__)

LATEST_SUFFIX = "_latest"
LATEST_OF = "snaplake_latest_of"  # the base table whose newest snapshot the table reads
LATEST_SNAPSHOT_TIME = "snaplake_snapshot_time"  # that snapshot's time, YYYYMMDDTHHMMSSZ
_MAX_MOVE_ATTEMPTS = 5


@dataclass(frozen=True)
class LatestMove:
    table: str
    snapshot_time: str  # the snapshot the table reads after this call
    moved: bool  # False: it already read this snapshot, or a newer one

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, "snapshotTime": self.snapshot_time, "moved": self.moved}


def latest_table_name(table: str) -> str:
    return athena_name(f"{table}{LATEST_SUFFIX}")


def point_latest(
    glue: Any,
    database: str,
    table: str,
    partition: LandedPartition,
    snapshot_time: str,
    columns: Sequence[Column],
    options: CatalogOptions,
) -> LatestMove:
    """Make `<table>_latest` read `partition` (a complete snapshot of `table`) unless it reads a newer snapshot."""
    name = latest_table_name(table)
    for attempt in range(1, _MAX_MOVE_ATTEMPTS + 1):
        existing = get_table(glue, database, name, options)
        if existing is not None:
            check_latest_owner(database, table, existing, partition.table_location)
            held = str(existing.get("Parameters", {}).get(LATEST_SNAPSHOT_TIME, ""))
            if held > snapshot_time or (held == snapshot_time and _location(existing) == partition.location):
                return LatestMove(name, held, False)
        table_input = {
            "Name": name,
            "TableType": TABLE_TYPE,
            "Description": f"The newest complete snapshot of {database}.{table} (moved by snaplake's RegisterCatalog).",
            "Parameters": {
                "classification": "parquet",
                "EXTERNAL": "TRUE",
                "managed_by": MANAGED_BY,
                LATEST_OF: table,
                LATEST_SNAPSHOT_TIME: snapshot_time,
            },
            "PartitionKeys": [],
            "StorageDescriptor": storage_descriptor(columns, partition.location),
        }
        try:
            if existing is None:
                glue.create_table(DatabaseName=database, TableInput=table_input)
            else:
                version = {"VersionId": existing["VersionId"]} if existing.get("VersionId") else {}
                glue.update_table(DatabaseName=database, TableInput=table_input, **version)
        except ClientError as error:
            # Another run created or moved it since it was read: look again (its snapshot may be newer).
            if error_code(error) not in ("AlreadyExistsException", "ConcurrentModificationException") or attempt == _MAX_MOVE_ATTEMPTS:
                raise
            continue
        log.info("latest moved", extra={"database": database, "table": name, "snapshot_time": snapshot_time})
        return LatestMove(name, snapshot_time, True)
    raise AssertionError("unreachable")  # pragma: no cover


def latest_location(glue: Any, database: str, table: str, options: CatalogOptions) -> str | None:
    """The partition folder `<table>_latest` reads, when it is snaplake's latest-view of `table`."""
    existing = get_table(glue, database, latest_table_name(table), options)
    if existing is None or existing.get("Parameters", {}).get(LATEST_OF) != table:
        return None
    return _location(existing)


def check_latest_owner(database: str, table: str, existing: Mapping[str, Any], table_location: str) -> None:
    """`GlueTableCollision` unless the existing table is snaplake's latest-view of `table`, inside its folder."""
    parameters = existing.get("Parameters", {})
    folder = table_location.rstrip("/") + "/"
    ours = (
        parameters.get("managed_by") == MANAGED_BY
        and parameters.get(LATEST_OF) == table
        and not existing.get("PartitionKeys")
        and _location(existing).startswith(folder)
    )
    if not ours:
        raise GlueTableCollision(
            f"Glue table {database}.{existing.get('Name')} is not snaplake's latest-view of {database}.{table} (it reads "
            f"{_location(existing) or '(no location)'}, not a snapshot of {folder}): it is another table of that name, so it is "
            "never moved; drop or rename it to get the latest-view"
        )


def _location(table: Mapping[str, Any]) -> str:
    location = str(table.get("StorageDescriptor", {}).get("Location", ""))
    return location.rstrip("/") + "/" if location else ""
