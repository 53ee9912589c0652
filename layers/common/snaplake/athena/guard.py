"""What Athena jobs may touch: checked on each job before any runs, and on every step of a plan before it runs.

The jobs write, delete and register data only in the lake bucket, under the jobs folder (`<LakePrefix>/<AthenaJobsPrefix>/`,
`AthenaSettings.tables_location`) and their own working files (`AthenaSettings.work_location`); and they create, change
and drop tables only in job databases (`<GlueDatabasePrefix><AthenaJobDatabasePrefix>...`, never a pipeline's database).
So the pipelines' folders (`rds/`, `dynamodb/`...), `_snaplake/`, `_snaplake_staging/` and their databases are out of
reach, whatever a job document or a stored plan says. A breach raises `ForbiddenTarget` before anything runs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import exp

from snaplake.athena.errors import ForbiddenTarget, InvalidJob
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import parse_statement, read_only_query, validate_location

if TYPE_CHECKING:
    from snaplake.athena.jobs import Job
    from snaplake.athena.plans import Step

_DDL_NAME = r"`([a-z0-9_]+)`"
_ADD_HEADER = re.compile(rf"ALTER TABLE {_DDL_NAME}\.{_DDL_NAME} ADD IF NOT EXISTS")
_ADD_LINE = re.compile(rf"  PARTITION \((?:{_DDL_NAME} = (?:'[^'\\\x00-\x1f]*'|-?\d+)(?:, )?)+\) LOCATION '(?P<location>[^'\\\x00-\x1f]*)'")


def check_database(where: str, database: str, settings: AthenaSettings) -> None:
    """A database the jobs may create tables in, change or drop tables of: a job database, never a pipeline's."""
    if database in settings.pipeline_databases or not database.startswith(settings.job_database_prefix):
        raise ForbiddenTarget(
            f"{where}: database {database!r} is not a job database: the jobs change only databases beginning with "
            f"{settings.job_database_prefix!r} (GlueDatabasePrefix + AthenaJobDatabasePrefix), never the pipelines' databases"
        )


def check_folder(where: str, location: str, settings: AthenaSettings, *, work_files: bool = False) -> str:
    """A folder the jobs may write and delete: strictly under the jobs folder (or, for `work_files`, the work location)."""
    validate_location(location)
    allowed = (settings.tables_location, settings.work_location) if work_files else (settings.tables_location,)
    if not any(location.startswith(folder) and location != folder for folder in allowed):
        raise ForbiddenTarget(
            f"{where}: {location} is not a folder under {settings.tables_location} (AthenaJobsPrefix), the only place the jobs "
            "write or delete data; the pipelines' folders, _snaplake/ and _snaplake_staging/ are never touched"
        )
    if location.startswith(settings.definitions_location) or settings.definitions_location.startswith(location):
        raise ForbiddenTarget(f"{where}: {location} holds the job definitions ({settings.definitions_location}), which jobs never write")
    return location


def check_output(where: str, location: str, settings: AthenaSettings) -> None:
    """A job's own result location: under the jobs folder, or the function's results folder."""
    if not location.startswith(settings.output_location):
        check_folder(where, location, settings)


def check_step(job: Job, step: Step, settings: AthenaSettings) -> None:
    """One step of `job`'s plan against the job rules; a stored step is checked again before it runs."""
    where = f"job {job.name}: plan step {step.description!r}"
    if step.kind == "require_empty":
        check_folder(where, str(step.location), settings, work_files=True)
    elif step.kind == "delete_location":
        check_folder(where, str(step.location), settings)
        if step.keep is not None:
            check_folder(where, step.keep, settings)
    elif step.kind in ("replace_table", "check_schema"):
        assert job.database is not None  # a table-less job has no such step
        check_database(where, job.database, settings)
    elif step.kind == "query":
        check_statement(job, str(step.sql), settings)
    else:
        raise InvalidJob(f"{where}: unknown step kind {step.kind!r}")


def check_statement(job: Job, sql: str, settings: AthenaSettings) -> None:
    """A plan's statement: the job's own SELECT (query mode), or DDL / DML on a table of the job's database whose data
    goes under the jobs folder, with a read-only SELECT inside."""
    where = f"job {job.name}"
    if job.mode == "query":
        if sql != job.query:
            raise ForbiddenTarget(f"{where}: a query job runs its own SELECT only")
        return
    if job.database is None:
        raise ForbiddenTarget(f"{where}: a statement needs the job's database")
    if sql.startswith("ALTER TABLE ") and " ADD IF NOT EXISTS\n" in sql:
        header, *lines = sql.split("\n")
        match = _ADD_HEADER.fullmatch(header)
        if match is None or not lines:
            raise ForbiddenTarget(f"{where}: not a statement the job builds: {header[:200]!r}")
        _check_table(where, match[1], job, settings)
        for line in lines:
            added = _ADD_LINE.fullmatch(line)
            if added is None:
                raise ForbiddenTarget(f"{where}: not a partition clause the job builds: {line[:200]!r}")
            check_folder(where, added["location"], settings)
        return
    tree = parse_statement(sql, ForbiddenTarget)
    if isinstance(tree, exp.Create) and tree.kind == "TABLE" and isinstance(tree.this, exp.Table):
        _check_table(where, tree.this.db, job, settings)
        locations = [p.args["value"] for p in tree.find_all(exp.Property) if p.name.lower() == "external_location"]
        if len(locations) != 1 or not isinstance(locations[0], exp.Literal):
            raise ForbiddenTarget(f"{where}: a CTAS must name its external_location")
        check_folder(where, locations[0].this, settings, work_files=True)
        read_only_query(tree.expression, ForbiddenTarget)
    elif isinstance(tree, exp.Insert) and isinstance(tree.this, exp.Table):
        _check_table(where, tree.this.db, job, settings)
        read_only_query(tree.expression, ForbiddenTarget)
    elif isinstance(tree, exp.Drop) and tree.kind == "TABLE" and len(tree.args.get("tables") or []) == 1:
        _check_table(where, tree.args["tables"][0].db, job, settings)
    elif isinstance(tree, exp.Alter) and tree.kind == "TABLE" and all(isinstance(a, exp.DropPartition) for a in tree.actions):
        _check_table(where, tree.this.db, job, settings)
    else:
        raise ForbiddenTarget(f"{where}: not a statement the job builds: {sql[:200]!r}")


def _check_table(where: str, database: str, job: Job, settings: AthenaSettings) -> None:
    if database != job.database:
        raise ForbiddenTarget(f"{where}: a statement on database {database!r}, not the job's {job.database!r}")
    check_database(where, database, settings)
