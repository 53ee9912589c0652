"""Landing events (docs/events.md) put by real pipeline runs on the emulator: one per queryable partition, with the
partition's rows, files, bytes and location; the same landingId when a step is retried; the Athena rule's input."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.catalog import landing
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN, create_orders_table, sample_event
from snaplake_local.stack import EmulatedStack, Execution

RDS, DDB = "RdsExportStateMachine", "DynamoDbExportStateMachine"
CLUSTER_EVENT = "rds_automated_cluster_snapshot.json"
LANDED = "Lake Partition Landed"
CONTRACT = {
    "version",
    "landingId",
    "pipeline",
    "database",
    "table",
    "qualifiedTable",
    "partition",
    "location",
    "rows",
    "files",
    "bytes",
    "exportIds",
    "snapshotTime",
    "landedAt",
}


@pytest.fixture(autouse=True)
def no_real_pauses() -> Any:
    with mock.patch.object(landing, "RETRY_SECONDS", 0):
        yield


def landed(stack: EmulatedStack) -> list[dict[str, Any]]:
    events = stack.event_bridge.of(LANDED)
    assert all(e["source"] == "snaplake" and e["eventBusName"] == "default" for e in events)
    return [e["detail"] for e in events]


def what_is_there(stack: EmulatedStack, location: str) -> dict[str, int]:
    """Rows, files and bytes of the Parquet objects under an s3:// folder, read from the lake itself."""
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    s3 = stack.client("s3")
    found = {"rows": 0, "files": 0, "bytes": 0}
    for key, size in stack.lake_objects(prefix).items():
        if key.endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            found["rows"] += pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
            found["files"] += 1
            found["bytes"] += size
    return found


def check_contract(detail: dict[str, Any]) -> None:
    assert set(detail) >= CONTRACT
    assert detail["version"] == 1
    assert detail["qualifiedTable"] == f"{detail['database']}.{detail['table']}"
    expected_id = "|".join([detail["pipeline"], detail["database"], detail["table"], detail["location"], *detail["exportIds"]])
    assert detail["landingId"] == hashlib.sha256(expected_id.encode()).hexdigest()[:32]
    assert detail["location"].endswith("/") and all(f"{k}={v}/" in detail["location"] for k, v in detail["partition"].items())
    assert all(isinstance(detail[name], int) for name in ("rows", "files", "bytes"))
    assert detail["landedAt"].endswith("Z")


def test_rds_run_puts_one_event_per_table_partition_with_what_landed_there(stack: EmulatedStack) -> None:
    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    details = landed(stack)
    assert sorted(d["table"] for d in details) == ["city", "country", "countrylanguage", "sales_invoice_lines"]
    for detail in details:
        check_contract(detail)
        assert detail["pipeline"] == "rds" and detail["database"] == "world"
        assert detail["partition"] == {"snapshot_time": "20240502T024019Z"}
        assert detail["snapshotTime"] == "2024-05-02T02:40:19Z"
        assert detail["exportIds"] == [execution.output["export"]["exportTaskIdentifier"]]
        assert {name: detail[name] for name in ("rows", "files", "bytes")} == what_is_there(stack, detail["location"])
        assert detail["rows"] > 0
    assert sum(d["rows"] for d in details) == execution.output["landed"]["rows"]


def dynamodb_run(stack: EmulatedStack) -> Execution:
    execution = stack.run(DDB, {"tableArn": ORDERS_TABLE_ARN})
    assert execution.status == "SUCCEEDED", execution.cause
    return execution


