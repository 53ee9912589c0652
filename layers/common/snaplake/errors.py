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


class ExportLeaseLost(SnaplakeError):
    """Another run took over the table's export lease (this run's had expired)."""


class ManifestMissing(SnaplakeError):
    """The export's manifest-summary.json or manifest-files.json cannot be read."""


class CountMismatch(SnaplakeError):
    """Rows read or written differ from the export manifest's itemCount."""


class ConversionIncomplete(SnaplakeError):
    """Finalize found data files that were not converted."""


class TransientAwsError(SnaplakeError):
    """AWS throttled a request or failed internally, and the SDK's own retries ran out (the state machines retry it)."""


class LakeAccessDenied(SnaplakeError):
    """S3 refused a request on the lake bucket: its owner, its bucket policy or the lake key's policy; the message says which to check."""


class KmsAccessDenied(LakeAccessDenied):
    """S3 refused a lake request because this role may not use the lake's KMS key; the message names the key and the permission."""


class InvalidJob(SnaplakeError):
    """An Athena SQL job document is malformed: unknown mode or field, a missing or mistyped value."""


class TableNotFound(SnaplakeError):
    """A job's target table does not exist in the Glue Data Catalog."""


class LocationNotEmpty(SnaplakeError):
    """An S3 location a query is about to write into already holds objects (Athena never overwrites data)."""


class UnsafeOverwrite(SnaplakeError):
    """An overwrite would delete data outside the job's own external location."""


class DataDeletionFailed(SnaplakeError):
    """S3 refused to delete some of a replaced table's or partition's old objects."""


class QueryFailed(SnaplakeError):
    """An Athena query ended FAILED; the message carries Athena's StateChangeReason."""


class QueryCancelled(SnaplakeError):
    """An Athena query ended CANCELLED (stopped by someone, or by the work group's limits)."""


class PlanMissing(SnaplakeError):
    """The plan folder named by the event holds no plan, or not the file asked for (a wrong prefix, or the plan was deleted)."""


class LandedManifestInvalid(SnaplakeError):
    """The landed manifest named by RegisterCatalog's input is missing, unreadable or not what FinalizeCopy writes."""


class DynamoDbTableNotFound(SnaplakeError):
    """The DynamoDB table named by the request does not exist in this account and region."""


class CatalogUpdateFailed(SnaplakeError):
    """Glue refused part of a batch partition update; nothing that depends on it (such as deleting old data) was done."""
