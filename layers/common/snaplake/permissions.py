"""Every AWS API call the handlers and this package make, and what data it touches: what template.yaml must grant.

tests/template/test_template_permissions.py reads the code with `ast` and fails when a boto3 client call is
missing here, or listed here but no longer in the code. It then follows each Lambda's handler through the code
it can run and checks that the function's policy in template.yaml allows every call listed for that code
(for S3, on the right bucket and prefix, with the KMS permissions SSE-KMS needs).

Keys: the module ("snaplake.<subpackage>.<module>", or a handler file "functions/<step>/<file>.py"), then the
function, "Class.method" or "<module>" (top-level code) the call is written in; calls inside a nested function
belong to the function around it. Each call is "<boto3 service>.<client method>" (for get_paginator, the
operation it pages), followed for calls that touch S3 by the data they touch:

    lake             the lake bucket, under LakePrefix
    rds-export       the RDS snapshot exports and the copy plans (export bucket, ExportPrefix)
    dynamodb-export  the DynamoDB exports and the conversion plans (export bucket, DynamoDbExportPrefix)
    athena-jobs      the Athena jobs' tables (lake bucket, LakePrefix/AthenaJobsPrefix)
    athena-work      the Athena jobs' plans, schema probes and query results (lake bucket, LakePrefix/_snaplake/athena)

A copy names its source first: "s3.copy_object rds-export -> lake".

The S3 adapter (ADAPTERS: snaplake.core.s3.Bucket) makes its boto3 calls for the code that calls it: its own
entries list the calls each method makes, without a location, and every use of it is listed where it happens,
with the data it touches there (`lake.write_bytes(...)` in FinalizeCopy is "s3.put_object lake").
"""

from __future__ import annotations

# Classes whose boto3 calls are charged to their callers (module -> class names).
ADAPTERS: dict[str, tuple[str, ...]] = {"snaplake.core.s3": ("Bucket",)}

