"""CopyToLake is a Distributed Map (docs/adr/0012): one child workflow per plan batch, read from the plan's
items.json. A child that fails for good fails the Map with States.ExceedToleratedFailureThreshold, as on AWS
(moto alone would count the failure and go on: snaplake_local.emulator.distributed_map)."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError
from snaplake.core.s3 import Bucket
from snaplake.rds import copy_batch
from snaplake.rds.copy_plan import CopyItem
from snaplake_local.sources import sample_event
from snaplake_local.stack import EmulatedStack

RDS = "RdsExportStateMachine"
CLUSTER_EVENT = "rds_automated_cluster_snapshot.json"


def entered(history: list[dict[str, object]], state: str) -> int:
    return len(
        [
            event
            for event in history
            if str(event["type"]).endswith("StateEntered") and event["stateEnteredEventDetails"]["name"] == state  # type: ignore[index]
        ]
    )


def test_a_batch_that_fails_for_good_fails_the_map_by_name_and_nothing_is_finalized(stack: EmulatedStack) -> None:
    original = copy_batch.copy_item

    def broken(lake: Bucket, export: Bucket, item: CopyItem, multipart_threshold: int = copy_batch.MAX_SINGLE_COPY_BYTES) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "injected: this copy never succeeds"}}, "CopyObject")

    copy_batch.copy_item = broken
    try:
        execution = stack.run(RDS, sample_event(CLUSTER_EVENT))
    finally:
        copy_batch.copy_item = original

    assert execution.status == "FAILED"
    # The Catch sees the Map's error (in the notification). PipelineFailed re-raises it through ErrorPath, which
    # moto's Fail state refuses for a `States.` name (States.Runtime here; AWS ends with the Map's error).
    assert execution.error in ("States.ExceedToleratedFailureThreshold", "States.Runtime")
    assert entered(execution.history, "FinalizeCopy") == 0
    [notification] = stack.notifications()
    assert notification["message"]["step"] == "CopyToLake"
    assert notification["message"]["error"] == "States.ExceedToleratedFailureThreshold"
    [run] = stack.distributed_maps.of(execution.arn, "CopyToLake")
    assert (run.items, run.failed, run.succeeded) == (1, 1, 0)
    assert not any(key.endswith("/_SUCCESS") for key in stack.lake_objects())


def test_the_map_reads_one_child_per_batch_from_the_plan_and_keeps_only_a_count(stack: EmulatedStack) -> None:
    execution = stack.run(RDS, sample_event(CLUSTER_EVENT))

    assert execution.status == "SUCCEEDED", execution.cause
    copy = execution.output["copy"]
    items = json.loads(stack.client("s3").get_object(Bucket=copy["items"]["bucket"], Key=copy["items"]["key"])["Body"].read())
    assert [item["share"]["worker"] for item in items] == list(range(copy["batches"]))
    assert all(item["plan"] == copy["plan"] and item["share"]["workers"] == copy["batches"] for item in items)
    assert execution.output["copyResults"] == {"children": copy["batches"]}
    assert "workers" not in copy  # PlanCopy's hand-run shares stay out of the state
    [run] = stack.distributed_maps.of(execution.arn, "CopyToLake")
    assert (run.items, run.succeeded, run.failed) == (copy["batches"], copy["batches"], 0)
