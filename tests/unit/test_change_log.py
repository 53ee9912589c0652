"""DynamoDB stream batches -> change-log Parquet: keys, types, partial batch failures, retries."""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from snaplake.dynamodb.parquet import CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN, ConvertOptions
from snaplake.streams.change_log import flatten_batch
from snaplake.streams.errors import MalformedStreamRecord

from benchmarks import stream_flatten
from tests.unit.change_log_store import MemoryStore
from tests.unit.helpers import load_event

OPTIONS = ConvertOptions()


Lake = MemoryStore


def flatten(event: dict[str, Any], lake: Lake) -> dict[str, Any]:
    return flatten_batch(event, "lake", OPTIONS, lake).response()


def test_sample_batch_lands_typed_and_partitioned_by_hour() -> None:
    lake = Lake()

    assert flatten(load_event("dynamodb_stream_batch.json"), lake) == {"batchItemFailures": []}

    assert sorted(k.rsplit("/", 1)[0] for k in lake.data_keys()) == [
        "lake/dynamodb_stream_changes/orders/dt=2025-11-25/hour=07",
        "lake/dynamodb_stream_changes/orders/dt=2025-11-25/hour=08",
    ]
    rows = lake.rows()
    assert [r[CHANGE_TYPE_COLUMN] for r in rows] == ["INSERT", "MODIFY", "REMOVE", "REMOVE"]
    assert [r["is_ttl_delete"] for r in rows] == [False, False, False, True]
    modify = rows[1]
    assert modify["new__status"] == "PAID" and modify["old__status"] == "NEW"
    assert modify["new__customer__address__city"] == "Lyon"
    assert modify["key__pk"] == "ORDER#00001"
    assert str(modify["new__total"]) == "19.99"
    assert modify["new__tags"] == ["gift", "priority"]
    assert json.loads(modify["new__lines"]) == [{"qty": 2, "sku": "A-1"}]
    assert modify["sequence_number"] == "4421584500000000017450439093"
    assert modify["event_id"].startswith("c4ca4238")
    assert modify[WRITE_TIME_COLUMN].isoformat() == "2025-11-25T07:00:30+00:00"
    first = lake.table(sorted(lake.objects)[0])
    assert first.schema.field("new__total").type == pa.decimal128(38, 2)
    assert first.schema.field("key__pk").type == pa.string()
    assert first.schema.names[:5] == [CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN, "is_ttl_delete", "sequence_number", "event_id"]


def test_key_names_the_stream_a_countdown_the_partitions_first_and_last_sequence_numbers_and_a_digest() -> None:
    lake = Lake()
    flatten(load_event("dynamodb_stream_batch.json"), lake)

    first_hour = sorted(lake.objects)[0].rsplit("/", 1)[1]
    countdown = f"{10**40 - 1 - 4421584500000000017450439095:040d}"
    assert re.fullmatch(
        f"changes-[0-9a-f]{{16}}-{countdown}-4421584500000000017450439091-4421584500000000017450439095-[0-9a-f]{{12}}[.]parquet", first_hour
    )


def test_retried_batch_overwrites_the_same_objects_with_the_same_bytes() -> None:
    event = load_event("dynamodb_stream_batch.json")
    first, second = Lake(), Lake()

    flatten(event, first)
    flatten(copy.deepcopy(event), second)

    assert first.objects == second.objects
    assert len(first.objects) == 2


def test_empty_batch_writes_nothing_and_reports_nothing() -> None:
    lake = Lake()

    assert flatten({"Records": []}, lake) == {"batchItemFailures": []}
    assert lake.objects == {}


@pytest.mark.parametrize("event", [{}, None, [], "Records", {"records": []}, {"Records": None}], ids=repr)
def test_event_that_is_not_a_stream_batch_fails_the_invocation(event: Any) -> None:
    # Answering "nothing failed" would let Lambda move on; a wrong trigger or payload must show up as an error.
    lake = Lake()

    with pytest.raises(MalformedStreamRecord, match="Records"):
        flatten_batch(event, "lake", OPTIONS, lake)
    assert lake.objects == {}


def test_list_of_records_instead_of_an_event_fails_the_invocation() -> None:
    with pytest.raises(MalformedStreamRecord, match="an object with a Records list"):
        flatten_batch(_batch(2)["Records"], "lake", OPTIONS, Lake())


def test_ttl_delete_is_flagged_only_for_the_dynamodb_service_principal() -> None:
    event = load_event("dynamodb_stream_batch.json")
    user_delete = copy.deepcopy(event["Records"][3])
    user_delete["userIdentity"] = {"type": "Service", "principalId": "someone.else.amazonaws.com"}
    user_delete["dynamodb"]["SequenceNumber"] = "4421584500000000017450439999"
    event["Records"].append(user_delete)
    lake = Lake()

    flatten(event, lake)

    flags = {r["sequence_number"]: r["is_ttl_delete"] for r in lake.rows()}
    assert flags["4421584500000000017450439097"] is True
    assert flags["4421584500000000017450439999"] is False


