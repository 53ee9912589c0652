"""The replay on moto: the failure's range read back from a real DynamoDB stream (GetShardIterator AT_SEQUENCE_NUMBER,
GetRecords), the change log and the replay lease in a real S3 bucket (conditional writes)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.core.s3 import Bucket
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import flatten_batch, plan_batch, write_batch
from snaplake.streams.errors import ReplayInProgress
from snaplake.streams.landed import LakeChangeLog
from snaplake.streams.replay import FailureReplay, lambda_record, replay_request
from snaplake.streams.replay_lease import FINISHED, RUNNING, LakeReplayLeases, lease_key

from tests.unit.change_log_store import failure_body
from tests.unit.helpers import REGION

OPTIONS = ConvertOptions()
LAKE_BUCKET = "snaplake-replay-lake"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:snaplake-StreamFlattenFunction-AbC123"


@pytest.fixture
def stream(aws: None) -> dict[str, Any]:
    assert REGION == "eu-west-1"
    """A table with a NEW_AND_OLD_IMAGES stream and ten changes in it, and the lake bucket."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    created = ddb.create_table(
        TableName="Orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for number in range(8):
        item = {"pk": {"S": f"ORDER#{number}"}, "total": {"N": f"{number}.5"}, "blob": {"B": bytes([number, 255])}}
        ddb.put_item(TableName="Orders", Item=item)
    ddb.update_item(
        TableName="Orders", Key={"pk": {"S": "ORDER#1"}}, UpdateExpression="SET paid = :t", ExpressionAttributeValues={":t": {"BOOL": True}}
    )
    ddb.delete_item(TableName="Orders", Key={"pk": {"S": "ORDER#2"}})
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=LAKE_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    stream_arn = created["TableDescription"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert len(records) == 10
    lake = Bucket(s3, LAKE_BUCKET, lake=True)
    return {
        "arn": stream_arn,
        "shard": shard["ShardId"],
        "records": [lambda_record(record, stream_arn) for record in records],  # as the mapping delivers them
        "streams": streams,
        "s3": s3,
        "store": LakeChangeLog(lake, streams, "lake"),
        "leases": LakeReplayLeases(lake),
    }


def _replay(stream: dict[str, Any], records: list[dict[str, Any]], holder: str) -> FailureReplay:
    body = failure_body(stream["arn"], stream["shard"], records, FUNCTION_ARN)
    failure = replay_request({"replayFailure": body}, FUNCTION_ARN)
    return FailureReplay(failure, "lake", OPTIONS, stream["store"], stream["leases"], stream["streams"], holder, time.time() + 120)


def _event_ids(stream: dict[str, Any]) -> Counter[str]:
    s3 = stream["s3"]
    found: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET, Prefix="lake/dynamodb_stream_changes/orders/"):
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=LAKE_BUCKET, Key=entry["Key"])["Body"].read()
            found.update(pq.read_table(pa.BufferReader(body), columns=["event_id"]).column(0).to_pylist())
    return found


def test_a_failure_range_read_back_from_the_stream_lands_once_while_the_mapping_writes_the_next_batch(stream: dict[str, Any]) -> None:
    records, store = stream["records"], stream["store"]
    flatten_batch({"Records": records[:4]}, "lake", OPTIONS, store)  # the mapping's first batch lands
    # The mapping gives up on 4-6 (the failure record goes to StreamFailureQueue) and takes 7-9 meanwhile.
    mapping_plan = plan_batch({"Records": records[7:]}, "lake", OPTIONS, store)
    replay = _replay(stream, records[4:7], "operator")
    replay.take_lease()
    read = replay.read_range()
    replay.plan()
    write_batch(mapping_plan, store)
    outcome = replay.write()
    assert replay.end()

    assert [r["eventID"] for r in read.records] == [r["eventID"] for r in records[4:7]]
    assert read.records == records[4:7]  # GetRecords as the mapping's Lambda event: base64 binaries, epoch seconds
    assert read.outside == 3  # 7-9 came on the same page: the mapping's, never written by the replay
    assert outcome.complete and outcome.response()["written"] == 3
    assert _event_ids(stream) == Counter(r["eventID"] for r in records)
    key = lease_key("lake", stream["arn"], stream["shard"])
    document = stream["leases"].read_lease(key)[0]
    assert document["state"] == FINISHED and document["holder"] == "operator"
    assert document["failure"]["startSequenceNumber"] == records[4]["dynamodb"]["SequenceNumber"]


def test_two_replays_at_once_are_settled_by_the_leases_conditional_write_in_s3(stream: dict[str, Any]) -> None:
    records = stream["records"]
    first, second = _replay(stream, records[2:6], "operator-1"), _replay(stream, records[2:6], "operator-2")

    first.take_lease()
    with pytest.raises(ReplayInProgress, match="operator-1"):
        second.run()
    key = lease_key("lake", stream["arn"], stream["shard"])
    assert stream["leases"].read_lease(key)[0]["state"] == RUNNING
    first.read_range()
    first.plan()
    assert first.write().complete
    first.end()
    again = second.run()

    assert again.complete and again.batch.written == [] and again.batch.skipped == 4
    assert _event_ids(stream) == Counter(r["eventID"] for r in records[2:6])
