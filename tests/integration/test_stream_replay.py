"""The StreamFailureAlarm runbook on the emulator: StreamFlattenFunction invoked with `{"replayFailure": <message body>}`
reads that failure's range back from the table's stream and lands it once, while the mapping goes on; a second replay
of the shard at the same time, another function's failure record, and anything that is neither kind of event are
refused by name and write nothing."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from snaplake.streams.replay import REPLAY_FAILURE, stream_failure
from snaplake.streams.replay_lease import LEASE_FORMAT, RUNNING, lease_key
from snaplake_local.sources import sample_event
from snaplake_local.stack import EmulatedStack
from snaplake_local.streams import STREAM_TABLE, create_stream_table, stream_events

from tests.template._emulated_iam import RequestChecker
from tests.template._lake_scope import LAKE_SCOPES

FOLDER = "dynamodb_stream_changes/shop_carts/"


def _changes(stack: EmulatedStack, stream_arn: str) -> tuple[str, list[dict[str, Any]]]:
    """Nine changes in the table's stream: its shard id and the records, as the mapping's Lambda events carry them."""
    ddb = stack.client("dynamodb")
    for number in range(7):
        ddb.put_item(TableName=STREAM_TABLE, Item={"cart": {"S": f"C{number}"}, "total": {"N": str(number)}, "tag": {"B": b"\x00\xff"}})
    paid = {":t": {"BOOL": True}}
    ddb.update_item(TableName=STREAM_TABLE, Key={"cart": {"S": "C1"}}, UpdateExpression="SET paid = :t", ExpressionAttributeValues=paid)
    ddb.delete_item(TableName=STREAM_TABLE, Key={"cart": {"S": "C2"}})
    (shard,) = stack.client("dynamodbstreams").describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    records = [record for event in stream_events(stack, stream_arn, batch_size=100) for record in event["Records"]]
    assert len(records) == 9
    return str(shard["ShardId"]), records


def _failure(stack: EmulatedStack, stream_arn: str, shard: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Lambda's on-failure record for `records` as StreamFailureQueue holds it: the sample event with this run's values."""
    body = json.loads(json.dumps(sample_event("dynamodb_stream_replay_failure.json")[REPLAY_FAILURE]))
    body["requestContext"]["functionArn"] = stack.function("StreamFlattenFunction").arn
    body["DDBStreamBatchInfo"].update(
        streamArn=stream_arn,
        shardId=shard,
        startSequenceNumber=records[0]["dynamodb"]["SequenceNumber"],
        endSequenceNumber=records[-1]["dynamodb"]["SequenceNumber"],
        batchSize=len(records),
    )
    return body


def _event_ids(stack: EmulatedStack) -> Counter[str]:
    s3 = stack.client("s3")
    found: Counter[str] = Counter()
    for key in stack.lake_objects(FOLDER):
        body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
        found.update(pq.read_table(pa.BufferReader(body), columns=["event_id"]).column(0).to_pylist())
    return found


def test_the_sample_replay_event_is_one_failure_record_of_the_sample_stream_batch() -> None:
    failure = stream_failure(sample_event("dynamodb_stream_replay_failure.json")[REPLAY_FAILURE])
    batch = sample_event("dynamodb_stream_batch.json")["Records"]

    assert set(sample_event("dynamodb_stream_replay_failure.json")) == {REPLAY_FAILURE}
    assert failure.stream_arn == batch[0]["eventSourceARN"]
    assert (failure.start, failure.end, failure.batch_size) == (
        batch[0]["dynamodb"]["SequenceNumber"],
        batch[-1]["dynamodb"]["SequenceNumber"],
        len(batch),
    )