def _batch(records: int) -> dict[str, Any]:
    return stream_flatten.stream_batch(records)


def _sequences(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]


BROKEN_UTF8 = "\udcff"  # an undecodable byte under surrogateescape, or the JSON escape \udcff


def _nested(levels: int, descriptor: str = "M") -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(levels):
        value = {"M": {"a": value}} if descriptor == "M" else {"L": [value]}
    return value


def test_poison_record_is_reported_with_every_later_record_and_earlier_neighbours_are_written() -> None:
    event = _batch(10)
    event["Records"][4]["dynamodb"]["NewImage"]["total"] = {"N": "not a number"}
    lake = Lake()

    response = flatten(event, lake)

    sequences = _sequences(event)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequences[4:]
    # Every other record is written; the reported ones already in the lake are skipped when Lambda redelivers them.
    assert sorted(r["sequence_number"] for r in lake.rows()) == sequences[:4] + sequences[5:]


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: r["dynamodb"]["NewImage"].update(total={"N": "1", "S": "1"}),
        lambda r: r["dynamodb"]["NewImage"].update(total={"X": "1"}),
        lambda r: r["dynamodb"]["NewImage"].update(tags={"SS": "not a list"}),
        lambda r: r["dynamodb"]["NewImage"].update(status={"S": 2**70}),  # pyarrow: OverflowError, not a type error
        lambda r: r["dynamodb"].update(NewImage="not an object"),
        lambda r: r.update(eventName="UPSERT"),
        lambda r: r["dynamodb"].update(ApproximateCreationDateTime="yesterday"),
        lambda r: r.update(eventSourceARN="arn:aws:kinesis:eu-west-1:123456789012:stream/x"),
        lambda r: r["dynamodb"]["NewImage"].update(status={"S": "PAID" + BROKEN_UTF8}),
        lambda r: r["dynamodb"]["NewImage"]["customer"]["M"].update({BROKEN_UTF8: {"S": "x"}}),
        lambda r: r["dynamodb"]["NewImage"].update(tags={"SS": ["gift", BROKEN_UTF8]}),
        lambda r: r.update(eventID="c4ca4238" + BROKEN_UTF8),
        lambda r: r.update(eventSourceARN=r["eventSourceARN"] + BROKEN_UTF8),
        lambda r: r["dynamodb"]["NewImage"].update(deep=_nested(33)),
    ],
    ids=[
        "two-descriptors",
        "unknown-descriptor",
        "set-not-a-list",
        "integer-beyond-int64-as-string",
        "image-not-object",
        "event-name",
        "creation-time",
        "source-arn",
        "broken-utf8-value",
        "broken-utf8-name",
        "broken-utf8-set-member",
        "broken-utf8-event-id",
        "broken-utf8-source-arn",
        "nested-too-deep",
    ],
)
def test_malformed_record_is_reported_not_raised(damage: Any) -> None:
    event = _batch(6)
    damage(event["Records"][3])
    lake = Lake()

    outcome = flatten_batch(event, "lake", OPTIONS, lake)

    assert outcome.failed == _sequences(event)[3:]
    assert list(outcome.problems) == [_sequences(event)[3]]
    assert sorted(r["sequence_number"] for r in lake.rows()) == _sequences(event)[:3] + _sequences(event)[4:]


@pytest.mark.parametrize(
    "damage",
    [
        lambda image: image.update(status={"S": "PAID" + BROKEN_UTF8}),
        lambda image: image.update({"status" + BROKEN_UTF8: {"S": "PAID"}}),
    ],
    ids=["value", "name"],
)
def test_broken_utf8_is_reported_as_not_unicode_and_the_other_changes_are_written_once(damage: Any) -> None:
    event = _batch(10)  # records 0-4 in one partition: the broken one fails the conversion of its neighbours, retried without it
    damage(event["Records"][1]["dynamodb"]["NewImage"])
    lake = Lake()

    outcome = flatten_batch(event, "lake", OPTIONS, lake)

    sequences = _sequences(event)
    assert outcome.failed == sequences[1:]
    assert list(outcome.problems) == [sequences[1]]
    assert "not valid Unicode" in outcome.problems[sequences[1]]
    assert sorted(r["sequence_number"] for r in lake.rows()) == sequences[:1] + sequences[2:]
    assert lake.puts == 2


@pytest.mark.parametrize("descriptor", ["M", "L"])
def test_image_nested_deeper_than_dynamodb_allows_is_reported_without_converting_it(descriptor: str) -> None:
    event = _batch(6)
    event["Records"][3]["dynamodb"]["NewImage"]["deep"] = _nested(5000, descriptor)
    lake = Lake()
    converted: list[int] = []
    to_arrow = pa.array

    def array_refusing_deep_lines(values: Any, *args: Any, **kwargs: Any) -> Any:
        # pyarrow's time grows with the square of the depth: converting this record took about 90 s.
        if isinstance(values, list) and values and isinstance(values[0], dict) and "Keys" in values[0]:
            assert all("deep" not in line.get("NewImage", {}) for line in values), "the deep record reached pyarrow"
            converted.append(len(values))
        return to_arrow(values, *args, **kwargs)

    with mock.patch.object(pa, "array", array_refusing_deep_lines):
        outcome = flatten_batch(event, "lake", OPTIONS, lake)

    sequences = _sequences(event)
    assert outcome.failed == sequences[3:]
    assert outcome.problems == {sequences[3]: "NewImage: maps and lists nested more than 32 levels deep"}
    assert sorted(r["sequence_number"] for r in lake.rows()) == sequences[:3] + sequences[4:]
    assert converted and sum(converted) >= 3


