"""Athena SQL job documents: what each mode takes, validated and normalized before any job runs.

A job document (one item of the athena_etl state machine's `{"jobs": [...]}`) names a mode and its fields:

- `query`: run the declared SELECT; the results land in the output location.
- `ctas`: create `database.table` as the SELECT, with a save mode
  (error_if_exists, the default; skip_if_exists; overwrite; none) and CTAS options.
  Partitioned tables first list the partitions the SELECT yields, so no query
  writes more than 100 (one CTAS, then INSERT INTO batches).
- `apas`: add one partition of an existing table as the SELECT (schema dry-run first).
- `add_partition`: register partitions (values and optional locations), with a save mode for those that exist.
- `drop_partition` / `drop_table`: drop partitions or a table of a job database, and with `deleteData` their folders.

A `ctas` job's `tableMode` says what it leaves: `create` (table and data, the default), `empty` (the table, no rows)
or `data_only` (the data files, no table). A `temporary` ctas table (location optional) is dropped with its data
when the run ends, whether it succeeded or failed (`snaplake.athena.temporary`).

Every identifier and literal goes through `snaplake.athena.sql`; the only SQL taken from the document is the
SELECT, checked to be one SELECT/WITH statement. `check_permitted` refuses, before anything runs, what the
function's role may not do (template.yaml grants no more).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from snaplake.athena.errors import ForbiddenTarget, InvalidJob
from snaplake.athena.guard import check_database, check_folder, check_output
from snaplake.athena.plans import SaveMode
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import CtasOptions, sql_literal, validate_identifier, validate_location, validate_path_value, validate_select

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_WORK_GROUP = re.compile(r"[A-Za-z0-9._-]{1,128}")


class JobMode(StrEnum):
    QUERY = "query"
    CTAS = "ctas"
    APAS = "apas"
    ADD_PARTITION = "add_partition"
    DROP_PARTITION = "drop_partition"
    DROP_TABLE = "drop_table"


class TableMode(StrEnum):
    CREATE = "create"
    EMPTY = "empty"
    DATA_ONLY = "data_only"


MAX_DROPPED_PARTITIONS = 100  # one DROP PARTITION query each


_COMMON_FIELDS = {"name", "mode", "workGroup", "outputLocation"}
_FIELDS: Mapping[JobMode, frozenset[str]] = {
    JobMode.QUERY: frozenset({*_COMMON_FIELDS, "query", "database"}),
    JobMode.CTAS: frozenset(
        {
            *_COMMON_FIELDS,
            "database",
            "table",
            "query",
            "saveMode",
            "format",
            "writeCompression",
            "externalLocation",
            "partitionedBy",
            "bucketedBy",
            "bucketCount",
            "tableMode",
            "temporary",
        }
    ),
    JobMode.APAS: frozenset({*_COMMON_FIELDS, "database", "table", "query", "saveMode", "partition", "ignoreSchemaMismatch"}),
    JobMode.ADD_PARTITION: frozenset({*_COMMON_FIELDS, "database", "table", "partitions", "saveMode"}),
    JobMode.DROP_PARTITION: frozenset({*_COMMON_FIELDS, "database", "table", "partitions", "deleteData"}),
    JobMode.DROP_TABLE: frozenset({*_COMMON_FIELDS, "database", "table", "deleteData"}),
}


@dataclass(frozen=True)
class PartitionSpec:
    values: tuple[tuple[str, str | int], ...]  # (column, value) in the document's order
    location: str | None = None


@dataclass(frozen=True)
class Job:
    name: str
    mode: JobMode
    database: str | None = None
    table: str | None = None
    query: str | None = None
    save_mode: SaveMode = SaveMode.ERROR_IF_EXISTS
    options: CtasOptions | None = None  # ctas; external_location None means the default table folder
    partition: tuple[tuple[str, str | int], ...] = ()  # apas
    partitions: tuple[PartitionSpec, ...] = ()  # add_partition
    ignore_schema_mismatch: bool = False
    work_group: str | None = None
    output_location: str | None = None
    table_mode: TableMode = TableMode.CREATE  # ctas
    temporary: bool = False  # ctas
    delete_data: bool = False  # drop_partition, drop_table

    @property
    def target(self) -> str:
        return f"{self.database}.{self.table}"

    def as_json(self) -> dict[str, Any]:
        """The normalized document (defaults filled in); `parse_job` reads it back unchanged."""
        doc: dict[str, Any] = {"name": self.name, "mode": self.mode.value}
        for key, value in (("database", self.database), ("table", self.table), ("query", self.query)):
            if value is not None:
                doc[key] = value
        if self.mode in (JobMode.CTAS, JobMode.APAS, JobMode.ADD_PARTITION):
            doc["saveMode"] = self.save_mode.value
        if self.mode is JobMode.CTAS:
            doc.update(tableMode=self.table_mode.value, temporary=self.temporary)
        if self.mode in (JobMode.DROP_PARTITION, JobMode.DROP_TABLE):
            doc["deleteData"] = self.delete_data
        if self.options is not None:
            doc.update(format=self.options.format, writeCompression=self.options.write_compression)
            if self.options.external_location:
                doc["externalLocation"] = self.options.external_location
            if self.options.partitioned_by:
                doc["partitionedBy"] = list(self.options.partitioned_by)
            if self.options.bucketed_by:
                doc.update(bucketedBy=list(self.options.bucketed_by), bucketCount=self.options.bucket_count)
        if self.mode is JobMode.APAS:
            doc.update(partition=dict(self.partition), ignoreSchemaMismatch=self.ignore_schema_mismatch)
        if self.partitions:
            doc["partitions"] = [
                {"values": dict(spec.values), **({"location": spec.location} if spec.location else {})} for spec in self.partitions
            ]
        if self.work_group:
            doc["workGroup"] = self.work_group
        if self.output_location:
            doc["outputLocation"] = self.output_location
        return doc


def _string(raw: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidJob(f"{where}: '{key}' must be a non-empty string")
    return value


def _partition_values(raw: Any, where: str, *, names_folder: bool) -> tuple[tuple[str, str | int], ...]:
    """(column, value) pairs. `names_folder`: the job derives the partition's folder from the values (apas, and
    add_partition without a location), so they must name it as Athena does (`validate_path_value`)."""
    if not isinstance(raw, dict) or not raw:
        raise InvalidJob(f'{where}: partition values must be an object of column: value, e.g. {{"dt": "2024-05-01"}}')
    values: list[tuple[str, str | int]] = []
    for column, value in raw.items():
        validate_identifier(column, "partition column")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidJob(f"{where}: partition value of {column!r} must be a string or an integer")
        if names_folder:
            validate_path_value(value)
        sql_literal(value)
        values.append((column, value))
    return tuple(values)


def _name_list(raw: Mapping[str, Any], key: str, where: str, what: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise InvalidJob(f"{where}: '{key}' must be a list of column names")
    return tuple(validate_identifier(name, what) for name in value)


def _ctas_options(raw: Mapping[str, Any], where: str) -> CtasOptions:
    compression = raw.get("writeCompression", "SNAPPY")
    if compression is not None and not isinstance(compression, str):
        raise InvalidJob(f"{where}: 'writeCompression' must be a string or null")
    bucket_count = raw.get("bucketCount")
    if bucket_count is not None and (isinstance(bucket_count, bool) or not isinstance(bucket_count, int)):
        raise InvalidJob(f"{where}: 'bucketCount' must be an integer")
    location = _string(raw, "externalLocation", where, required=False)
    options = CtasOptions(
        format=str(_string(raw, "format", where, required=False) or "PARQUET").upper(),
        write_compression=compression.upper() if compression else None,
        external_location=validate_location(location) if location is not None else None,
        partitioned_by=_name_list(raw, "partitionedBy", where, "partition column"),
        bucketed_by=_name_list(raw, "bucketedBy", where, "bucket column"),
        bucket_count=bucket_count,
    )
    return options.validated()


def _flag(raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise InvalidJob(f"{where}: '{key}' must be true or false")
    return value


def _ctas_kind(raw: Mapping[str, Any], job: Job, where: str) -> Job:
    """tableMode and temporary: a temporary table is always replaced (save mode overwrite) and holds data."""
    try:
        table_mode = TableMode(str(raw.get("tableMode", TableMode.CREATE.value)).lower())
    except ValueError:
        raise InvalidJob(f"{where}: 'tableMode' must be one of {[m.value for m in TableMode]}, got {raw.get('tableMode')!r}") from None
    temporary = _flag(raw, "temporary", where)
    if temporary and table_mode is not TableMode.CREATE:
        raise InvalidJob(f"{where}: a temporary table is created with its data (tableMode create)")
    if temporary and raw.get("saveMode", SaveMode.OVERWRITE.value) != SaveMode.OVERWRITE.value:
        raise InvalidJob(f"{where}: a temporary table replaces any leftover of an earlier run: its saveMode is overwrite")
    return replace(job, table_mode=table_mode, temporary=temporary, save_mode=SaveMode.OVERWRITE if temporary else job.save_mode)


def _partition_specs(raw: Mapping[str, Any], where: str, *, with_locations: bool) -> tuple[PartitionSpec, ...]:
    entries = raw.get("partitions")
    shape = "{'values': {column: value}, 'location': optional s3:// folder}" if with_locations else "{'values': {column: value}}"
    if not isinstance(entries, list) or not entries:
        raise InvalidJob(f"{where}: 'partitions' must be a non-empty list of {shape}")
    specs = []
    for entry in entries:
        allowed = {"values", "location"} if with_locations else {"values"}
        if not isinstance(entry, dict) or set(entry) - allowed or "values" not in entry:
            raise InvalidJob(f"{where}: each partition is {shape}")
        location = entry.get("location")
        if location is not None:
            validate_location(location)
        specs.append(PartitionSpec(_partition_values(entry["values"], where, names_folder=location is None), location))
    return tuple(specs)


def parse_job(raw: Any, index: int = 0) -> Job:
    """A job document, validated; bad input raises `InvalidJob` or an `athena_sql` error naming the field."""
    where = f"job #{index + 1}"
    if not isinstance(raw, dict):
        raise InvalidJob(f"{where} must be a JSON object")
    try:
        mode = JobMode(str(raw.get("mode")))
    except ValueError:
        raise InvalidJob(f"{where}: 'mode' must be one of {[m.value for m in JobMode]}, got {raw.get('mode')!r}") from None
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
        raise InvalidJob(f"{where}: 'name' must be 1-64 characters of letters, digits, '_', '.' and '-'")
    if name is not None:
        where = f"job {name!r}"
    unknown = sorted(set(raw) - _FIELDS[mode])
    if unknown:
        raise InvalidJob(f"{where}: fields {unknown} are not used by mode {mode.value!r} (it takes {sorted(_FIELDS[mode])})")
    needs_table = mode is not JobMode.QUERY
    database = _string(raw, "database", where, required=needs_table)
    table = _string(raw, "table", where, required=needs_table)
    if database is not None:
        validate_identifier(database, "database")
    if table is not None:
        validate_identifier(table, "table")
    query = _string(raw, "query", where, required=mode in (JobMode.QUERY, JobMode.CTAS, JobMode.APAS))
    if query is not None:
        query = validate_select(query)
    work_group = _string(raw, "workGroup", where, required=False)
    if work_group is not None and not _WORK_GROUP.fullmatch(work_group):
        raise InvalidJob(f"{where}: 'workGroup' {work_group!r} is not a work group name")
    output = _string(raw, "outputLocation", where, required=False)
    job = Job(
        name=name or f"{index + 1}_{mode.value}{'_' + table if table else ''}",
        mode=mode,
        database=database,
        table=table,
        query=query,
        work_group=work_group,
        output_location=validate_location(output) if output is not None else None,
    )
    if mode in (JobMode.CTAS, JobMode.APAS):
        job = replace(job, save_mode=SaveMode.parse(raw.get("saveMode", SaveMode.ERROR_IF_EXISTS.value)))
    if mode is JobMode.CTAS:
        job = _ctas_kind(raw, replace(job, options=_ctas_options(raw, where)), where)
    if mode is JobMode.APAS:
        if "partition" not in raw:
            raise InvalidJob(f"{where}: an apas job needs 'partition', the values of the partition it writes")
        ignore = raw.get("ignoreSchemaMismatch", False)
        if not isinstance(ignore, bool):
            raise InvalidJob(f"{where}: 'ignoreSchemaMismatch' must be true or false")
        job = replace(job, partition=_partition_values(raw["partition"], where, names_folder=True), ignore_schema_mismatch=ignore)
    if mode is JobMode.ADD_PARTITION:
        # Adding a partition that exists changes nothing (ADD IF NOT EXISTS) unless the save mode says otherwise.
        save_mode = SaveMode.parse(raw.get("saveMode", SaveMode.SKIP_IF_EXISTS.value))
        job = replace(job, partitions=_partition_specs(raw, where, with_locations=True), save_mode=save_mode)
    if mode is JobMode.DROP_PARTITION:
        job = replace(job, partitions=_partition_specs(raw, where, with_locations=False))
        if len(job.partitions) > MAX_DROPPED_PARTITIONS:
            raise InvalidJob(f"{where}: at most {MAX_DROPPED_PARTITIONS} partitions per drop_partition job")
    if mode in (JobMode.DROP_PARTITION, JobMode.DROP_TABLE):
        job = replace(job, delete_data=_flag(raw, "deleteData", where))
    return job


def check_permitted(job: Job, settings: AthenaSettings) -> None:
    """What the jobs may do (template.yaml grants the function's role no more): one work group; read the databases
    beginning with GlueDatabasePrefix; change tables only in job databases (`ForbiddenTarget` otherwise); write data and
    register partitions only under the jobs folder, query results there or in the function's results folder."""
    where = f"job {job.name}"
    if job.work_group not in (None, settings.work_group):
        raise InvalidJob(f"{where}: 'workGroup' {job.work_group!r}: jobs run in the stack's work group {settings.work_group!r} only")
    if job.database is not None and not job.database.startswith(settings.glue_database_prefix):
        raise InvalidJob(
            f"{where}: database {job.database!r} does not begin with {settings.glue_database_prefix!r} (GlueDatabasePrefix), "
            "the only databases the jobs may use"
        )
    if job.database is not None and job.mode is not JobMode.QUERY:
        check_database(where, job.database, settings)
    if job.output_location is not None:
        check_output(f"{where}: outputLocation", job.output_location, settings)
    if job.options is not None and job.options.external_location is not None:
        check_folder(f"{where}: externalLocation", job.options.external_location, settings)
        if job.temporary and not job.options.external_location.startswith(settings.temporary_location):
            raise ForbiddenTarget(
                f"{where}: a temporary table's externalLocation lies under {settings.temporary_location} (or leave it out): "
                "its folder is deleted when the run ends"
            )
    for spec in job.partitions:
        if spec.location is not None:
            check_folder(f"{where}: partition location", spec.location, settings)


def validate_jobs(raw: Any, settings: AthenaSettings) -> list[dict[str, Any]]:
    """Every job of a run, validated before any runs; returns the normalized documents."""
    if not isinstance(raw, list) or not raw:
        raise InvalidJob("'jobs' must be a non-empty list of job documents")
    jobs = [parse_job(item, index) for index, item in enumerate(raw)]
    for job in jobs:
        check_permitted(job, settings)
    names = [job.name for job in jobs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidJob(f"job names must be unique; repeated: {repeated}")
    return [job.as_json() for job in jobs]
