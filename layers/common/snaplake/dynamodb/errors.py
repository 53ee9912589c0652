"""Errors of the DynamoDB export pipeline (windows, checkpoint lease, conversion, publishing)."""

from snaplake.core.errors import SnaplakeError


class PitrDisabled(SnaplakeError):
    """Point-in-time recovery is off for the DynamoDB table: no export is possible."""


class WindowOutsidePitr(SnaplakeError):
    """The next incremental window starts before the table's earliest restorable time."""


class DynamoDbExportsBusy(SnaplakeError):
    """DynamoDB refused the export for its concurrency limits (retryable)."""


class ScheduledExecutionConflict(SnaplakeError):
    """The schedule's execution name for a table and time is taken by an execution with other input."""


class TableFolderClaimed(SnaplakeError):
    """The table's lake folder (its Athena-safe name) is claimed by another table ARN."""


class ExportLeaseLost(SnaplakeError):
    """Another run took over the table's export lease (this run's had expired)."""


class ManifestMissing(SnaplakeError):
    """The export's manifest-summary.json or manifest-files.json cannot be read."""


class CountMismatch(SnaplakeError):
    """Rows read or written differ from the export manifest's itemCount."""


class ConversionIncomplete(SnaplakeError):
    """Finalize found data files that were not converted."""


class DynamoDbTableNotFound(SnaplakeError):
    """The DynamoDB table named by the request does not exist in this account and region."""


class MalformedExportLine(SnaplakeError):
    """A data line is not DynamoDB JSON of the export's kind; the message names the line."""


class AttributeNotInSchema(SnaplakeError):
    """A data file holds values its ExportSchema does not describe (changed after the scan, or a schema of other files)."""


class IncompatibleSchemas(SnaplakeError):
    """ExportSchemas (or a schema and the conversion options) were built for different export kinds or depth limits."""


class UnexpectedWriteTime(SnaplakeError):
    """An incremental line's Metadata.WriteTimestampMicros is not integral microseconds since the epoch (an N)."""


class InvalidAttributeValue(SnaplakeError):
    """A DynamoDB AttributeValue is malformed: no or several type descriptors, an unknown one, a bad number or base64."""
