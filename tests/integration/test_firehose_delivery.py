"""Records put to the Firehose delivery stream (FirehoseDeliveryStream=true) land as docs/firehose.md says: Parquet with
the Glue table's columns under the partition of their key and arrival day, bad records in the error output with
their original data, every source record in the backup. Firehose is emulated (snaplake_local.emulator.firehose);
the transform is the real FirehoseFlattenFunction and the settings are the deployed template's."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from snaplake_local.stack import EmulatedStack

GOOD = [
    {"event_id": "e1", "event_type": "order_placed", "customer": {"country": "DE"}, "user_id": "u1", "not_a_column": 1},
    {"event_id": "e2", "event_type": "order_paid", "customer": {"country": "FR"}, "User_Id": "u2"},
    {"event_id": "e3", "event_type": "order_placed", "customer": {"country": "DE"}},
]
BAD = [b"not json\n", json.dumps({"event_id": "e4", "customer": {"country": "a/b"}}).encode()]


def _read(stack: EmulatedStack, key: str) -> bytes:
    return bytes(stack.client("s3").get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read())


def test_records_land_as_parquet_by_partition_errors_and_backup_keep_the_originals(stack_factory: Callable[..., Any]) -> None:
    stack: EmulatedStack = stack_factory(FirehoseDeliveryStream="true", FirehosePartitionKeyFields="customer__country")
    sources = [json.dumps(record).encode() for record in GOOD] + BAD + [b"{}"]
    day = f"{stack.clock.now():%Y-%m-%d}"

    delivered = stack.firehose().put_record_batch(sources)

    assert sorted(key.rsplit("/", 1)[0] for key in delivered.data) == [
        f"firehose/events/partition_key=DE/dt={day}",
        f"firehose/events/partition_key=FR/dt={day}",
    ]
    rows = {key.split("/")[2]: pq.read_table(pa.BufferReader(_read(stack, key))).to_pylist() for key in delivered.data}
    assert rows == {
        "partition_key=DE": [
            {"event_id": "e1", "event_type": "order_placed", "occurred_at": None, "user_id": "u1"},
            {"event_id": "e3", "event_type": "order_placed", "occurred_at": None, "user_id": None},
        ],
        "partition_key=FR": [{"event_id": "e2", "event_type": "order_paid", "occurred_at": None, "user_id": "u2"}],
    }
    (error_key,) = delivered.errors
    assert error_key.startswith(f"_snaplake/firehose_errors/events/processing-failed/dt={day}/")
    failed = [json.loads(line) for line in _read(stack, error_key).splitlines()]
    assert [base64.b64decode(line["rawData"]) for line in failed] == BAD
    (backup_key,) = delivered.backup
    assert backup_key.startswith(f"_snaplake/firehose_backup/events/{stack.clock.now():%Y/%m/%d/%H}/")
    assert gzip.decompress(_read(stack, backup_key)) == b"".join(sources)
    lake_key = stack.environment("StreamFlattenFunction")["LAKE_KMS_KEY_ARN"]
    for key in (*delivered.data, *delivered.errors, *delivered.backup):
        assert stack.client("s3").head_object(Bucket=stack.lake_bucket, Key=key)["SSEKMSKeyId"] == lake_key
    # Queryable through the Glue table the conversion used: partition_key is injected, so a query names its values.
    sql = "SELECT partition_key, event_id, user_id FROM firehose.events WHERE partition_key IN ('DE', 'FR') ORDER BY 2"
    assert stack.athena.engine.run_sql(sql).text_rows() == [["DE", "e1", "u1"], ["FR", "e2", "u2"], ["DE", "e3", None]]


def test_a_failing_transform_sends_the_whole_batch_to_processing_failed(stack_factory: Callable[..., Any]) -> None:
    stack: EmulatedStack = stack_factory(FirehoseDeliveryStream="true", FirehosePartitionKeyFields="customer__country")
    delivery = stack.firehose()
    attempts: list[Any] = []

    def broken(event: Any) -> tuple[Any, bool]:
        attempts.append(event)
        return {"errorType": "Boom", "errorMessage": "boom"}, True

    delivery.invoke = broken
    delivered = delivery.put_record_batch([json.dumps(GOOD[0]).encode()])

    assert len(attempts) == 4  # the first invocation and NumberOfRetries (3)
    assert delivered.data == []
    (error_key,) = delivered.errors
    (line,) = [json.loads(line) for line in _read(stack, error_key).splitlines()]
    assert line["errorCode"] == "Lambda.FunctionError" and base64.b64decode(line["rawData"]) == json.dumps(GOOD[0]).encode()


def test_a_value_that_does_not_fit_its_column_goes_to_format_conversion_failed_with_the_latest_schema(
    stack_factory: Callable[..., Any],
) -> None:
    stack: EmulatedStack = stack_factory(FirehoseDeliveryStream="true", FirehosePartitionKeyFields="customer__country")
    glue = stack.client("glue")
    table = glue.get_table(DatabaseName="firehose", Name="events")["Table"]
    descriptor = {**table["StorageDescriptor"], "Columns": [*table["StorageDescriptor"]["Columns"], {"Name": "amount", "Type": "bigint"}]}
    glue.update_table(
        DatabaseName="firehose",
        TableInput={
            k: v
            for k, v in {**table, "StorageDescriptor": descriptor}.items()
            if k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")
        },
    )
    fits = {"event_id": 7, "customer": {"country": "DE"}, "amount": 12}
    unfit = {"event_id": "e8", "customer": {"country": "DE"}, "amount": "twelve"}

    delivered = stack.firehose().put_record_batch([json.dumps(fits).encode(), json.dumps(unfit).encode()])

    (data_key,) = delivered.data
    assert pq.read_table(pa.BufferReader(_read(stack, data_key))).to_pylist() == [
        {"event_id": "7", "event_type": None, "occurred_at": None, "user_id": None, "amount": 12}
    ]
    (error_key,) = delivered.errors
    assert "/format-conversion-failed/" in error_key
    (line,) = [json.loads(line) for line in _read(stack, error_key).splitlines()]
    assert json.loads(base64.b64decode(line["rawData"])) == unfit
