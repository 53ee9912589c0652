"""RegisterCatalog: what landed in the lake, made queryable in Athena through the Glue Data Catalog.

- `register`: the step itself (a landed manifest of FinalizeCopy, or the partitions FinalizeConversion published)
- `footers`: columns and types from Parquet footers; `hive_types`: Hive type strings and merging snapshots' columns
- `partitions`: landed partitions (table location + Hive key=value) and partition projection
- `glue`: databases, tables and partitions in Glue (also used by the Athena jobs), and which account's catalog
- `landing`: the EventBridge event put for each partition once it is queryable (docs/events.md)
- `latest`: `<table>_latest`, the newest complete snapshot of an RDS table
- `retention`: expired partitions out of Glue, then (after a grace period) out of S3
- `versions`: table versions `<table>__v<N>` for snapshots whose column types the table cannot read

pyarrow is imported only where footers are read, so functions without the arrow layer can use `glue`.
"""

from snaplake.catalog.conform import conform_to_table
from snaplake.catalog.errors import (
    CatalogError,
    DuplicateColumn,
    GlueTableCollision,
    IncompatibleColumnType,
    LandedManifestInvalid,
    LandingEventsNotPut,
    NoDataFiles,
    ParquetFooterUnreadable,
    PartitionKeysChanged,
    PartitionRegistrationFailed,
    RetentionFailed,
    UnsupportedColumnType,
    UnsupportedPartitionLayout,
)
from snaplake.catalog.footers import glue_type, landed_columns, list_data_files, read_parquet_schema, schema_columns
from snaplake.catalog.glue import (
    MANAGED_BY,
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    SOURCE_ACCOUNT_TAG,
    TABLE_TYPE,
    TableChange,
    catalog_client,
    ensure_database,
    get_table,
    register_partitions,
    upsert_table,
)
from snaplake.catalog.hive_types import Column, HiveType, merge_columns, parse_hive_type, typed_column
from snaplake.catalog.landing import (
    DETAIL_TYPE,
    SOURCE,
    Landing,
    dynamodb_landings,
    landing_event_bus,
    put_landing_events,
    rds_landings,
)
from snaplake.catalog.latest import LATEST_OF, LATEST_SNAPSHOT_TIME, LatestMove, latest_location, latest_table_name, point_latest
from snaplake.catalog.partitions import (
    DEFAULT_PROJECTION_RULES,
    MAX_ENUM_CHARACTERS,
    SNAPSHOT_TIME_FORMAT,
    LandedPartition,
    ProjectionRule,
    projection_parameters,
)
from snaplake.catalog.register import (
    Registration,
    dynamodb_partitions,
    expire_change_log,
    expire_snapshot_table,
    expire_snapshots,
    parse_landed_manifest,
    register_landed,
    register_partition,
    register_projected_table,
)
from snaplake.catalog.retention import EXPIRED, RetentionPass, apply_retention, change_hour_end, expired_partitions, snapshot_time
from snaplake.catalog.settings import (
    GLUE_DATABASE_PREFIX,
    LAKE_CATALOG_ROLE,
    QUERY_GRACE,
    CatalogOptions,
    CatalogSettings,
    RetentionPolicy,
    database_prefix,
)
from snaplake.catalog.versions import (
    TABLE_VERSION,
    VERSION_OF,
    TableVersion,
    choose_version,
    table_versions,
    version_holding,
    version_table_name,
)

__all__ = [
    "DEFAULT_PROJECTION_RULES",
    "DETAIL_TYPE",
    "EXPIRED",
    "GLUE_DATABASE_PREFIX",
    "LAKE_CATALOG_ROLE",
    "LATEST_OF",
    "LATEST_SNAPSHOT_TIME",
    "MANAGED_BY",
    "MAX_ENUM_CHARACTERS",
    "PARQUET_INPUT_FORMAT",
    "PARQUET_OUTPUT_FORMAT",
    "PARQUET_SERDE",
    "QUERY_GRACE",
    "SNAPSHOT_TIME_FORMAT",
    "SOURCE",
    "SOURCE_ACCOUNT_TAG",
    "TABLE_TYPE",
    "TABLE_VERSION",
    "VERSION_OF",
    "CatalogError",
    "CatalogOptions",
    "CatalogSettings",
    "Column",
    "DuplicateColumn",
    "GlueTableCollision",
    "HiveType",
    "IncompatibleColumnType",
    "LandedManifestInvalid",
    "LandedPartition",
    "Landing",
    "LandingEventsNotPut",
    "LatestMove",
    "NoDataFiles",
    "ParquetFooterUnreadable",
    "PartitionKeysChanged",
    "PartitionRegistrationFailed",
    "ProjectionRule",
    "Registration",
    "RetentionFailed",
    "RetentionPass",
    "RetentionPolicy",
    "TableChange",
    "TableVersion",
    "UnsupportedColumnType",
    "UnsupportedPartitionLayout",
    "apply_retention",
    "catalog_client",
    "change_hour_end",
    "choose_version",
    "conform_to_table",
    "database_prefix",
    "dynamodb_landings",
    "dynamodb_partitions",
    "ensure_database",
    "expire_change_log",
    "expire_snapshot_table",
    "expire_snapshots",
    "expired_partitions",
    "get_table",
    "glue_type",
    "landed_columns",
    "landing_event_bus",
    "latest_location",
    "latest_table_name",
    "list_data_files",
    "merge_columns",
    "parse_hive_type",
    "parse_landed_manifest",
    "point_latest",
    "projection_parameters",
    "put_landing_events",
    "rds_landings",
    "read_parquet_schema",
    "register_landed",
    "register_partition",
    "register_partitions",
    "register_projected_table",
    "schema_columns",
    "snapshot_time",
    "table_versions",
    "typed_column",
    "upsert_table",
    "version_holding",
    "version_table_name",
]
