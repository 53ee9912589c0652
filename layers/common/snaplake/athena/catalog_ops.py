"""The Glue side of one Athena job run: the target table, a replaced table's definition and partitions swapped onto it,
and the APAS schema check.

Glue reports per-partition failures of its batch calls in the answer instead of raising; every one of them stops
the job here (`CatalogUpdateFailed`, or `TransientAwsError` for throttling) before anything depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snaplake.athena.errors import CatalogUpdateFailed, SchemaMismatch, TableNotFound
from snaplake.athena.jobs import Job
from snaplake.athena.plans import check_schema
from snaplake.catalog import CatalogOptions, get_table
from snaplake.core.aws import TRANSIENT_ERROR_CODES
from snaplake.core.errors import TransientAwsError
from snaplake.core.limits import GLUE_BATCH_CREATE_PARTITION_MAX, GLUE_BATCH_DELETE_PARTITION_MAX, GLUE_BATCH_UPDATE_PARTITION_MAX


@dataclass
class JobTables:
    """Glue for one job of one execution (the job's database)."""

    glue: Any
    job: Job
    run_id: str

    @property
    def database(self) -> str:
        assert self.job.database is not None
        return self.job.database

    def table(self, name: str) -> dict[str, Any] | None:
        return get_table(self.glue, self.database, name, CatalogOptions())

    def require_table(self) -> dict[str, Any]:
        assert self.job.table is not None
        table = self.table(self.job.table)
        if table is None:
            raise TableNotFound(f"job {self.job.name}: table {self.job.target} does not exist (create it first, e.g. with a ctas job)")
        return table

    def partitions(self, table: str) -> list[dict[str, Any]]:
        pages = self.glue.get_paginator("get_partitions").paginate(DatabaseName=self.database, TableName=table)
        return [partition for page in pages for partition in page["Partitions"]]

    def replace_table(self, table: str, source_table: str) -> None:
        """Give `table` the definition and partitions of `source_table`, then drop `source_table` (Glue only: data stays)."""
        glue, database = self.glue, self.database
        source = self.table(source_table)
        current = self.table(table)
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
            self.swap_partitions(table, source_table)
        glue.delete_table(DatabaseName=database, Name=source_table)

    def swap_partitions(self, table: str, source_table: str) -> None:
        """The new partitions replace the old ones: same values are repointed, others created or removed."""
        glue, database = self.glue, self.database
        keep = ("Values", "StorageDescriptor", "Parameters")
        new = {tuple(p["Values"]): {k: p[k] for k in keep if k in p} for p in self.partitions(source_table)}
        old = {tuple(p["Values"]) for p in self.partitions(table)}
        updates = [{"PartitionValueList": list(values), "PartitionInput": new[values]} for values in new if values in old]
        # Any failure must stop the job before the old data is deleted (a partition still pointing at it would lose its rows).
        for start in range(0, len(updates), GLUE_BATCH_UPDATE_PARTITION_MAX):
            entries = updates[start : start + GLUE_BATCH_UPDATE_PARTITION_MAX]
            answer = glue.batch_update_partition(DatabaseName=database, TableName=table, Entries=entries)
            self.check_partition_errors("repoint", table, answer)
        created = [new[values] for values in new if values not in old]
        for start in range(0, len(created), GLUE_BATCH_CREATE_PARTITION_MAX):
            chunk = created[start : start + GLUE_BATCH_CREATE_PARTITION_MAX]
            answer = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=chunk)
            self.check_partition_errors("create", table, answer, tolerated="AlreadyExistsException")
        gone = [{"Values": list(values)} for values in old if values not in new]
        for start in range(0, len(gone), GLUE_BATCH_DELETE_PARTITION_MAX):
            removed = gone[start : start + GLUE_BATCH_DELETE_PARTITION_MAX]
            answer = glue.batch_delete_partition(DatabaseName=database, TableName=table, PartitionsToDelete=removed)
            self.check_partition_errors("remove", table, answer, tolerated="EntityNotFoundException")

    def check_partition_errors(self, action: str, table: str, answer: Mapping[str, Any], tolerated: str = "") -> None:
        failures = [e for e in answer.get("Errors", []) if e.get("ErrorDetail", {}).get("ErrorCode") != tolerated]
        if not failures:
            return
        detail = failures[0].get("ErrorDetail", {})
        code, message = detail.get("ErrorCode", ""), detail.get("ErrorMessage", "")
        what = f"job {self.job.name}: could not {action} {len(failures)} partition(s) of {self.database}.{table}"
        what += f" (first {failures[0].get('PartitionValues')}: {code} {message})"
        if code in TRANSIENT_ERROR_CODES or code in ("InternalServiceException", "ConcurrentModificationException"):
            raise TransientAwsError(what)
        raise CatalogUpdateFailed(what)

    def check_schema(self, table: str, probe: str) -> None:
        target, produced = self.table(table), self.table(probe)
        if target is None or produced is None:
            raise TableNotFound(f"job {self.job.name}: {self.database}.{table if target is None else probe} is missing")

        def columns(definition: dict[str, Any]) -> list[tuple[str, str]]:
            return [(c["Name"], c["Type"]) for c in definition["StorageDescriptor"].get("Columns", [])]

        try:
            check_schema(f"{self.database}.{table}", columns(target), columns(produced))
        except SchemaMismatch:
            # The probe is metadata only (it selected no rows): drop it here rather than leave it behind.
            self.glue.delete_table(DatabaseName=self.database, Name=probe)
            raise
