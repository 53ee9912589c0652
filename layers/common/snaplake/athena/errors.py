"""Errors of the Athena SQL jobs: job documents, their plans and the step executor."""

from snaplake.core.errors import SnaplakeError


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


class CatalogUpdateFailed(SnaplakeError):
    """Glue refused part of a batch partition update; nothing that depends on it (such as deleting old data) was done."""


class AthenaSqlError(SnaplakeError):
    """Base class of the SQL builders' errors."""


class InvalidIdentifier(AthenaSqlError):
    """A database, table or column name does not match Athena's rules."""


class InvalidLiteral(AthenaSqlError):
    """A value cannot be put in a SQL literal safely (quote, backslash, control character) or an S3 location is malformed."""


class InvalidSelect(AthenaSqlError):
    """The declared query is not a single SELECT / WITH statement."""


class InvalidOption(AthenaSqlError):
    """A CTAS option (format, compression, save mode, partitioning) is not valid."""


class TableAlreadyExists(AthenaSqlError):
    """The target table exists and the save mode is error_if_exists."""


class PartitionAlreadyExists(AthenaSqlError):
    """The target partition exists and the save mode is error_if_exists."""


class SchemaMismatch(AthenaSqlError):
    """The SELECT's columns differ from the target table's (APAS dry-run)."""


class UnsafePartitionValue(InvalidLiteral):
    """A partition value holds a character Athena percent-encodes in partition folder names (Hive's
    escapePathName: control characters, `"#%'*/:=?\\`, DEL, `{[]^`), or is empty, `.` or `..`: the engine would
    write under another folder than the one the job deletes and registers."""


class ForbiddenTarget(InvalidJob):
    """A job (or a step of its plan) would write, delete or change what the jobs may not touch: a database that is not a
    job database (the pipelines' RDS and DynamoDB databases), a table whose data lies outside the jobs prefix, or an S3
    location outside the jobs prefix (the pipelines' folders, `_snaplake/`, `_snaplake_staging/`, another bucket)."""


class PlanTampered(SnaplakeError):
    """A job's stored plan is not the one this run wrote (changed, replaced, or another run's): nothing of it runs."""


class CurrentTableSchemaMismatch(SnaplakeError):
    """A DynamoDB table's `_current` table cannot take an export: a key attribute has no column, a Glue type it cannot
    declare, or the export's partitions in several table versions (a changed attribute type gets a typed column)."""


class CurrentTableBehind(SnaplakeError):
    """A DynamoDB table's `_current` table has not applied the window before this one (it was off, or its record is
    gone): applying this window would give a wrong table. A full export rebuilds it."""