def test_image_nested_as_deep_as_dynamodb_allows_is_written() -> None:
    event = _batch(1)
    event["Records"][0]["dynamodb"]["NewImage"]["deep"] = _nested(32)
    lake = Lake()

    assert flatten(event, lake) == {"batchItemFailures": []}

    assert lake.rows()[0]["new__deep__a__a"] == '{"a":' * 30 + '"bottom"' + "}" * 30  # maps 3 to 32 of 32


def test_lambda_redelivery_after_a_poison_record_writes_every_good_change_exactly_once() -> None:
    """Lambda's side played out: checkpoint at the lowest reported record, bisect, retries exhausted, move on."""
    event = _batch(12)
    poison = 5
    event["Records"][poison]["dynamodb"]["OldImage"] = {"broken": {"N": "1e999999"}}
    lake = Lake()
    records = event["Records"]
    pending = [records]
    while pending:
        batch = pending.pop(0)
        failed = [f["itemIdentifier"] for f in flatten({"Records": batch}, lake)["batchItemFailures"]]
        if not failed:
            continue
        start = _sequences({"Records": batch}).index(min(failed, key=int))
        rest = batch[start:]
        if len(rest) == 1:
            continue  # retries exhausted: the failure record goes to the on-failure queue
        half = len(rest) // 2
        pending[:0] = [rest[:half], rest[half:]]

    written = [r["sequence_number"] for r in lake.rows()]
    good = [s for i, s in enumerate(_sequences(event)) if i != poison]
    assert sorted(written) == sorted(good)
    assert len(written) == len(set(written))


def test_failed_partition_write_reports_that_partition_and_later_records() -> None:
    event = _batch(10)  # 5 records in hour 06, 5 in hour 07
    lake = Lake()
    lake.fail_when = "hour=07"

    response = flatten(event, lake)

    sequences = _sequences(event)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == sequences[5:]
    assert sorted(r["sequence_number"] for r in lake.rows()) == sequences[:5]


def test_record_without_sequence_number_fails_the_whole_batch() -> None:
    event = _batch(3)
    del event["Records"][1]["dynamodb"]["SequenceNumber"]

    with pytest.raises(MalformedStreamRecord, match="positions \\[1\\]"):
        flatten_batch(event, "lake", OPTIONS, Lake())


def test_schema_changes_between_batches_give_each_object_its_own_schema() -> None:
    first = _batch(3)
    second = stream_flatten.stream_batch(3, first_sequence=5421584500000000017450439091)
    for record in second["Records"]:
        for image in ("NewImage", "OldImage"):
            if image in record["dynamodb"]:
                record["dynamodb"][image]["total"] = {"S": "free"}
                record["dynamodb"][image]["coupon"] = {"M": {"code": {"S": "X1"}}}
    lake = Lake()

    flatten(first, lake)
    flatten(second, lake)

    hour = sorted(key for key in lake.objects if "/hour=07/" in key)
    assert len(hour) == 2  # one object per batch in the same partition
    old, new = sorted((lake.table(key) for key in hour), key=lambda t: int(t.column("sequence_number")[0].as_py()))
    old, new = old.schema, new.schema
    assert old.field("new__total").type == pa.decimal128(38, 2)
    assert new.field("new__total").type == pa.string()
    assert "new__coupon__code" in new.names and "new__coupon__code" not in old.names


def test_huge_item_of_350_kb_is_written_whole() -> None:
    event = _batch(3)
    blob = "x" * (350 * 1024)
    event["Records"][0]["dynamodb"]["NewImage"]["document"] = {"S": blob}
    lake = Lake()

    assert flatten(event, lake) == {"batchItemFailures": []}

    assert lake.rows()[0]["new__document"] == blob


def test_creation_time_keeps_sub_second_precision() -> None:
    event = _batch(1)
    event["Records"][0]["dynamodb"]["ApproximateCreationDateTime"] = 1764054000.25
    lake = Lake()

    flatten(event, lake)

    assert lake.rows()[0][WRITE_TIME_COLUMN].isoformat() == "2025-11-25T07:00:00.250000+00:00"


def test_benchmark_smoke_run_prints_its_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert stream_flatten.main(["--smoke"]) == 0

    printed = capsys.readouterr().out
    figures = json.loads(printed[: printed.rindex("}") + 1])
    assert figures["records_per_batch"] == 10 and figures["records_per_second_per_core"] > 0
