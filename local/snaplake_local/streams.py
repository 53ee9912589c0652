"""DynamoDB Streams on the emulator: a table with a stream, its records fed to StreamFlattenFunction.

Lambda's event source mapping is not emulated: `stream_events` reads each shard
with the dynamodbstreams API (DescribeStream / GetShardIterator / GetRecords)
and builds the `{"Records": [...]}` event the mapping would send, one per
shard and batch (epoch-second ApproximateCreationDateTime, binary values as
base64 text, eventSourceARN: snaplake.streams.replay.lambda_record).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from snaplake.streams import CHANGE_LOG_FOLDER
from snaplake.streams.replay import lambda_record

from snaplake_local.stack import EmulatedStack

STREAM_TABLE = "shop-carts"
# The template parameter DynamoDbStreamArns (it only scopes IAM and the event source mapping, neither emulated);
# the emulator names the real stream when the table is created.
STREAM_ARN_PARAMETER = f"arn:aws:dynamodb:eu-west-1:123456789012:table/{STREAM_TABLE}/stream/local"


def create_stream_table(stack: EmulatedStack, table: str = STREAM_TABLE, view_type: str = "NEW_AND_OLD_IMAGES") -> str:
    """A table with a stream (the change log needs NEW_AND_OLD_IMAGES); returns the stream ARN."""
    created = stack.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "cart", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "cart", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
    )
    return str(created["TableDescription"]["LatestStreamArn"])


def _lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    # The mapping's shape, as the operator's replay builds it too (binary values as base64 text, epoch seconds).
    return {**lambda_record(record, stream_arn), "awsRegion": region}


def stream_events(stack: EmulatedStack, stream_arn: str, batch_size: int = 100) -> Iterator[dict[str, Any]]:
    """Every record now in the stream, as the Lambda events of an event source mapping starting at TRIM_HORIZON."""
    streams = stack.client("dynamodbstreams")
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    for shard in shards:
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        position: str | None = iterator["ShardIterator"]
        while position:
            page = streams.get_records(ShardIterator=position, Limit=batch_size)
            if not page["Records"]:
                break
            yield {"Records": [_lambda_record(record, stream_arn, stack.region) for record in page["Records"]]}
            position = page.get("NextShardIterator")


def run_stream_demo(stack: EmulatedStack, echo: Callable[[str], None]) -> bool:
    """Changes to a table with a stream, fed through StreamFlattenFunction; prints what landed. True when nothing failed."""
    stream_arn = create_stream_table(stack)
    ddb = stack.client("dynamodb")
    for number in range(1, 4):
        item = {
            "cart": {"S": f"CART#{number}"},
            "owner": {"M": {"id": {"S": f"C{number:04d}"}, "tier": {"S": "gold" if number == 1 else "basic"}}},
            "total": {"N": f"{number * 12}.50"},
            "items": {"L": [{"M": {"sku": {"S": "A-1"}, "qty": {"N": str(number)}}}]},
        }
        ddb.put_item(TableName=STREAM_TABLE, Item=item)
    ddb.update_item(
        TableName=STREAM_TABLE,
        Key={"cart": {"S": "CART#2"}},
        UpdateExpression="SET checked_out = :yes",
        ExpressionAttributeValues={":yes": {"BOOL": True}},
    )
    ddb.delete_item(TableName=STREAM_TABLE, Key={"cart": {"S": "CART#3"}})
    echo(f"\nDynamoDB Streams: table {STREAM_TABLE} (NEW_AND_OLD_IMAGES), 3 puts, 1 update, 1 delete")
    ok = True
    function = stack.function("StreamFlattenFunction")
    for event in stream_events(stack, stream_arn):
        payload, errored = function.invoke(event)
        failures = [] if errored else payload.get("batchItemFailures", [])
        ok &= not errored and not failures
        result = f"ERROR {payload}" if errored else f"{len(failures)} failures"
        echo(f"    batch of {len(event['Records'])} stream records -> {result}")
    landed = stack.lake_objects("")
    changes = {key: size for key, size in landed.items() if f"/{CHANGE_LOG_FOLDER}/shop_carts/" in f"/{key}"}
    for key, size in sorted(changes.items()):
        echo(f"    {key} ({size} bytes)")
    return ok and bool(changes)
