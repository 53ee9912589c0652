"""Athena SQL jobs: job documents, their plans, and a step-at-a-time executor.

A job document (one item of the athena_etl state machine's `{"jobs": [...]}`)
names a mode and its fields:

- `query`: run the declared SELECT; the results land in the output location.
- `ctas`: create `database.table` as the SELECT, with a save mode
  (error_if_exists, the default; skip_if_exists; overwrite; none) and CTAS options.
  Partitioned tables first list the partitions the SELECT yields, so no query
  writes more than 100 (one CTAS, then INSERT INTO batches).
- `apas`: add one partition of an existing table as the SELECT: a schema
  dry-run (an empty CTAS) compared with the table (`SchemaMismatch` unless
  `ignoreSchemaMismatch`), the rows written with INSERT INTO, the partition added.
- `add_partition`: register partitions (values and optional locations).

Every identifier and literal goes through `athena_sql`; the only SQL taken
from the document is the SELECT, checked to be one SELECT/WITH statement.

Execution is split so no Lambda invocation waits on Athena: `run_job_step`
plans the job on its first call (the plan is stored in S3, the state payload
only carries a cursor), then runs steps in order until it starts a query that
has not finished yet, and returns the cursor with that QueryExecutionId. The
state machine polls the query and calls back; the next call checks the query's
final state (FAILED / CANCELLED raise `QueryFailed` / `QueryCancelled` with
Athena's StateChangeReason) and carries on with the next step.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from snaplake.athena_sql import (
    MAX_PARTITIONS_PER_QUERY,
    CtasOptions,
    ExistingTable,
    InvalidLiteral,
    PartitionValues,
    Plan,
    SaveMode,
    SchemaMismatch,
    Step,
    build_add_partition,
    build_distinct_partitions,
    check_schema,
    partition_location,
    plan_apas,
    plan_ctas,
    sql_literal,
    validate_identifier,
    validate_location,
    validate_select,
)
from snaplake.aws import TRANSIENT_ERROR_CODES, lake_access
from snaplake.catalog import CatalogOptions, ensure_database
from snaplake.catalog import _get_table as get_glue_table
from snaplake.config import AthenaSettings, lake_write_args
from snaplake.errors import (
    CatalogUpdateFailed,
    DataDeletionFailed,
    InvalidJob,
    LocationNotEmpty,
    QueryCancelled,
    QueryFailed,
    TableNotFound,
    TransientAwsError,
    UnsafeOverwrite,
)

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_WORK_GROUP = re.compile(r"[A-Za-z0-9._-]{1,128}")
RUNNING_STATES = ("QUEUED", "RUNNING")
DDL_WAIT_SECONDS = 2  # ALTER / DROP finish in about a second
QUERY_WAIT_SECONDS = 5
DELETE_BATCH = 1000  # DeleteObjects' per-call maximum
GLUE_PARTITION_BATCH = 25  # BatchDeletePartition's per-call maximum
RESERVE_MS = 30_000  # time a step needs that is not started near the end of an invocation
_INTEGER_TYPES = {"tinyint", "smallint", "int", "integer", "bigint"}


class JobMode(StrEnum):
    QUERY = "query"
    CTAS = "ctas"
    APAS = "apas"
    ADD_PARTITION = "add_partition"


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
        }
    ),
    JobMode.APAS: frozenset({*_COMMON_FIELDS, "database", "table", "query", "saveMode", "partition", "ignoreSchemaMismatch"}),
    JobMode.ADD_PARTITION: frozenset({*_COMMON_FIELDS, "database", "table", "partitions"}),
}


# --- Job documents -----------------------------------------------------------------------------


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

    @property
    def target(self) -> str:
        return f"{self.database}.{self.table}"

    def as_json(self) -> dict[str, Any]:
        """The normalized document (defaults filled in); `parse_job` reads it back unchanged."""
        doc: dict[str, Any] = {"name": self.name, "mode": self.mode.value}
        for key, value in (("database", self.database), ("table", self.table), ("query", self.query)):
            if value is not None:
                doc[key] = value
        if self.mode in (JobMode.CTAS, JobMode.APAS):
            doc["saveMode"] = self.save_mode.value
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


def _partition_values(raw: Any, where: str) -> tuple[tuple[str, str | int], ...]:
    if not isinstance(raw, dict) or not raw:
        raise InvalidJob(f'{where}: partition values must be an object of column: value, e.g. {{"dt": "2024-05-01"}}')
    values: list[tuple[str, str | int]] = []
    for column, value in raw.items():
        validate_identifier(column, "partition column")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidJob(f"{where}: partition value of {column!r} must be a string or an integer")
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
    query = _string(raw, "query", where, required=mode is not JobMode.ADD_PARTITION)
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
        job = replace(job, options=_ctas_options(raw, where))
    if mode is JobMode.APAS:
        if "partition" not in raw:
            raise InvalidJob(f"{where}: an apas job needs 'partition', the values of the partition it writes")
        ignore = raw.get("ignoreSchemaMismatch", False)
        if not isinstance(ignore, bool):
            raise InvalidJob(f"{where}: 'ignoreSchemaMismatch' must be true or false")
        job = replace(job, partition=_partition_values(raw["partition"], where), ignore_schema_mismatch=ignore)
    if mode is JobMode.ADD_PARTITION:
        entries = raw.get("partitions")
        if not isinstance(entries, list) or not entries:
            raise InvalidJob(f"{where}: 'partitions' must be a non-empty list of {{'values': {{...}}, 'location': ...}}")
        specs = []
        for entry in entries:
            if not isinstance(entry, dict) or set(entry) - {"values", "location"} or "values" not in entry:
                raise InvalidJob(f"{where}: each partition is {{'values': {{column: value}}, 'location': optional s3:// folder}}")
            location = entry.get("location")
            if location is not None:
                validate_location(location)
            specs.append(PartitionSpec(_partition_values(entry["values"], where), location))
        job = replace(job, partitions=tuple(specs))
    return job


def check_permitted(job: Job, settings: AthenaSettings) -> None:
    """What the function's role may do (template.yaml grants no more): one work group, the databases
    beginning with GlueDatabasePrefix, writes only under LakePrefix in the lake bucket."""
    where = f"job {job.name}"
    if job.work_group not in (None, settings.work_group):
        raise InvalidJob(f"{where}: 'workGroup' {job.work_group!r}: jobs run in the stack's work group {settings.work_group!r} only")
    if job.database is not None and not job.database.startswith(settings.glue_database_prefix):
        raise InvalidJob(
            f"{where}: database {job.database!r} does not begin with {settings.glue_database_prefix!r} (GlueDatabasePrefix), "
            "the only databases the jobs may use"
        )
    written = {"outputLocation": job.output_location}
    if job.options is not None:
        written["externalLocation"] = job.options.external_location
    for name, location in written.items():
        # The root itself holds the pipelines' own folders: a table there would own (and an overwrite delete) all of them.
        if location is not None and (not location.startswith(settings.lake_root) or location == settings.lake_root):
            raise InvalidJob(f"{where}: {name} {location!r} is not a folder under {settings.lake_root}, where the jobs may write")


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


# --- Run identity and cursor -------------------------------------------------------------------


def run_id_for(execution: str | None, start_time: str | None, index: int) -> str:
    """`<yyyymmdd>t<hhmmss>_<hash>`: the same for every call of one job in one execution (retries
    included), so staging tables, folders and query tokens are stable; new per execution."""
    started = datetime.now(UTC)
    if start_time:
        try:
            started = datetime.fromisoformat(start_time.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            raise InvalidJob(f"startTime {start_time!r} is not an ISO 8601 timestamp") from None
    seed = f"{execution}#{index}" if execution else uuid.uuid4().hex
    return f"{started:%Y%m%dt%H%M%S}_{hashlib.sha256(seed.encode()).hexdigest()[:8]}"


@dataclass
class Cursor:
    """Where a job is: small enough for the state payload whatever the plan's size."""

    run_id: str
    phase: str = "start"  # start -> (partitions) -> steps -> done
    plan: dict[str, str] | None = None  # {"bucket", "key"} of the stored plan
    step: int = 0
    steps: int = 0
    query_execution_id: str | None = None
    wait_seconds: int = 0
    queries: int = 0
    output_location: str | None = None
    skipped: bool = False
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.phase == "done"

    @classmethod
    def parse(cls, raw: Any, run_id: str) -> Cursor:
        if raw in (None, {}):
            return cls(run_id)
        if not isinstance(raw, dict) or raw.get("runId") != run_id or raw.get("phase") not in ("start", "partitions", "steps", "done"):
            raise InvalidJob("'cursor' must be {} or the cursor the previous step returned for this job and execution")
        return cls(
            run_id=run_id,
            phase=raw["phase"],
            plan=raw.get("plan"),
            step=int(raw.get("step", 0)),
            steps=int(raw.get("steps", 0)),
            query_execution_id=raw.get("queryExecutionId"),
            wait_seconds=int(raw.get("waitSeconds", 0)),
            queries=int(raw.get("queries", 0)),
            output_location=raw.get("outputLocation"),
            skipped=bool(raw.get("skipped", False)),
            reason=str(raw.get("reason", "")),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "phase": self.phase,
            "plan": self.plan,
            "step": self.step,
            "steps": self.steps,
            "queryExecutionId": self.query_execution_id,
            "waitSeconds": self.wait_seconds,
            "queries": self.queries,
            "outputLocation": self.output_location,
            "skipped": self.skipped,
            "reason": self.reason,
            "done": self.done,
        }


