"""The DynamoDB export state machine (statemachine/dynamodb_export.asl.json) on moto's executor,
with the real handlers in-process and the emulated ExportTableToPointInTime."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN, create_orders_table, sample_event
from snaplake_local.stack import EmulatedStack, Execution

DDB = "DynamoDbExportStateMachine"
KEY = {"pk": {"S": "ORDER#00006"}, "sk": {"S": "HEADER"}}  # paid: false


def run(stack: EmulatedStack, event: dict[str, Any]) -> Execution:
    return stack.run(DDB, event)


MAP_FAILED = (
    "States.ExceedToleratedFailureThreshold",
    "States.Runtime",
)  # moto's Fail state turns a `States.` ErrorPath into States.Runtime


def child_failures(stack: EmulatedStack, execution: Execution) -> list[tuple[str, str]]:
    """(error, cause) of every failed Lambda call in the execution's Distributed Map children (the parent sees the Map's error)."""
    return [
        (event["lambdaFunctionFailedEventDetails"].get("error", ""), event["lambdaFunctionFailedEventDetails"].get("cause", ""))
        for run in stack.distributed_maps.of(execution.arn)
        for event in run.history
        if event["type"] == "LambdaFunctionFailed"
    ]


def lake_rows(stack: EmulatedStack, prefix: str) -> list[dict[str, Any]]:
    s3 = stack.client("s3")
    rows: list[dict[str, Any]] = []
    for key in sorted(stack.lake_objects(prefix)):
        if key.endswith(".parquet"):
            rows.extend(pq.read_table(pa.BufferReader(s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read())).to_pylist())
    return rows


def checkpoint(stack: EmulatedStack) -> dict[str, Any] | None:
    table = stack.environment("DynamoDbCommitFunction")["CHECKPOINT_TABLE"]
    item = stack.client("dynamodb").get_item(TableName=table, Key={"tableArn": {"S": ORDERS_TABLE_ARN}}).get("Item")
    if item is None:
        return None
    return {k: v["S"] if "S" in v else {name: field["S"] for name, field in v["M"].items()} for k, v in item.items()}


def full_export(stack: EmulatedStack) -> Execution:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    execution = run(stack, {"tableArn": ORDERS_TABLE_ARN})
    assert execution.status == "SUCCEEDED", execution.cause
    return execution


def test_first_run_is_a_full_export_with_every_item_typed_and_flattened(stack: EmulatedStack) -> None:
    execution = full_export(stack)

    assert execution.output["export"]["exportType"] == "FULL_EXPORT"
    rows = lake_rows(stack, "dynamodb/shop_orders/")
    assert len(rows) == len(orders_items()) == execution.output["landed"]["rows"]
    first = next(r for r in rows if r["pk"] == "ORDER#00001")
    assert first["customer__address__city"] == "Nairobi"
    assert first["quantity"] == 2
    assert str(first["order_total"]) == "17.01"
    assert first["display_name"] == "Customer 1"
    assert first["date"] == "2024-05-02"
    assert first["signature"] == b"sig-1"
    assert sorted(first["tags"]) == ["new", "priority"]
    exact = next(r for r in rows if r["pk"] == "ORDER#00005")
    assert str(exact["exact_amount"]).startswith("12345678901234567890.123456789012345678")
    partitions = {k.rsplit("/", 1)[0] for k in stack.lake_objects("dynamodb/shop_orders/")}
    assert len(partitions) == 1 and next(iter(partitions)).split("/")[-1].startswith("export_time=")
    assert any(k.endswith("/_SUCCESS") for k in stack.lake_objects("dynamodb/shop_orders/"))
    assert checkpoint(stack)["exportedTo"] == execution.output["export"]["exportedTo"]  # type: ignore[index]


def test_incremental_after_full_exports_only_the_changes_since_the_checkpoint(stack: EmulatedStack) -> None:
    full = full_export(stack)
    ddb = stack.client("dynamodb")
    changed_at = stack.clock.now()
    ddb.update_item(TableName=ORDERS_TABLE, Key=KEY, UpdateExpression="SET paid = :p", ExpressionAttributeValues={":p": {"BOOL": True}})
    ddb.delete_item(TableName=ORDERS_TABLE, Key={"pk": {"S": "ORDER#00003"}, "sk": {"S": "HEADER"}})
    for item in orders_items(start=200, count=2):
        ddb.put_item(TableName=ORDERS_TABLE, Item=item)
    stack.clock.advance(3600)

    incremental = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert incremental.status == "SUCCEEDED", incremental.cause
    assert incremental.output["export"]["exportType"] == "INCREMENTAL_EXPORT"
    assert incremental.output["export"]["windowFrom"] == full.output["export"]["exportedTo"]
    changes = lake_rows(stack, "dynamodb_changes/shop_orders/")
    by_key = {(r["key__pk"], r["change_type"]) for r in changes}
    assert by_key == {("ORDER#00006", "MODIFY"), ("ORDER#00003", "REMOVE"), ("ORDER#00200", "INSERT"), ("ORDER#00201", "INSERT")}
    modified = next(r for r in changes if r["change_type"] == "MODIFY")
    assert modified["new__paid"] is True and modified["old__paid"] is False
    assert {r["write_time"] for r in changes} == {changed_at}  # Metadata.WriteTimestampMicros, as DynamoDB writes it
    hour = f"/dt={changed_at:%Y-%m-%d}/hour={changed_at:%H}/"
    assert all(hour in k for k in stack.lake_objects("dynamodb_changes/shop_orders/"))
    assert checkpoint(stack)["exportedTo"] == incremental.output["export"]["exportedTo"]  # type: ignore[index]


def test_run_within_fifteen_minutes_of_the_checkpoint_exports_nothing(stack: EmulatedStack) -> None:
    full_export(stack)
    before = checkpoint(stack)

    again = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert again.status == "SUCCEEDED"
    assert again.output["export"]["export"] is False
    assert checkpoint(stack) == before


def test_backlog_longer_than_a_day_is_worked_off_in_consecutive_windows(stack: EmulatedStack) -> None:
    full_export(stack)
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=300, count=1)[0])
    stack.clock.advance(60 * 3600)

    execution = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert execution.status == "SUCCEEDED", execution.cause
    starts = [e for e in execution.history if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "StartExport"]
    assert len(starts) >= 3
    incremental = [e for e in stack.dynamodb_exports.exports.values() if e.window]
    spans = sorted(e.window for e in incremental if e.window)
    assert all(end - start <= timedelta(hours=24) for start, end in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    inserted = [r for r in lake_rows(stack, "dynamodb_changes/shop_orders/") if r["key__pk"] == "ORDER#00300"]
    assert len(inserted) == 1


def test_overlapping_runs_export_the_window_once_and_never_move_the_checkpoint_back(stack: EmulatedStack) -> None:
    full_export(stack)
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=400, count=1)[0])
    stack.clock.advance(3600)

    arns = [stack.start(DDB, {"tableArn": ORDERS_TABLE_ARN}) for _ in range(2)]
    executions = [stack.wait(arn) for arn in arns]

    assert [e.status for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    exported = [e for e in executions if e.output["export"]["export"]]
    skipped = [e for e in executions if not e.output["export"]["export"]]
    assert len(exported) == 1 and len(skipped) == 1
    assert "another run is exporting" in skipped[0].output["export"]["reason"]
    rows = [r for r in lake_rows(stack, "dynamodb_changes/shop_orders/") if r["key__pk"] == "ORDER#00400"]
    assert len(rows) == 1
    assert checkpoint(stack)["exportedTo"] == exported[0].output["export"]["exportedTo"]  # type: ignore[index]


def test_conversion_failure_publishes_nothing_and_the_rerun_lands_each_change_once(stack: EmulatedStack) -> None:
    full_export(stack)
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=500, count=1)[0])
    stack.clock.advance(3600)
    stack.dynamodb_exports.miscount_next_export(ORDERS_TABLE)

    failed = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert failed.status == "FAILED" and failed.error in MAP_FAILED
    assert [error for error, _ in child_failures(stack, failed)] == ["CountMismatch"]
    assert lake_rows(stack, "dynamodb_changes/shop_orders/") == []
    assert "leaseHolder" not in (checkpoint(stack) or {})
    assert "publishingExport" not in (checkpoint(stack) or {})  # it failed before publishing: the rerun exports again
    stack.clock.advance(3600)

    rerun = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert rerun.status == "SUCCEEDED", rerun.cause
    rows = [r for r in lake_rows(stack, "dynamodb_changes/shop_orders/") if r["key__pk"] == "ORDER#00500"]
    assert len(rows) == 1
    assert not any("_snaplake_staging" in k for k in stack.lake_objects() if k.endswith(".parquet") and "00500" in k)


def fail_after_publishing(stack: EmulatedStack) -> dict[str, str]:
    """A full export, one change, then an incremental run that publishes it and fails at
    CommitCheckpoint past its retries. Returns the export it recorded before publishing."""
    full_export(stack)
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=500, count=1)[0])
    stack.clock.advance(3600)
    commit = stack.function("DynamoDbCommitFunction").name

    def checkpoint_table_down(function: str, event: Any) -> None:
        if function == commit:
            raise RuntimeError("checkpoint table unavailable")

    before = checkpoint(stack)
    stack.lambdas.before_invoke = checkpoint_table_down
    failed = run(stack, {"tableArn": ORDERS_TABLE_ARN})
    stack.lambdas.before_invoke = None

    assert failed.status == "FAILED" and stack.notifications()[0]["message"]["step"] == "CommitCheckpoint"
    assert len([r for r in lake_rows(stack, "dynamodb_changes/shop_orders/") if r["key__pk"] == "ORDER#00500"]) == 1
    after = checkpoint(stack)
    assert after is not None and before is not None
    assert after["exportedTo"] == before["exportedTo"] and "leaseHolder" not in after
    return dict(after["publishingExport"])


def change_rows_of(stack: EmulatedStack, *keys: str) -> list[str]:
    return sorted(r["key__pk"] for r in lake_rows(stack, "dynamodb_changes/shop_orders/") if r["key__pk"] in keys)


def test_run_that_failed_after_publishing_is_finished_by_the_next_run_without_duplicating_a_change(stack: EmulatedStack) -> None:
    """Exporting the same window again would land its changes a second time under the new
    export's keys; the next run instead finishes the recorded export (same keys, overwritten),
    then exports onwards."""
    recorded = fail_after_publishing(stack)
    exports_so_far = len(stack.dynamodb_exports.exports)
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=501, count=1)[0])
    stack.clock.advance(3600)

    rerun = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert rerun.status == "SUCCEEDED", rerun.cause
    starts = [e["export"] for e in rerun.step_outputs("StartExport") if e["export"]["export"]]
    assert starts[0]["exportArn"] == recorded["exportArn"] and starts[0]["resumed"] is True
    assert starts[0]["exportedTo"] == recorded["exportedTo"]
    assert len(stack.dynamodb_exports.exports) == exports_so_far + 1  # only the window after it is exported anew
    assert change_rows_of(stack, "ORDER#00500", "ORDER#00501") == ["ORDER#00500", "ORDER#00501"]
    final = checkpoint(stack)
    assert final is not None and "publishingExport" not in final and "leaseHolder" not in final
    assert final["exportedTo"] > recorded["exportedTo"]


def test_full_export_failing_before_it_publishes_leaves_the_unfinished_export_to_the_next_run(stack: EmulatedStack) -> None:
    recorded = fail_after_publishing(stack)
    stack.clock.advance(3600)
    stack.dynamodb_exports.fail_next_export(ORDERS_TABLE, "S3AccessDenied", "Access denied to the export bucket")

    full = run(stack, {"tableArn": ORDERS_TABLE_ARN, "mode": "full"})

    assert full.status == "FAILED" and full.error == "ExportFailed"
    assert checkpoint(stack)["publishingExport"] == recorded  # type: ignore[index]

    rerun = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.step_outputs("StartExport")[0]["export"]["exportArn"] == recorded["exportArn"]
    assert change_rows_of(stack, "ORDER#00500") == ["ORDER#00500"]


def test_failed_export_fails_the_execution_notifies_and_keeps_the_checkpoint(stack: EmulatedStack) -> None:
    full_export(stack)
    before = checkpoint(stack)
    stack.clock.advance(3600)
    stack.dynamodb_exports.fail_next_export(ORDERS_TABLE, "S3AccessDenied", "Access denied to the export bucket")

    execution = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert execution.status == "FAILED"
    assert execution.error == "ExportFailed"
    assert "S3AccessDenied" in (execution.cause or "")
    assert stack.notifications()[0]["message"]["step"] == "PollExport"
    assert checkpoint(stack) == before


def test_pitr_off_fails_with_a_notification_that_says_what_to_do(stack: EmulatedStack) -> None:
    create_orders_table(stack, pitr=False)

    execution = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert execution.status == "FAILED"
    assert execution.error == "PitrDisabled"
    [notification] = stack.notifications()
    assert "update-continuous-backups" in notification["message"]["cause"]
    assert "exportedTo" not in (checkpoint(stack) or {})


def test_manifest_count_mismatch_fails_naming_the_file_and_keeps_the_checkpoint(stack: EmulatedStack) -> None:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    stack.dynamodb_exports.miscount_next_export(ORDERS_TABLE)

    execution = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert execution.status == "FAILED"
    assert execution.error in MAP_FAILED  # the ScanFiles Map's; its child names the file
    [(error, cause)] = child_failures(stack, execution)
    assert error == "CountMismatch" and ".json.gz" in cause
    assert "exportedTo" not in (checkpoint(stack) or {})


def test_empty_data_files_of_a_small_table_are_fine(stack: EmulatedStack) -> None:
    create_orders_table(stack, items=orders_items(count=1))
    stack.clock.advance(20 * 60)

    execution = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["conversion"]["files"] == 3  # two of them hold no items
    assert len(lake_rows(stack, "dynamodb/shop_orders/")) == 1


def test_an_export_without_items_lands_no_parquet_object_and_still_commits(stack: EmulatedStack) -> None:
    create_orders_table(stack, items=[])
    stack.clock.advance(20 * 60)

    full = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert full.status == "SUCCEEDED", full.cause
    assert full.output["conversion"]["files"] == 3 and full.output["landed"]["rows"] == 0
    assert not [k for k in stack.lake_objects("dynamodb/shop_orders/") if k.endswith(".parquet")]
    stack.clock.advance(3600)

    incremental = run(stack, {"tableArn": ORDERS_TABLE_ARN})  # an empty window

    assert incremental.status == "SUCCEEDED", incremental.cause
    assert incremental.output["export"]["exportType"] == "INCREMENTAL_EXPORT" and incremental.output["landed"]["rows"] == 0
    assert not stack.lake_objects("dynamodb_changes/shop_orders/")
    assert checkpoint(stack)["exportedTo"] == incremental.output["export"]["exportedTo"]  # type: ignore[index]


def glue_columns(stack: EmulatedStack, table: str) -> tuple[list[str], list[str]]:
    """(columns, partition keys) of a Glue table in the `dynamodb` database."""
    described = stack.client("glue").get_table(DatabaseName="dynamodb", Name=table)["Table"]
    return [c["Name"] for c in described["StorageDescriptor"]["Columns"]], [k["Name"] for k in described["PartitionKeys"]]


def test_attributes_named_like_the_partition_key_or_alike_after_case_folding_get_columns_of_their_own(stack: EmulatedStack) -> None:
    item = {"pk": {"S": "a"}, "sk": {"S": "b"}, "export_time": {"S": "yesterday"}, "Foo": {"S": "upper"}, "foo": {"S": "lower"}}
    create_orders_table(stack, items=[item])
    stack.clock.advance(20 * 60)

    execution = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert execution.status == "SUCCEEDED", execution.cause
    columns, partition_keys = glue_columns(stack, "shop_orders")
    assert partition_keys == ["export_time"]
    assert sorted(columns) == ["export_time_2", "foo", "foo_2", "pk", "sk"]
    [row] = lake_rows(stack, "dynamodb/shop_orders/")
    assert row == {"pk": "a", "sk": "b", "export_time_2": "yesterday", "foo": "upper", "foo_2": "lower"}


def test_change_tables_register_the_athena_safe_system_columns(stack: EmulatedStack) -> None:
    full_export(stack)
    stack.client("dynamodb").delete_item(TableName=ORDERS_TABLE, Key=KEY)
    stack.clock.advance(3600)

    incremental = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert incremental.status == "SUCCEEDED", incremental.cause
    columns, partition_keys = glue_columns(stack, "shop_orders_changes")
    assert columns[:2] == ["change_type", "write_time"] and partition_keys == ["dt", "hour"]
    assert not [name for name in columns if name.startswith("_")]


def test_an_attribute_keeps_its_column_when_a_later_export_brings_one_equal_after_case_folding(stack: EmulatedStack) -> None:
    ddb = stack.client("dynamodb")
    create_orders_table(stack, items=[{"pk": {"S": "a"}, "sk": {"S": "b"}, "foo": {"S": "full 1"}}])
    stack.clock.advance(20 * 60)
    assert run(stack, {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"  # full: foo alone
    ddb.put_item(TableName=ORDERS_TABLE, Item={"pk": {"S": "a"}, "sk": {"S": "b"}, "foo": {"S": "window 1"}})
    stack.clock.advance(3600)
    assert run(stack, {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"  # first window: foo alone
    ddb.put_item(TableName=ORDERS_TABLE, Item={"pk": {"S": "c"}, "sk": {"S": "d"}, "Foo": {"S": "upper"}, "foo": {"S": "window 2"}})
    stack.clock.advance(3600)
    assert run(stack, {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"  # second window: Foo and foo

    full = run(stack, {"tableArn": ORDERS_TABLE_ARN, "mode": "full"})  # second full: Foo and foo

    assert full.status == "SUCCEEDED", full.cause
    changes = {row["key__pk"]: row for row in lake_rows(stack, "dynamodb_changes/shop_orders/")}
    assert changes["a"]["new__foo"] == "window 1"
    assert (changes["c"]["new__foo"], changes["c"]["new__foo_2"]) == ("window 2", "upper")
    snapshots = [(row["pk"], row["foo"], row.get("foo_2")) for row in lake_rows(stack, "dynamodb/shop_orders/")]
    assert snapshots == [("a", "full 1", None), ("a", "window 1", None), ("c", "window 2", "upper")]
    assert sorted(glue_columns(stack, "shop_orders")[0]) == ["foo", "foo_2", "pk", "sk"]
    new_columns = [name for name in glue_columns(stack, "shop_orders_changes")[0] if name.startswith("new__")]
    assert sorted(new_columns) == ["new__foo", "new__foo_2", "new__pk", "new__sk"]


def test_schedule_starts_one_execution_per_table_once_per_scheduled_time(stack: EmulatedStack) -> None:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    schedule = sample_event("dynamodb_schedule.json")
    fan_out = stack.function("DynamoDbScheduleFunction")

    started, errored = fan_out.invoke(schedule)
    again, errored_again = fan_out.invoke(schedule)  # the same schedule delivered twice

    assert not errored and not errored_again
    assert len(started["executions"]) == 1 and again["executions"] in ([], started["executions"])
    machine = stack.state_machines["DynamoDbExportStateMachine"]
    assert len(stack.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]) == 1
    execution = stack.wait(started["executions"][0])
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["export"]["exportType"] == "FULL_EXPORT"


def test_backfill_request_sample_forces_a_full_export(stack: EmulatedStack) -> None:
    full_export(stack)
    stack.clock.advance(3600)

    execution = run(stack, sample_event("dynamodb_export_request.json"))

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["export"]["exportType"] == "FULL_EXPORT"
    assert len({k.split("/")[2] for k in stack.lake_objects("dynamodb/shop_orders/")}) == 2


def test_pitr_turned_off_and_on_again_fails_the_next_window_and_says_run_a_full_export(stack: EmulatedStack) -> None:
    full_export(stack)
    ddb = stack.client("dynamodb")
    ddb.update_continuous_backups(TableName=ORDERS_TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    stack.clock.advance(600)
    ddb.update_continuous_backups(TableName=ORDERS_TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    stack.clock.advance(3600)

    gap = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert gap.status == "FAILED"
    assert gap.error == "WindowOutsidePitr"
    assert "'mode': 'full'" in stack.notifications()[0]["message"]["cause"]

    fresh = run(stack, {"tableArn": ORDERS_TABLE_ARN, "mode": "full"})

    assert fresh.status == "SUCCEEDED", fresh.cause


def test_commit_from_an_execution_started_before_the_upgrade_that_added_its_execution_field_is_accepted(stack: EmulatedStack) -> None:
    """Step Functions runs an execution on the definition it started with: one started before
    CommitCheckpoint received the execution ARN still commits (and gives no lease up)."""
    full = full_export(stack)
    landed = full.output["export"]
    old_style = {key: landed[key] for key in ("tableArn", "exportArn", "exportType", "exportedTo")}

    payload, errored = stack.function("DynamoDbCommitFunction").invoke(old_style)

    assert not errored, payload
    assert payload["committed"] is False  # the execution itself already committed this export
