"""The DynamoDB export pipeline (statemachine/dynamodb_export.asl.json), step by step.

- StartExport, PollExport, the schedule's fan-out: `export` (windows from the checkpoint, PITR, ClientToken)
- the checkpoint table: `checkpoint` (export lease, MarkPublishing, CommitCheckpoint, ReleaseLease)
- PlanConversion, ScanFiles, MergeSchema, ConvertFiles: `conversion`; one data file read (JSON or staged) and
  written per lake partition: `data_files`
- FinalizeConversion: `publish`
- DynamoDB JSON values: `attribute_values`; DynamoDB JSON lines -> Parquet: the `parquet` subpackage (needs pyarrow,
  so it is not imported here: functions without the arrow layer import this package)
"""

from snaplake.dynamodb.attribute_values import (
    MAX_NESTING_DEPTH,
    InvalidAttributeValue,
    attribute_json,
    canonical_number,
    check_attribute_value,
    check_attributes,
    deserialize,
    nested_too_deep,
    valid_unicode,
)
from snaplake.dynamodb.checkpoint import (
    LEASE_SECONDS,
    PublishingExport,
    abandon_commit,
    claim_export_lease,
    commit_checkpoint,
    load_checkpoint,
    load_export_state,
    mark_publishing,
    parse_commit,
    parse_publishing,
    release_export_lease,
    resume_publishing_export,
)
from snaplake.dynamodb.conversion import convert_files, merge_schemas, plan_conversion, scan_files
from snaplake.dynamodb.export import (
    EXPORT_ARN,
    MAX_WINDOW,
    MIN_WINDOW,
    Checkpoint,
    ExportPlan,
    Mode,
    execution_arn,
    parse_request,
    pitr_window,
    plan_next_export,
    poll_export,
    require_own_table,
    running_export,
    start_export,
    start_table_executions,
    table_name,
)
from snaplake.dynamodb.publish import finalize_conversion, publish_share
from snaplake.dynamodb.settings import ConversionSettings, DynamoDbExportSettings, ScheduleSettings

__all__ = [
    "EXPORT_ARN",
    "LEASE_SECONDS",
    "MAX_NESTING_DEPTH",
    "MAX_WINDOW",
    "MIN_WINDOW",
    "Checkpoint",
    "ConversionSettings",
    "DynamoDbExportSettings",
    "ExportPlan",
    "InvalidAttributeValue",
    "Mode",
    "PublishingExport",
    "ScheduleSettings",
    "abandon_commit",
    "attribute_json",
    "canonical_number",
    "check_attribute_value",
    "check_attributes",
    "claim_export_lease",
    "commit_checkpoint",
    "convert_files",
    "deserialize",
    "execution_arn",
    "finalize_conversion",
    "load_checkpoint",
    "load_export_state",
    "mark_publishing",
    "merge_schemas",
    "nested_too_deep",
    "parse_commit",
    "parse_publishing",
    "parse_request",
    "pitr_window",
    "plan_conversion",
    "plan_next_export",
    "poll_export",
    "publish_share",
    "release_export_lease",
    "require_own_table",
    "resume_publishing_export",
    "running_export",
    "scan_files",
    "start_export",
    "start_table_executions",
    "table_name",
    "valid_unicode",
]
