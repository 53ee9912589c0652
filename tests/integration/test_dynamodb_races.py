"""The DynamoDB export state machine's control flow under races and partial failures: the schedule's
fan-out, the catalog before the checkpoint, a run that outlived its lease, and two tables that would
land in one lake folder. Each runs the real statemachine/dynamodb_export.asl.json on the emulator."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN, create_orders_table
from snaplake_local.stack import EmulatedStack, Execution

from tests.integration.faults import FaultInjector, Rule, json_error
from tests.integration.test_dynamodb_pipeline import lake_rows

DDB = "DynamoDbExportStateMachine"
SCHEDULED = "2024-05-02T04:00:00Z"


def run(stack: EmulatedStack, event: dict[str, Any]) -> Execution:
    return stack.run(DDB, event)


def executions(stack: EmulatedStack) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=stack.state_machines[DDB])["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def wait_all(stack: EmulatedStack) -> None:
    for described in executions(stack):
        stack.wait(described["executionArn"])


# --------------------------------------------------------------------------- case 8: the schedule's execution names


def long_table_arns() -> list[str]:
    """Two 80-character table names that share their first 70 characters."""
    prefix = "orders-" + "x" * 63
    names = [f"{prefix}-emea-0001", f"{prefix}-apac-0001"]
    assert all(len(name) == 80 for name in names) and names[0][:70] == names[1][:70]
    return [f"arn:aws:dynamodb:eu-west-1:123456789012:table/{name}" for name in names]


def test_schedule_starts_an_execution_for_each_of_two_tables_whose_long_names_share_a_prefix(stack: EmulatedStack) -> None:
    fan_out = stack.function("DynamoDbScheduleFunction")
    schedule = {"tableArns": long_table_arns(), "mode": "auto", "scheduledTime": SCHEDULED}

    started, errored = fan_out.invoke(schedule)

    assert not errored, started
    assert len(started["executions"]) == 2
    described = executions(stack)
    assert sorted(json.loads(d["input"])["tableArn"] for d in described) == sorted(long_table_arns())
    for d in described:
        assert len(d["name"]) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", d["name"]), d["name"]
    wait_all(stack)

    again, errored_again = fan_out.invoke(schedule)  # the same schedule delivered again, after both finished

    assert not errored_again, again
    assert len(executions(stack)) == 2


def test_schedule_refuses_by_name_an_execution_name_taken_by_another_input(stack: EmulatedStack) -> None:
    fan_out = stack.function("DynamoDbScheduleFunction")
    auto = {"tableArns": [ORDERS_TABLE_ARN], "mode": "auto", "scheduledTime": SCHEDULED}
    started, errored = fan_out.invoke(auto)
    assert not errored, started
    wait_all(stack)

    full, errored = fan_out.invoke({**auto, "mode": "full"})  # same table and time: same name, other input

    assert errored and full["errorType"] == "ScheduledExecutionConflict", full
    assert ORDERS_TABLE_ARN in full["errorMessage"]
    assert len(executions(stack)) == 1


# --------------------------------------------------------------------------- case 11: the catalog before the checkpoint


def lake_root(stack: EmulatedStack) -> str:
    prefix = stack.environment("DynamoDbCatalogFunction").get("LAKE_PREFIX", "").strip("/")
    return f"{prefix}/" if prefix else ""


def landed_partitions(stack: EmulatedStack, folder: str) -> set[str]:
    """s3:// locations of the lake's partitions (folders holding Parquet) under `folder`."""
    keys = stack.lake_objects(lake_root(stack) + folder)
    return {f"s3://{stack.lake_bucket}/{key.rsplit('/', 1)[0]}/" for key in keys if key.endswith(".parquet")}


def glue_partitions(stack: EmulatedStack, table: str) -> set[str]:
    env = stack.environment("DynamoDbCatalogFunction")
    database = env.get("GLUE_DATABASE_PREFIX", "") + (env.get("DYNAMODB_GLUE_DATABASE") or "dynamodb")
    glue = stack.client("glue")
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    return {p["StorageDescriptor"]["Location"].rstrip("/") + "/" for page in pages for p in page["Partitions"]}


def put_orders(stack: EmulatedStack, start: int) -> None:
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=start, count=1)[0])


def keys_landed(stack: EmulatedStack, folder: str) -> Counter[str]:
    return Counter(str(row["key__pk"]) for row in lake_rows(stack, lake_root(stack) + folder))


def glue_down() -> FaultInjector:
    """Glue refuses every call (past botocore's and the state machine's retries)."""
    injector = FaultInjector()
    injector.add(
        Rule(
            "glue-down",
            lambda call: call.service == "glue",
            lambda call: json_error(call, 400, "AccessDeniedException", "glue is down", "AWSGlue"),
        )
    )
    return injector


