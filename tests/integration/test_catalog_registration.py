"""RegisterCatalog, the last step of both pipelines: Glue tables and partitions from what landed."""

from __future__ import annotations

from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN, create_orders_table, sample_event
from snaplake_local.stack import EmulatedStack


def partitions(stack: EmulatedStack, database: str, table: str) -> list[list[str]]:
    pages = stack.client("glue").get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    return sorted(p["Values"] for page in pages for p in page["Partitions"])


def test_rds_export_registers_one_table_per_exported_table_with_its_snapshot_partition(stack: EmulatedStack) -> None:
    execution = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))

    assert execution.status == "SUCCEEDED", execution.cause
    glue = stack.client("glue")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="world")["TableList"]}
    assert set(tables) == {"city", "country", "countrylanguage", "sales_invoice_lines"}
    city = tables["city"]
    assert [c["Name"] for c in city["StorageDescriptor"]["Columns"]] == ["id", "name", "countrycode", "district", "population"]
    assert [k["Name"] for k in city["PartitionKeys"]] == ["snapshot_time"]
    assert partitions(stack, "world", "city") == [["20240502T024019Z"]]


def test_same_snapshot_delivered_twice_registers_nothing_twice(stack: EmulatedStack) -> None:
    stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))
    again = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))

    assert again.status == "SUCCEEDED", again.cause
    assert partitions(stack, "world", "country") == [["20240502T024019Z"]]


def test_dynamodb_full_and_incremental_exports_register_their_tables(stack: EmulatedStack) -> None:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    assert stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=900, count=1)[0])
    stack.clock.advance(3600)

    incremental = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})

    assert incremental.status == "SUCCEEDED", incremental.cause
    tables = {t["Name"]: t for t in stack.client("glue").get_tables(DatabaseName="dynamodb")["TableList"]}
    assert set(tables) == {"shop_orders", "shop_orders_changes"}
    assert [k["Name"] for k in tables["shop_orders_changes"]["PartitionKeys"]] == ["dt", "hour"]
    columns = {c["Name"]: c["Type"] for c in tables["shop_orders"]["StorageDescriptor"]["Columns"]}
    assert columns["quantity"] == "bigint" and columns["order_total"].startswith("decimal(")
    assert len(partitions(stack, "dynamodb", "shop_orders")) == 1
    assert len(partitions(stack, "dynamodb", "shop_orders_changes")) == 1
