"""Errors named for what happened.

Lambda reports an uncaught exception's class name as the error type, and Step
Functions matches `Retry`/`Catch` on that name, so these class names are part of
the state machines' contract: statemachine/*.asl.json refers to them.
"""


class SnaplakeError(Exception):
    """Base class: every error the pipeline raises on purpose."""


class ConfigError(SnaplakeError):
    """An environment variable is missing or invalid."""


class InvalidEvent(SnaplakeError):
    """The input event is malformed or of an unsupported kind."""


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


class ExportNotFound(SnaplakeError):
    """DescribeExportTasks does not know the export task."""


class ExportFailed(SnaplakeError):
    """The export task ended FAILED; the message is the service's FailureCause."""


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
    """The lake partition already holds data files from another export of the same snapshot time."""


class PitrDisabled(SnaplakeError):
    """Point-in-time recovery is off for the DynamoDB table: no export is possible."""


class WindowOutsidePitr(SnaplakeError):
    """The next incremental window starts before the table's earliest restorable time."""


class DynamoDbExportsBusy(SnaplakeError):
    """DynamoDB refused the export for its concurrency limits (retryable)."""


class ManifestMissing(SnaplakeError):
    """The export's manifest-summary.json or manifest-files.json cannot be read."""


class CountMismatch(SnaplakeError):
    """Rows read or written differ from the export manifest's itemCount."""


class ConversionIncomplete(SnaplakeError):
    """Finalize found data files that were not converted."""
