"""`<table>_current` in the DynamoDB state machine: MergeCurrent runs after RegisterCatalog and before CommitCheckpoint,
so the Iceberg table holds the DynamoDB table's items after each window, and a window is merged once even when its run
fails after the MERGE and the next run finishes the same export."""

from __future__ import annotations

from typing import Any

from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN
from snaplake_local.stack import EmulatedStack

from tests.integration.test_dynamodb_pipeline import KEY, fail_after_publishing, full_export, run

CURRENT = "dynamodb.shop_orders_current"


def current_items(stack: EmulatedStack) -> dict[tuple[str, str], dict[str, Any]]:
    rows = stack.athena.engine.run_sql(f"SELECT pk, sk, paid, quantity FROM {CURRENT}").table.to_pylist()
    found = {(r["pk"], r["sk"]): r for r in rows}
    assert len(found) == len(rows), "an item is in _current twice"
    return found


def table_items(stack: EmulatedStack) -> dict[tuple[str, str], dict[str, Any]]:
    items = stack.client("dynamodb").scan(TableName=ORDERS_TABLE)["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]): i for i in items}


def merges(stack: EmulatedStack) -> list[str]:
    target = 'MERGE INTO "dynamodb"."shop_orders_current"'
    return [sql for state, sql in stack.athena.statements() if state == "SUCCEEDED" and sql.startswith(target)]


def test_current_holds_the_tables_items_after_the_full_export_and_after_a_window(stack: EmulatedStack) -> None:
    full_export(stack)
    assert set(current_items(stack)) == set(table_items(stack))
    ddb = stack.client("dynamodb")
    ddb.update_item(TableName=ORDERS_TABLE, Key=KEY, UpdateExpression="SET paid = :p", ExpressionAttributeValues={":p": {"BOOL": True}})
    ddb.delete_item(TableName=ORDERS_TABLE, Key={"pk": {"S": "ORDER#00003"}, "sk": {"S": "HEADER"}})
    for item in orders_items(start=200, count=2):
        ddb.put_item(TableName=ORDERS_TABLE, Item=item)
    stack.clock.advance(3600)

    window = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert window.status == "SUCCEEDED", window.cause
    assert [step["current"]["status"] for step in window.step_outputs("MergeCurrent") if step["current"]["done"]] == ["MERGED"]
    current = current_items(stack)
    assert set(current) == set(table_items(stack))
    assert current[("ORDER#00006", "HEADER")]["paid"] is True and ("ORDER#00003", "HEADER") not in current
    assert len(merges(stack)) == 2  # the full export's and the window's
    landed = [e["detail"] for e in stack.event_bridge.of("Lake Partition Landed") if e["detail"]["pipeline"] == "dynamodb_current"]
    assert [(d["qualifiedTable"], d["exportType"]) for d in landed] == [
        ("dynamodb.shop_orders_current", "FULL_EXPORT"),
        ("dynamodb.shop_orders_current", "INCREMENTAL_EXPORT"),
    ]
    assert landed[1]["rows"] == 4  # 1 updated, 1 deleted, 2 added


def test_a_window_whose_run_failed_after_its_merge_is_merged_once(stack: EmulatedStack) -> None:
    fail_after_publishing(stack)  # the window's MERGE ran, then CommitCheckpoint failed
    assert len(merges(stack)) == 2
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=501, count=1)[0])
    stack.clock.advance(3600)

    rerun = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert rerun.status == "SUCCEEDED", rerun.cause
    statuses = [step["current"]["status"] for step in rerun.step_outputs("MergeCurrent") if step["current"]["done"]]
    assert statuses == ["ALREADY_APPLIED", "MERGED"]  # the finished export, then the window after it
    assert len(merges(stack)) == 3
    assert set(current_items(stack)) == set(table_items(stack))
    events = stack.event_bridge.of("Lake Partition Landed")
    landed = [e["detail"]["landingId"] for e in events if e["detail"]["pipeline"] == "dynamodb_current"]
    assert len(landed) == len(set(landed)) == 3, "the export applied by the failed run put no second event"
