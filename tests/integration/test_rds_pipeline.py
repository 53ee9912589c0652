"""The RDS export state machine (statemachine/rds_export.asl.json) executed on moto's
Step Functions executor, with the real handlers in-process and the emulated export."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from snaplake.core.s3 import Bucket
from snaplake.rds import copy_batch
from snaplake.rds.copy_plan import CopyItem
from snaplake_local.emulator import ManyFilesSource, RdsExportEmulator
from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.sample_data import shop_mysql_tables, world_postgres_tables
from snaplake_local.sources import (
    SHOP_INSTANCE,
    WORLD_CLUSTER,
    cluster_snapshot,
    create_cluster,
    sample_event,
    world_source,
)
from snaplake_local.stack import EmulatedStack, Execution

RDS = "RdsExportStateMachine"
CLUSTER_EVENT = "rds_automated_cluster_snapshot.json"
INSTANCE_EVENT = "rds_manual_instance_snapshot.json"
WORLD_PARTITION = "snapshot_time=20240502T024019Z"
SHOP_PARTITION = "snapshot_time=20240502T100007Z"


def data_keys(stack: EmulatedStack) -> list[str]:
    return sorted(key for key in stack.lake_objects() if key.endswith(".parquet"))


def rows_by_table(stack: EmulatedStack) -> dict[str, int]:
    s3 = stack.client("s3")
    rows: dict[str, int] = {}
    for key in data_keys(stack):
        table = "/".join(key.split("/")[:3])
        body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
        rows[table] = rows.get(table, 0) + pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
    return rows


def copy_tally(stack: EmulatedStack, execution: Execution) -> dict[str, int]:
    """copied / skipped / copiedBytes over CopyToLake's children (each batch's last CopyBatch output carries its totals);
    the parent's state keeps only the child count."""
    [run] = stack.distributed_maps.of(execution.arn, "CopyToLake")
    finals = [out for out in run.step_outputs("CopyBatch") if out["done"]]
    assert len(finals) == run.succeeded == execution.output["copyResults"]["children"] == execution.output["copy"]["batches"]
    return {name: sum(out[name] for out in finals) for name in ("copied", "skipped", "copiedBytes")}


def failed_attempts(execution: Execution, error: str, stack: EmulatedStack | None = None) -> int:
    """Failed Lambda attempts in the execution's history (and, given the stack, in its Distributed Map children's)."""
    children = [event for run in stack.distributed_maps.of(execution.arn) for event in run.history] if stack else []
    return sum(
        1
        for event in [*execution.history, *children]
        if event["type"] == "LambdaFunctionFailed" and event.get("lambdaFunctionFailedEventDetails", {}).get("error") == error
    )


def test_automated_cluster_snapshot_lands_every_postgres_table_with_success_markers(stack: EmulatedStack) -> None:
    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    objects = stack.lake_objects()
    tables = {name.split(".")[-1].lower().replace("invoice_lines", "sales_invoice_lines") for name in world_postgres_tables()}
    assert tables == {"city", "country", "countrylanguage", "sales_invoice_lines"}
    for table in tables:
        partition = f"rds/world/{table}/{WORLD_PARTITION}/"
        assert objects[partition + "_SUCCESS"] == 0
        assert objects[partition + "1/_SUCCESS"] == 0
        assert len([k for k in objects if k.startswith(partition + "1/part-")]) == 2
    assert all(key.startswith(("rds/world/", "_snaplake/claims/rds/")) and ":" not in key for key in objects)
    expected_rows = {f"rds/world/{folder.split('.')[-1].lower()}": t.num_rows for folder, t in world_postgres_tables().items()}
    expected_rows["rds/world/sales_invoice_lines"] = expected_rows.pop("rds/world/invoice_lines")
    assert rows_by_table(stack) == expected_rows
    assert execution.output["landed"]["tables"] == 4