def test_the_replay_lands_the_failure_range_once_while_the_mapping_goes_on_and_a_second_run_adds_nothing(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack)
    shard, records = _changes(stack, stream_arn)
    function = stack.function("StreamFlattenFunction")
    assert function.invoke({"Records": records[:3]}) == ({"batchItemFailures": []}, False)
    # Lambda gave up on 3-5 (the failure record is in StreamFailureQueue) and delivers 6-8.
    assert function.invoke({"Records": records[6:]}) == ({"batchItemFailures": []}, False)

    payload, errored = function.invoke({REPLAY_FAILURE: json.dumps(_failure(stack, stream_arn, shard, records[3:6]))})

    assert not errored, payload
    assert payload["complete"] is True and payload["notLanded"] == []
    assert (payload["records"], payload["written"], payload["alreadyLanded"], payload["outsideRange"]) == (3, 3, 0, 3)
    assert _event_ids(stack) == Counter(r["eventID"] for r in records)
    landed = stack.lake_objects(FOLDER)

    again, errored = function.invoke({REPLAY_FAILURE: _failure(stack, stream_arn, shard, records[3:6])})

    assert not errored, again
    assert again["complete"] is True and (again["written"], again["alreadyLanded"]) == (0, 3)
    assert stack.lake_objects(FOLDER) == landed


def test_a_replay_of_a_shard_whose_lease_another_replay_holds_is_refused_by_name(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack)
    shard, records = _changes(stack, stream_arn)
    key = lease_key("", stream_arn, shard)  # the emulated stack's LakePrefix is empty
    lease = {"format": LEASE_FORMAT, "state": RUNNING, "holder": "another-invocation", "expiresAt": time.time() + 180, "expires": "soon"}
    stack.client("s3").put_object(Bucket=stack.lake_bucket, Key=key, Body=json.dumps(lease).encode())

    payload, errored = stack.function("StreamFlattenFunction").invoke({REPLAY_FAILURE: _failure(stack, stream_arn, shard, records[:4])})

    assert errored and payload["errorType"] == "ReplayInProgress" and "another-invocation" in payload["errorMessage"]
    assert stack.lake_objects(FOLDER) == {}


def test_a_replay_request_that_is_not_this_functions_failure_record_and_other_events_are_refused_by_name(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack)
    shard, records = _changes(stack, stream_arn)
    function = stack.function("StreamFlattenFunction")
    other = _failure(stack, stream_arn, shard, records)
    other["requestContext"]["functionArn"] += "-other"

    cases: list[tuple[dict[str, Any], str]] = [
        ({REPLAY_FAILURE: other}, "InvalidReplayRequest"),
        ({REPLAY_FAILURE: _failure(stack, stream_arn, shard, records), "Records": records}, "InvalidReplayRequest"),
        ({REPLAY_FAILURE: {"Records": records}}, "InvalidReplayRequest"),
        ({"replay": _failure(stack, stream_arn, shard, records)}, "MalformedStreamRecord"),
        (_failure(stack, stream_arn, shard, records), "MalformedStreamRecord"),  # the body without the operation's name
    ]
    for event, error in cases:
        payload, errored = function.invoke(event)
        assert errored and payload["errorType"] == error, (event.keys(), payload)
    assert stack.lake_objects(FOLDER) == {}


def test_every_s3_request_of_a_replay_is_allowed_by_the_functions_policy_and_stays_in_its_folders(stack_factory: Any) -> None:
    """The replay's lease lives under the change log's claims, which the function may already read and write: its
    policy (rendered for a deployment with LakePrefix `lake`) allows every request, none leaves its lake scope."""
    stack = stack_factory(LakePrefix="lake")
    checker = RequestChecker()
    assert checker.attach(stack, "StreamFlattenFunction") >= 1
    stream_arn = create_stream_table(stack)
    shard, records = _changes(stack, stream_arn)
    function = stack.function("StreamFlattenFunction")
    function.invoke({"Records": records[6:]})
    for _ in range(2):  # the second finds the lease finished and everything landed
        payload, errored = function.invoke({REPLAY_FAILURE: _failure(stack, stream_arn, shard, records[:6])})
        assert not errored and payload["complete"], payload

    assert checker.requests and not checker.refused, checker.refused
    scope = LAKE_SCOPES["StreamFlattenFunction"]
    for request in checker.requests:
        if request.bucket == stack.lake_bucket and request.key is not None:
            folders = scope.folders(request.action) or ()
            assert any(request.key.startswith(f"lake/{folder}") for folder in folders), request
    lease = lease_key("lake", stream_arn, shard)
    assert lease.startswith("lake/_snaplake/claims/dynamodb_stream_changes/shop_carts/replays/")
    lease_requests = [r.operation for r in checker.requests if r.key == lease]
    assert lease_requests == ["GetObject", "PutObject", "GetObject", "PutObject"] * 2, lease_requests  # take, end; twice
