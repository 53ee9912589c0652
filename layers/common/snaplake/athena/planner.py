"""A job's plan from its document and what Glue holds: the CTAS save mode against the existing table, the APAS
partition against the target's keys, the partitions to add (snaplake.athena.plans decides the steps)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from snaplake.athena.catalog_ops import JobTables
from snaplake.athena.errors import InvalidJob, UnsafeOverwrite
from snaplake.athena.jobs import Job
from snaplake.athena.plans import ExistingTable, Plan, SaveMode, Step, plan_apas, plan_ctas
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import MAX_PARTITIONS_PER_QUERY, CtasOptions, PartitionValues, build_add_partition, partition_location
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
        return self.job.options.external_location or f"{self.settings.tables_location}{self.tables.database}/{self.job.table}/"

    def plan_ctas(self, run_id: str, partition_values: Sequence[PartitionValues] | None) -> Plan:
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
        try:
            self.tables.glue.get_partition(DatabaseName=self.tables.database, TableName=job.table, PartitionValues=[str(v) for v in values])
            exists = True
        except Exception as error:
            if not is_not_found(error, "EntityNotFoundException"):
                raise
            exists = False
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

    def plan_add_partition(self) -> Plan:
        job = self.job
        assert job.table is not None
        target = self.tables.require_table()
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        location = folder(target["StorageDescriptor"]["Location"])
        partitions: list[tuple[PartitionValues, str]] = []
        for spec in job.partitions:
            given = dict(spec.values)
            if set(given) != set(keys):
                raise InvalidJob(f"job {job.name}: {job.target} is partitioned by {keys}; a partition gives {sorted(given)}")
            values = tuple(given[key] for key in keys)
            partitions.append((values, spec.location or partition_location(location, keys, values)))
        batches = [partitions[i : i + MAX_PARTITIONS_PER_QUERY] for i in range(0, len(partitions), MAX_PARTITIONS_PER_QUERY)]
        sqls = [build_add_partition(self.tables.database, job.table, batch, keys) for batch in batches]
        return Plan(tuple(Step("query", f"add partitions ({n + 1}/{len(sqls)})", sql=sql) for n, sql in enumerate(sqls)))
