"""RegisterCatalog: what landed in the lake, made queryable in Athena through the Glue Data Catalog.

- `register`: the step itself (a landed manifest of FinalizeCopy, or the partitions FinalizeConversion published)
- `footers`: columns and types from Parquet footers; `hive_types`: Hive type strings and merging snapshots' columns
- `partitions`: landed partitions (table location + Hive key=value) and partition projection
- `glue`: databases, tables and partitions in Glue (also used by the Athena jobs)
- `landing`: the EventBridge event put for each partition once it is queryable (docs/events.md)

pyarrow is imported only where footers are read, so functions without the arrow layer can use `glue`.
"""

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
    UnsupportedColumnType,
    UnsupportedPartitionLayout,
)
from snaplake.catalog.footers import glue_type, landed_columns, list_data_files, read_parquet_schema, schema_columns
from snaplake.catalog.glue import (
    MANAGED_BY,
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    TABLE_TYPE,
    TableChange,
    ensure_database,
    get_table,
    register_partitions,
    upsert_table,
)
from snaplake.catalog.hive_types import Column, HiveType, merge_columns, parse_hive_type
from snaplake.catalog.landing import (
    DETAIL_TYPE,
    SOURCE,
    Landing,
    dynamodb_landings,
    landing_event_bus,
    put_landing_events,
    rds_landings,
)
from snaplake.catalog.partitions import (
    DEFAULT_PROJECTION_RULES,
    SNAPSHOT_TIME_FORMAT,
    LandedPartition,
    ProjectionRule,
    projection_parameters,
)
from snaplake.catalog.register import (
    Registration,
    dynamodb_partitions,
    parse_landed_manifest,
    register_landed,
    register_partition,
    register_projected_table,
)
from snaplake.catalog.settings import GLUE_DATABASE_PREFIX, CatalogOptions, CatalogSettings, database_prefix

__all__ = [
    "DEFAULT_PROJECTION_RULES",
    "DETAIL_TYPE",
    "GLUE_DATABASE_PREFIX",
    "MANAGED_BY",
    "PARQUET_INPUT_FORMAT",
    "PARQUET_OUTPUT_FORMAT",
    "PARQUET_SERDE",
    "SNAPSHOT_TIME_FORMAT",
    "SOURCE",
    "TABLE_TYPE",
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
    "NoDataFiles",
    "ParquetFooterUnreadable",
    "PartitionKeysChanged",
    "PartitionRegistrationFailed",
    "ProjectionRule",
    "Registration",
    "TableChange",
    "UnsupportedColumnType",
    "UnsupportedPartitionLayout",
    "database_prefix",
    "dynamodb_landings",
    "dynamodb_partitions",
    "ensure_database",
    "get_table",
    "glue_type",
    "landed_columns",
    "landing_event_bus",
    "list_data_files",
    "merge_columns",
    "parse_hive_type",
    "parse_landed_manifest",
    "projection_parameters",
    "put_landing_events",
    "rds_landings",
    "read_parquet_schema",
    "register_landed",
    "register_partition",
    "register_partitions",
    "register_projected_table",
    "schema_columns",
    "upsert_table",
]
