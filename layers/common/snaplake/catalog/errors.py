"""Errors of RegisterCatalog: reading footers, merging schemas, registering tables and partitions."""

from snaplake.core.errors import SnaplakeError


class CatalogError(SnaplakeError):
    """Base class of the catalog step's errors."""


class IncompatibleColumnType(CatalogError):
    """A column's type changed between snapshots in a way Athena cannot read across partitions, with partition
    projection (with registered partitions the snapshot goes to a table version, catalog.versions)."""


class UnsupportedColumnType(CatalogError):
    """A Parquet column has a type Athena/Glue cannot declare (e.g. time, uint64, decimal precision > 38)."""


class DuplicateColumn(CatalogError):
    """Two columns of a Parquet schema have the same name once lower-cased."""


class ParquetFooterUnreadable(CatalogError):
    """A landed object is not a readable Parquet file (bad magic or footer)."""


class NoDataFiles(CatalogError):
    """A landed partition holds no Parquet data files to take the schema from."""


class UnsupportedPartitionLayout(CatalogError):
    """The partition prefix does not end in Hive `key=value` segments, or projection cannot describe a key."""


class PartitionKeysChanged(CatalogError):
    """The existing Glue table is partitioned by other keys than the landed layout."""


class GlueTableCollision(CatalogError):
    """The Glue table belongs to another lake folder: its location (or partition projection template) is not the
    folder this writer registers, so two writers derive one table name. Refused before the table is touched."""


class PartitionRegistrationFailed(CatalogError):
    """BatchCreatePartition reported an error other than AlreadyExists for a partition."""


class RetentionFailed(CatalogError):
    """A retention pass could not remove an expired partition (a Glue or S3 error per entry, or a retention record
    that names no partition of the table's own folder); what it had not removed yet stays for the next pass."""


class LandedManifestInvalid(SnaplakeError):
    """The landed manifest named by RegisterCatalog's input is missing, unreadable or not what FinalizeCopy writes."""


class LandingEventsNotPut(CatalogError):
    """PutEvents kept failing entries of the landing events (FailedEntryCount) after its retries; the step's retry puts
    them again."""