def test_manual_instance_snapshot_lands_mysql_tables_without_database_prefix(stack: EmulatedStack) -> None:
    execution = stack.run(RDS, sample_event(INSTANCE_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    expected = {f"rds/shop/{folder.split('.')[1]}": table.num_rows for folder, table in shop_mysql_tables().items()}
    assert rows_by_table(stack) == expected
    assert f"rds/shop/customers/{SHOP_PARTITION}/_SUCCESS" in stack.lake_objects()


@pytest.mark.parametrize(
    "event_file",
    [
        "rds_automated_cluster_snapshot.json",
        "rds_manual_cluster_snapshot.json",
        "rds_automated_instance_snapshot.json",
        "rds_manual_instance_snapshot.json",
        "rds_export_request.json",
        "rds_latest_snapshot_request.json",
    ],
)
def test_every_sample_trigger_event_exports_its_snapshot(stack: EmulatedStack, event_file: str) -> None:
    execution = stack.run(RDS, sample_event(event_file))

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["snapshot"]["export"] is True
    assert execution.output["snapshot"]["sourceIdentifier"] in (WORLD_CLUSTER, SHOP_INSTANCE)
    assert execution.output["landed"]["objects"] == len(data_keys(stack)) > 0


def test_snapshot_deleted_event_is_skipped_without_an_export(stack: EmulatedStack) -> None:
    execution = stack.run(RDS, sample_event("rds_snapshot_deleted.json"))

    assert execution.status == "SUCCEEDED"
    assert execution.output["snapshot"] == {"export": False, "reason": "event 'RDS-EVENT-0041' is not a snapshot-created event"}
    assert stack.rds_exports.started_exports == []
    assert stack.lake_objects() == {}


def test_snapshot_of_a_source_outside_the_allow_list_is_skipped(stack: EmulatedStack) -> None:
    create_cluster(stack, "scratch-aurora")
    arn = cluster_snapshot(stack, "scratch-aurora", "scratch-1", world_source())

    execution = stack.run(RDS, {"snapshotArn": arn})

    assert execution.status == "SUCCEEDED"
    assert execution.output["snapshot"]["export"] is False
    assert "scratch-aurora" in execution.output["snapshot"]["reason"]
    assert stack.rds_exports.started_exports == []
    assert stack.lake_objects() == {}


def test_redelivered_event_starts_one_export_and_duplicates_nothing(stack: EmulatedStack) -> None:
    first = stack.run(RDS, sample_event(CLUSTER_EVENT))
    after_first = stack.lake_objects()

    second = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert first.status == second.status == "SUCCEEDED"
    assert len(stack.rds_exports.started_exports) == 1
    assert second.output["export"]["reused"] is True
    assert stack.lake_objects() == after_first
    assert copy_tally(stack, second)["copied"] == 0
    assert copy_tally(stack, second)["skipped"] == first.output["copy"]["objects"]


def test_same_event_delivered_three_times_concurrently_lands_once(stack: EmulatedStack) -> None:
    arns = [stack.start(RDS, sample_event(CLUSTER_EVENT)) for _ in range(3)]
    executions = [stack.wait(arn) for arn in arns]

    assert [e.status for e in executions] == ["SUCCEEDED"] * 3
    assert len(stack.rds_exports.started_exports) == 1
    assert len(data_keys(stack)) == 8
    assert rows_by_table(stack)["rds/world/city"] == world_postgres_tables()["public.city"].num_rows


def test_emulated_export_completing_under_concurrent_describes_writes_its_files_once(stack: EmulatedStack) -> None:
    """Each execution polls DescribeExportTasks; however many poll at the moment the task
    completes, its files are written once, as AWS writes them once (an overwrite in moto
    closes the object a concurrent listing is reading)."""
    create_cluster(stack, "race-cluster")
    arn = cluster_snapshot(stack, "race-cluster", "race-snapshot", world_source())
    rds = stack.client("rds")
    rds.start_export_task(
        ExportTaskIdentifier="race-export",
        SourceArn=arn,
        S3BucketName=stack.export_bucket,
        IamRoleArn=f"arn:aws:iam::{stack.account}:role/export",
        KmsKeyId=f"arn:aws:kms:{stack.region}:{stack.account}:key/race",
    )
    stack.clock.advance(2 * 3600)
    writes: list[str] = []
    original = RdsExportEmulator._write_export

    def slow_write(emulator: RdsExportEmulator, task: Any, state: Any) -> None:
        writes.append(task.export_task_identifier)
        time.sleep(0.05)  # widen the window in which a second poll could write again
        original(emulator, task, state)

    pollers = 8
    barrier = threading.Barrier(pollers)

    def poll(_: int) -> str:
        barrier.wait()
        return str(rds.describe_export_tasks(ExportTaskIdentifier="race-export")["ExportTasks"][0]["Status"])

    with mock.patch.object(RdsExportEmulator, "_write_export", slow_write), ThreadPoolExecutor(pollers) as pool:
        statuses = list(pool.map(poll, range(pollers)))

    assert statuses == ["COMPLETE"] * pollers
    assert writes == ["race-export"]


def test_failed_export_fails_the_execution_with_its_cause_and_notifies(stack: EmulatedStack) -> None:
    snapshot_arn = stack.client("rds").describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="world-aurora-manual-1")[
        "DBClusterSnapshots"
    ][0]["DBClusterSnapshotArn"]
    stack.rds_exports.fail_export(snapshot_arn, "The S3 bucket snaplake-local-exportbucket isn't located in the current AWS Region.")

    execution = stack.run(RDS, sample_event("rds_manual_cluster_snapshot.json"))

    assert execution.status == "FAILED"
    assert execution.error == "ExportFailed"
    assert "isn't located in the current AWS Region" in (execution.cause or "")
    [notification] = stack.notifications()
    assert notification["subject"] == "snaplake: RDS snapshot export failed"
    message = notification["message"]
    assert message["step"] == "PollExport"
    assert message["error"] == "ExportFailed"
    assert "isn't located in the current AWS Region" in message["cause"]
    assert message["execution"] == execution.arn
    assert stack.lake_objects() == {}


def test_busy_export_slots_are_waited_for_then_the_export_runs(stack: EmulatedStack) -> None:
    stack.rds_exports.occupy_slots(5, for_seconds=2 * 3600)

    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    assert failed_attempts(execution, "ExportSlotsBusy") >= 1
    assert stack.clock.waited_seconds >= 2 * 3600
    assert len(stack.rds_exports.started_exports) == 1
    assert len(data_keys(stack)) == 8


def test_skipped_tables_warning_is_surfaced_in_the_output(stack: EmulatedStack) -> None:
    snapshot_arn = stack.client("rds").describe_db_snapshots(DBSnapshotIdentifier="shop-mysql-before-migration")["DBSnapshots"][0][
        "DBSnapshotArn"
    ]
    warning = {
        "skippedTables": [{"target": "shop.audit_log", "reason": "column name contains a space"}],
        "skippedObjectives": [],
        "general": [],
    }
    stack.rds_exports.warn_export(snapshot_arn, warning)

    execution = stack.run(RDS, sample_event(INSTANCE_EVENT))

    assert execution.status == "SUCCEEDED"
    assert execution.output["export"]["warnings"] == warning


def _crash_copies_after(count: int, times: int) -> Callable[[], None]:
    """Let the first `count` CopyObject calls through, then make the next `times` calls fail (counted as they start,
    so concurrent copy workers cannot all slip past the threshold together)."""
    state = {"calls": 0}
    lock = threading.Lock()
    original = copy_batch.copy_item

    def flaky(lake: Bucket, export: Bucket, item: CopyItem, multipart_threshold: int = copy_batch.MAX_SINGLE_COPY_BYTES) -> None:
        with lock:
            state["calls"] += 1
            crash = count < state["calls"] <= count + times
        if crash:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected crash mid-batch"}}, "CopyObject")
        original(lake, export, item, multipart_threshold)

    copy_batch.copy_item = flaky
    return lambda: setattr(copy_batch, "copy_item", original)


def test_copy_crash_mid_batch_is_retried_and_completes_without_duplicates(stack: EmulatedStack) -> None:
    restore = _crash_copies_after(3, times=1)
    try:
        execution = stack.run(RDS, sample_event(CLUSTER_EVENT))
    finally:
        restore()

    assert execution.status == "SUCCEEDED", execution.cause
    assert failed_attempts(execution, "TransientAwsError", stack) == 1  # S3's InternalError, named for the Retry
    assert len(data_keys(stack)) == 8
    results = copy_tally(stack, execution)
    assert results["copied"] + results["skipped"] >= 8


def test_failed_copy_rerun_completes_and_skips_what_was_copied(stack: EmulatedStack) -> None:
    restore = _crash_copies_after(3, times=100)
    try:
        failed = stack.run(RDS, sample_event(CLUSTER_EVENT))
    finally:
        restore()
    assert failed.status == "FAILED"
    assert [n["message"]["step"] for n in stack.notifications()] == ["CopyToLake"]
    partial = data_keys(stack)
    assert 0 < len(partial) < 8
    assert not any(key.endswith("/_SUCCESS") for key in stack.lake_objects())

    rerun = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert len(data_keys(stack)) == 8
    assert copy_tally(stack, rerun)["skipped"] == len(partial)
    assert rows_by_table(stack)["rds/world/country"] == world_postgres_tables()["public.country"].num_rows


def test_copy_worker_out_of_time_hands_over_a_cursor_and_the_loop_finishes(stack_factory: Callable[..., EmulatedStack]) -> None:
    stack = stack_factory(SourceIdentifiers="*")
    create_cluster(stack, "mid-aurora")
    arn = cluster_snapshot(stack, "mid-aurora", "mid-aurora-manual", ManyFilesSource(database="mid", tables=3, file_count=300))
    checks = {"n": 0}

    def remaining_ms() -> int:
        checks["n"] += 1
        return 10_000 if checks["n"] % 3 == 0 else 900_000  # every third check: almost out of time

    stack.lambdas.remaining_ms[stack.function("CopyBatchFunction").name] = remaining_ms
    execution = stack.run(RDS, {"snapshotArn": arn})

    assert execution.status == "SUCCEEDED", execution.cause
    copy_invocations = [name for name, _ in stack.lambdas.invocations if name.endswith("CopyBatchFunction")]
    assert len(copy_invocations) >= 3
    assert len(data_keys(stack)) == 300
    assert copy_tally(stack, execution)["copied"] == 300


def test_large_export_paginates_and_fans_out_in_small_payloads(stack_factory: Callable[..., EmulatedStack]) -> None:
    stack = stack_factory(SourceIdentifiers="*")
    create_cluster(stack, "big-aurora")
    source = ManyFilesSource(database="big", tables=7, file_count=2345, batches=2)
    arn = cluster_snapshot(stack, "big-aurora", "big-aurora-manual", source)

    execution = stack.run(RDS, {"snapshotArn": arn}, timeout_seconds=600)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["copy"]["objects"] == 2345
    assert execution.output["copy"]["batches"] == 3
    keys = data_keys(stack)
    assert len(keys) == 2345
    assert len(set(keys)) == 2345
    assert {k.split("/")[2] for k in keys} == {f"table_{t:04d}" for t in range(7)}
    largest_payload = max(len(json.dumps(e, default=str).encode()) for e in execution.history)
    assert largest_payload < 16 * 1024


def test_old_export_layout_without_batch_folders_lands_as_batch_one(stack_factory: Callable[..., EmulatedStack]) -> None:
    stack = stack_factory()
    arn = cluster_snapshot(stack, WORLD_CLUSTER, "world-old-layout", world_source(old_layout=True))

    execution = stack.run(RDS, {"snapshotArn": arn})

    assert execution.status == "SUCCEEDED", execution.cause
    keys = data_keys(stack)
    assert len(keys) == 4
    assert all(key.split("/")[4] == "1" and key.split("/")[5].startswith("part-") for key in keys)
    assert all(f"{k.rsplit('/', 2)[0]}/_SUCCESS" in stack.lake_objects() for k in keys)


def test_seed_layout_is_reproduced_through_the_key_template(stack_factory: Callable[..., EmulatedStack]) -> None:
    stack = stack_factory(LakeKeyTemplate="{database}/{table}/partition_datetime={snapshot_time}/{batch}/{file}", LakePrefix="seed")

    execution = stack.run(RDS, sample_event(INSTANCE_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    keys = data_keys(stack)
    assert keys and all(k.startswith(f"seed/shop/{k.split('/')[2]}/partition_datetime=20240502T100007Z/1/part-") for k in keys)
    assert f"seed/shop/orders/partition_datetime={SHOP_PARTITION.split('=')[1]}/_SUCCESS" in stack.lake_objects()


def test_lake_objects_are_encrypted_with_the_lake_key_and_record_their_source(stack: EmulatedStack) -> None:
    stack.run(RDS, sample_event(INSTANCE_EVENT))
    key_arn = stack.environment("CopyBatchFunction")["LAKE_KMS_KEY_ARN"]
    s3 = stack.client("s3")

    for key in data_keys(stack):
        head = s3.head_object(Bucket=stack.lake_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_arn
        assert head["Metadata"][copy_batch.SOURCE_ETAG_METADATA]


def test_lake_bucket_owned_by_another_account_is_refused(stack_factory: Callable[..., EmulatedStack]) -> None:
    # Deployed as a source account's stack is (its own accounts/<id> folder), so S3 itself refuses the owner mismatch.
    stack = stack_factory(LakeBucketOwner="999988887777", LakePrefix=f"accounts/{DEFAULT_ACCOUNT}")

    execution = stack.run(RDS, sample_event(INSTANCE_EVENT))

    assert execution.status == "FAILED"
    assert data_keys(stack) == []
    # FilterSnapshot reads the lake's snapshot claims first: refused before any export starts.
    assert stack.notifications()[0]["message"]["step"] in ("FilterSnapshot", "PlanCopy", "CopyToLake")


def test_aws_backup_snapshot_announced_as_manual_snapshot_created_is_exported(stack: EmulatedStack) -> None:
    arn = cluster_snapshot(stack, WORLD_CLUSTER, "awsbackup:job-0a1b2c3d-4e5f", world_source())
    event = sample_event("rds_manual_cluster_snapshot.json")
    event["resources"] = [arn]
    event["detail"].update(SourceArn=arn, SourceIdentifier="awsbackup:job-0a1b2c3d-4e5f")

    execution = stack.run(RDS, event)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["snapshot"]["snapshotIdentifier"] == "awsbackup:job-0a1b2c3d-4e5f"
    identifier = execution.output["export"]["exportTaskIdentifier"]
    assert identifier.startswith("sl-awsbackup-job-0a1b2c3d-4e5f-") and ":" not in identifier
    assert len(data_keys(stack)) == 4  # world_source() writes one file per table


def test_second_export_of_the_same_snapshot_time_is_refused_instead_of_doubling_rows(stack: EmulatedStack) -> None:
    first = stack.run(RDS, sample_event(INSTANCE_EVENT))
    before = stack.lake_objects()
    request = {"snapshotArn": first.output["snapshot"]["snapshotArn"], "exportAttempt": 2}

    second = stack.run(RDS, request)

    assert second.status == "FAILED"
    assert second.error == "DestinationMismatch"
    assert "delete that partition" in (second.cause or "")
    assert len(stack.rds_exports.started_exports) == 2
    assert stack.lake_objects() == before
    assert stack.notifications()[0]["message"]["step"] == "PlanCopy"


def test_export_whose_files_expired_fails_loudly_instead_of_landing_nothing(stack: EmulatedStack) -> None:
    first = stack.run(RDS, sample_event(INSTANCE_EVENT))
    s3 = stack.client("s3")
    root = first.output["export"]["exportRoot"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.export_bucket, Prefix=root):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=stack.export_bucket, Key=obj["Key"])

    rerun = stack.run(RDS, sample_event(INSTANCE_EVENT))

    assert rerun.status == "FAILED"
    assert rerun.error == "ExportFilesMissing"


def test_existing_cross_account_style_lake_gets_its_own_key_and_owner_checks(stack_factory: Callable[..., EmulatedStack]) -> None:
    lake_key = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    stack = stack_factory(LakeBucketName="central-lake-bucket", LakeBucketOwner="123456789012", LakeKmsKeyArn=lake_key, LakePrefix="raw")
    stack.client("s3").create_bucket(Bucket="central-lake-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    execution = stack.run(RDS, sample_event(INSTANCE_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    s3 = stack.client("s3")
    keys = data_keys(stack)
    assert stack.lake_bucket == "central-lake-bucket"
    assert keys and all(k.startswith("raw/rds/shop/") for k in keys)
    for key in keys:
        assert s3.head_object(Bucket="central-lake-bucket", Key=key)["SSEKMSKeyId"] == lake_key
    export_key = stack.environment("StartExportFunction")["EXPORT_KMS_KEY_ARN"]
    assert export_key != lake_key
