"""What MergeCurrent does once a `<table>_current` MERGE succeeded: the landing event, then the table's upkeep.

The landing event (`pipeline` "dynamodb_current", docs/events.md) is put before the export is recorded as
applied: a retried call (same cursor, same MERGE query) puts it again with the same `landingId`, and a run that
finds the export recorded puts none.

Upkeep, one Athena query per call after every MERGE (none after a merge-free call: a quiet window, an export
already applied):

1. `ALTER TABLE ... SET TBLPROPERTIES`, only when the table's VACUUM properties differ from the retention
   parameter: `vacuum_max_snapshot_age_seconds` = ChangeLogRetentionDays x 86400 (time travel reaches as far back as
   the change log does), `vacuum_min_snapshots_to_keep` = 1 (the current snapshot is never expired);
2. `OPTIMIZE ... REWRITE DATA USING BIN_PACK`: Athena's MERGE writes delete files next to the data it replaces;
   without compaction every window's files stay live in the current snapshot, reads slow down and VACUUM frees
   nothing. BIN_PACK rewrites only the files that need it (small, or with deletes), so it is cheap when little
   changed;
3. `VACUUM`: expires the snapshots older than the age and deletes the files no kept snapshot references.

With ChangeLogRetentionDays=0 (keep all) nothing expires: no properties are set and VACUUM is not run.

Upkeep never fails the step: the MERGE is applied and recorded, so the checkpoint must move on. A failed or
cancelled OPTIMIZE / VACUUM is logged (`upkeep` in the result) and the next MERGE runs it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snaplake.athena.current_sql import MAX_SNAPSHOT_AGE, MIN_SNAPSHOTS, build_optimize, build_set_properties, build_vacuum
from snaplake.catalog import Landing
from snaplake.core.times import iso_utc

DYNAMODB_CURRENT = "dynamodb_current"  # the landing event's pipeline
MERGE = "merge"
UPKEEP = ("set-properties", "optimize", "vacuum")
_ORDER = (MERGE, *UPKEEP)
SECONDS_PER_DAY = 86_400


def vacuum_properties(retention_days: int) -> dict[str, str] | None:
    """The VACUUM table properties for ChangeLogRetentionDays (None: 0, keep every snapshot)."""
    if retention_days <= 0:
        return None
    return {MAX_SNAPSHOT_AGE: str(retention_days * SECONDS_PER_DAY), MIN_SNAPSHOTS: "1"}


def next_upkeep(done: str, database: str, table: str, parameters: Mapping[str, Any], retention_days: int) -> tuple[str, str] | None:
    """(label, SQL) of the upkeep query that follows the query `done` ("merge" or an upkeep label), or None."""
    wanted = vacuum_properties(retention_days)
    steps: list[tuple[str, str]] = []
    if wanted is not None and any(str(parameters.get(name)) != value for name, value in wanted.items()):
        steps.append(("set-properties", build_set_properties(database, table, wanted)))
    steps.append(("optimize", build_optimize(database, table)))
    if wanted is not None:
        steps.append(("vacuum", build_vacuum(database, table)))
    later = [step for step in steps if _ORDER.index(step[0]) > _ORDER.index(done)]
    return later[0] if later else None


def current_landing(database: str, table: str, location: str, export: Any, rows_changed: int) -> Landing:
    """The landing event of one MERGE into `<database>.<table>` (the `_current` table) from `export`
    (an ExportToApply): the table as of the export's `exportedTo`. `rows` is the rows the MERGE inserted, updated or
    deleted (Athena's UpdateCount); Athena reports no file totals for a MERGE, so `files` and `bytes` are 0."""
    exported_to = iso_utc(export.exported_to)
    window = {"from": iso_utc(export.window_from) if export.window_from is not None else None, "to": exported_to}
    return Landing(
        pipeline=DYNAMODB_CURRENT,
        database=database,
        table=table,
        partition={},
        location=location,
        rows=rows_changed,
        files=0,
        bytes=0,
        export_ids=(export.export_arn,),
        snapshot_time=exported_to,
        extra={"tableFormat": "ICEBERG", "exportType": export.export_type, "window": window},
    )
