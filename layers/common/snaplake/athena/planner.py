"""A job's plan from its document and what Glue holds: the CTAS save mode against the existing table, the APAS
partition against the target's keys, the partitions to add (snaplake.athena.plans decides the steps)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from snaplake.athena.catalog_ops import JobTables
from snaplake.athena.errors import InvalidJob, PartitionAlreadyExists, UnsafeOverwrite
from snaplake.athena.jobs import Job, PartitionSpec, TableMode
from snaplake.athena.plans import ExistingTable, Plan, SaveMode, Step, plan_apas, plan_ctas, plan_data_only
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import (
    MAX_PARTITIONS_PER_QUERY,
    CtasOptions,
    PartitionValues,
    build_add_partition,
    build_drop_partition,
    build_drop_table,
    partition_location,
)
from snaplake.core.aws import is_not_found


def folder(location: str) -> str:
    return location if location.endswith("/") else location + "/"


@dataclass
class JobPlanner:
    tables: JobTables
    settings: AthenaSettings
    job: Job

    def table_folder(self) -> str:
        assert self.job.options is not None and self.job.table is not None
        root = self.settings.temporary_location if self.job.temporary else self.settings.tables_location
        return self.job.options.external_location or f"{root}{self.tables.database}/{self.job.table}/"

    def plan_ctas(self, run_id: str, partition_values: Sequence[PartitionValues] | None, occupied: bool = False) -> Plan:
        """`occupied`: whether the table folder holds objects (read by the runner for tableMode data_only)."""
        job = self.job
        assert job.options is not None and job.table is not None and job.query is not None
        options = CtasOptions(
            job.options.format,
            job.options.write_compression,
            self.table_folder(),
            job.options.partitioned_by,
            job.options.bucketed_by,
            job.options.bucket_count,
        )
        if job.table_mode is TableMode.DATA_ONLY:
            database = self.tables.database
            return plan_data_only(
                database, job.table, job.query, options, job.save_mode, occupied, run_id=run_id, partition_values=partition_values
            )
        found = self.tables.table(job.table)
        existing = ExistingTable(folder(found["StorageDescriptor"].get("Location", ""))) if found else None
        if existing is not None and job.save_mode is SaveMode.OVERWRITE and not existing.location.startswith(self.table_folder()):
            raise UnsafeOverwrite(
                f"job {job.name}: {job.target} keeps its data at {existing.location}, outside the job's folder "
                f"{self.table_folder()}; overwrite only deletes data under the job's own externalLocation"
            )
        return plan_ctas(
            self.tables.database,
            job.table,
            job.query,
            options,
            job.save_mode,
            existing,
            run_id=run_id,
            partition_values=partition_values,
            empty=job.table_mode is TableMode.EMPTY,
        )

    def plan_apas(self, run_id: str) -> Plan:
        job = self.job
        assert job.table is not None and job.query is not None
        target = self.tables.require_table()
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        given = dict(job.partition)
        if set(given) != set(keys):
            raise InvalidJob(f"job {job.name}: {job.target} is partitioned by {keys}; 'partition' gives {sorted(given)}")
        values = tuple(given[key] for key in keys)
        exists = self._partition(values) is not None
        return plan_apas(
            self.tables.database,
            job.table,
            job.query,
            partition_columns=keys,
            partition_values=values,
            table_location=folder(target["StorageDescriptor"]["Location"]),
            mode=job.save_mode,
            partition_exists=exists,
            run_id=run_id,
            probe_location=f"{self.settings.work_location}probes/",
            ignore_schema_mismatch=job.ignore_schema_mismatch,
        )

    def _partition(self, values: PartitionValues) -> dict[str, Any] | None:
        assert self.job.table is not None
        try:
            found = self.tables.glue.get_partition(
                DatabaseName=self.tables.database, TableName=self.job.table, PartitionValues=[str(v) for v in values]
            )
        except Exception as error:
            if not is_not_found(error, "EntityNotFoundException"):
                raise
            return None
        return dict(found["Partition"])

    def _values(self, spec: PartitionSpec, keys: list[str]) -> PartitionValues:
        given = dict(spec.values)
        if set(given) != set(keys):
            raise InvalidJob(f"job {self.job.name}: {self.job.target} is partitioned by {keys}; a partition gives {sorted(given)}")
        return tuple(given[key] for key in keys)

    def plan_add_partition(self) -> Plan:
        """Register the partitions; those that exist are kept (skip_if_exists, none), refused (error_if_exists) or
        dropped first and registered again at the job's location (overwrite; their data is not touched)."""
        job = self.job
        assert job.table is not None
        target = self.tables.require_table()
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        location = folder(target["StorageDescriptor"]["Location"])
        partitions: list[tuple[PartitionValues, str]] = []
        drops: list[Step] = []
        for spec in job.partitions:
            values = self._values(spec, keys)
            partitions.append((values, spec.location or partition_location(location, keys, values)))
            if job.save_mode in (SaveMode.ERROR_IF_EXISTS, SaveMode.OVERWRITE) and self._partition(values) is not None:
                if job.save_mode is SaveMode.ERROR_IF_EXISTS:
                    raise PartitionAlreadyExists(f"{job.target} partition {values} exists (save mode error_if_exists)")
                sql = build_drop_partition(self.tables.database, job.table, keys, values)
                drops.append(Step("query", f"drop the existing partition {values}", sql=sql))
        batches = [partitions[i : i + MAX_PARTITIONS_PER_QUERY] for i in range(0, len(partitions), MAX_PARTITIONS_PER_QUERY)]
        sqls = [build_add_partition(self.tables.database, job.table, batch, keys) for batch in batches]
        return Plan((*drops, *(Step("query", f"add partitions ({n + 1}/{len(sqls)})", sql=sql) for n, sql in enumerate(sqls))))

    def plan_drop_partition(self) -> Plan:
        """Drop the partitions that exist (Glue first), then, with deleteData, their folders."""
        job = self.job
        assert job.table is not None
        keys = [k["Name"] for k in self.tables.require_table().get("PartitionKeys", [])]
        drops, deletes = [], []
        for spec in job.partitions:
            values = self._values(spec, keys)
            found = self._partition(values)
            if found is None:
                continue
            drops.append(Step("query", f"drop partition {values}", sql=build_drop_partition(self.tables.database, job.table, keys, values)))
            if job.delete_data:
                data = folder(found["StorageDescriptor"]["Location"])
                deletes.append(Step("delete_location", f"delete partition {values}'s data", location=data))
        if not drops:
            return Plan((), skipped=True, reason=f"none of the partitions exists in {job.target}")
        return Plan((*drops, *deletes))

    def plan_drop_table(self) -> Plan:
        """Drop the table (Glue first), then, with deleteData, its folder and any partition folder outside it."""
        job = self.job
        assert job.table is not None
        found = self.tables.table(job.table)
        if found is None:
            return Plan((), skipped=True, reason=f"table {job.target} does not exist")
        steps = [Step("query", f"drop {job.target}", sql=build_drop_table(self.tables.database, job.table))]
        if job.delete_data:
            table_folder = folder(found["StorageDescriptor"]["Location"])
            folders = [table_folder]
            if found.get("PartitionKeys"):
                others = {folder(p["StorageDescriptor"]["Location"]) for p in self.tables.partitions(job.table)}
                folders += sorted(f for f in others if not f.startswith(table_folder))
            steps += [Step("delete_location", f"delete the data under {f}", location=f) for f in folders]
        return Plan(tuple(steps))
