"""Several sources per stack (issue 16.7) on the emulator: the scheduled latest-snapshot sources through the real RDS
state machine, and two DynamoDB streams through the one StreamFlattenFunction, each redelivered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from snaplake_local.sources import SHOP_INSTANCE, WORLD_CLUSTER
from snaplake_local.stack import EmulatedStack
from snaplake_local.streams import create_stream_table, stream_events

from tests.template._support import rendered_resources

RDS = "RdsExportStateMachine"


def enabled_schedule_inputs(stack: EmulatedStack) -> list[Any]:
    """The inputs the state machine's enabled latest-snapshot schedules start it with, as this stack's parameters
    render them (EventBridge Scheduler is not emulated)."""
    events = stack.template["Resources"][RDS]["Properties"]["Events"]
    found = []
    for name, event in sorted(events.items()):
        properties = stack.evaluator.evaluate(event["Properties"])
        if name.startswith("LatestSnapshot") and properties["State"] == "ENABLED":
            found.append(json.loads(properties["Input"]))
    return found


def test_two_scheduled_sources_both_export_and_redelivered_schedules_duplicate_nothing(
    stack_factory: Callable[..., EmulatedStack],
) -> None:
    stack = stack_factory(ScheduledSourceIdentifiers=f"{WORLD_CLUSTER},{SHOP_INSTANCE}")
    inputs = enabled_schedule_inputs(stack)
    assert inputs == [{"latestSnapshotOf": WORLD_CLUSTER}, {"latestSnapshotOf": SHOP_INSTANCE}]

    # Both schedules fire at the same minute: their executions run side by side.
    first = [stack.wait(arn) for arn in [stack.start(RDS, event) for event in inputs]]
    assert [e.status for e in first] == ["SUCCEEDED", "SUCCEEDED"], [e.cause for e in first]
    assert sorted(e.output["snapshot"]["sourceIdentifier"] for e in first) == sorted([WORLD_CLUSTER, SHOP_INSTANCE])
    assert len(stack.rds_exports.started_exports) == 2
    landed = stack.lake_objects()
    assert {key.split("/")[1] for key in landed if key.startswith("rds/") and key.endswith(".parquet")} == {"world", "shop"}

    # Scheduler redelivers each start (at least once), twice at the same time: the same snapshots, nothing new.
    again = [stack.wait(arn) for arn in [stack.start(RDS, event) for event in [*inputs, *inputs]]]

    assert [e.status for e in again] == ["SUCCEEDED"] * 4, [e.cause for e in again]
    assert len(stack.rds_exports.started_exports) == 2
    assert stack.lake_objects() == landed


def _change_log(stack: EmulatedStack, table: str) -> list[dict[str, Any]]:
    s3 = stack.client("s3")
    rows: list[dict[str, Any]] = []
    for key in sorted(stack.lake_objects(f"dynamodb_stream_changes/{table}/")):
        rows.extend(pq.read_table(pa.BufferReader(s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read())).to_pylist())
    return rows


def test_two_streams_land_in_their_own_change_logs_from_one_stack_and_redelivery_duplicates_nothing(stack: EmulatedStack) -> None:
    carts, wishlists = create_stream_table(stack, "carts"), create_stream_table(stack, "wishlists")
    # The stack with both streams maps each to the function and lets it read exactly those two.
    rendered = rendered_resources(DynamoDbStreamArns=f"{carts},{wishlists}")
    mapped = sorted(s["Properties"]["EventSourceArn"] for s in rendered.values() if s["Type"] == "AWS::Lambda::EventSourceMapping")
    assert mapped == sorted([carts, wishlists])
    ddb = stack.client("dynamodb")
    for number in range(1, 6):
        ddb.put_item(TableName="carts", Item={"cart": {"S": f"C{number}"}, "total": {"N": str(number)}})
        ddb.put_item(TableName="wishlists", Item={"cart": {"S": f"W{number}"}, "wish": {"S": f"gift {number}"}})
    ddb.delete_item(TableName="carts", Key={"cart": {"S": "C1"}})
    function = stack.function("StreamFlattenFunction")
    small = {arn: list(stream_events(stack, arn, batch_size=2)) for arn in (carts, wishlists)}

    # The two mappings invoke the function independently: their batches interleave.
    for pair in zip(small[carts], small[wishlists], strict=False):
        for event in pair:
            assert function.invoke(event) == ({"batchItemFailures": []}, False)
    for event in small[carts][len(small[wishlists]) :]:
        assert function.invoke(event) == ({"batchItemFailures": []}, False)
    landed = stack.lake_objects("dynamodb_stream_changes/")
    # Both streams redelivered whole, with other batch boundaries.
    for arn in (wishlists, carts):
        for event in stream_events(stack, arn, batch_size=100):
            assert function.invoke(event) == ({"batchItemFailures": []}, False)

    assert stack.lake_objects("dynamodb_stream_changes/") == landed
    carts_log, wishlists_log = _change_log(stack, "carts"), _change_log(stack, "wishlists")
    assert sorted(r["new__cart"] or r["old__cart"] for r in carts_log) == ["C1", "C1", "C2", "C3", "C4", "C5"]
    assert sorted(r["new__cart"] for r in wishlists_log) == [f"W{n}" for n in range(1, 6)]
    assert "new__wish" in wishlists_log[0] and "new__wish" not in carts_log[0]
