"""ScanFiles, ConvertFiles and PublishFiles are Distributed Maps (docs/adr/0012): one child workflow per share of the
data files, read from the plan's items.json. A child that fails for good fails its Map with
States.ExceedToleratedFailureThreshold, as on AWS, and the state keeps only child counts, whatever the number of files;
the number of shares is bounded (MAX_SHARES), beyond which shares grow. benchmarks/ddb_fanout.py runs the same at
larger sizes, and the per-export steps at 100,000 data files."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from snaplake.dynamodb import conversion as conversion_steps
from snaplake.dynamodb import parquet
from snaplake.dynamodb import publish as publish_steps
from snaplake.dynamodb.errors import CountMismatch
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE_ARN, create_orders_table, default_parameters, seed_sample_sources
from snaplake_local.stack import EmulatedStack, Execution

from tests.integration.faults import LakeContents, LambdaTimeout, timeout_message

DDB = "DynamoDbExportStateMachine"
MAPS = ("ScanFiles", "ConvertFiles", "PublishFiles")


def entered(execution: Execution, state: str) -> int:
    return sum(
        1 for event in execution.history if event["type"].endswith("StateEntered") and event["stateEnteredEventDetails"]["name"] == state
    )


def full_export(stack: EmulatedStack) -> Execution:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    return stack.run(DDB, {"tableArn": ORDERS_TABLE_ARN}, timeout_seconds=600)


def largest_state_payload(execution: Execution) -> int:
    """The largest state input or output of the parent execution, in bytes."""
    sizes = [0]
    for event in execution.history:
        for details, field in (("stateEnteredEventDetails", "input"), ("stateExitedEventDetails", "output")):
            if details in event:
                sizes.append(len(str(event[details].get(field, "")).encode()))
    return max(sizes)


def test_a_convert_child_that_fails_for_good_fails_the_map_by_name_before_anything_is_published(stack: EmulatedStack) -> None:
    originals = parquet.convert_block, parquet.staged_blocks

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise CountMismatch("injected: this file never converts")

    parquet.convert_block = parquet.staged_blocks = broken  # from its JSON or from the scan's stage alike
    try:
        execution = full_export(stack)
    finally:
        parquet.convert_block, parquet.staged_blocks = originals

    assert execution.status == "FAILED"
    # PipelineFailed re-raises the Map's error through ErrorPath, which moto's Fail state refuses for a `States.` name.
    assert execution.error in ("States.ExceedToleratedFailureThreshold", "States.Runtime")
    [notification] = stack.notifications()
    assert notification["message"]["step"] == "ConvertFiles"
    assert notification["message"]["error"] == "States.ExceedToleratedFailureThreshold"
    [run] = stack.distributed_maps.of(execution.arn, "ConvertFiles")
    assert run.failed >= 1 and run.failed + run.succeeded == run.items
    assert [entered(execution, state) for state in ("MarkPublishing", "PublishFiles", "FinalizeConversion")] == [0, 0, 0]
    published = [key for key in stack.lake_objects() if "/_snaplake_staging/" not in f"/{key}" and key.endswith((".parquet", "_SUCCESS"))]
    assert published == []


def test_the_state_payload_does_not_grow_with_the_number_of_data_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversion_steps, "MAX_SHARES", 16)  # 1,000 in production: reached here at 300 files already
    sizes, children, transitions = {}, {}, {}
    for files in (3, 128, 300):
        with EmulatedStack(default_parameters(), function_log_level="WARNING") as stack:
            seed_sample_sources(stack)
            stack.dynamodb_exports.files_per_export = files
            execution = full_export(stack)
            assert execution.status == "SUCCEEDED", execution.cause
            conversion = execution.output["conversion"]
            assert conversion["files"] == files and "workers" not in conversion
            items = json.loads(
                stack.client("s3").get_object(Bucket=conversion["items"]["bucket"], Key=conversion["items"]["key"])["Body"].read()
            )
            assert [item["share"]["worker"] for item in items] == list(range(conversion["shares"]))
            for state in MAPS:
                [run] = stack.distributed_maps.of(execution.arn, state)
                assert (run.items, run.succeeded, run.failed) == (conversion["shares"], conversion["shares"], 0)
            assert [execution.output[name] for name in ("scanResults", "convertResults", "publishResults")] == [
                {"children": len(items)}
            ] * 3
            assert execution.output["landed"]["files"] == files
            sizes[files], children[files] = largest_state_payload(execution), len(items)
            transitions[files] = execution.state_transitions

    assert children == {3: 3, 128: 16, 300: 16}  # more files, more children, up to MAX_SHARES; then bigger shares ...
    assert sizes[300] <= sizes[3] + 64, sizes  # ... and the same state (a few digits longer)
    assert transitions[3] == transitions[128] == transitions[300]  # the parent's steps do not depend on the export


def test_publish_children_loop_on_their_cursor_and_a_timed_out_invocation_is_retried_without_duplicating_a_file(
    stack: EmulatedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversion_steps, "MAX_SHARES", 2)  # 2 shares of 6 files ...
    monkeypatch.setattr(publish_steps, "PUBLISH_THREADS", 2)  # ... published 2 files per round: 3 rounds per share
    stack.dynamodb_exports.files_per_export = 12
    checks = itertools.count(1)

    def out_of_time() -> int:  # every check: time is up after the round; the third check overall times the function out
        if next(checks) == 3:
            raise LambdaTimeout(timeout_message(stack, "ConvertPublishFunction"))
        return 0

    stack.lambdas.remaining_ms[stack.function("ConvertPublishFunction").name] = out_of_time
    execution = full_export(stack)

    assert execution.status == "SUCCEEDED", execution.cause
    [run] = stack.distributed_maps.of(execution.arn, "PublishFiles")
    assert (run.items, run.succeeded, run.failed) == (2, 2, 0)
    timed_out = [e for e in run.history if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in timed_out] == ["Sandbox.Timedout"]
    # Each share: cursors 2 and 4 (its files 2*2 and 4*2 of the export), then done; one invocation more for the retry.
    cursors = sorted((o["share"]["worker"], o["cursor"] is None, o["cursor"]) for o in run.step_outputs("PublishShare"))
    assert cursors == [(0, False, 4), (0, False, 8), (0, True, None), (1, False, 5), (1, False, 9), (1, True, None)]
    assert sum(1 for name, _ in stack.lambdas.invocations if name == stack.function("ConvertPublishFunction").name) == 7
    lake = LakeContents.read(stack)
    rows = [row for key, found in lake.rows.items() if "/dynamodb/" in f"/{key}" for row in found]
    assert len(rows) == len(set(rows)) == len(orders_items()) == execution.output["landed"]["rows"]
    assert execution.output["landed"]["files"] == 12
    assert not [key for key in stack.lake_objects() if "_snaplake_staging/" in key]
