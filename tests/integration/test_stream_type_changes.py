"""The stream change log when an attribute's type differs between batches (issue 16 item 8: a schema change never
blocks). Its table is projected and one hour holds many batches' objects, so each object is made to fit the table:
an exactly representable number is cast to the table's type, anything else lands in `<column>__<type>`. Before,
the batch of whole numbers then the batch with a fraction (an ordinary DynamoDB number) failed the second batch on
every retry with IncompatibleColumnType."""

from __future__ import annotations

import copy
from typing import Any

from snaplake_local.sources import sample_event
from snaplake_local.stack import EmulatedStack
from snaplake_local.streams import create_stream_table

from tests.integration.test_stream_pipeline import _from_stream, _glue_table, _rows


def test_batches_of_whole_numbers_fractions_and_text_all_land_and_read_in_one_hour(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack, "orders")
    template = _from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn)["Records"][0]
    function = stack.function("StreamFlattenFunction")

    def insert(number: int, price: dict[str, str]) -> dict[str, Any]:
        record = copy.deepcopy(template)  # one hour: the template's ApproximateCreationDateTime
        record["eventID"] = f"event-{number}"
        record["dynamodb"]["SequenceNumber"] = str(5 * 10**26 + number)
        record["dynamodb"]["NewImage"] = {"pk": {"S": f"P{number}"}, "price": price}
        return record

    prices = [{"N": "5"}, {"N": "5.5"}, {"N": "7.25"}, {"S": "five"}, {"N": "6"}, {"N": "1.125"}]
    for number, price in enumerate(prices):
        payload, errored = function.invoke({"Records": [insert(number, price)]})
        assert (payload, errored) == ({"batchItemFailures": []}, False), f"batch {number} ({price}) failed: {payload}"

    table = _glue_table(stack, "orders_stream_changes")
    assert table is not None
    types = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"] if c["Name"].startswith("new__price")}
    assert types == {
        "new__price": "bigint",
        "new__price__decimal_38_1": "decimal(38,1)",  # 5.5 does not fit bigint
        "new__price__decimal_38_2": "decimal(38,2)",  # 7.25 fits neither bigint nor decimal(38,1)
        "new__price__string": "string",
        "new__price__decimal_38_3": "decimal(38,3)",
    }
    rows = {r["event_id"]: r for r in _rows(stack, "dynamodb_stream_changes/orders/")}
    where = {
        event: next((name, str(value)) for name, value in row.items() if name.startswith("new__price") and value is not None)
        for event, row in rows.items()
    }
    assert where == {
        "event-0": ("new__price", "5"),
        "event-1": ("new__price__decimal_38_1", "5.5"),
        "event-2": ("new__price__decimal_38_2", "7.25"),
        "event-3": ("new__price__string", "five"),
        "event-4": ("new__price", "6"),
        "event-5": ("new__price__decimal_38_3", "1.125"),
    }
    ask = stack.athena.engine.run_sql
    count = ask("SELECT count(*), count(new__price), count(new__price__string) FROM dynamodb.orders_stream_changes").text_rows()
    assert count == [["6", "2", "1"]]


def test_a_number_the_table_holds_exactly_is_cast_to_the_tables_type(stack: EmulatedStack) -> None:
    stream_arn = create_stream_table(stack, "orders")
    template = _from_stream(sample_event("dynamodb_stream_batch.json"), stream_arn)["Records"][0]
    function = stack.function("StreamFlattenFunction")

    def insert(number: int, prices: list[str]) -> dict[str, Any]:
        records = []
        for offset, price in enumerate(prices):
            record = copy.deepcopy(template)
            record["eventID"] = f"event-{number}-{offset}"
            record["dynamodb"]["SequenceNumber"] = str(5 * 10**26 + 10 * number + offset)
            record["dynamodb"]["NewImage"] = {"pk": {"S": f"P{number}{offset}"}, "price": {"N": price}}
            records.append(record)
        return {"Records": records}

    for number, prices in enumerate([["1.5", "2"], ["3"], ["4.25"]]):  # decimal(38,1), then bigint, then decimal(38,2)
        assert function.invoke(insert(number, prices)) == ({"batchItemFailures": []}, False)

    table = _glue_table(stack, "orders_stream_changes")
    assert table is not None
    types = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"] if c["Name"].startswith("new__price")}
    assert types == {"new__price": "decimal(38,1)", "new__price__decimal_38_2": "decimal(38,2)"}
    values = stack.athena.engine.run_sql(
        "SELECT CAST(new__price AS varchar), CAST(new__price__decimal_38_2 AS varchar) "
        "FROM dynamodb.orders_stream_changes ORDER BY sequence_number"
    ).text_rows()
    assert values == [["1.5", None], ["2.0", None], ["3.0", None], [None, "4.25"]]  # 3 came as bigint: cast exactly
