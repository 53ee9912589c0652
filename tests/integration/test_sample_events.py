"""Every function's sample event in events/ is accepted by its handler (what `sam local invoke -e` would send)."""

import json
from typing import Any

import pytest
from snaplake_local.sources import EVENTS_DIR, sample_event
from snaplake_local.stack import EmulatedStack

TRIGGERS = sorted(p.name for p in EVENTS_DIR.glob("rds_*.json"))


@pytest.mark.parametrize("event_file", TRIGGERS)
def test_snapshot_filter_accepts_every_trigger_sample(stack: EmulatedStack, event_file: str) -> None:
    payload, errored = stack.function("SnapshotFilterFunction").invoke(sample_event(event_file))

    assert not errored, payload
    assert isinstance(payload["export"], bool) and payload["reason"]


def test_each_step_accepts_its_sample_event_in_pipeline_order(stack: EmulatedStack) -> None:
    def invoke(logical_id: str, event_file: str, plan: object = None) -> dict[str, object]:
        event = sample_event(event_file)
        if plan is not None:
            # The plan folder's name hashes the lake's KMS key ARN, which is random per emulator run.
            assert event["plan"]["prefix"].rsplit("/plan-", 1)[0] == plan["prefix"].rsplit("/plan-", 1)[0]  # type: ignore[index]
            event["plan"] = plan
        payload, errored = stack.function(logical_id).invoke(event)
        assert not errored, f"{logical_id} refused events/{event_file}: {json.dumps(payload)[:500]}"
        return dict(payload)

    started = invoke("StartExportFunction", "start_export.json")
    assert started["exportTaskIdentifier"] == sample_event("poll_export.json")["exportTaskIdentifier"]
    assert invoke("PollExportFunction", "poll_export.json")["status"] == "STARTING"
    stack.clock.advance(2 * 3600)
    assert invoke("PollExportFunction", "poll_export.json")["done"] is True
    planned = invoke("PlanCopyFunction", "plan_copy.json")
    assert set(planned["workers"][0]) == set(sample_event("copy_batch.json")["share"])  # type: ignore[index]
    assert invoke("CopyBatchFunction", "copy_batch.json", plan=planned["plan"])["done"] is True
    landed = invoke("FinalizeCopyFunction", "finalize_copy.json", plan=planned["plan"])
    assert landed["tables"] == 4
    catalog = sample_event("catalog_rds.json")
    assert set(catalog) == {"landedManifest", "exportTaskIdentifier", "snapshotTime"}
    assert catalog["exportTaskIdentifier"] == started["exportTaskIdentifier"]
    registered, errored = stack.function("RdsCatalogFunction").invoke({**catalog, "landedManifest": landed["landedManifest"]})
    assert not errored, registered
    assert len(registered["registered"]) == 4
    assert len(stack.event_bridge.of("Lake Partition Landed")) == 4
    assert len([k for k in stack.lake_objects() if k.endswith(".parquet")]) == landed["objects"] == 8


def test_each_dynamodb_step_accepts_its_sample_event_in_pipeline_order(stack: EmulatedStack) -> None:
    """Export ARNs and plan folders are minted per run, so those fields are carried over from
    the previous step; everything else is the sample event as shipped."""
    from snaplake_local.sources import create_orders_table

    create_orders_table(stack)
    stack.clock.advance(20 * 60)

    def invoke(logical_id: str, event_file: str, **carried: object) -> dict[str, Any]:
        event = {**sample_event(event_file), **carried}
        assert set(carried) <= set(sample_event(event_file)), f"events/{event_file} lacks {set(carried) - set(sample_event(event_file))}"
        payload, errored = stack.function(logical_id).invoke(event)
        assert not errored, f"{logical_id} refused events/{event_file}: {json.dumps(payload)[:500]}"
        return dict(payload)

    started = invoke("DynamoDbStartExportFunction", "dynamodb_start_export.json")
    assert started["export"] is True
    polled = invoke("DynamoDbPollExportFunction", "dynamodb_poll_export.json", exportArn=started["exportArn"])
    assert polled["status"] == "IN_PROGRESS"
    stack.clock.advance(3600)
    polled = invoke("DynamoDbPollExportFunction", "dynamodb_poll_export.json", exportArn=started["exportArn"])
    assert polled["done"] is True
    planned = invoke(
        "ConvertPlanFunction",
        "dynamodb_plan_conversion.json",
        exportArn=started["exportArn"],
        manifestSummaryKey=polled["manifestSummaryKey"],
        exportedTo=started["exportedTo"],
    )
    carried = {"plan": planned["plan"], "exportId": planned["exportId"], "exportedTo": planned["exportedTo"]}
    for share in planned["workers"]:
        assert invoke("ConvertScanFunction", "dynamodb_scan_files.json", share=share, **carried)["done"] is True
    assert invoke("ConvertMergeFunction", "dynamodb_merge_schema.json", plan=planned["plan"])["rows"] == 12
    for share in planned["workers"]:
        assert invoke("ConvertFilesFunction", "dynamodb_convert_files.json", share=share, **carried)["done"] is True
    marked = invoke(
        "DynamoDbMarkPublishingFunction", "dynamodb_mark_publishing.json", exportArn=started["exportArn"], exportedTo=started["exportedTo"]
    )
    assert marked["marked"] is True
    for share in planned["workers"]:
        assert invoke("ConvertPublishFunction", "dynamodb_publish_files.json", share=share, **carried)["done"] is True
    landed = invoke("ConvertFinalizeFunction", "dynamodb_finalize_conversion.json", shares=planned["shares"], **carried)
    assert landed["rows"] == 12
    catalog = {
        **sample_event("catalog_dynamodb.json"),
        "partitions": landed["partitionPrefixes"],
        "partitionTotals": landed["partitionTotals"],
        "exportArn": started["exportArn"],
    }
    assert set(catalog) == set(sample_event("catalog_dynamodb.json"))
    registered, errored = stack.function("DynamoDbCatalogFunction").invoke(catalog)
    assert not errored, registered
    assert len(registered["registered"]) == 1
    [event] = stack.event_bridge.of("Lake Partition Landed")
    assert event["detail"]["rows"] == 12 and event["detail"]["exportIds"] == [started["exportArn"]]
    current = {"exportArn": started["exportArn"], "exportedTo": started["exportedTo"], "partitions": landed["partitionPrefixes"]}
    merging = invoke("DynamoDbCurrentFunction", "dynamodb_merge_current.json", **current)
    while not merging["done"]:  # the state machine polls the query between calls
        stack.clock.advance(merging["waitSeconds"])
        merging = invoke("DynamoDbCurrentFunction", "dynamodb_merge_current.json", cursor=merging, **current)
    assert merging["status"] == "MERGED"
    committed = invoke(
        "DynamoDbCommitFunction", "dynamodb_commit_checkpoint.json", exportArn=started["exportArn"], exportedTo=started["exportedTo"]
    )
    assert committed["committed"] is True
    assert invoke("DynamoDbReleaseLeaseFunction", "dynamodb_release_lease.json")["released"] is False  # the commit released it
