"""Errors of the RDS/Aurora snapshot pipeline (FilterSnapshot, StartExport, PollExport, PlanCopy, CopyBatch, FinalizeCopy)."""

from snaplake.core.errors import SnaplakeError


class SnapshotNotFound(SnaplakeError):
    """The snapshot named by the event does not exist (or is not visible)."""


class SourceNotFound(SnaplakeError):
    """No DB cluster or DB instance has the requested identifier."""


class NoSnapshotAvailable(SnaplakeError):
    """The source has no snapshot in the `available` state to export."""


class SnapshotNotReady(SnaplakeError):
    """The snapshot exists but is not `available` yet (retryable)."""


class ExportSlotsBusy(SnaplakeError):
    """The account already runs its maximum of concurrent export tasks (retryable)."""


class ExportCanceled(SnaplakeError):
    """The export task was canceled."""


class InvalidKeyTemplate(SnaplakeError):
    """The lake key template is malformed."""


class KeyCollision(SnaplakeError):
    """Two exported objects map to the same lake key under the key template."""


class UnexpectedExportLayout(SnaplakeError):
    """An object under the export prefix does not fit any known export layout."""


class ExportFilesMissing(SnaplakeError):
    """A COMPLETE export has no objects left under its prefix (deleted or expired)."""


class CopyIncomplete(SnaplakeError):
    """Finalize found copy batches that have not finished."""


class DestinationMismatch(SnaplakeError):
    """Another export of the same source and snapshot time already holds (or claimed) the lake partition."""


class SourceCollision(SnaplakeError):
    """The lake table folder already belongs to another source (two sources whose databases and tables share names)."""


class ColumnNameConflict(SnaplakeError):
    """An exported table has two columns that are one in Athena (case folded), or a column named like a partition key."""


class ExportFileUnreadable(SnaplakeError):
    """An exported data file is not a readable Parquet file (no PAR1 footer, or a footer pyarrow cannot read)."""
