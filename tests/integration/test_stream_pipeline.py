"""DynamoDB Streams change log and Firehose transform: template wiring, sample events, emulator stream -> lake."""

from __future__ import annotations

import base64
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from snaplake_local.sources import sample_event
from snaplake_local.stack import EmulatedStack, load_template
from snaplake_local.streams import STREAM_TABLE, create_stream_table, stream_events

TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]


def _statements(logical_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in RESOURCES[logical_id]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if isinstance(statement, dict) and "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            found.append(statement)
    return found


def test_stream_event_source_mapping_reports_item_failures_bisects_and_is_bounded() -> None:
    function = RESOURCES["StreamFlattenFunction"]
    mapping = RESOURCES["StreamFlattenEventSourceMapping"]

    assert function["Condition"] == mapping["Condition"] == "HasDynamoDbStream"
    assert TEMPLATE["Conditions"]["HasDynamoDbStream"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DynamoDbStreamArn"}, ""]}]}
    assert TEMPLATE["Parameters"]["DynamoDbStreamArn"]["Default"] == ""
    # A plain EventSourceMapping, not the function's DynamoDB event: SAM would attach AWSLambdaDynamoDBExecutionRole,
    # which reads every stream in the account ("*").
    assert "Events" not in function["Properties"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": "StreamFlattenFunction"}
    assert props["EventSourceArn"] == {"Ref": "DynamoDbStreamArn"}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 <= props["MaximumRetryAttempts"] <= 10000
    assert 60 <= props["MaximumRecordAgeInSeconds"] < 24 * 3600  # bounded, and the records are still in the stream
    assert 1 <= props["BatchSize"] <= 10000
    assert props["DestinationConfig"]["OnFailure"] == {"Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}


def test_failure_queue_is_encrypted_and_its_depth_alarms_the_failure_topic() -> None:
    queue = RESOURCES["StreamFailureQueue"]
    alarm = RESOURCES["StreamFailureAlarm"]["Properties"]

    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert alarm["Namespace"] == "AWS/SQS" and alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": "FailureTopic"}]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_stream_function_may_read_only_its_stream_send_only_to_its_queue_and_put_only_under_the_lake_prefix() -> None:
    statements = _statements("StreamFlattenFunction")
    by_action = {action: s for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
        assert by_action[action]["Resource"] == {"Ref": "DynamoDbStreamArn"}
    assert by_action["sqs:SendMessage"]["Resource"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    text, variables = by_action["s3:PutObject"]["Resource"]["Fn::Sub"]
    assert text == "arn:${AWS::Partition}:s3:::${Bucket}/${Objects}"
    assert variables["Objects"] == {"Fn::If": ["HasLakePrefix", {"Fn::Sub": "${LakePrefix}/*"}, "*"]}
    assert set(by_action) == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "sqs:SendMessage",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }


def test_both_functions_run_on_the_globals_runtime_and_only_the_stream_function_needs_pyarrow() -> None:
    for logical_id in ("StreamFlattenFunction", "FirehoseFlattenFunction"):
        props = RESOURCES[logical_id]["Properties"]
        assert "Runtime" not in props and "Architectures" not in props  # Globals: python3.13 on arm64
    assert RESOURCES["StreamFlattenFunction"]["Properties"]["Layers"] == [{"Ref": "ArrowLayer"}]
    assert "Layers" not in RESOURCES["FirehoseFlattenFunction"]["Properties"]  # Globals: the common layer only
    environment = RESOURCES["StreamFlattenFunction"]["Properties"]["Environment"]["Variables"]
    assert set(environment) == {"LAKE_BUCKET", "LAKE_PREFIX", "LAKE_BUCKET_OWNER", "LAKE_KMS_KEY_ARN"}
    assert "Events" not in RESOURCES["FirehoseFlattenFunction"]["Properties"]


def test_stream_handler_accepts_the_sample_stream_batch(stack: EmulatedStack) -> None:
    payload, errored = stack.function("StreamFlattenFunction").invoke(sample_event("dynamodb_stream_batch.json"))

    assert not errored, payload
    assert payload == {"batchItemFailures": []}
    landed = stack.lake_objects("dynamodb_changes/orders/")
    assert sorted(key.split("/")[3] for key in landed) == ["hour=07", "hour=08"]


def test_firehose_handler_accepts_the_sample_firehose_batch(stack: EmulatedStack) -> None:
    event = sample_event("dynamodb_firehose_batch.json")

    payload, errored = stack.function("FirehoseFlattenFunction").invoke(event)

    assert not errored, payload
    assert [r["recordId"] for r in payload["records"]] == [r["recordId"] for r in event["records"]]
    assert [r["result"] for r in payload["records"]] == ["Ok", "Ok", "Dropped", "ProcessingFailed", "ProcessingFailed"]
    second = json.loads(base64.b64decode(payload["records"][1]["data"]))
    assert second == {"customer__id": "C0002", "order_id": "ORDER#00002", "status": "NEW"}


def test_emulator_stream_records_land_once_encrypted_and_a_redelivery_overwrites_them(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack)
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=STREAM_TABLE, Item={"cart": {"S": "C1"}, "total": {"N": "10"}, "owner": {"M": {"id": {"S": "U1"}}}})
    ddb.put_item(TableName=STREAM_TABLE, Item={"cart": {"S": "C1"}, "total": {"N": "12.5"}, "owner": {"M": {"id": {"S": "U1"}}}})
    ddb.delete_item(TableName=STREAM_TABLE, Key={"cart": {"S": "C1"}})
    function = stack.function("StreamFlattenFunction")
    events = list(stream_events(stack, stream_arn))
    assert sum(len(e["Records"]) for e in events) == 3

    for event in events:
        assert function.invoke(event) == ({"batchItemFailures": []}, False)
    first = stack.lake_objects("dynamodb_changes/shop_carts/")
    for event in events:
        function.invoke(event)  # the same batches delivered again

    assert stack.lake_objects("dynamodb_changes/shop_carts/") == first
    s3 = stack.client("s3")
    (key,) = first
    head = s3.head_object(Bucket=stack.lake_bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
    rows = pq.read_table(pa.BufferReader(body)).to_pylist()
    assert [r["_change_type"] for r in rows] == ["INSERT", "MODIFY", "REMOVE"]
    assert [str(r["new__total"]) for r in rows] == ["10.0", "12.5", "None"]
    assert rows[2]["old__owner__id"] == "U1"