def test_a_failed_registration_is_redone_by_the_next_run_so_glue_sees_every_landed_partition_once(stack: EmulatedStack) -> None:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    assert run(stack, {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"
    put_orders(stack, 600)
    stack.clock.advance(3 * 3600)

    with glue_down().installed():
        failed = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert failed.status == "FAILED" and stack.notifications()[0]["message"]["step"] == "RegisterCatalog"
    assert keys_landed(stack, "dynamodb_changes/shop_orders/")["ORDER#00600"] == 1  # landed, not queryable
    put_orders(stack, 601)
    stack.clock.advance(3 * 3600)  # the next change lands in another hour's partition

    rerun = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert rerun.status == "SUCCEEDED", rerun.cause
    landed = landed_partitions(stack, "dynamodb_changes/shop_orders/")
    assert len(landed) == 2
    assert glue_partitions(stack, "shop_orders_changes") == landed
    assert glue_partitions(stack, "shop_orders") == landed_partitions(stack, "dynamodb/shop_orders/")
    changed = keys_landed(stack, "dynamodb_changes/shop_orders/")
    assert (changed["ORDER#00600"], changed["ORDER#00601"]) == (1, 1)


# --------------------------------------------------------------------------- case 12: a run that outlived its lease


def checkpoint_table(stack: EmulatedStack) -> str:
    return stack.environment("DynamoDbCommitFunction")["CHECKPOINT_TABLE"]


def checkpoint(stack: EmulatedStack) -> dict[str, Any]:
    item = stack.client("dynamodb").get_item(TableName=checkpoint_table(stack), Key={"tableArn": {"S": ORDERS_TABLE_ARN}}).get("Item")
    assert item is not None
    return {k: v["S"] if "S" in v else {name: field["S"] for name, field in v["M"].items()} for k, v in item.items()}


def expire_lease(stack: EmulatedStack) -> None:
    """The lease holder's 36 hours are up (the lease is stamped in real time, not the emulator's clock)."""
    stack.client("dynamodb").update_item(
        TableName=checkpoint_table(stack),
        Key={"tableArn": {"S": ORDERS_TABLE_ARN}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"S": "2000-01-01T00:00:00Z"}},
    )


def test_a_run_that_outlived_its_lease_cannot_commit_over_the_run_that_took_it_over(stack: EmulatedStack) -> None:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    assert run(stack, {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"
    before = checkpoint(stack)
    put_orders(stack, 700)
    stack.clock.advance(3600)
    commit = stack.function("DynamoDbCommitFunction").name
    run_b = stack.state_machines[DDB].replace(":stateMachine:", ":execution:") + ":run-b"
    taken_over: list[Any] = []

    def lease_expires_and_run_b_takes_it(function: str, event: Any) -> None:
        if function == commit and not taken_over:  # run A published and is about to commit
            expire_lease(stack)
            started, errored = stack.function("DynamoDbStartExportFunction").invoke(
                {"request": {"tableArn": ORDERS_TABLE_ARN}, "execution": run_b}
            )
            assert not errored, started
            taken_over.append(started)

    stack.lambdas.before_invoke = lease_expires_and_run_b_takes_it
    run_a = run(stack, {"tableArn": ORDERS_TABLE_ARN})
    stack.lambdas.before_invoke = None

    assert run_a.status == "FAILED" and run_a.error == "ExportLeaseLost", run_a.cause
    assert stack.notifications()[0]["message"]["step"] == "CommitCheckpoint"
    [resumed] = taken_over
    assert resumed["export"] is True and resumed["resumed"] is True  # run B finishes run A's export
    after = checkpoint(stack)
    assert after["leaseHolder"] == run_b  # run B's lease and publishing record are intact
    assert after["publishingExport"]["exportArn"] == resumed["exportArn"]
    assert after["exportedTo"] == before["exportedTo"]

    expire_lease(stack)  # run B died too: the next run finishes the export once
    rerun = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert keys_landed(stack, "dynamodb_changes/shop_orders/")["ORDER#00700"] == 1
    assert checkpoint(stack)["exportedTo"] == resumed["exportedTo"]


# --------------------------------------------------------------------------- case 7: two tables, one lake folder

TWIN_TABLE = "shop_orders"  # `shop-orders` and `shop_orders` both land in the lake table `shop_orders`
TWIN_TABLE_ARN = ORDERS_TABLE_ARN.replace(ORDERS_TABLE, TWIN_TABLE)


def create_twin_table(stack: EmulatedStack) -> None:
    create_orders_table(stack, orders_items(start=900, count=3), name=TWIN_TABLE)


def test_a_second_table_whose_name_lands_in_the_same_lake_folder_is_refused_by_name_before_it_exports(stack: EmulatedStack) -> None:
    create_orders_table(stack)
    create_twin_table(stack)
    stack.clock.advance(20 * 60)
    first = run(stack, {"tableArn": ORDERS_TABLE_ARN})
    assert first.status == "SUCCEEDED", first.cause
    lake_before = stack.lake_objects()
    exports_before = len(stack.dynamodb_exports.exports)

    second = run(stack, {"tableArn": TWIN_TABLE_ARN})

    assert second.status == "FAILED" and second.error == "TableFolderClaimed", second.cause
    assert ORDERS_TABLE_ARN in (second.cause or "") and TWIN_TABLE_ARN in (second.cause or "")
    assert stack.notifications()[0]["message"]["step"] == "StartExport"
    assert len(stack.dynamodb_exports.exports) == exports_before  # nothing exported, nothing landed
    assert stack.lake_objects() == lake_before
    put_orders(stack, 800)
    stack.clock.advance(3600)

    again = run(stack, {"tableArn": ORDERS_TABLE_ARN})  # the first table keeps its folder

    assert again.status == "SUCCEEDED", again.cause
    assert again.output["export"]["exportType"] == "INCREMENTAL_EXPORT"
    assert not any(row["pk"].startswith("ORDER#009") for row in lake_rows(stack, lake_root(stack) + "dynamodb/shop_orders/"))
