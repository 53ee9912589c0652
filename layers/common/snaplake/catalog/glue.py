"""The Glue Data Catalog as RegisterCatalog uses it: databases, Parquet tables whose columns merge across snapshots,
partitions registered once (an existing one must point where the new one landed).

A table belongs to one lake folder for good: the folder it was created for (its location, and with partition
projection the folder of its `storage.location.template`). A writer of another folder that derives the same table
name is refused with `GlueTableCollision`, and no writer ever moves a table's location.

Which catalog: `catalog_client` gives the step its Glue client. In a source account's stack (LAKE_CATALOG_ROLE set)
that is the lake account's catalog, reached through the lake stack's catalog role, and every Glue call the client
makes names the lake's `CatalogId` (docs/security.md, ADR 0016).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from snaplake.catalog.errors import GlueTableCollision, PartitionKeysChanged, PartitionRegistrationFailed
from snaplake.catalog.hive_types import Column, merge_columns
from snaplake.catalog.partitions import LandedPartition, projection_parameters
from snaplake.catalog.settings import CatalogOptions
from snaplake.core import aws
from snaplake.core.aws import error_code, is_not_found
from snaplake.core.limits import GLUE_BATCH_CREATE_PARTITION_MAX
from snaplake.core.names import athena_name

log = logging.getLogger(__name__)

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
TABLE_TYPE = "EXTERNAL_TABLE"
MANAGED_BY = "snaplake"
# The session tag the lake's catalog role requires: the source account, which the role's policy puts in the database
# names it may write (<GlueDatabasePrefix>accounts_<account>_*).
SOURCE_ACCOUNT_TAG = "snaplake-source-account"
# Merge-and-update rounds when other writers keep updating the same table (each round is one GetTable + UpdateTable).
_MAX_UPDATE_ATTEMPTS = 5


def catalog_client(options: CatalogOptions) -> Any:
    """This account's Glue client, or with `options.catalog_role` one acting as the lake's catalog role in the lake
    account's catalog."""
    if options.catalog_role is None:
        return aws.client("glue")
    assert options.source_account is not None and options.catalog_id is not None  # CatalogOptions.from_env checks both
    glue = aws.assumed_role_client(
        "glue", options.catalog_role, f"snaplake-catalog-{options.source_account}", {SOURCE_ACCOUNT_TAG: options.source_account}
    )
    name_catalog(glue, options.catalog_id)
    return glue


