"""Athena SQL jobs (statemachine/athena_etl.asl.json): ValidateJobs and RunJobStep.

- `runs`: a run's job list (inline or from the definitions folder), its time, time zone and landing; `variables`:
  the run variables applied to every job before any runs
- `jobs`: job documents (modes query, ctas, apas, add_partition, drop_partition, drop_table), validated before any runs
- `sql`: identifiers, literals, the declared SELECT and the statements built around it
- `plans`: what a job does for its save mode, as a list of steps; `planner`: a job's plan from what Glue holds
- `runner`: one step at a time (`run_job_step`), over `lake` (S3), `catalog_ops` (Glue) and `queries` (Athena)
- `temporary`: the run's temporary tables dropped when it ends (`drop_temporary_tables`)
- `current`: the DynamoDB pipeline's MergeCurrent step (`merge_current`), which keeps each table's `<table>_current`
  Iceberg table with the statements of `current_sql`, then puts its landing event and compacts and vacuums it
  (`current_upkeep`)
"""

from snaplake.athena.current import CurrentClients, CurrentSettings, merge_current
from snaplake.athena.cursor import Cursor, run_id_for
from snaplake.athena.errors import (
    AthenaSqlError,
    CatalogUpdateFailed,
    CurrentTableBehind,
    CurrentTableSchemaMismatch,
    DataDeletionFailed,
    ForbiddenTarget,
    InvalidIdentifier,
    InvalidJob,
    InvalidLiteral,
    InvalidOption,
    InvalidSelect,
    LocationNotEmpty,
    PartitionAlreadyExists,
    PlanTampered,
    QueryCancelled,
    QueryFailed,
    SchemaMismatch,
    TableAlreadyExists,
    TableNotFound,
    UnsafeOverwrite,
    UnsafePartitionValue,
)
from snaplake.athena.jobs import Job, JobMode, TableMode, check_permitted, parse_job, validate_jobs
from snaplake.athena.runner import AthenaClients, JobRun, run_job_step
from snaplake.athena.runs import checked_landing, load_run
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.temporary import drop_temporary_tables
from snaplake.athena.variables import RunVariables

__all__ = [
    "AthenaClients",
    "AthenaSettings",
    "AthenaSqlError",
    "CatalogUpdateFailed",
    "CurrentClients",
    "CurrentSettings",
    "CurrentTableBehind",
    "CurrentTableSchemaMismatch",
    "Cursor",
    "DataDeletionFailed",
    "ForbiddenTarget",
    "InvalidIdentifier",
    "InvalidJob",
    "InvalidLiteral",
    "InvalidOption",
    "InvalidSelect",
    "Job",
    "JobMode",
    "JobRun",
    "LocationNotEmpty",
    "PartitionAlreadyExists",
    "PlanTampered",
    "QueryCancelled",
    "QueryFailed",
    "RunVariables",
    "SchemaMismatch",
    "TableAlreadyExists",
    "TableMode",
    "TableNotFound",
    "UnsafeOverwrite",
    "UnsafePartitionValue",
    "check_permitted",
    "checked_landing",
    "drop_temporary_tables",
    "load_run",
    "merge_current",
    "parse_job",
    "run_id_for",
    "run_job_step",
    "validate_jobs",
]
