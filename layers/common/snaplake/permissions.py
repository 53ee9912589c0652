"""Every AWS API call the handlers and this package make, and what data it touches: what template.yaml must grant.

tests/template/test_template_permissions.py reads the code with `ast` and fails when a boto3 client call is
missing here, or listed here but no longer in the code. It then follows each Lambda's handler through the code
it can run and checks that the function's policy in template.yaml allows every call listed for that code
(for S3, on the right bucket and prefix, with the KMS permissions SSE-KMS needs).

Keys: the module ("snaplake.<module>", or a handler file "functions/<step>/<file>.py"), then the function,
"Class.method" or "<module>" (top-level code) the call is written in; calls inside a nested function belong to
the function around it. Each call is "<boto3 service>.<client method>" (for get_paginator, the operation it
pages), followed for calls that touch S3 by the data they touch:

    lake             the lake bucket, under LakePrefix
    rds-export       the RDS snapshot exports and the copy plans (export bucket, ExportPrefix)
    dynamodb-export  the DynamoDB exports and the conversion plans (export bucket, DynamoDbExportPrefix)

A copy names its source first: "s3.copy_object rds-export -> lake".
"""

from __future__ import annotations

AWS_CALLS: dict[str, dict[str, tuple[str, ...]]] = {
    "functions/catalog/app.py": {
        "rds_handler": ("s3.get_object rds-export",),  # the landed manifest FinalizeCopy wrote next to the plan
    },
    "snaplake.athena_job": {
        # Plans and query results live in the lake bucket (_snaplake/athena/ under LakePrefix by default).
        "_Run._keys": ("s3.list_objects_v2 lake",),
        "_Run._require_empty": ("s3.list_objects_v2 lake",),
        "_Run._delete_location": ("s3.delete_objects lake",),
        "_Run._store_plan": ("s3.put_object lake",),
        "_Run._load_steps": ("s3.get_object lake",),
        "_Run._partitions": ("glue.get_partitions",),
        "_Run._replace_table": ("glue.update_table", "glue.delete_table", "glue.create_table"),
        "_Run._swap_partitions": ("glue.batch_update_partition", "glue.batch_create_partition", "glue.batch_delete_partition"),
        "_Run._check_schema": ("glue.delete_table",),
        "_Run._start_query": ("athena.start_query_execution lake",),  # Athena reads and writes the lake as this role
        "_Run._query_finished": ("athena.get_query_execution",),
        "_Run._partition_values": ("athena.get_query_results",),
        "_Run._plan_apas": ("glue.get_partition",),
    },
    "snaplake.catalog": {
        "_ranged_get": ("s3.get_object lake",),
        "list_data_files": ("s3.list_objects_v2 lake",),
        "ensure_database": ("glue.get_database", "glue.create_database"),
        "_get_table": ("glue.get_table",),
        "upsert_table": ("glue.create_table", "glue.update_table"),
        "register_partitions": ("glue.batch_create_partition",),
        "_check_existing_location": ("glue.get_partition",),
    },
    "snaplake.change_log": {
        "lake_writer": ("s3.put_object lake",),
    },
    "snaplake.ddb_export": {
        "_checkpoint_item": ("dynamodb.get_item",),
        "_update_as_holder": ("dynamodb.update_item",),
        "resume_publishing_export": ("dynamodb.describe_export",),
        "claim_export_lease": ("dynamodb.update_item",),
        "commit_checkpoint": ("dynamodb.put_item",),
        "pitr_window": ("dynamodb.describe_continuous_backups",),
        "running_export": ("dynamodb.list_exports", "dynamodb.describe_export"),
        "start_export": ("dynamodb.export_table_to_point_in_time dynamodb-export",),
        "poll_export": ("dynamodb.describe_export",),
        "start_table_executions": ("stepfunctions.start_execution",),
    },
    "snaplake.ddb_lake": {
        "_S3.read_export": ("s3.get_object dynamodb-export",),
        "_S3.open_export": ("s3.get_object dynamodb-export",),
        "_S3.write_export": ("s3.put_object dynamodb-export",),
        "_S3.list_export": ("s3.list_objects_v2 dynamodb-export",),
        "_S3.upload_lake": ("s3.upload_file lake",),
        "_S3.put_lake": ("s3.put_object lake",),
        "_S3.publish": ("s3.copy lake -> lake",),
        "_S3._lake_has": ("s3.head_object lake",),
        "_S3.drop_staged": ("s3.delete_objects lake",),
    },
    "snaplake.lake_copy": {
        "LakeWriter.list_lake": ("s3.list_objects_v2 lake",),
        "LakeWriter.list_source": ("s3.list_objects_v2 rds-export",),
        "LakeWriter.get_source_json": ("s3.get_object rds-export",),
        "LakeWriter.put_source": ("s3.put_object rds-export",),
        "LakeWriter.batch_progress": ("s3.list_objects_v2 rds-export",),
        "LakeWriter._same_object_in_lake": ("s3.head_object lake",),
        "LakeWriter._copy": ("s3.copy_object rds-export -> lake",),
        "LakeWriter._multipart_copy": (
            "s3.create_multipart_upload lake",
            "s3.upload_part_copy rds-export -> lake",
            "s3.complete_multipart_upload lake",
            "s3.abort_multipart_upload lake",
        ),
        "LakeWriter.put_marker": ("s3.put_object lake",),
    },
    "snaplake.rds_export": {
        "describe_export": ("rds.describe_export_tasks",),
        "active_export_count": ("rds.describe_export_tasks",),
        "start_export": ("rds.start_export_task rds-export",),
    },
    "snaplake.snapshots": {
        "describe_snapshot": ("rds.describe_db_cluster_snapshots", "rds.describe_db_snapshots"),
        "latest_snapshot": (
            "rds.describe_db_clusters",
            "rds.describe_db_cluster_snapshots",
            "rds.describe_db_instances",
            "rds.describe_db_snapshots",
        ),
    },
}
