"""RegisterCatalog, the last step of both pipelines: Glue tables and partitions from what landed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snaplake.athena import AthenaSettings
from snaplake_local.report import athena_answer
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN, create_orders_table, sample_event
from snaplake_local.stack import EmulatedStack, Execution
from snaplake_local.streams import create_stream_table


def partitions(stack: EmulatedStack, database: str, table: str) -> list[list[str]]:
    pages = stack.client("glue").get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    return sorted(p["Values"] for page in pages for p in page["Partitions"])


def ask(stack: EmulatedStack, sql: str) -> tuple[list[dict[str, Any]], list[list[str | None]]]:
    settings = AthenaSettings.from_env(stack.environment("AthenaQueryFunction"))
    return athena_answer(
        stack.client("athena"), stack.clock.advance, sql, work_group=settings.work_group, output_location=settings.output_location
    )


def test_rds_export_registers_one_table_per_exported_table_with_its_snapshot_partition(stack: EmulatedStack) -> None:
    execution = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))

    assert execution.status == "SUCCEEDED", execution.cause
    glue = stack.client("glue")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="world")["TableList"]}
    names = {"city", "country", "countrylanguage", "sales_invoice_lines"}
    assert set(tables) == names | {f"{name}_latest" for name in names}
    city = tables["city"]
    assert [c["Name"] for c in city["StorageDescriptor"]["Columns"]] == ["id", "name", "countrycode", "district", "population"]
    assert [k["Name"] for k in city["PartitionKeys"]] == ["snapshot_time"]
    assert partitions(stack, "world", "city") == [["20240502T024019Z"]]
    latest = tables["city_latest"]
    assert latest["StorageDescriptor"]["Location"] == f"s3://{stack.lake_bucket}/rds/world/city/snapshot_time=20240502T024019Z/"
    assert latest["PartitionKeys"] == [] and latest["Parameters"]["snaplake_snapshot_time"] == "20240502T024019Z"


def test_with_snapshot_retention_the_next_snapshot_takes_the_oldest_out_of_glue_and_keeps_its_objects_for_the_grace(
    stack_factory: Callable[..., EmulatedStack],
) -> None:
    stack = stack_factory(SnapshotRetentionCount="1")
    first = stack.run("RdsExportStateMachine", sample_event("rds_manual_instance_snapshot.json"))
    second = stack.run("RdsExportStateMachine", sample_event("rds_latest_snapshot_request.json"))

    assert first.status == second.status == "SUCCEEDED", second.cause
    left = partitions(stack, "shop", "customers")
    assert len(left) == 1, "only the newest snapshot stays in Glue"
    glue = stack.client("glue")
    latest = glue.get_table(DatabaseName="shop", Name="customers_latest")["Table"]
    assert latest["Parameters"]["snaplake_snapshot_time"] == left[0][0]
    expired = [k for k in glue.get_table(DatabaseName="shop", Name="customers")["Table"]["Parameters"] if k.startswith("snaplake_expired.")]
    assert len(expired) == 1 and expired[0] != f"snaplake_expired.{left[0][0]}"
    snapshot_folders = {key.split("/")[3] for key in stack.lake_objects() if key.startswith("rds/shop/customers/")}
    assert len(snapshot_folders) == 2, "the expired snapshot's objects wait out the query grace"


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
    assert set(tables) == {"shop_orders", "shop_orders_changes", "shop_orders_current"}
    assert [k["Name"] for k in tables["shop_orders_changes"]["PartitionKeys"]] == ["dt", "hour"]
    columns = {c["Name"]: c["Type"] for c in tables["shop_orders"]["StorageDescriptor"]["Columns"]}
    assert columns["quantity"] == "bigint" and columns["order_total"].startswith("decimal(")
    assert len(partitions(stack, "dynamodb", "shop_orders")) == 1
    assert len(partitions(stack, "dynamodb", "shop_orders_changes")) == 1


# --------------------------------------------------------------------------- one Glue table, one lake folder

DDB = "DynamoDbExportStateMachine"
STREAMED = "orders"  # its stream change log is the Glue table orders + _stream_changes ...
EXPORTED = "orders_stream"  # ... and so are this table's incremental exports: orders_stream + _changes
EXPORTED_ARN = ORDERS_TABLE_ARN.replace(ORDERS_TABLE, EXPORTED)
SHARED = "orders_stream_changes"


def create_exported_table(stack: EmulatedStack) -> None:
    create_orders_table(stack, [simple_order(number) for number in range(1, 4)], name=EXPORTED)


def simple_order(number: int) -> dict[str, Any]:
    """Attributes whose types agree with the stream sample's, so that only the folders tell the two tables apart."""
    return {"pk": {"S": f"ORDER#{number:05d}"}, "sk": {"S": "HEADER"}, "status": {"S": "NEW"}}