AWS_CALLS: dict[str, dict[str, tuple[str, ...]]] = {
    "functions/catalog/app.py": {
        "rds_handler": ("s3.get_object rds-export",),  # the landed manifest FinalizeCopy wrote next to the plan
    },
    "snaplake.core.s3": {
        "Bucket.objects_under": ("s3.list_objects_v2",),
        "Bucket.first_objects_under": ("s3.list_objects_v2",),
        "Bucket.read_bytes": ("s3.get_object",),
        "Bucket.read_tail": ("s3.get_object",),
        "Bucket.open_stream": ("s3.get_object",),
        "Bucket.metadata": ("s3.head_object",),
        "Bucket.write_bytes": ("s3.put_object",),
        "Bucket.write_file": ("s3.upload_file",),
        "Bucket.copy_within": ("s3.copy",),
        "Bucket.copy_in": (
            "s3.copy_object",
            "s3.create_multipart_upload",
            "s3.upload_part_copy",
            "s3.complete_multipart_upload",
            "s3.abort_multipart_upload",
        ),
        "Bucket.delete_keys": ("s3.delete_objects",),
        "Bucket.read_json_with_etag": ("s3.get_object",),
    },
    # Claims and column registries live in the lake, under _snaplake/ (LakePrefix).
    # The PII hashing key: its ciphertext (PII_KEY_CIPHERTEXT) decrypted once per container.
    "snaplake.core.pii": {
        "PiiKey._decrypt": ("kms.decrypt",),
    },
    "snaplake.core.claims": {
        "Claims.claim": ("s3.put_object lake", "s3.get_object lake"),
        "Claims.release": ("s3.delete_objects lake",),
        "ColumnRegistry._read": ("s3.get_object lake",),
        "ColumnRegistry.names": ("s3.put_object lake",),
    },
    # Plans and query results live in the lake bucket (_snaplake/athena/ under LakePrefix by default).
    "snaplake.athena.lake": {
        "JobStorage.keys": ("s3.list_objects_v2 athena-jobs",),
        "JobStorage._first_key": ("s3.list_objects_v2 athena-jobs",),
        "JobStorage.delete_location": ("s3.delete_objects athena-jobs",),
        "JobStorage.store_plan": ("s3.put_object athena-work",),
        "JobStorage.load_steps": ("s3.get_object athena-work",),
    },
    "snaplake.athena.catalog_ops": {
        "JobTables.partitions": ("glue.get_partitions",),
        "JobTables.replace_table": ("glue.update_table", "glue.delete_table", "glue.create_table"),
        "JobTables.swap_partitions": ("glue.batch_update_partition", "glue.batch_create_partition", "glue.batch_delete_partition"),
        "JobTables.check_schema": ("glue.delete_table",),
    },
    "snaplake.athena.planner": {
        "JobPlanner._partition": ("glue.get_partition",),
    },
    # A run's job list and SQL files (the definitions folder, under the jobs folder), and its landing's claim.
    "snaplake.athena.runs": {
        "_definition": ("s3.head_object athena-jobs", "s3.get_object athena-jobs"),
        "_landing_taken": ("stepfunctions.describe_execution", "s3.get_object athena-work", "s3.put_object athena-work"),
    },
    "snaplake.athena.temporary": {
        "drop_temporary_tables": ("glue.delete_table",),
    },
    "snaplake.athena.queries": {
        # Athena reads the lake and writes the jobs' tables, probes and results as this role.
        "JobQueries.start": ("athena.start_query_execution lake -> athena-jobs", "athena.start_query_execution lake -> athena-work"),
        "JobQueries.partition_values": ("athena.get_query_results",),
        "query_ended": ("athena.get_query_execution",),
    },
    # MergeCurrent: Athena reads the DynamoDB tables and writes the _current Iceberg tables (dynamodb_current/) and its
    # results (_snaplake/current/results/); the record of what each table applied is under _snaplake/current/.
    "snaplake.athena.current": {
        "CurrentStep.applied_record": ("s3.get_object lake",),
        "CurrentStep.record_applied": ("s3.put_object lake",),
        "CurrentStep.key_columns": ("dynamodb.describe_table",),
        "CurrentStep.put_landing": ("athena.get_query_results",),
        "CurrentStep.start": ("athena.start_query_execution lake -> lake",),
    },
    "snaplake.catalog.footers": {
        "read_parquet_schema": ("s3.get_object lake",),
        "list_data_files": ("s3.list_objects_v2 lake",),
    },
    "snaplake.catalog.landing": {
        "_put_batch": ("events.put_events",),
    },
    "snaplake.catalog.latest": {
        "point_latest": ("glue.create_table", "glue.update_table"),
    },
    # Retention: expired partitions out of Glue, their records in the table's parameters, then their objects.
    "snaplake.catalog.retention": {
        "_registered_partitions": ("glue.get_partitions",),
        "_update_records": ("glue.update_table",),
        "_delete_partitions": ("glue.batch_delete_partition",),
        "_purge": ("s3.list_objects_v2 lake", "s3.delete_objects lake"),
    },
    "snaplake.core.aws": {
        # A source account's stack only (LakeCatalogRoleArn): the lake's catalog role, with its session tag.
        "assumed_role_client": ("sts.assume_role",),
    },
    "snaplake.catalog.glue": {
        "ensure_database": ("glue.get_database", "glue.create_database"),
        "get_table": ("glue.get_table",),
        "upsert_table": ("glue.create_table", "glue.update_table"),
        "register_partitions": ("glue.batch_create_partition",),
        "_check_existing_location": ("glue.get_partition",),
    },
    "snaplake.catalog.versions": {
        "registers": ("glue.get_partition",),  # which table version registers a partition (versions; retention)
    },
    "snaplake.streams.landed": {
        "LakeChangeLog.keys_from": ("s3.list_objects_v2 lake",),
        "LakeChangeLog.read": ("s3.get_object lake",),
        "LakeChangeLog.write": ("s3.put_object lake",),
        "LakeChangeLog.view_type": ("dynamodbstreams.describe_stream",),
    },
    # An operator's replay of one StreamFailureQueue message: its range read back from the stream, and the shard's
    # replay lease under the change log's claims (_snaplake/claims/dynamodb_stream_changes/, LakePrefix).
    "snaplake.streams.replay": {
        "read_failure_range": ("dynamodbstreams.get_shard_iterator", "dynamodbstreams.get_records"),
    },
    "snaplake.streams.replay_lease": {
        "LakeReplayLeases.read_lease": ("s3.get_object lake",),
        "LakeReplayLeases.write_lease": ("s3.put_object lake",),
    },
    "snaplake.dynamodb.checkpoint": {
        "_checkpoint_item": ("dynamodb.get_item",),
        "_update_as_holder": ("dynamodb.update_item",),
        "resume_publishing_export": ("dynamodb.describe_export",),
        "claim_export_lease": ("dynamodb.update_item",),
        "commit_checkpoint": ("dynamodb.put_item",),
    },
    "snaplake.dynamodb.export": {
        "pitr_window": ("dynamodb.describe_continuous_backups",),
        "running_export": ("dynamodb.list_exports", "dynamodb.describe_export"),
        "start_export": ("dynamodb.export_table_to_point_in_time dynamodb-export",),
        "poll_export": ("dynamodb.describe_export",),
        "start_table_executions": ("stepfunctions.start_execution", "stepfunctions.describe_execution"),
    },
    "snaplake.dynamodb.data_files": {
        "open_data_file": ("s3.get_object dynamodb-export",),
        "tables_from_stage": ("s3.get_object dynamodb-export",),  # ScanFiles' staged conversion, in the plan folder
    },
    "snaplake.dynamodb.conversion": {
        "plan_conversion": ("s3.get_object dynamodb-export", "s3.put_object dynamodb-export"),
        "plan_files": ("s3.get_object dynamodb-export",),
        "scan_files": ("s3.put_object dynamodb-export",),
        "merge_schemas": ("s3.get_object dynamodb-export", "s3.put_object dynamodb-export"),
        "share_chain": ("s3.get_object dynamodb-export",),
        "convert_files": ("s3.get_object dynamodb-export", "s3.put_object dynamodb-export", "s3.upload_file lake"),
    },
    "snaplake.dynamodb.publish": {
        "publish": ("s3.copy lake -> lake", "s3.head_object lake"),
        "drop_staged": ("s3.delete_objects lake",),
        "publish_share": ("s3.put_object dynamodb-export",),
        "_converted": ("s3.get_object dynamodb-export",),
        "finalize_conversion": ("s3.get_object dynamodb-export", "s3.list_objects_v2 lake", "s3.put_object lake"),
    },
    "snaplake.rds.copy_plan": {
        "plan_copy": ("s3.list_objects_v2 rds-export", "s3.put_object rds-export"),
        "_check_partitions_hold_only_this_export": ("s3.list_objects_v2 lake",),
        "_done_batches_missing_objects": ("s3.list_objects_v2 rds-export",),
    },
    # PlanCopy's checks and claims before anything lands; FilterSnapshot reads the snapshot claims.
    "snaplake.rds.lake_guards": {
        "landed_snapshot_owner": ("s3.get_object lake",),
        "parquet_footer": ("s3.get_object rds-export",),
    },
    "snaplake.rds.copy_batch": {
        "already_copied": ("s3.head_object lake",),
        "copy_item": (
            "s3.copy_object rds-export -> lake",
            "s3.create_multipart_upload lake",
            "s3.upload_part_copy rds-export -> lake",
            "s3.complete_multipart_upload lake",
            "s3.abort_multipart_upload lake",
        ),
        "batch_progress": ("s3.list_objects_v2 rds-export",),
        "copy_batches": ("s3.get_object rds-export", "s3.put_object rds-export"),
    },
    # A data file of a table with a PII rule: read from the export, rewritten, uploaded to its lake key.
    "snaplake.rds.rewrite": {
        "already_rewritten": ("s3.head_object lake",),
        "rewrite_item": ("s3.get_object rds-export", "s3.upload_file lake"),
    },
    "snaplake.rds.finalize": {
        # the plan's files are read and landed.json written in the export bucket; the _SUCCESS markers go to the lake
        "finalize_copy": (
            "s3.get_object rds-export",
            "s3.head_object rds-export",
            "s3.list_objects_v2 rds-export",
            "s3.put_object lake",
            "s3.put_object rds-export",
        ),
        "_check_every_object_landed": ("s3.get_object rds-export", "s3.list_objects_v2 lake"),
        "_landed_rows": ("s3.get_object rds-export",),  # each batch's done marker: its rows per partition
    },
    "snaplake.rds.export_task": {
        "describe_export": ("rds.describe_export_tasks",),
        "active_export_count": ("rds.describe_export_tasks",),
        "start_export": ("rds.start_export_task rds-export",),
    },
    "snaplake.rds.snapshots": {
        "describe_snapshot": ("rds.describe_db_cluster_snapshots", "rds.describe_db_snapshots"),
        "latest_snapshot": (
            "rds.describe_db_clusters",
            "rds.describe_db_cluster_snapshots",
            "rds.describe_db_instances",
            "rds.describe_db_snapshots",
        ),
    },
}
