"""The RDS/Aurora snapshot pipeline (statemachine/rds_export.asl.json), step by step.

- FilterSnapshot: `snapshots` (EventBridge snapshot events and direct requests -> the snapshot to export, or why not)
- StartExport, PollExport: `export_task` (a deterministic ExportTaskIdentifier; started once)
- PlanCopy: `copy_plan`; CopyBatch: `copy_batch`; FinalizeCopy: `finalize`
- where each exported file lands: `layout` (the key template, lake table names)
"""

from snaplake.rds.copy_batch import copy_batches
from snaplake.rds.copy_plan import CopyItem, PlanRef, plan_copy
from snaplake.rds.errors import (
    ColumnNameConflict,
    CopyIncomplete,
    DestinationMismatch,
    ExportCanceled,
    ExportFilesMissing,
    ExportFileUnreadable,
    ExportSlotsBusy,
    InvalidKeyTemplate,
    KeyCollision,
    NoSnapshotAvailable,
    SnapshotNotFound,
    SnapshotNotReady,
    SourceCollision,
    SourceNotFound,
    UnexpectedExportLayout,
)
from snaplake.rds.export_task import describe_export, export_task_identifier, poll_export, start_export
from snaplake.rds.finalize import finalize_copy
from snaplake.rds.layout import DEFAULT_KEY_TEMPLATE, SEED_KEY_TEMPLATE, KeyTemplate, SnapshotLayout, lake_table_name, parse_export_key
from snaplake.rds.settings import CopySettings, ExportSettings, SourceSelection
from snaplake.rds.snapshots import decide

__all__ = [
    "DEFAULT_KEY_TEMPLATE",
    "SEED_KEY_TEMPLATE",
    "ColumnNameConflict",
    "CopyIncomplete",
    "CopyItem",
    "CopySettings",
    "DestinationMismatch",
    "ExportCanceled",
    "ExportFileUnreadable",
    "ExportFilesMissing",
    "ExportSettings",
    "ExportSlotsBusy",
    "InvalidKeyTemplate",
    "KeyCollision",
    "KeyTemplate",
    "NoSnapshotAvailable",
    "PlanRef",
    "SnapshotLayout",
    "SnapshotNotFound",
    "SnapshotNotReady",
    "SourceCollision",
    "SourceNotFound",
    "SourceSelection",
    "UnexpectedExportLayout",
    "copy_batches",
    "decide",
    "describe_export",
    "export_task_identifier",
    "finalize_copy",
    "lake_table_name",
    "parse_export_key",
    "plan_copy",
    "poll_export",
    "start_export",
]