def export_full_then_incremental(stack: EmulatedStack) -> Execution:
    """A full export of `orders_stream` (Glue `orders_stream`), then an incremental one (Glue `orders_stream_changes`)."""
    stack.clock.advance(20 * 60)
    full = stack.run(DDB, {"tableArn": EXPORTED_ARN})
    assert full.status == "SUCCEEDED", full.cause
    stack.client("dynamodb").put_item(TableName=EXPORTED, Item=simple_order(900))
    stack.clock.advance(3600)
    return stack.run(DDB, {"tableArn": EXPORTED_ARN})


def stream_batch(stack: EmulatedStack, stream_arn: str) -> dict[str, Any]:
    return {"Records": [{**record, "eventSourceARN": stream_arn} for record in sample_event("dynamodb_stream_batch.json")["Records"]]}


def glue_state(stack: EmulatedStack, table: str) -> tuple[dict[str, Any], list[list[str]]]:
    return dict(stack.client("glue").get_table(DatabaseName="dynamodb", Name=table)["Table"]), partitions(stack, "dynamodb", table)


def test_an_export_whose_changes_table_is_named_like_another_tables_stream_log_fails_at_register_catalog_and_changes_nothing_of_it(
    stack: EmulatedStack,
) -> None:
    create_exported_table(stack)
    stream_arn = create_stream_table(stack, STREAMED)
    stream = stack.function("StreamFlattenFunction")
    assert stream.invoke(stream_batch(stack, stream_arn)) == ({"batchItemFailures": []}, False)
    glue_before = glue_state(stack, SHARED)
    stream_lake_before = stack.lake_objects("dynamodb_stream_changes/")

    incremental = export_full_then_incremental(stack)

    assert incremental.status == "FAILED" and incremental.error == "GlueTableCollision", incremental.cause
    assert "/dynamodb_stream_changes/orders/" in (incremental.cause or "") and "/dynamodb_changes/orders_stream/" in (
        incremental.cause or ""
    )
    (notification,) = stack.notifications()
    assert notification["message"]["step"] == "RegisterCatalog"
    assert glue_state(stack, SHARED) == glue_before
    assert stack.lake_objects("dynamodb_stream_changes/") == stream_lake_before
    # The stream change log keeps its table: the same batch redelivered registers against its own folder, lands nothing twice.
    assert stream.invoke(stream_batch(stack, stream_arn)) == ({"batchItemFailures": []}, False)
    assert stack.lake_objects("dynamodb_stream_changes/") == stream_lake_before


def test_a_stream_log_named_like_another_tables_incremental_exports_fails_every_batch_by_name_and_writes_nothing(
    stack: EmulatedStack,
) -> None:
    create_exported_table(stack)
    incremental = export_full_then_incremental(stack)
    assert incremental.status == "SUCCEEDED", incremental.cause
    glue_before = glue_state(stack, SHARED)
    assert glue_before[0]["StorageDescriptor"]["Location"].endswith("/dynamodb_changes/orders_stream/") and glue_before[1]
    stream_arn = create_stream_table(stack, STREAMED)

    payload, errored = stack.function("StreamFlattenFunction").invoke(stream_batch(stack, stream_arn))

    assert errored and payload["errorType"] == "GlueTableCollision", payload
    assert stack.lake_objects("dynamodb_stream_changes/") == {}
    assert glue_state(stack, SHARED) == glue_before


def test_in_projection_mode_an_unfiltered_query_reads_every_landed_snapshot_and_only_those(
    stack_factory: Callable[..., EmulatedStack],
) -> None:
    """CatalogMode=projection: snapshot_time is an enum of the landed snapshots (docs/catalog.md), so a query without a
    filter on it reads each of them, and nothing Athena would have to guess from a range of seconds."""
    stack = stack_factory(CatalogMode="projection")
    first = stack.run("RdsExportStateMachine", sample_event("rds_manual_instance_snapshot.json"))
    second = stack.run("RdsExportStateMachine", sample_event("rds_latest_snapshot_request.json"))
    assert first.status == second.status == "SUCCEEDED", second.cause

    glue = stack.client("glue")
    table = glue.get_table(DatabaseName="shop", Name="customers")["Table"]
    assert partitions(stack, "shop", "customers") == []
    snapshots = sorted(
        {key.split("/")[3].removeprefix("snapshot_time=") for key in stack.lake_objects() if key.startswith("rds/shop/customers/")}
    )
    assert len(snapshots) == 2
    assert table["Parameters"]["projection.snapshot_time.type"] == "enum"
    assert table["Parameters"]["projection.snapshot_time.values"] == ",".join(snapshots)
    _, counted = ask(stack, "SELECT snapshot_time, count(*) FROM shop.customers GROUP BY 1 ORDER BY 1")
    assert counted == [[snapshots[0], "4"], [snapshots[1], "4"]]
    _, newest = ask(stack, f"SELECT count(*) FROM shop.customers WHERE snapshot_time = '{snapshots[1]}'")
    assert newest == [["4"]]