def test_dynamodb_full_export_and_change_window_put_one_event_per_partition(stack: EmulatedStack) -> None:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    full = dynamodb_run(stack)
    ddb = stack.client("dynamodb")
    ddb.delete_item(TableName=ORDERS_TABLE, Key={"pk": {"S": "ORDER#00003"}, "sk": {"S": "HEADER"}})
    for item in orders_items(start=200, count=2):
        ddb.put_item(TableName=ORDERS_TABLE, Item=item)
    stack.clock.advance(3600)
    for item in orders_items(start=300, count=3):  # another hour of the same window: a second partition
        ddb.put_item(TableName=ORDERS_TABLE, Item=item)
    stack.clock.advance(3600)
    incremental = dynamodb_run(stack)

    events = landed(stack)
    merges = [event for event in events if event["pipeline"] == "dynamodb_current"]  # MergeCurrent's: test_dynamodb_current.py
    assert [merge["qualifiedTable"] for merge in merges] == ["dynamodb.shop_orders_current"] * 2
    [snapshot, *windows] = [event for event in events if event not in merges]
    check_contract(snapshot)
    assert snapshot["pipeline"] == "dynamodb" and snapshot["qualifiedTable"] == "dynamodb.shop_orders"
    assert snapshot["rows"] == len(orders_items()) and snapshot["exportIds"] == [full.output["export"]["exportArn"]]
    assert snapshot["snapshotTime"] == full.output["export"]["exportedTo"]
    assert list(snapshot["partition"]) == ["export_time"]
    assert {name: snapshot[name] for name in ("rows", "files", "bytes")} == what_is_there(stack, snapshot["location"])
    assert len(windows) == 2
    assert sorted(w["rows"] for w in windows) == [3, 3]  # a delete and two puts, then three puts
    for window in windows:
        check_contract(window)
        assert window["pipeline"] == "dynamodb_changes" and window["table"] == "shop_orders_changes"
        assert list(window["partition"]) == ["dt", "hour"] and window["snapshotTime"] is None
        assert window["exportIds"] == [incremental.output["export"]["exportArn"]]
        assert window["window"] == {"from": full.output["export"]["exportedTo"], "to": incremental.output["export"]["exportedTo"]}
        assert {name: window[name] for name in ("rows", "files", "bytes")} == what_is_there(stack, window["location"])


def test_partial_put_failure_is_retried_then_fails_by_name_and_the_step_retry_puts_the_same_landing_ids(stack: EmulatedStack) -> None:
    # The first entry fails on every one of the step's PutEvents calls: the other three are put, the step fails
    # with LandingEventsNotPut, and the state machine's retry puts all four again.
    stack.event_bridge.fail_entries(calls=landing.PUT_ATTEMPTS, first=1, code="ThrottlingException")

    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    failures = [e for e in execution.history if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failures] == ["LandingEventsNotPut"]
    assert "ThrottlingException" in failures[0]["lambdaFunctionFailedEventDetails"]["cause"]
    puts = Counter(d["landingId"] for d in landed(stack))
    assert len(puts) == 4 and sorted(puts.values()) == [1, 2, 2, 2]


def test_a_rerun_of_the_catalog_step_puts_the_same_landing_ids(stack: EmulatedStack) -> None:
    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))
    assert execution.status == "SUCCEEDED", execution.cause
    first = sorted(d["landingId"] for d in landed(stack))
    [step_input] = [json.loads(e["lambdaFunctionScheduledEventDetails"]["input"]) for e in execution.history if _is_catalog(e)]

    payload, errored = stack.function("RdsCatalogFunction").invoke(step_input)

    assert not errored, payload
    assert sorted(d["landingId"] for d in landed(stack)) == sorted(first * 2)


def _is_catalog(event: dict[str, Any]) -> bool:
    return event["type"] == "LambdaFunctionScheduled" and "RdsCatalogFunction" in event["lambdaFunctionScheduledEventDetails"]["resource"]


def test_landing_of_a_table_in_athena_landing_tables_starts_the_athena_jobs_with_the_landed_partition(stack_factory: Any) -> None:
    stack = stack_factory(AthenaLandingTables="world.city,dynamodb.shop_orders")
    jobs = [
        {
            "name": "landed_cities",
            "mode": "ctas",
            "database": "marts",
            "table": "landed_cities",
            "query": "SELECT name FROM {landed.database}.{landed.table} WHERE snapshot_time = '{landed.partition.snapshot_time}'",
        }
    ]
    definition = "athena/_definitions/on_landing/world.city.json"
    stack.client("s3").put_object(Bucket=stack.lake_bucket, Key=definition, Body=json.dumps(jobs).encode())

    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    city = next(d for d in landed(stack) if d["table"] == "city")
    [started] = stack.event_bridge.started
    assert started["stateMachineArn"] == stack.state_machines["AthenaEtlStateMachine"]
    assert json.loads(started["input"]) == {"jobsFile": "on_landing/world.city.json", "landed": city}
    described = stack.client("stepfunctions").describe_execution(executionArn=started["executionArn"])
    assert json.loads(described["input"]) == {"jobsFile": "on_landing/world.city.json", "landed": city}
    jobs_run = stack.wait(started["executionArn"])
    assert jobs_run.status == "SUCCEEDED", jobs_run.cause
    assert stack.athena.engine.run_sql("SELECT count(*) FROM marts.landed_cities").text_rows() == [[str(city["rows"])]]


def test_without_athena_landing_tables_there_is_no_rule(stack: EmulatedStack) -> None:
    assert stack.client("events").list_rules()["Rules"] == []
    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))
    assert execution.status == "SUCCEEDED", execution.cause
    assert len(landed(stack)) == 4 and stack.event_bridge.started == []
