"""The RDS pipeline's lake guarantees under races, copies, deletions and look-alike sources, on the real
state machine (statemachine/rds_export.asl.json) with the emulated exports.

- Two exports of one source and snapshot time (a snapshot and its copy) never both land, however their
  executions interleave: PlanCopy claims the snapshot time and each partition with S3 conditional writes.
- RDS-EVENT-0197 ("Finished copy of snapshot <name> in region <region>", a same-Region copy such as AWS
  Backup's; RDS user guide, USER_Events.Messages, DB snapshot events, category notification) exports a
  copy whose original never landed and skips one whose original did.
- A re-run verifies the lake against the plan and restores deleted files before `_SUCCESS` is rewritten.
- Two sources whose databases share a name never fold into one lake table, nor into one Glue table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
from snaplake.rds import copy_plan
from snaplake_local.sample_data import shop_mysql_tables
from snaplake_local.sources import (
    COPY_EVENT,
    SHOP_INSTANCE,
    copy_instance_snapshot,
    create_cluster,
    create_instance,
    instance_snapshot,
    sample_event,
    shop_source,
)
from snaplake_local.stack import EmulatedStack

RDS = "RdsExportStateMachine"
INSTANCE_EVENT = "rds_manual_instance_snapshot.json"
SHOP_ORIGINAL = "shop-mysql-before-migration"
SHOP_COPY = "shop-mysql-before-migration-copy"


def data_keys(stack: EmulatedStack) -> list[str]:
    return sorted(key for key in stack.lake_objects() if key.endswith(".parquet"))


def rows_of(stack: EmulatedStack, table_prefix: str) -> int:
    s3 = stack.client("s3")
    rows = 0
    for key in data_keys(stack):
        if key.startswith(table_prefix):
            body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
            rows += pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
    return rows


def copy_of_the_shop_snapshot(stack: EmulatedStack) -> str:
    """A same-Region copy (as AWS Backup makes): RDS keeps OriginalSnapshotCreateTime, so the copy holds the same data
    as of the same time."""
    return copy_instance_snapshot(stack, SHOP_ORIGINAL, SHOP_COPY)


def copy_finished_event(arn: str) -> dict[str, Any]:
    """events/rds_snapshot_copy_finished.json, announcing this copy."""
    event = dict(sample_event(COPY_EVENT))
    event["resources"] = [arn]
    event["detail"].update(SourceArn=arn, SourceIdentifier=arn.rsplit(":", 1)[1])
    return event


def stepped_after_the_listing_check(parties: int) -> Any:
    """Hold every PlanCopy right after its listing of the target partitions (the check-then-act window) until
    `parties` of them got there: each saw the partitions empty before any of them wrote anything."""
    barrier = threading.Barrier(parties, timeout=120)
    original = copy_plan._check_partitions_hold_only_this_export

    def held(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        barrier.wait()
        return result

    return mock.patch.object(copy_plan, "_check_partitions_hold_only_this_export", held)


# ---------------------------------------------------------------- case 9: two exports, one partition


def test_a_snapshot_and_its_copy_exported_together_land_once(stack: EmulatedStack) -> None:
    copy_arn = copy_of_the_shop_snapshot(stack)
    with stepped_after_the_listing_check(2):
        arns = [stack.start(RDS, sample_event(INSTANCE_EVENT)), stack.start(RDS, {"snapshotArn": copy_arn})]
        executions = [stack.wait(arn) for arn in arns]

    assert sorted(e.status for e in executions) == ["FAILED", "SUCCEEDED"], [e.cause for e in executions]
    [refused] = [e for e in executions if e.status == "FAILED"]
    assert refused.error == "DestinationMismatch"
    assert "claimed by export" in (refused.cause or "")
    assert len(stack.rds_exports.started_exports) == 2
    customers = "rds/shop/customers/snapshot_time=20240502T100007Z/"
    assert rows_of(stack, customers) == shop_mysql_tables()["shop.customers"].num_rows
    assert len(data_keys(stack)) == len(shop_mysql_tables())  # one file per table, not two


# ---------------------------------------------------------------- case 2: RDS-EVENT-0197


def test_copy_finished_event_of_a_copy_whose_original_landed_is_skipped(stack: EmulatedStack) -> None:
    original = stack.run(RDS, sample_event(INSTANCE_EVENT))
    assert original.status == "SUCCEEDED", original.cause
    before = stack.lake_objects()
    copy_arn = copy_of_the_shop_snapshot(stack)

    execution = stack.run(RDS, copy_finished_event(copy_arn))

    assert execution.status == "SUCCEEDED", execution.cause
    decision = execution.output["snapshot"]
    assert decision["export"] is False
    assert f":snapshot:{SHOP_ORIGINAL} (export " in decision["reason"] and "already landed" in decision["reason"]
    assert len(stack.rds_exports.started_exports) == 1
    assert stack.lake_objects() == before


def test_copy_of_a_landed_snapshot_requested_by_arn_is_skipped_too(stack: EmulatedStack) -> None:
    stack.run(RDS, sample_event(INSTANCE_EVENT))
    copy_arn = copy_of_the_shop_snapshot(stack)

    execution = stack.run(RDS, {"snapshotArn": copy_arn})

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["snapshot"]["export"] is False
    assert len(stack.rds_exports.started_exports) == 1


def test_copy_finished_event_of_a_copy_whose_original_never_landed_exports_the_copy(stack: EmulatedStack) -> None:
    copy_arn = copy_of_the_shop_snapshot(stack)

    execution = stack.run(RDS, copy_finished_event(copy_arn))

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["snapshot"]["snapshotArn"] == copy_arn
    assert execution.output["snapshot"]["snapshotTime"] == "2024-05-02T10:00:07Z"  # the original's time
    assert rows_of(stack, "rds/shop/customers/snapshot_time=20240502T100007Z/") == shop_mysql_tables()["shop.customers"].num_rows
    # and the original, exported later, is now the copy's duplicate: skipped
    later = stack.run(RDS, sample_event(INSTANCE_EVENT))
    assert later.output["snapshot"]["export"] is False
    assert len(stack.rds_exports.started_exports) == 1


# ---------------------------------------------------------------- case 10: re-runs verify the lake


def _redrive(stack: EmulatedStack, execution_arn: str) -> Any:
    """operations.md "Re-driving a failed execution", literally: a new execution with the execution's input."""
    sfn = stack.client("stepfunctions")
    described = sfn.describe_execution(executionArn=execution_arn)
    machine = described["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=machine, input=described["input"])
    return stack.wait(started["executionArn"])


def test_rerun_after_a_landed_file_was_deleted_restores_it_before_success(stack: EmulatedStack) -> None:
    first = stack.run(RDS, sample_event(INSTANCE_EVENT))
    landed = stack.lake_objects()
    victim = data_keys(stack)[0]
    stack.client("s3").delete_object(Bucket=stack.lake_bucket, Key=victim)

    rerun = _redrive(stack, first.arn)

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert stack.lake_objects() == landed
    [run] = stack.distributed_maps.of(rerun.arn, "CopyToLake")
    assert sum(out["copied"] for out in run.step_outputs("CopyBatch") if out["done"]) == 1


def test_rerun_after_a_whole_table_folder_was_deleted_restores_it(stack: EmulatedStack) -> None:
    first = stack.run(RDS, sample_event(INSTANCE_EVENT))
    landed = stack.lake_objects()
    s3 = stack.client("s3")
    for key in [k for k in landed if k.startswith("rds/shop/orders/")]:
        s3.delete_object(Bucket=stack.lake_bucket, Key=key)

    rerun = _redrive(stack, first.arn)

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert stack.lake_objects() == landed
    assert rows_of(stack, "rds/shop/orders/") == shop_mysql_tables()["shop.orders"].num_rows


def test_finalize_refuses_to_mark_a_partition_whose_files_vanished_during_the_copy(stack: EmulatedStack) -> None:
    from snaplake.rds import finalize

    original = finalize.finalize_copy
    s3 = stack.client("s3")

    def delete_then_finalize(*args: Any, **kwargs: Any) -> Any:
        victim = data_keys(stack)[0]
        s3.delete_object(Bucket=stack.lake_bucket, Key=victim)
        return original(*args, **kwargs)

    stack.function("FinalizeCopyFunction").load()  # a fresh container, whose module is patched below
    handler_module = stack.function("FinalizeCopyFunction").module()
    with mock.patch.object(handler_module, "finalize_copy", delete_then_finalize):
        failed = stack.run(RDS, sample_event(INSTANCE_EVENT))

    assert failed.status == "FAILED"
    assert failed.error == "CopyIncomplete"
    assert not [k for k in stack.lake_objects() if k.endswith("/_SUCCESS") and k.count("/") == 4]
    rerun = _redrive(stack, failed.arn)
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert len(data_keys(stack)) == len(shop_mysql_tables())


# ---------------------------------------------------------------- case 7: same database name, two sources


def test_a_second_source_with_the_same_database_name_is_refused_before_anything_lands(stack_factory: Callable[..., EmulatedStack]) -> None:
    stack = stack_factory(SourceIdentifiers="shop-*")
    create_instance(stack, "shop-mysql-eu")
    first = stack.run(RDS, sample_event(INSTANCE_EVENT))
    assert first.status == "SUCCEEDED", first.cause
    before = stack.lake_objects()
    other = instance_snapshot(stack, "shop-mysql-eu", "shop-eu-manual", shop_source(), datetime(2024, 5, 3, tzinfo=UTC))

    second = stack.run(RDS, {"snapshotArn": other})

    assert second.status == "FAILED"
    assert second.error == "SourceCollision"
    assert SHOP_INSTANCE in (second.cause or "") and "shop-mysql-eu" in (second.cause or "")
    assert stack.lake_objects() == before


def test_two_sources_with_the_same_database_name_land_apart_when_the_template_names_the_source_but_not_in_one_glue_table(
    stack_factory: Callable[..., EmulatedStack],
) -> None:
    """The Glue table `world.city` is named without the source: it stays the first source's folder's, and the second
    source's RegisterCatalog fails by name instead of moving it (one Glue table, one lake folder)."""
    stack = stack_factory(
        SourceIdentifiers="world-*", LakeKeyTemplate="rds/{source_id}/{database}/{table}/snapshot_time={snapshot_time}/{batch}/{file}"
    )
    create_cluster(stack, "world-aurora-2")
    from snaplake_local.sources import cluster_snapshot, world_source

    first = stack.run(RDS, sample_event("rds_manual_cluster_snapshot.json"))
    assert first.status == "SUCCEEDED", first.cause
    glue = stack.client("glue")
    tables_before = glue.get_tables(DatabaseName="world")["TableList"]

    second = stack.run(RDS, {"snapshotArn": cluster_snapshot(stack, "world-aurora-2", "w2-manual", world_source())})

    assert {key.split("/")[1] for key in data_keys(stack)} == {"world-aurora", "world-aurora-2"}
    assert second.status == "FAILED" and second.error == "GlueTableCollision", second.cause
    assert "/rds/world-aurora/world/" in (second.cause or "") and "/rds/world-aurora-2/world/" in (second.cause or "")
    assert glue.get_tables(DatabaseName="world")["TableList"] == tables_before
    assert {t["StorageDescriptor"]["Location"].split("/rds/")[1].split("/")[0] for t in tables_before} == {"world-aurora"}, "_latest too"
