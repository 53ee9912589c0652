"""Retention: expired partitions of a registered table leave Glue first and S3 a grace period later.

A pass over one table, run by RegisterCatalog after it registered what landed:

1. **Expire.** The policy picks the partitions to let go among those Glue knows (never the newest, never the one
   `<table>_latest` reads, never one whose time is unknown). Each is recorded in the table's parameters
   (`snaplake_expired.<values>`: its location and when), then removed with BatchDeletePartition. From then on no
   new query plans it; the record comes first, so a crash between the two leaves a record, and the next pass
   (finding the partition still registered) writes it again with its own time before deleting it.
2. **Purge.** A recorded partition that left Glue longer than `grace` ago (longer than any Athena query runs, so
   no query that planned it can still be reading it) loses its objects: its `_SUCCESS` first, so a half-deleted
   partition never looks complete, then the rest; the record goes last. A crash anywhere leaves the record, and
   the next pass deletes what is left (deleting a missing object is no error), so every rerun converges.

With partition projection (CatalogMode=projection) a table whose one partition key is an enum of the landed values
(`snapshot_time`, `export_time`: catalog.partitions) expires a partition by taking its value out of the enum, in the
same table update that writes its record; the purge is the same. Keys projected as date ranges (the change log's
`dt`/`hour`) cannot leave out one partition, so their retention requires registered partitions (catalog.settings
refuses ChangeLogRetentionDays with projection, and a pass over such a table raises RetentionFailed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from snaplake.catalog.errors import RetentionFailed
from snaplake.catalog.glue import get_table
from snaplake.catalog.latest import LATEST_SNAPSHOT_TIME
from snaplake.catalog.partitions import SNAPSHOT_TIME_VALUE
from snaplake.catalog.settings import CatalogOptions, RetentionPolicy
from snaplake.catalog.versions import other_versions, registers
from snaplake.core.aws import error_code
from snaplake.core.limits import GLUE_BATCH_DELETE_PARTITION_MAX
from snaplake.core.names import SUCCESS_MARKER
from snaplake.core.s3 import Bucket
from snaplake.core.times import iso_utc, parse_iso_utc

log = logging.getLogger(__name__)

EXPIRED = "snaplake_expired."  # table parameter prefix of the partitions that left Glue and still have objects
_TABLE_FIELDS = ("Name", "Description", "Owner", "TableType", "Parameters", "PartitionKeys", "StorageDescriptor", "Retention")
_MAX_UPDATE_ATTEMPTS = 5

PartitionTime = Callable[[Mapping[str, Any]], "datetime | None"]


def expired_partitions(
    policy: RetentionPolicy, partitions: Sequence[tuple[Any, datetime | None]], now: datetime, protected: Callable[[Any], bool]
) -> list[Any]:
    """The partitions (given as (partition, time)) `policy` lets go, oldest first: never the newest, never a
    protected one, never one whose time is unknown."""
    if not policy.enabled:
        return []
    timed = sorted(((when, p) for p, when in partitions if when is not None), key=lambda pair: pair[0], reverse=True)
    cutoff = now - timedelta(days=policy.keep_days)
    let_go = []
    for index, (when, partition) in enumerate(timed):
        kept = (
            index == 0 or protected(partition) or (policy.keep_count and index < policy.keep_count) or (policy.keep_days and when > cutoff)
        )
        if not kept:
            let_go.append(partition)
    return let_go[::-1]


@dataclass(frozen=True)
class RetentionPass:
    database: str
    table: str
    expired: tuple[str, ...]  # partition values ("/"-joined) removed from Glue by this pass
    purged: tuple[str, ...]  # partitions whose objects this pass deleted

    def as_json(self) -> dict[str, Any]:
        return {"database": self.database, "table": self.table, "expired": list(self.expired), "purged": list(self.purged)}


def snapshot_time(partition: Mapping[str, Any]) -> datetime | None:
    """An RDS snapshot partition's time: the parameter RegisterCatalog sets, else a partition value that is one."""
    candidates = [partition.get("Parameters", {}).get(LATEST_SNAPSHOT_TIME), *partition.get("Values", [])]
    found = next((str(value) for value in candidates if value and SNAPSHOT_TIME_VALUE.match(str(value))), None)
    return datetime.strptime(found, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if found else None


def change_hour_end(partition: Mapping[str, Any]) -> datetime | None:
    """A change-log partition (`dt=YYYY-MM-DD/hour=HH`): the end of its hour, when its changes stopped arriving."""
    values = partition.get("Values", [])
    try:
        day, hour = datetime.strptime(str(values[0]), "%Y-%m-%d").replace(tzinfo=UTC), int(values[1])
    except (IndexError, ValueError):
        return None
    return day + timedelta(hours=hour + 1)


def apply_retention(
    glue: Any,
    lake: Bucket,
    *,
    database: str,
    table: str,
    policy: RetentionPolicy,
    partition_time: PartitionTime,
    now: datetime,
    options: CatalogOptions,
    keep_location: str | None = None,
) -> RetentionPass:
    """One retention pass over `database.table` (see the module docstring); `keep_location` is never expired.

    With the policy off it still finishes what an earlier pass began (records of partitions that left Glue), so
    turning retention off never strands objects outside Glue; a table without records costs one GetTable.
    """
    table_now = get_table(glue, database, table, options)
    if table_now is None or (not policy.enabled and not _records(table_now)):
        return RetentionPass(database, table, (), ())  # nothing registered yet, or nothing to do
    enum_key = _projected_enum_key(table_now, database, table)
    registered = _projected_partitions(table_now, enum_key) if enum_key else _registered_partitions(glue, database, table)
    keep = (keep_location or "").rstrip("/")
    expired = expired_partitions(
        policy, [(p, partition_time(p)) for p in registered], now, lambda p: bool(keep) and _location(p).rstrip("/") == keep
    )
    if expired:
        added = {_record_key(p["Values"]): json.dumps({"location": _location(p), "expiredAt": iso_utc(now)}) for p in expired}
        if enum_key:
            _update_records(glue, database, table, options, add=added, unproject=(enum_key, {p["Values"][0] for p in expired}))
        else:
            _update_records(glue, database, table, options, add=added)
            _delete_partitions(glue, database, table, [p["Values"] for p in expired], options)
    existing = get_table(glue, database, table, options) or {}
    if enum_key:  # what the table projects now (a snapshot registered again meanwhile is back in the enum)
        still_registered = {_record_key(p["Values"]) for p in _projected_partitions(existing, enum_key)}
    else:
        still_registered = {_record_key(p["Values"]) for p in registered} - {_record_key(p["Values"]) for p in expired}
    records = _records(existing)
    # A recorded partition registered again (its snapshot's execution re-run) and kept by the policy: not expired any more.
    stale = {key for key in records if key in still_registered}
    due = {
        key: record
        for key, record in records.items()
        if key not in still_registered and parse_iso_utc(record["expiredAt"]) + policy.grace <= now
    }
    # Registered again meanwhile, in this table (a re-run during this pass, after its partitions were listed) or in
    # another version of it (a re-run whose columns fit a newer version): that table keeps it; this one only forgets
    # its record. Asked right before the purge, partition by partition.
    holders = ([] if enum_key else [table]) + (other_versions(glue, database, existing, options) if due else [])
    moved = {
        key
        for key, record in due.items()
        if any(registers(glue, database, holder, _record_values(key), record["location"]) for holder in holders)
    }
    stale |= moved
    due = {key: record for key, record in due.items() if key not in moved}
    for key, record in due.items():
        _purge(lake, database, table, existing, key, record["location"])
    if due or stale:
        _update_records(glue, database, table, options, drop=set(due) | stale)
    result = RetentionPass(database, table, tuple("/".join(p["Values"]) for p in expired), tuple(k[len(EXPIRED) :] for k in due))
    if expired or due:
        log.info("retention", extra=result.as_json())
    return result


def _registered_partitions(glue: Any, database: str, table: str) -> list[dict[str, Any]]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    return [partition for page in pages for partition in page["Partitions"]]


def _projected_enum_key(table: Mapping[str, Any], database: str, name: str) -> str | None:
    """The partition key a projected table lists as an enum (None for a table with registered partitions)."""
    parameters = table.get("Parameters", {})
    if parameters.get("projection.enabled") != "true":
        return None
    keys = [key["Name"] for key in table.get("PartitionKeys", [])]
    if len(keys) != 1 or parameters.get(f"projection.{keys[0]}.type") != "enum":
        raise RetentionFailed(
            f"{database}.{name} projects its partitions by {keys}: retention with partition projection can only take values "
            "out of one enum-projected key (CatalogMode=partitions keeps any layout)"
        )
    return keys[0]


def _projected_partitions(table: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The enum's values as partitions Glue would list: values and the folder the location template names."""
    parameters = table.get("Parameters", {})
    template = parameters.get("storage.location.template", "")
    values = [value for value in parameters.get(f"projection.{key}.values", "").split(",") if value]
    return [{"Values": [value], "StorageDescriptor": {"Location": template.replace(f"${{{key}}}", value)}} for value in values]


def _record_key(values: Sequence[str]) -> str:
    return EXPIRED + "/".join(values)


def _record_values(key: str) -> list[str]:
    return key[len(EXPIRED) :].split("/")


def _location(partition: Mapping[str, Any]) -> str:
    return str(partition.get("StorageDescriptor", {}).get("Location", ""))


def _records(table: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    found = {}
    for key, value in table.get("Parameters", {}).items():
        if key.startswith(EXPIRED):
            try:
                record = json.loads(value)
                found[key] = {"location": str(record["location"]), "expiredAt": str(record["expiredAt"])}
            except (ValueError, KeyError, TypeError):
                raise RetentionFailed(f"table parameter {key!r} is not a retention record snaplake wrote: {value[:200]!r}") from None
    return found


def _update_records(
    glue: Any,
    database: str,
    table: str,
    options: CatalogOptions,
    add: Mapping[str, str] | None = None,
    drop: set[str] | None = None,
    unproject: tuple[str, set[str]] | None = None,
) -> None:
    """Add or drop retention records in the table's parameters, and take values out of its enum projection
    (`unproject`: key, values), on the version read (Glue's optimistic locking: a value registered meanwhile stays)."""
    for attempt in range(1, _MAX_UPDATE_ATTEMPTS + 1):
        existing = get_table(glue, database, table, options)
        if existing is None:
            raise RetentionFailed(f"Glue table {database}.{table} disappeared during the retention pass")
        table_input = {k: existing[k] for k in _TABLE_FIELDS if k in existing}
        parameters = {k: v for k, v in existing.get("Parameters", {}).items() if k not in (drop or set())}
        if unproject is not None:
            name = f"projection.{unproject[0]}.values"
            parameters[name] = ",".join(v for v in parameters.get(name, "").split(",") if v and v not in unproject[1])
        table_input["Parameters"] = {**parameters, **(add or {})}
        version = {"VersionId": existing["VersionId"]} if existing.get("VersionId") else {}
        try:
            glue.update_table(DatabaseName=database, TableInput=table_input, **version)
            return
        except ClientError as error:
            if error_code(error) != "ConcurrentModificationException" or attempt == _MAX_UPDATE_ATTEMPTS:
                raise


def _delete_partitions(glue: Any, database: str, table: str, values: Sequence[Sequence[str]], options: CatalogOptions) -> None:
    for start in range(0, len(values), GLUE_BATCH_DELETE_PARTITION_MAX):
        chunk = [{"Values": list(v)} for v in values[start : start + GLUE_BATCH_DELETE_PARTITION_MAX]]
        response = glue.batch_delete_partition(DatabaseName=database, TableName=table, PartitionsToDelete=chunk)
        for error in response.get("Errors", []):
            code = error.get("ErrorDetail", {}).get("ErrorCode")
            if code != "EntityNotFoundException":  # gone already: a rerun
                raise RetentionFailed(f"{database}.{table} partition {error.get('PartitionValues')}: BatchDeletePartition {code}")


def _purge(lake: Bucket, database: str, table: str, existing: Mapping[str, Any], key: str, location: str) -> None:
    """Delete a recorded partition's objects, `_SUCCESS` first; only ever inside the table's own folder."""
    folder = str(existing.get("StorageDescriptor", {}).get("Location", "")).rstrip("/") + "/"
    prefix = location.rstrip("/") + "/"
    if not prefix.startswith(f"s3://{lake.name}/") or not prefix.startswith(folder) or prefix == folder:
        raise RetentionFailed(f"{database}.{table} retention record {key!r} names {location}, not a partition of {folder}; nothing deleted")
    prefix = prefix[len(f"s3://{lake.name}/") :]
    keys = [obj["Key"] for obj in lake.objects_under(prefix)]
    marker = prefix + SUCCESS_MARKER
    for batch in ([marker], [k for k in keys if k != marker]):
        errors = lake.delete_keys(batch) if batch else []
        if errors:
            first = errors[0]
            raise RetentionFailed(f"{database}.{table}: deleting {first.get('Key')} failed: {first.get('Code')} {first.get('Message', '')}")