@dataclass(frozen=True)
class AthenaClients:
    athena: Any
    glue: Any
    s3: Any


# --- S3 and Glue helpers -----------------------------------------------------------------------


def split_location(location: str) -> tuple[str, str]:
    bucket, _, prefix = validate_location(location)[len("s3://") :].partition("/")
    return bucket, prefix


def _folder(location: str) -> str:
    return location if location.endswith("/") else location + "/"


@dataclass
class _Run:
    """One job of one execution: plans it and runs its steps."""

    clients: AthenaClients
    settings: AthenaSettings
    job: Job
    index: int
    run_id: str
    remaining_ms: Callable[[], int]
    _steps: list[Step] | None = field(default=None, repr=False)

    # ---- S3
    def _owner(self, bucket: str) -> dict[str, str]:
        owner = self.settings.lake_bucket_owner
        return {"ExpectedBucketOwner": owner} if owner and bucket == self.settings.lake_bucket else {}

    def _access(self, bucket: str, action: str) -> AbstractContextManager[None]:
        """A refused lake request raises LakeAccessDenied naming what to check (other buckets: S3's own error)."""
        if bucket != self.settings.lake_bucket:
            return nullcontext()
        key = self.settings.lake_kms_key_arn if action in ("read", "write") else None
        return lake_access(bucket, self.settings.lake_bucket_owner, key, action)

    def _keys(self, location: str) -> list[str]:
        bucket, prefix = split_location(location)
        with self._access(bucket, "list"):
            pages = self.clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **self._owner(bucket))
            return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def _require_empty(self, location: str) -> None:
        bucket, prefix = split_location(location)
        with self._access(bucket, "list"):
            listed = self.clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1, **self._owner(bucket))
        found = [obj["Key"] for obj in listed.get("Contents", [])]
        if found:
            raise LocationNotEmpty(
                f"job {self.job.name}: {location} already holds objects (e.g. {found[0]}); Athena writes a new table's data "
                "only into an empty folder: delete them or choose another externalLocation"
            )

    def _delete_location(self, location: str, keep: str | None) -> bool:
        """Delete every object under `location` except those under `keep`; False when out of time (call again)."""
        bucket = split_location(location)[0]
        kept = split_location(keep)[1] if keep else None
        doomed = [key for key in self._keys(location) if not (kept and key.startswith(kept))]
        for start in range(0, len(doomed), DELETE_BATCH):
            if start and self.remaining_ms() < RESERVE_MS:
                return False
            chunk = doomed[start : start + DELETE_BATCH]
            with self._access(bucket, "delete"):
                response = self.clients.s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}, **self._owner(bucket)
                )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise DataDeletionFailed(
                    f"job {self.job.name}: {len(errors)} objects under {location} were not deleted, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}"
                )
        return True

    def _store_plan(self, cursor: Cursor, plan: Plan) -> None:
        bucket, prefix = split_location(self.settings.work_location)
        key = f"{prefix}plans/{self.job.name}/{cursor.run_id}.json"
        body = {"job": self.job.as_json(), "runId": cursor.run_id, "createdAt": datetime.now(UTC).isoformat(), **plan.as_json()}
        args = lake_write_args(bucket, None, None)
        if bucket == self.settings.lake_bucket:
            args = lake_write_args(bucket, self.settings.lake_bucket_owner, self.settings.lake_kms_key_arn)
        with self._access(bucket, "write"):
            self.clients.s3.put_object(**args, Key=key, Body=json.dumps(body, indent=1).encode(), ContentType="application/json")
        cursor.plan = {"bucket": bucket, "key": key}
        cursor.steps, cursor.step = len(plan.steps), 0
        cursor.phase = "done" if plan.skipped or not plan.steps else "steps"
        cursor.skipped, cursor.reason = plan.skipped, plan.reason
        self._steps = list(plan.steps)

    def _load_steps(self, cursor: Cursor) -> list[Step]:
        if self._steps is None:
            assert cursor.plan is not None
            bucket = cursor.plan["bucket"]
            body = self.clients.s3.get_object(Bucket=bucket, Key=cursor.plan["key"], **self._owner(bucket))["Body"].read()
            self._steps = [Step(**step) for step in json.loads(body)["steps"]]
        return self._steps

    # ---- Glue
    @property
    def _database(self) -> str:
        assert self.job.database is not None
        return self.job.database

    def _table(self, name: str) -> dict[str, Any] | None:
        return get_glue_table(self.clients.glue, self._database, name, CatalogOptions())

    def _require_table(self) -> dict[str, Any]:
        assert self.job.table is not None
        table = self._table(self.job.table)
        if table is None:
            raise TableNotFound(f"job {self.job.name}: table {self.job.target} does not exist (create it first, e.g. with a ctas job)")
        return table

    def _partitions(self, table: str) -> list[dict[str, Any]]:
        pages = self.clients.glue.get_paginator("get_partitions").paginate(DatabaseName=self._database, TableName=table)
        return [partition for page in pages for partition in page["Partitions"]]

    def _replace_table(self, table: str, source_table: str) -> None:
        """Give `table` the definition and partitions of `source_table`, then drop `source_table` (Glue only: data stays)."""
        glue, database = self.clients.glue, self._database
        source = self._table(source_table)
        current = self._table(table)
        if source is None and current is not None and current["StorageDescriptor"].get("Location", "").rstrip("/").endswith(self.run_id):
            return  # a retried call: this run already moved the table to its new folder
        if source is None:
            raise TableNotFound(f"job {self.job.name}: the new table {database}.{source_table} is missing; was it dropped?")
        table_input = {
            "Name": table,
            "TableType": source.get("TableType", "EXTERNAL_TABLE"),
            "Parameters": {**source.get("Parameters", {}), "snaplake_job": self.job.name},
            "PartitionKeys": source.get("PartitionKeys", []),
            "StorageDescriptor": source["StorageDescriptor"],
        }
        if current is not None and current.get("PartitionKeys", []) == table_input["PartitionKeys"]:
            glue.update_table(DatabaseName=database, TableInput=table_input)
        else:
            if current is not None:
                glue.delete_table(DatabaseName=database, Name=table)
            glue.create_table(DatabaseName=database, TableInput=table_input)
        if table_input["PartitionKeys"]:
            self._swap_partitions(table, source_table)
        glue.delete_table(DatabaseName=database, Name=source_table)

    def _swap_partitions(self, table: str, source_table: str) -> None:
        """The new partitions replace the old ones: same values are repointed, others created or removed."""
        glue, database = self.clients.glue, self._database
        keep = ("Values", "StorageDescriptor", "Parameters")
        new = {tuple(p["Values"]): {k: p[k] for k in keep if k in p} for p in self._partitions(source_table)}
        old = {tuple(p["Values"]) for p in self._partitions(table)}
        updates = [{"PartitionValueList": list(values), "PartitionInput": new[values]} for values in new if values in old]
        # Glue reports per-partition failures in the answer instead of raising: any of them must stop the job
        # before the old data is deleted (a partition still pointing at it would lose its rows).
        for start in range(0, len(updates), MAX_PARTITIONS_PER_QUERY):
            entries = updates[start : start + MAX_PARTITIONS_PER_QUERY]
            answer = glue.batch_update_partition(DatabaseName=database, TableName=table, Entries=entries)
            self._check_partition_errors("repoint", table, answer)
        created = [new[values] for values in new if values not in old]
        for start in range(0, len(created), MAX_PARTITIONS_PER_QUERY):
            chunk = created[start : start + MAX_PARTITIONS_PER_QUERY]
            answer = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=chunk)
            self._check_partition_errors("create", table, answer, tolerated="AlreadyExistsException")
        gone = [{"Values": list(values)} for values in old if values not in new]
        for start in range(0, len(gone), GLUE_PARTITION_BATCH):
            removed = gone[start : start + GLUE_PARTITION_BATCH]
            answer = glue.batch_delete_partition(DatabaseName=database, TableName=table, PartitionsToDelete=removed)
            self._check_partition_errors("remove", table, answer, tolerated="EntityNotFoundException")

    def _check_partition_errors(self, action: str, table: str, answer: Mapping[str, Any], tolerated: str = "") -> None:
        failures = [e for e in answer.get("Errors", []) if e.get("ErrorDetail", {}).get("ErrorCode") != tolerated]
        if not failures:
            return
        detail = failures[0].get("ErrorDetail", {})
        code, message = detail.get("ErrorCode", ""), detail.get("ErrorMessage", "")
        what = f"job {self.job.name}: could not {action} {len(failures)} partition(s) of {self._database}.{table}"
        what += f" (first {failures[0].get('PartitionValues')}: {code} {message})"
        if code in TRANSIENT_ERROR_CODES or code in ("InternalServiceException", "ConcurrentModificationException"):
            raise TransientAwsError(what)
        raise CatalogUpdateFailed(what)

    def _check_schema(self, table: str, probe: str) -> None:
        target, produced = self._table(table), self._table(probe)
        if target is None or produced is None:
            raise TableNotFound(f"job {self.job.name}: {self._database}.{table if target is None else probe} is missing")

        def columns(definition: dict[str, Any]) -> list[tuple[str, str]]:
            return [(c["Name"], c["Type"]) for c in definition["StorageDescriptor"].get("Columns", [])]

        try:
            check_schema(f"{self._database}.{table}", columns(target), columns(produced))
        except SchemaMismatch:
            # The probe is metadata only (it selected no rows): drop it here rather than leave it behind.
            self.clients.glue.delete_table(DatabaseName=self._database, Name=probe)
            raise

    # ---- Athena
    def _token(self, cursor: Cursor, label: str) -> str:
        """Athena's idempotency token: a retried call starts no second query for the same step."""
        return f"snaplake-{cursor.run_id}-{self.index}-{label}".ljust(32, "0")[:128]

    def _start_query(self, cursor: Cursor, sql: str, label: str) -> None:
        params: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": self.job.work_group or self.settings.work_group,
            "ClientRequestToken": self._token(cursor, label),
            "ResultConfiguration": {"OutputLocation": self.job.output_location or self.settings.output_location},
        }
        if self.job.database:
            params["QueryExecutionContext"] = {"Database": self.job.database}
        cursor.query_execution_id = str(self.clients.athena.start_query_execution(**params)["QueryExecutionId"])
        cursor.queries += 1
        cursor.wait_seconds = DDL_WAIT_SECONDS if sql.lstrip().upper().startswith(("ALTER", "DROP")) else QUERY_WAIT_SECONDS

    def _what(self, cursor: Cursor) -> str:
        if cursor.phase == "partitions":
            return "listing the partitions to write"
        steps = self._load_steps(cursor)
        return f"step {cursor.step + 1}/{len(steps)} ({steps[cursor.step].description})"

    def _query_finished(self, cursor: Cursor) -> bool:
        """False while the query runs; raises `QueryFailed` / `QueryCancelled` with Athena's reason."""
        query_id = cursor.query_execution_id
        execution = self.clients.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        status = execution["Status"]
        state = status["State"]
        if state in RUNNING_STATES:
            return False
        if state == "SUCCEEDED":
            cursor.output_location = execution.get("ResultConfiguration", {}).get("OutputLocation")
            return True
        reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage") or "Athena gave no reason"
        error = QueryCancelled if state == "CANCELLED" else QueryFailed
        raise error(f"job {self.job.name}: {self._what(cursor)}: Athena query {query_id} {state}: {reason}")

    def _partition_values(self, query_id: str) -> list[PartitionValues]:
        """The distinct-partitions query's rows (GetQueryResults, every page; the first row is the header)."""
        rows: list[PartitionValues] = []
        types: list[str] = []
        header = True
        for page in self.clients.athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
            result = page["ResultSet"]
            if not types:
                types = [str(c.get("Type", "varchar")).lower() for c in result.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
            data = result.get("Rows", [])
            if header:
                data, header = data[1:], False
            for row in data:
                values: list[str | int] = []
                for position, cell in enumerate(row["Data"]):
                    value = cell.get("VarCharValue")
                    if value is None:
                        raise InvalidLiteral(
                            f"job {self.job.name}: the SELECT yields NULL partition values; COALESCE the partition columns in the SELECT"
                        )
                    kind = types[position] if position < len(types) else "varchar"
                    values.append(int(value) if kind in _INTEGER_TYPES else value)
                rows.append(tuple(values))
        return rows

    # ---- planning
    def _table_folder(self) -> str:
        assert self.job.options is not None and self.job.table is not None
        return self.job.options.external_location or f"{self.settings.tables_location}{self._database}/{self.job.table}/"

    def _plan_ctas(self, cursor: Cursor, partition_values: Sequence[PartitionValues] | None) -> Plan:
        assert self.job.options is not None and self.job.table is not None and self.job.query is not None
        options = CtasOptions(
            self.job.options.format,
            self.job.options.write_compression,
            self._table_folder(),
            self.job.options.partitioned_by,
            self.job.options.bucketed_by,
            self.job.options.bucket_count,
        )
        found = self._table(self.job.table)
        existing = ExistingTable(_folder(found["StorageDescriptor"].get("Location", ""))) if found else None
        if existing is not None and self.job.save_mode is SaveMode.OVERWRITE and not existing.location.startswith(self._table_folder()):
            raise UnsafeOverwrite(
                f"job {self.job.name}: {self.job.target} keeps its data at {existing.location}, outside the job's folder "
                f"{self._table_folder()}; overwrite only deletes data under the job's own externalLocation"
            )
        return plan_ctas(
            self._database,
            self.job.table,
            self.job.query,
            options,
            self.job.save_mode,
            existing,
            run_id=cursor.run_id,
            partition_values=partition_values,
        )

    def _plan_apas(self, cursor: Cursor) -> Plan:
        assert self.job.table is not None and self.job.query is not None
        target = self._require_table()
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        given = dict(self.job.partition)
        if set(given) != set(keys):
            raise InvalidJob(f"job {self.job.name}: {self.job.target} is partitioned by {keys}; 'partition' gives {sorted(given)}")
        values = tuple(given[key] for key in keys)
        try:
            self.clients.glue.get_partition(DatabaseName=self._database, TableName=self.job.table, PartitionValues=[str(v) for v in values])
            exists = True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                raise
            exists = False
        return plan_apas(
            self._database,
            self.job.table,
            self.job.query,
            partition_columns=keys,
            partition_values=values,
            table_location=_folder(target["StorageDescriptor"]["Location"]),
            mode=self.job.save_mode,
            partition_exists=exists,
            run_id=cursor.run_id,
            probe_location=f"{self.settings.work_location}probes/",
            ignore_schema_mismatch=self.job.ignore_schema_mismatch,
        )

    def _plan_add_partition(self) -> Plan:
        assert self.job.table is not None
        target = self._require_table()
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        location = _folder(target["StorageDescriptor"]["Location"])
        partitions: list[tuple[PartitionValues, str]] = []
        for spec in self.job.partitions:
            given = dict(spec.values)
            if set(given) != set(keys):
                raise InvalidJob(f"job {self.job.name}: {self.job.target} is partitioned by {keys}; a partition gives {sorted(given)}")
            values = tuple(given[key] for key in keys)
            partitions.append((values, spec.location or partition_location(location, keys, values)))
        batches = [partitions[i : i + MAX_PARTITIONS_PER_QUERY] for i in range(0, len(partitions), MAX_PARTITIONS_PER_QUERY)]
        sqls = [build_add_partition(self._database, self.job.table, batch, keys) for batch in batches]
        return Plan(tuple(Step("query", f"add partitions ({n + 1}/{len(sqls)})", sql=sql) for n, sql in enumerate(sqls)))

    def _begin(self, cursor: Cursor) -> None:
        """Plan the job (CTAS into a partitioned table first lists its partitions with a query)."""
        job = self.job
        if job.mode is JobMode.QUERY:
            assert job.query is not None
            self._store_plan(cursor, Plan((Step("query", "run the query", sql=job.query),)))
        elif job.mode is JobMode.ADD_PARTITION:
            self._store_plan(cursor, self._plan_add_partition())
        elif job.mode is JobMode.APAS:
            self._store_plan(cursor, self._plan_apas(cursor))
        else:
            assert job.options is not None and job.query is not None
            ensure_database(self.clients.glue, self._database)
            plan = self._plan_ctas(cursor, None)  # raises for error_if_exists, decides skip_if_exists
            if plan.skipped or not job.options.partitioned_by:
                self._store_plan(cursor, plan)
                return
            cursor.phase = "partitions"
            self._start_query(cursor, build_distinct_partitions(job.query, job.options.partitioned_by), "partitions")

    def _after_query(self, cursor: Cursor) -> None:
        query_id = cursor.query_execution_id
        assert query_id is not None
        cursor.query_execution_id = None
        if cursor.phase == "partitions":
            self._store_plan(cursor, self._plan_ctas(cursor, self._partition_values(query_id)))
        else:
            cursor.step += 1

    def advance(self, cursor: Cursor) -> Cursor:
        """Run steps until a query is started (or the job ends).

        The invocation returns as soon as a query is started: a retried
        invocation then repeats only steps that are safe to repeat (Glue and
        S3 steps of this run, and a start with the same idempotency token).
        """
        if cursor.query_execution_id is not None:
            if not self._query_finished(cursor):
                return cursor
            self._after_query(cursor)
        worked = False
        while not cursor.done and cursor.query_execution_id is None:
            if cursor.phase == "start":
                self._begin(cursor)
                worked = True
                continue
            steps = self._load_steps(cursor)
            if cursor.step >= len(steps):
                cursor.phase = "done"
                break
            if worked and self.remaining_ms() < RESERVE_MS:
                cursor.wait_seconds = 0
                return cursor
            step = steps[cursor.step]
            worked = True
            if step.kind == "query":
                assert step.sql is not None
                self._start_query(cursor, step.sql, f"s{cursor.step:05d}")
                return cursor
            if step.kind == "require_empty":
                assert step.location is not None
                self._require_empty(step.location)
            elif step.kind == "replace_table":
                assert step.table is not None and step.source_table is not None
                self._replace_table(step.table, step.source_table)
            elif step.kind == "delete_location":
                assert step.location is not None
                if not self._delete_location(step.location, step.keep):
                    cursor.wait_seconds = 0
                    return cursor
            elif step.kind == "check_schema":
                assert step.table is not None and step.source_table is not None
                self._check_schema(step.table, step.source_table)
            else:
                raise InvalidJob(f"job {self.job.name}: the stored plan has an unknown step kind {step.kind!r}")
            cursor.step += 1
        if cursor.done:
            cursor.wait_seconds = 0
        return cursor


def run_job_step(
    clients: AthenaClients, settings: AthenaSettings, request: Mapping[str, Any], remaining_ms: Callable[[], int]
) -> dict[str, Any]:
    """One call of the job loop: `{"job", "index", "execution", "startTime", "cursor"}` -> the next cursor.

    The cursor says `done`, or names the running `queryExecutionId` to poll
    before calling again, or (`queryExecutionId` null, not done) asks to be
    called again at once because the invocation ran short of time.
    """
    index = request.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise InvalidJob("'index' must be the job's position in the list (an integer >= 0)")
    job = parse_job(request.get("job"), index)
    check_permitted(job, settings)
    execution, start_time = request.get("execution"), request.get("startTime")
    if (execution is not None and not isinstance(execution, str)) or (start_time is not None and not isinstance(start_time, str)):
        raise InvalidJob("'execution' and 'startTime' must be strings (the execution's id and start time)")
    raw_cursor = request.get("cursor")
    # A cursor carries its run id, so calls outside a state machine (no execution id) continue the same run.
    carried = raw_cursor.get("runId") if isinstance(raw_cursor, dict) else None
    run_id = validate_identifier(carried, "cursor runId") if carried is not None else run_id_for(execution, start_time, index)
    cursor = Cursor.parse(raw_cursor, run_id)
    run = _Run(clients, settings, job, index, run_id, remaining_ms)
    cursor = run.advance(cursor)
    result = cursor.as_json()
    if cursor.done:
        result["result"] = {
            "job": job.name,
            "mode": job.mode.value,
            "status": "SKIPPED" if cursor.skipped else "SUCCEEDED",
            "reason": cursor.reason,
            "queries": cursor.queries,
            "target": job.target if job.table else None,
            "outputLocation": cursor.output_location if job.mode is JobMode.QUERY else None,
        }
    return result
