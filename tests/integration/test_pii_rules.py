"""PII column rules on the emulated stack (PiiRules, PiiKeyCiphertext, PiiKmsKeyArn): each pipeline runs with rules,
then every object in the lake bucket is read back (its bytes, and every value of every Parquet file) and none holds
a raw value of a dropped or hashed column; equal values hash alike across the pipelines."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.core.pii import KEY_CONTEXT
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import (
    ORDERS_TABLE,
    ORDERS_TABLE_ARN,
    create_orders_table,
    default_parameters,
    sample_event,
    seed_sample_sources,
)
from snaplake_local.stack import EmulatedStack
from snaplake_local.streams import create_stream_table, stream_events

# Distinctive raw values: none can turn up in a lake object by chance.
EMAIL = "ana@example.com"  # customer 1 of the shop database's customers (RDS), and the DynamoDB items' customer
PHONE = "+31-PII-RAW-PHONE-0099"
CARD = "4111-PII-RAW-CARD-2222"
RAW_VALUES = (EMAIL, PHONE, CARD, "bo@example.com", "chen@example.com", "dee@example.com")
RULES = {
    "rds": {"shop.customers": {"hash": ["email"]}},
    "dynamodb": {
        ORDERS_TABLE: {"hash": ["customer__email"], "drop": ["customer__phone"]},
        "shop-carts": {"hash": ["owner__email"], "drop": ["card"]},
        "orders": {"hash": ["customer__id"]},  # the table of events/dynamodb_stream_batch.json
    },
    "firehose": {"orders-changes": {"hash": ["customer__id"]}},  # the stream of events/dynamodb_firehose_batch.json
}


def _items() -> list[dict[str, Any]]:
    items = orders_items(count=4)
    for item in items:
        item["customer"]["M"].update(email={"S": EMAIL}, phone={"S": PHONE})
    return items


@pytest.fixture
def stack() -> Iterator[EmulatedStack]:
    with EmulatedStack(default_parameters(PiiRules=json.dumps(RULES)), function_log_level="WARNING") as deployed:
        seed_sample_sources(deployed)
        yield deployed


def _secret(stack: EmulatedStack) -> bytes:
    """The data key behind the functions' PII_KEY_CIPHERTEXT (the test's own look at it, to check the hashes)."""
    environment = stack.environment("ConvertFilesFunction")
    blob = base64.b64decode(environment["PII_KEY_CIPHERTEXT"])
    return bytes(stack.client("kms").decrypt(CiphertextBlob=blob, EncryptionContext=KEY_CONTEXT)["Plaintext"])


def _lake(stack: EmulatedStack) -> dict[str, bytes]:
    s3 = stack.client("s3")
    return {key: s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read() for key in stack.lake_objects()}


def _parquet_rows(body: bytes) -> list[dict[str, Any]]:
    return list(pq.read_table(pa.BufferReader(body)).to_pylist())


def _assert_no_raw_value(lake: dict[str, bytes]) -> None:
    """Neither the bytes of any object nor any value of any Parquet file (compressed pages hide bytes) holds a raw value."""
    for key, body in lake.items():
        texts = [body.decode("latin-1")]
        if key.endswith(".parquet"):
            texts.append(json.dumps(_parquet_rows(body), default=str))
        for text in texts:
            found = [value for value in RAW_VALUES if value in text]
            assert not found, f"{key} holds {found}"


def test_no_raw_value_reaches_the_lake_from_any_pipeline_and_one_value_hashes_alike_in_each(stack: EmulatedStack) -> None:
    # RDS: the shop snapshot (customers.email hashed).
    rds = stack.run("RdsExportStateMachine", sample_event("rds_manual_instance_snapshot.json"))
    assert rds.status == "SUCCEEDED", rds.cause
    # DynamoDB: a full export, then an incremental one carrying changes of the same items.
    create_orders_table(stack, _items())
    stack.clock.advance(20 * 60)
    full = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})
    assert full.status == "SUCCEEDED", full.cause
    changed = copy.deepcopy(_items()[0])
    changed["quantity"] = {"N": "99"}
    stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=changed)
    # Windows end on whole hours: 10 minutes past the next one, the change's hour is restorable and exported.
    now = stack.clock.now()
    stack.clock.advance(3600 - (now.minute * 60 + now.second + now.microsecond / 1e6) + 10 * 60)
    incremental = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})
    assert incremental.status == "SUCCEEDED", incremental.cause
    # The stream change log, each batch delivered twice.
    stream_arn = create_stream_table(stack)
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName="shop-carts", Item={"cart": {"S": "C1"}, "owner": {"M": {"email": {"S": EMAIL}}}, "card": {"S": CARD}})
    ddb.put_item(
        TableName="shop-carts", Item={"cart": {"S": "C1"}, "owner": {"M": {"email": {"S": EMAIL}}}, "card": {"S": CARD}, "n": {"N": "2"}}
    )
    function = stack.function("StreamFlattenFunction")
    for event in list(stream_events(stack, stream_arn)) * 2:
        assert function.invoke(event) == ({"batchItemFailures": []}, False)

    lake = _lake(stack)
    _assert_no_raw_value(lake)

    secret = _secret(stack)
    hashed = hmac.new(secret, EMAIL.encode(), hashlib.sha256).hexdigest()
    rows = {
        prefix: [row for key, body in lake.items() if key.startswith(prefix) and key.endswith(".parquet") for row in _parquet_rows(body)]
        for prefix in (
            "dynamodb/shop_orders/",
            "dynamodb_changes/shop_orders/",
            "dynamodb_stream_changes/shop_carts/",
            "rds/shop/customers/",
        )
    }
    assert [row["email"] for row in rows["rds/shop/customers/"] if row["id"] == 1] == [hashed]
    assert {row["customer__email"] for row in rows["dynamodb/shop_orders/"]} == {hashed}
    assert not any("phone" in column for row in rows["dynamodb/shop_orders/"] for column in row)
    assert {row["new__customer__email"] for row in rows["dynamodb_changes/shop_orders/"]} == {hashed}
    assert {row["new__owner__email"] for row in rows["dynamodb_stream_changes/shop_carts/"]} == {hashed}
    assert len(rows["dynamodb_stream_changes/shop_carts/"]) == 2  # the redelivered batches landed nothing more
    assert not any("card" in column for row in rows["dynamodb_stream_changes/shop_carts/"] for column in row)
    # The catalog registers what landed: the hashed columns as strings, the dropped ones not at all.
    glue = stack.client("glue")
    columns = {
        c["Name"]: c["Type"] for c in glue.get_table(DatabaseName="dynamodb", Name="shop_orders")["Table"]["StorageDescriptor"]["Columns"]
    }
    assert columns["customer__email"] == "string" and "customer__phone" not in columns


def test_an_rds_table_with_a_rule_is_rewritten_the_others_copied_and_a_rerun_lands_nothing_twice(stack: EmulatedStack) -> None:
    first = stack.run("RdsExportStateMachine", sample_event("rds_manual_instance_snapshot.json"))
    assert first.status == "SUCCEEDED", first.cause
    landed = stack.lake_objects()

    again = stack.run("RdsExportStateMachine", sample_event("rds_manual_instance_snapshot.json"))

    assert again.status == "SUCCEEDED", again.cause
    assert stack.lake_objects() == landed
    lake = _lake(stack)
    _assert_no_raw_value(lake)
    secret = _secret(stack)
    rows = {
        table: [
            row
            for key, body in lake.items()
            if key.startswith(f"rds/shop/{table}/") and key.endswith(".parquet")
            for row in _parquet_rows(body)
        ]
        for table in ("customers", "orders")
    }
    customers = {row["id"]: row["email"] for row in rows["customers"]}
    assert customers[1] == hmac.new(secret, b"ana@example.com", hashlib.sha256).hexdigest()
    assert len(customers) == 4 and all(len(email) == 64 for email in customers.values())
    assert [row["country"] for row in rows["customers"]] == ["ESP", "NLD", "JPN", "KEN"]  # the other columns as they were
    assert len(rows["orders"]) == 10  # a table without a rule: copied server-side, as before
    s3 = stack.client("s3")
    heads = {key: s3.head_object(Bucket=stack.lake_bucket, Key=key)["Metadata"] for key in landed if key.endswith(".parquet")}
    assert {key.split("/")[2] for key, meta in heads.items() if "snaplake-pii" in meta} == {"customers"}
    described = stack.client("glue").get_table(DatabaseName="shop", Name="customers")["Table"]
    assert {c["Name"]: c["Type"] for c in described["StorageDescriptor"]["Columns"]}["email"] == "string"


def test_the_stream_change_log_and_the_firehose_transform_hash_one_value_alike(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack, "orders")
    batch = sample_event("dynamodb_stream_batch.json")
    event = {"Records": [{**record, "eventSourceARN": stream_arn} for record in batch["Records"]]}
    assert stack.function("StreamFlattenFunction").invoke(event) == ({"batchItemFailures": []}, False)
    answered, errored = stack.function("FirehoseFlattenFunction").invoke(sample_event("dynamodb_firehose_batch.json"))
    assert not errored, answered

    lake = _lake(stack)
    for key, body in lake.items():
        assert b"C0001" not in body and (not key.endswith(".parquet") or "C0001" not in json.dumps(_parquet_rows(body), default=str))
    delivered = [json.loads(base64.b64decode(r["data"])) for r in answered["records"] if r["result"] == "Ok"]
    assert delivered and not any("C000" in json.dumps(record) for record in delivered)
    hashed = hmac.new(_secret(stack), b"C0001", hashlib.sha256).hexdigest()
    changes = [row for key, body in lake.items() if key.endswith(".parquet") for row in _parquet_rows(body)]
    assert {row.get("new__customer__id") for row in changes} - {None} == {hashed}
    assert delivered[0]["customer__id"] == hashed


def test_a_bad_rules_document_stops_the_functions_at_their_start_before_anything_lands() -> None:
    """The rules are read when a function's module is imported (its cold start), so a bad document fails every
    invocation of the functions that land data, before they touch the lake."""
    from snaplake.core.errors import InvalidPiiRules

    bad = json.dumps({"dynamodb": {ORDERS_TABLE: {"mask": ["customer__email"]}}})
    with EmulatedStack(default_parameters(PiiRules=bad), function_log_level="WARNING") as stack:
        seed_sample_sources(stack)
        for logical_id in (
            "PlanCopyFunction",
            "CopyBatchFunction",
            "ConvertFilesFunction",
            "StreamFlattenFunction",
            "FirehoseFlattenFunction",
        ):
            with pytest.raises(InvalidPiiRules, match="unknown action 'mask'"):
                stack.function(logical_id).module()

        execution = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))

        assert execution.status == "FAILED" and execution.error == "InvalidPiiRules", execution.cause
        assert [key for key in stack.lake_objects() if not key.startswith("_snaplake/")] == []