def test_in_projection_mode_retention_takes_the_older_snapshot_out_of_the_enum_and_keeps_its_objects_for_the_grace(
    stack_factory: Callable[..., EmulatedStack],
) -> None:
    """SnapshotRetentionCount with CatalogMode=projection: the enum is what queries read, so the older snapshot leaves it
    at once; its objects wait out the query grace (docs/catalog.md#retention)."""
    stack = stack_factory(CatalogMode="projection", SnapshotRetentionCount="1")
    first = stack.run("RdsExportStateMachine", sample_event("rds_manual_instance_snapshot.json"))
    second = stack.run("RdsExportStateMachine", sample_event("rds_latest_snapshot_request.json"))
    assert first.status == second.status == "SUCCEEDED", second.cause

    parameters = stack.client("glue").get_table(DatabaseName="shop", Name="customers")["Table"]["Parameters"]
    snapshots = sorted(
        {key.split("/")[3].removeprefix("snapshot_time=") for key in stack.lake_objects() if key.startswith("rds/shop/customers/")}
    )
    assert len(snapshots) == 2, "the expired snapshot's objects wait out the query grace"
    assert parameters["projection.snapshot_time.values"] == snapshots[1]
    assert f"snaplake_expired.{snapshots[0]}" in parameters
    assert ask(stack, "SELECT snapshot_time, count(*) FROM shop.customers GROUP BY 1")[1] == [[snapshots[1], "4"]]
    assert [r["expired"] for r in second.output["catalog"]["retention"] if r["table"] == "customers"] == [[snapshots[0]]]


def test_a_snapshot_whose_column_changed_type_lands_registers_in_a_table_version_and_every_snapshot_stays_queryable(
    stack: EmulatedStack,
) -> None:
    """Issue 16.8 through the RDS state machine: city.population turns from int to text between two snapshots."""
    from datetime import UTC, datetime

    import pyarrow as pa
    from snaplake_local.sample_data import world_postgres_tables
    from snaplake_local.sources import WORLD_CLUSTER, cluster_snapshot, world_source

    first = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))
    tables = world_postgres_tables()
    city = tables["public.city"]
    population = city.schema.get_field_index("population")
    tables["public.city"] = city.set_column(population, "population", pa.array([f"{v} people" for v in city["population"].to_pylist()]))
    source = world_source()
    source.tables = tables
    arn = cluster_snapshot(stack, WORLD_CLUSTER, "world-after-the-change", source, created=datetime(2024, 5, 3, 2, 40, 19, tzinfo=UTC))

    second = stack.run("RdsExportStateMachine", {"snapshotArn": arn})
    again = stack.run("RdsExportStateMachine", {"snapshotArn": arn})  # redelivered: the same version, nothing twice

    assert first.status == second.status == again.status == "SUCCEEDED", second.cause
    assert partitions(stack, "world", "city") == [["20240502T024019Z"]]
    assert partitions(stack, "world", "city__v2") == [["20240503T024019Z"]]
    assert partitions(stack, "world", "country") == [["20240502T024019Z"], ["20240503T024019Z"]], "unchanged tables keep one table"
    glue = stack.client("glue")
    types = {c["Name"]: c["Type"] for c in glue.get_table(DatabaseName="world", Name="city__v2")["Table"]["StorageDescriptor"]["Columns"]}
    assert types["population"] == "string"
    old = ask(stack, "SELECT count(*), sum(population) FROM world.city")[1]
    new = ask(stack, "SELECT count(*), min(population) FROM world.city__v2")[1]
    assert old[0][0] == new[0][0] == str(city.num_rows)
    assert new[0][1] is not None and new[0][1].endswith(" people")
    latest = glue.get_table(DatabaseName="world", Name="city_latest")["Table"]
    assert latest["Parameters"]["snaplake_snapshot_time"] == "20240503T024019Z"
    assert ask(stack, "SELECT min(population) FROM world.city_latest")[1] == [new[0][1:]]
    landed = [e["detail"] for e in stack.event_bridge.of("Lake Partition Landed")]
    started = [e for e in landed if e.get("tableVersion") == 2]
    # The redelivery puts the same landing again, identical (same landingId, still the one that started the version).
    assert [(e["table"], e["baseTable"], e["tableVersionStarted"]) for e in started] == [
        ("city__v2", "city", True),
        ("city__v2", "city", True),
    ]
    assert started[0]["landingId"] == started[1]["landingId"]
