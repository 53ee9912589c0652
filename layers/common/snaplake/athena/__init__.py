"""Athena SQL jobs (statemachine/athena_etl.asl.json): ValidateJobs and RunJobStep.

- `jobs`: job documents (modes query, ctas, apas, add_partition), validated before any runs
- `sql`: identifiers, literals, the declared SELECT and the statements built around it
- `plans`: what a job does for its save mode, as a list of steps; `planner`: a job's plan from what Glue holds
- `runner`: one step at a time (`run_job_step`), over `lake` (S3), `catalog_ops` (Glue) and `queries` (Athena)
- `current`: the DynamoDB pipeline's MergeCurrent step (`merge_current`), which keeps each table's `<table>_current`
  Iceberg table with the statements of `current_sql`
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
from snaplake.athena.jobs import Job, JobMode, check_permitted, parse_job, validate_jobs
from snaplake.athena.runner import AthenaClients, JobRun, run_job_step
from snaplake.athena.settings import AthenaSettings

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
    "SchemaMismatch",
    "TableAlreadyExists",
    "TableNotFound",
    "UnsafeOverwrite",
    "UnsafePartitionValue",
    "check_permitted",
    "merge_current",
    "parse_job",
    "run_id_for",
    "run_job_step",
    "validate_jobs",
]