def name_catalog(glue: Any, catalog_id: str) -> None:
    """Every call of `glue` whose operation takes a `CatalogId` names `catalog_id`: no call site can forget it."""

    def add_catalog_id(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "CatalogId" in model.input_shape.members:
            params.setdefault("CatalogId", catalog_id)

    glue.meta.events.register("provide-client-params.glue", add_catalog_id)


def ensure_database(glue: Any, name: str, *, description: str = "", options: CatalogOptions | None = None) -> bool:
    """Create the Glue database if missing; returns True when it was created."""
    name = athena_name(name)
    try:
        glue.get_database(Name=name)
        return False
    except ClientError as error:
        if not is_not_found(error, "EntityNotFoundException"):
            raise
    try:
        database_input: dict[str, Any] = {"Name": name, "Parameters": {"managed_by": MANAGED_BY}}
        if description:
            database_input["Description"] = description
        glue.create_database(DatabaseInput=database_input)
    except ClientError as error:
        if error_code(error) != "AlreadyExistsException":  # created concurrently: fine
            raise
        return False
    return True


def storage_descriptor(columns: Sequence[Column], location: str) -> dict[str, Any]:
    return {
        "Columns": [c.as_glue() for c in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": False,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "StoredAsSubDirectories": False,
    }


def get_table(glue: Any, database: str, table: str, options: CatalogOptions) -> dict[str, Any] | None:
    try:
        return dict(glue.get_table(DatabaseName=database, Name=table)["Table"])
    except ClientError as error:
        if is_not_found(error, "EntityNotFoundException"):
            return None
        raise


@dataclass(frozen=True)
class TableChange:
    created: bool
    updated: bool
    columns: tuple[Column, ...]  # the table's columns after the change
    added: tuple[Column, ...]
    widened: tuple[Column, ...]


def upsert_table(
    glue: Any,
    database: str,
    table: str,
    partition: LandedPartition,
    columns: Sequence[Column],
    options: CatalogOptions,
    marks: Mapping[str, str] | None = None,
    creation_marks: Mapping[str, str] | None = None,
    _attempt: int = 1,
) -> TableChange:
    """Create the table or merge `columns` into it; `marks` are parameters it must carry (a version table's),
    `creation_marks` parameters only the writer that creates it sets (a writer merging into it keeps them as they are).

    Every check runs before any write: on an incompatible column, or a table of another lake folder
    (`GlueTableCollision`), nothing changes. The update names the table version it merged into (Glue's
    optimistic locking); when another writer updated the table meanwhile, the merge is done again on the new version.
    """
    partition_keys = [Column(key, "string") for key in partition.keys]
    existing = get_table(glue, database, table, options)
    old_parameters: dict[str, str] = dict(existing.get("Parameters", {})) if existing else {}
    old_columns = [Column(c["Name"], c["Type"]) for c in existing.get("StorageDescriptor", {}).get("Columns", [])] if existing else []
    if existing:
        _check_table_folder(database, table, existing, partition.table_location)
        old_keys = [c["Name"] for c in existing.get("PartitionKeys", [])]
        if old_keys != list(partition.keys):
            raise PartitionKeysChanged(
                f"table {database}.{table} is partitioned by {old_keys}, the landed layout by {list(partition.keys)}"
            )
    merged = merge_columns(table, old_columns, columns)
    parameters = {**old_parameters, "classification": "parquet", "EXTERNAL": "TRUE", "managed_by": MANAGED_BY, **(marks or {})}
    if options.projection:
        parameters.update(projection_parameters(partition, old_parameters, options.projection_rules))
    table_input: dict[str, Any] = {
        "Name": table,
        "TableType": TABLE_TYPE,
        "Parameters": parameters,
        "PartitionKeys": [c.as_glue() for c in partition_keys],
        "StorageDescriptor": storage_descriptor(merged, partition.table_location),
    }
    old_types = {c.name: c.type for c in old_columns}
    added = [c for c in merged if c.name not in old_types]
    widened = [c for c in merged if c.name in old_types and old_types[c.name] != c.type]
    if existing is None:
        try:
            glue.create_table(DatabaseName=database, TableInput={**table_input, "Parameters": {**parameters, **(creation_marks or {})}})
        except ClientError as error:
            if error_code(error) != "AlreadyExistsException":
                raise
            # Another run created it a moment ago: merge into it if it is this folder's (a redelivered event),
            # else GlueTableCollision. CreateTable is first-writer-wins and no writer moves a table's location,
            # so the table itself is the claim on its name: no claim object that could disagree with Glue.
            return upsert_table(glue, database, table, partition, columns, options, marks, _attempt=_attempt)
        return TableChange(True, False, tuple(merged), tuple(merged), ())
    unchanged = (
        not added
        and not widened
        and parameters == old_parameters
        and existing["StorageDescriptor"].get("Location") == partition.table_location
        and existing.get("TableType") == TABLE_TYPE
    )
    if unchanged:
        return TableChange(False, False, tuple(merged), (), ())
    if existing.get("Description"):
        table_input["Description"] = existing["Description"]
    try:
        # Only the version that was read and merged: two writers adding other columns at once must not lose one's.
        version = {"VersionId": existing["VersionId"]} if existing.get("VersionId") else {}
        glue.update_table(DatabaseName=database, TableInput=table_input, **version)
    except ClientError as error:
        if error_code(error) != "ConcurrentModificationException" or _attempt >= _MAX_UPDATE_ATTEMPTS:
            raise
        return upsert_table(glue, database, table, partition, columns, options, marks, _attempt=_attempt + 1)
    return TableChange(False, True, tuple(merged), tuple(added), tuple(widened))


def _table_folders(existing: Mapping[str, Any]) -> list[str]:
    """The lake folders an existing Glue table names, each ending in `/` (empty when it names none): its location and,
    with partition projection, the folder of its `storage.location.template` (the segments before the first `${key}`)."""
    folders = [existing.get("StorageDescriptor", {}).get("Location", "")]
    template = existing.get("Parameters", {}).get("storage.location.template")
    if template is not None:
        segments = template.split("/")
        fixed = next((i for i, segment in enumerate(segments) if "${" in segment), len(segments))
        folders.append("/".join(segments[:fixed]))
    return [folder.rstrip("/") + "/" if folder.rstrip("/") else "" for folder in folders]


def _check_table_folder(database: str, table: str, existing: Mapping[str, Any], location: str) -> None:
    """`GlueTableCollision` unless every folder the existing table names is `location`, the writer's table folder."""
    wanted = location.rstrip("/") + "/"
    other = next((folder for folder in _table_folders(existing) if folder != wanted), None)
    if other is not None:
        raise GlueTableCollision(
            f"Glue table {database}.{table} belongs to lake folder {other or '(none: not a table of the lake)'}, not to "
            f"{wanted}: another writer derives the same table name for its own folder; nothing was changed"
        )


def register_partitions(
    glue: Any,
    database: str,
    table: str,
    partitions: Sequence[LandedPartition],
    columns: Sequence[Column],
    options: CatalogOptions,
    parameters: Mapping[str, str] | None = None,
) -> list[tuple[str, ...]]:
    """BatchCreatePartition in calls of ≤ 100; returns the values actually created.

    AlreadyExists entries are skipped (a re-run registers nothing twice); any
    other per-entry error raises `PartitionRegistrationFailed` naming the partition.
    """
    created: list[tuple[str, ...]] = []
    for start in range(0, len(partitions), GLUE_BATCH_CREATE_PARTITION_MAX):
        chunk = partitions[start : start + GLUE_BATCH_CREATE_PARTITION_MAX]
        entries = [
            {"Values": list(p.values), "StorageDescriptor": storage_descriptor(columns, p.location), "Parameters": dict(parameters or {})}
            for p in chunk
        ]
        response = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=entries)
        existed: set[tuple[str, ...]] = set()
        for error in response.get("Errors", []):
            values = tuple(error.get("PartitionValues", []))
            detail = error.get("ErrorDetail", {})
            if detail.get("ErrorCode") == "AlreadyExistsException":
                existed.add(values)
                continue
            raise PartitionRegistrationFailed(
                f"{database}.{table} partition {values}: {detail.get('ErrorCode')}: {detail.get('ErrorMessage', '')}"
            )
        for p in chunk:
            if p.values in existed:
                _check_existing_location(glue, database, table, p)
        created.extend(p.values for p in chunk if p.values not in existed)
    return created


def _check_existing_location(glue: Any, database: str, table: str, partition: LandedPartition) -> None:
    """An already registered partition must point where this one landed; otherwise Athena reads other data."""
    found = glue.get_partition(DatabaseName=database, TableName=table, PartitionValues=list(partition.values))
    location = found["Partition"].get("StorageDescriptor", {}).get("Location", "")
    if location.rstrip("/") != partition.location.rstrip("/"):
        raise PartitionRegistrationFailed(
            f"{database}.{table} partition {partition.values} is already registered at {location}, not at {partition.location}"
        )
