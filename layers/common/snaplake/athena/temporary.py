"""Temporary tables: a `ctas` job with `"temporary": true` builds a table later jobs of the run read; when the run
ends, succeeded or failed, DropTemporaryTables drops it and deletes its folder.

Only what the run made is removed: a table is dropped only when its data lies under the temporary folder
(`<jobs folder>_temporary/`), so a job table of the same name elsewhere is never touched. A table whose job failed
half-way can leave the overwrite's staging table (`<table>__snaplake_<runId>`): it is dropped as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snaplake.athena.cursor import run_id_for
from snaplake.athena.jobs import parse_job
from snaplake.athena.lake import JobStorage
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import MAX_IDENTIFIER
from snaplake.catalog import CatalogOptions, get_table


def drop_temporary_tables(
    glue: Any,
    s3: Any,
    settings: AthenaSettings,
    request: dict[str, Any],
    remaining_ms: Callable[[], int],
) -> dict[str, Any]:
    """`{"jobs", "execution", "startTime"}` -> `{"done": bool, "dropped": [...]}`; not done: call again (time ran short)."""
    dropped: list[str] = []
    jobs = request.get("jobs") or []
    for index, raw in enumerate(jobs):
        job = parse_job(raw, index)
        if not job.temporary:
            continue
        assert job.database is not None and job.table is not None
        run_id = run_id_for(request.get("execution"), request.get("startTime"), index)
        folder = f"{settings.temporary_location}{job.database}/{job.table}/"
        if job.options is not None and job.options.external_location:
            folder = job.options.external_location
        for name in (job.table, f"{job.table}__snaplake_{run_id}"[:MAX_IDENTIFIER]):
            table = get_table(glue, job.database, name, CatalogOptions())
            if table is None or not table["StorageDescriptor"].get("Location", "").startswith(settings.temporary_location):
                continue
            glue.delete_table(DatabaseName=job.database, Name=name)
            dropped.append(f"{job.database}.{name}")
        if not JobStorage(s3, settings, job, remaining_ms).delete_location(folder, None):
            return {"done": False, "dropped": dropped}
    return {"done": True, "dropped": dropped}
