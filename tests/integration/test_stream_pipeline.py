"""DynamoDB Streams change log and Firehose transform: template wiring, sample events, emulator stream -> lake."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.dynamodb.parquet import CHANGE_TYPE_COLUMN
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


STREAM_SLOTS = 5


@pytest.mark.parametrize("slot", range(1, STREAM_SLOTS + 1))
def test_each_stream_event_source_mapping_reports_item_failures_bisects_and_is_bounded(slot: int) -> None:
    function = RESOURCES["StreamFlattenFunction"]
    mapping = RESOURCES[f"StreamFlattenEventSourceMapping{slot}"]

    assert function["Condition"] == "HasDynamoDbStream"
    assert mapping["Condition"] == f"ReadDynamoDbStream{slot}"
    assert TEMPLATE["Conditions"]["HasDynamoDbStream"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DynamoDbStreamArns"}, ""]}]}
    assert TEMPLATE["Parameters"]["DynamoDbStreamArns"]["Default"] == ""
    # A plain EventSourceMapping, not the function's DynamoDB event: SAM would attach AWSLambdaDynamoDBExecutionRole,
    # which reads every stream in the account ("*").
    assert "Events" not in function["Properties"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": "StreamFlattenFunction"}
    slot_value = {"Fn::Select": [slot - 1, {"Fn::Split": [",", {"Fn::Sub": "${DynamoDbStreamArns},,,,,"}]}]}
    assert props["EventSourceArn"] == slot_value
    assert TEMPLATE["Conditions"][f"ReadDynamoDbStream{slot}"] == {
        "Fn::And": [{"Condition": "HasDynamoDbStream"}, {"Fn::Not": [{"Fn::Equals": [slot_value, ""]}]}]
    }
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    # Exactly once assumes one invocation per shard at a time (docs/streams.md#exactly-once).
    assert props["ParallelizationFactor"] == 1
    assert 0 <= props["MaximumRetryAttempts"] <= 10000
    assert 60 <= props["MaximumRecordAgeInSeconds"] < 24 * 3600  # bounded, and the records are still in the stream
    assert 1 <= props["BatchSize"] <= 10000
    assert props["DestinationConfig"]["OnFailure"] == {"Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}
    assert props == RESOURCES["StreamFlattenEventSourceMapping1"]["Properties"] | {"EventSourceArn": slot_value}


def test_failure_queue_is_encrypted_and_its_depth_alarms_the_failure_topic() -> None:
    queue = RESOURCES["StreamFailureQueue"]
    alarm = RESOURCES["StreamFailureAlarm"]["Properties"]

    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert alarm["Namespace"] == "AWS/SQS" and alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": "FailureTopic"}]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_stream_function_may_read_only_its_stream_send_only_to_its_queue_and_use_only_the_lake_prefix() -> None:
    statements = _statements("StreamFlattenFunction")
    by_action = {action: s for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
        assert by_action[action]["Resource"] == {"Fn::Split": [",", {"Ref": "DynamoDbStreamArns"}]}
    assert by_action["sqs:SendMessage"]["Resource"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    # Only its own folders of the lake (tests/template/test_lake_write_scope.py): the change log, its claim, its registry.
    resources = [r["Fn::Sub"] for r in by_action["s3:PutObject"]["Resource"]]
    folders = ("dynamodb_stream_changes/*", "_snaplake/claims/dynamodb_stream_changes/*", "_snaplake/columns/dynamodb_stream_changes/*")
    assert [text for text, _ in resources] == ["arn:${AWS::Partition}:s3:::${Bucket}/${Root}" + folder for folder in folders]
    assert all(variables["Root"] == {"Fn::If": ["HasLakePrefix", {"Fn::Sub": "${LakePrefix}/"}, ""]} for _, variables in resources)
    assert by_action["s3:GetObject"] is by_action["s3:PutObject"]
    assert set(by_action) == {
        "s3:GetObject",
        "s3:ListBucket",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "sqs:SendMessage",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "glue:GetDatabase",
        "glue:CreateDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "glue:UpdateTable",
        *("sts:AssumeRole", "sts:TagSession"),  # only with LakeCatalogRoleArn: the lake account's catalog role
    }


def test_both_functions_run_on_the_globals_runtime_and_only_the_stream_function_needs_pyarrow() -> None:
    for logical_id in ("StreamFlattenFunction", "FirehoseFlattenFunction"):
        props = RESOURCES[logical_id]["Properties"]
        assert "Runtime" not in props and "Architectures" not in props  # Globals: python3.13 on arm64
    assert RESOURCES["StreamFlattenFunction"]["Properties"]["Layers"] == [{"Ref": "ArrowLayer"}]
    assert "Layers" not in RESOURCES["FirehoseFlattenFunction"]["Properties"]  # Globals: the common layer only
    environment = RESOURCES["StreamFlattenFunction"]["Properties"]["Environment"]["Variables"]
    assert set(environment) == {
        *("LAKE_BUCKET", "LAKE_PREFIX", "LAKE_BUCKET_OWNER", "LAKE_KMS_KEY_ARN", "GLUE_DATABASE_PREFIX"),
        *("PII_RULES", "PII_KEY_CIPHERTEXT", "PII_KMS_KEY_ARN"),
        "LAKE_CATALOG_ROLE",
    }
    assert "Events" not in RESOURCES["FirehoseFlattenFunction"]["Properties"]


def _from_stream(event: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """The event as the stream `stream_arn` would send it (the function checks the stream with DescribeStream)."""
    return {"Records": [{**record, "eventSourceARN": stream_arn} for record in event["Records"]]}


def _rows(stack: EmulatedStack, folder: str) -> list[dict[str, Any]]:
    """Every row of every Parquet object under a table folder: what Athena reads."""
    s3 = stack.client("s3")
    rows: list[dict[str, Any]] = []
    for key in sorted(stack.lake_objects(folder)):
        body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
        rows.extend(pq.read_table(pa.BufferReader(body)).to_pylist())
    return rows


def test_stream_handler_accepts_the_sample_stream_batch(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack, "orders")
    payload, errored = stack.function("StreamFlattenFunction").invoke(_from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn))

    assert not errored, payload
    assert payload == {"batchItemFailures": []}
    landed = stack.lake_objects("dynamodb_stream_changes/orders/")
    assert sorted(key.split("/")[3] for key in landed) == ["hour=07", "hour=08"]


def test_firehose_handler_accepts_the_sample_firehose_batch(stack: EmulatedStack) -> None:
    event = sample_event("dynamodb_firehose_batch.json")

    payload, errored = stack.function("FirehoseFlattenFunction").invoke(event)

    assert not errored, payload
    assert [r["recordId"] for r in payload["records"]] == [r["recordId"] for r in event["records"]]
    assert [r["result"] for r in payload["records"]] == ["Ok", "Ok", "Dropped", "ProcessingFailed", "ProcessingFailed"]
    second = json.loads(base64.b64decode(payload["records"][1]["data"]))
    assert second == {"customer__id": "C0002", "order_id": "ORDER#00002", "status": "NEW"}


def test_emulator_stream_records_land_once_encrypted_and_a_redelivery_writes_nothing(stack: EmulatedStack) -> None:
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
    first = stack.lake_objects("dynamodb_stream_changes/shop_carts/")
    for event in events:
        function.invoke(event)  # the same batches delivered again

    assert stack.lake_objects("dynamodb_stream_changes/shop_carts/") == first
    s3 = stack.client("s3")
    (key,) = first
    head = s3.head_object(Bucket=stack.lake_bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
    rows = pq.read_table(pa.BufferReader(body)).to_pylist()
    assert [r[CHANGE_TYPE_COLUMN] for r in rows] == ["INSERT", "MODIFY", "REMOVE"]
    assert [str(r["new__total"]) for r in rows] == ["10.0", "12.5", "None"]
    assert rows[2]["old__owner__id"] == "U1"


def test_redelivery_with_other_boundaries_after_a_bisection_lands_every_record_once(stack: EmulatedStack) -> None:
    """Issue 11 case 4 on the real handler and S3: a batch written, then bisected halves and a replay from the middle."""
    stream_arn = create_stream_table(stack, "orders")
    event = _from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn)
    records = event["Records"]
    function = stack.function("StreamFlattenFunction")

    assert function.invoke(event) == ({"batchItemFailures": []}, False)
    written = stack.lake_objects("dynamodb_stream_changes/orders/")
    for part in (records[:2], records[2:], records[1:3]):
        assert function.invoke({"Records": part}) == ({"batchItemFailures": []}, False)

    assert stack.lake_objects("dynamodb_stream_changes/orders/") == written
    assert sorted(r["event_id"] for r in _rows(stack, "dynamodb_stream_changes/orders/")) == sorted(r["eventID"] for r in records)


def test_stream_change_log_is_its_own_table_apart_from_the_incremental_exports(stack: EmulatedStack) -> None:
    """Issue 11 case 6: a table exported incrementally and streamed would otherwise hold every change twice."""
    stream_arn = create_stream_table(stack, "orders")

    stack.function("StreamFlattenFunction").invoke(_from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn))

    assert stack.lake_objects("dynamodb_changes/") == {}
    assert stack.lake_objects("dynamodb_stream_changes/orders/")


@pytest.mark.parametrize("view_type", ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE"])
def test_a_stream_without_both_images_fails_every_batch_by_name_and_writes_nothing(stack: EmulatedStack, view_type: str) -> None:
    """Issue 11 case 5: the view type is checked with DescribeStream before anything is written."""
    stream_arn = create_stream_table(stack, "orders", view_type=view_type)

    payload, errored = stack.function("StreamFlattenFunction").invoke(_from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn))

    assert errored and payload["errorType"] == "UnsupportedStreamViewType", payload
    assert stack.lake_objects("dynamodb_stream_changes/") == {}


def test_records_without_the_images_their_event_needs_are_refused_by_name_and_the_others_land_once(stack: EmulatedStack) -> None:
    """Issue 11 case 5, per record: INSERT without NewImage, MODIFY without OldImage, a KEYS_ONLY record."""
    stream_arn = create_stream_table(stack, "orders")
    event = _from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn)
    records = event["Records"]  # INSERT, MODIFY, REMOVE, REMOVE
    insert, modify = copy.deepcopy(records[0]), copy.deepcopy(records[1])
    del insert["dynamodb"]["NewImage"]
    del modify["dynamodb"]["OldImage"]
    keys_only = copy.deepcopy(records[2])
    keys_only["dynamodb"]["StreamViewType"] = "KEYS_ONLY"
    function = stack.function("StreamFlattenFunction")

    payload, errored = function.invoke({"Records": [insert, modify, keys_only, records[3]]})

    assert not errored
    assert [f["itemIdentifier"] for f in payload["batchItemFailures"]] == [r["dynamodb"]["SequenceNumber"] for r in records]
    assert [r["event_id"] for r in _rows(stack, "dynamodb_stream_changes/orders/")] == [records[3]["eventID"]]
    # Lambda redelivers from the first reported record: the good one already in the lake is not written again.
    function.invoke({"Records": records})
    assert sorted(r["event_id"] for r in _rows(stack, "dynamodb_stream_changes/orders/")) == sorted(r["eventID"] for r in records)


def test_tables_differing_only_in_case_do_not_share_a_change_log(stack: EmulatedStack) -> None:
    """Issue 11 case 7: `Orders` and `orders` have the same Athena name; the folder belongs to the first table ARN."""
    first = create_stream_table(stack, "orders")
    second = create_stream_table(stack, "Orders")
    event = sample_event("dynamodb_stream_batch.json")
    function = stack.function("StreamFlattenFunction")

    assert function.invoke(_from_stream(event, first)) == ({"batchItemFailures": []}, False)
    before = stack.lake_objects("dynamodb_stream_changes/")
    payload, errored = function.invoke(_from_stream(event, second))

    assert errored and payload["errorType"] == "StreamTableFolderTaken", payload
    assert stack.lake_objects("dynamodb_stream_changes/") == before


def test_attributes_differing_only_in_case_keep_distinct_columns_across_batches(stack: EmulatedStack) -> None:
    """Issue 11 case 7: `foo` then `Foo` in another batch: two columns, each keeping its name in every later object."""
    stream_arn = create_stream_table(stack, "orders")
    template = _from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn)["Records"][0]
    function = stack.function("StreamFlattenFunction")

    def insert(number: int, attribute: str) -> dict[str, Any]:
        record = copy.deepcopy(template)
        record["eventID"] = f"event-{number}"
        record["dynamodb"]["SequenceNumber"] = str(5 * 10**26 + number)
        record["dynamodb"]["NewImage"] = {"pk": {"S": f"P{number}"}, attribute: {"S": f"{attribute}-{number}"}}
        return record

    for number, attribute in enumerate(["foo", "Foo", "foo", "Foo"]):
        assert function.invoke({"Records": [insert(number, attribute)]}) == ({"batchItemFailures": []}, False)

    rows = {r["event_id"]: r for r in _rows(stack, "dynamodb_stream_changes/orders/")}
    assert [rows[f"event-{n}"].get("new__foo") for n in range(4)] == ["foo-0", None, "foo-2", None]
    assert [rows[f"event-{n}"].get("new__foo_2") for n in range(4)] == [None, "Foo-1", None, "Foo-3"]


def _glue_table(stack: EmulatedStack, name: str) -> dict[str, Any] | None:
    glue = stack.client("glue")
    try:
        return dict(glue.get_table(DatabaseName="dynamodb", Name=name)["Table"])
    except glue.exceptions.EntityNotFoundException:
        return None


def test_the_change_log_is_its_own_glue_table_projected_by_hour_and_knows_every_landed_column(stack: EmulatedStack) -> None:
    """Issue 11 case 6: `<table>_stream_changes`, apart from the exports' `<table>_changes`; Athena projects its
    dt/hour partitions, so every object that lands is queryable with no partition registered."""
    stream_arn = create_stream_table(stack, "orders")
    event = _from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn)

    assert stack.function("StreamFlattenFunction").invoke(event) == ({"batchItemFailures": []}, False)

    table = _glue_table(stack, "orders_stream_changes")
    assert table is not None and _glue_table(stack, "orders_changes") is None
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.hour.type"] == "integer"
    assert parameters["storage.location.template"].endswith("/dynamodb_stream_changes/orders/dt=${dt}/hour=${hour}/")
    glue_columns = {c["Name"] for c in table["StorageDescriptor"]["Columns"]}
    landed_columns = {name for row in _rows(stack, "dynamodb_stream_changes/orders/") for name in row}
    assert landed_columns <= glue_columns
    assert {"change_type", "write_time", "sequence_number", "event_id", "is_ttl_delete"} <= glue_columns
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt", "hour"]


def test_a_failed_glue_registration_writes_nothing_and_the_retry_registers_and_lands_once(stack: EmulatedStack) -> None:
    """The table is registered before an object lands: when Glue refuses, the batch fails with nothing written, and
    Lambda's retry registers the columns and writes each record once."""
    from tests.integration.faults import FaultInjector, Rule, json_error

    stream_arn = create_stream_table(stack, "orders")
    event = _from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn)
    function = stack.function("StreamFlattenFunction")
    injector = FaultInjector()
    injector.add(
        Rule("glue-down", lambda call: call.service == "glue", lambda call: json_error(call, 400, "AccessDeniedException", "no", "AWSGlue"))
    )

    with injector.installed():
        payload, errored = function.invoke(event)
    assert errored, payload  # the whole batch fails: Lambda retries it (and bisects it, then the failure destination)
    assert stack.lake_objects("dynamodb_stream_changes/orders/") == {}

    assert function.invoke(event) == ({"batchItemFailures": []}, False)
    assert _glue_table(stack, "orders_stream_changes") is not None
    assert sorted(r["event_id"] for r in _rows(stack, "dynamodb_stream_changes/orders/")) == sorted(r["eventID"] for r in event["Records"])
