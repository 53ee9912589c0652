"""An attribute that changes type between two windows, through the DynamoDB state machine (issue 16 item 8, the
former defect D1). Windows end on whole hours, so each dt=/hour= partition of `<table>_changes` holds the files of one
export: the change of type lands in another partition, which RegisterCatalog puts in a table version, and every
change stays queryable.

With windows ending at the latest restorable time (before), run 1 exported [00:15, 01:15) and run 2 [01:15, 02:15):
B's number and C's text both landed in hour 01, and run 2 failed at RegisterCatalog on every retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN
from snaplake_local.stack import EmulatedStack

from tests.integration.test_dynamodb_pipeline import checkpoint, full_export, run


def set_promo(stack: EmulatedStack, order: str, value: dict[str, str]) -> None:
    stack.client("dynamodb").update_item(
        TableName=ORDERS_TABLE,
        Key={"pk": {"S": order}, "sk": {"S": "HEADER"}},
        UpdateExpression="SET promo = :v",
        ExpressionAttributeValues={":v": value},
    )


def advance_to(stack: EmulatedStack, when: Any) -> None:
    assert stack.clock.now() <= when, f"the scenario needs {when}, the clock is at {stack.clock.now()}"
    stack.clock.advance((when - stack.clock.now()).total_seconds())


def registered(stack: EmulatedStack, table: str) -> list[list[str]]:
    glue = stack.client("glue")
    return sorted(p["Values"] for p in glue.get_partitions(DatabaseName="dynamodb", TableName=table)["Partitions"])


def promo_type(stack: EmulatedStack, table: str) -> str:
    columns = stack.client("glue").get_table(DatabaseName="dynamodb", Name=table)["Table"]["StorageDescriptor"]["Columns"]
    return next(c["Type"] for c in columns if c["Name"] == "new__promo")


def test_a_type_change_between_windows_lands_in_its_own_hour_and_table_version(stack: EmulatedStack) -> None:
    hour0 = stack.clock.now()  # the emulated stack starts on a whole hour
    full = full_export(stack)
    assert full.output["export"]["exportedTo"] == f"{hour0 + timedelta(minutes=15):%Y-%m-%dT%H:%M:%SZ}"
    set_promo(stack, "ORDER#00001", {"N": "5"})  # A, hour 00
    advance_to(stack, hour0 + timedelta(hours=1, minutes=5))
    set_promo(stack, "ORDER#00002", {"N": "6"})  # B, hour 01
    advance_to(stack, hour0 + timedelta(hours=1, minutes=20))
    first = run(stack, {"tableArn": ORDERS_TABLE_ARN})
    set_promo(stack, "ORDER#00004", {"S": "seven"})  # C, hour 01: the attribute is text now
    advance_to(stack, hour0 + timedelta(hours=2, minutes=20))
    second = run(stack, {"tableArn": ORDERS_TABLE_ARN})

    assert first.status == second.status == "SUCCEEDED", second.cause
    windows = [(r.output["export"]["windowFrom"], r.output["export"]["exportedTo"]) for r in (first, second)]
    assert windows == [
        (f"{hour0 + timedelta(minutes=15):%Y-%m-%dT%H:%M:%SZ}", f"{hour0 + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"),
        (f"{hour0 + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}", f"{hour0 + timedelta(hours=2):%Y-%m-%dT%H:%M:%SZ}"),
    ]
    hours = [[f"{hour0 + timedelta(hours=h):%Y-%m-%d}", f"{hour0 + timedelta(hours=h):%H}"] for h in (0, 1)]
    assert registered(stack, "shop_orders_changes") == [hours[0]]
    assert registered(stack, "shop_orders_changes__v2") == [hours[1]]
    assert (promo_type(stack, "shop_orders_changes"), promo_type(stack, "shop_orders_changes__v2")) == ("bigint", "string")
    ask = stack.athena.engine.run_sql
    assert ask("SELECT key__pk, new__promo FROM dynamodb.shop_orders_changes WHERE new__promo IS NOT NULL").text_rows() == [
        ["ORDER#00001", "5"]
    ]
    assert sorted(ask("SELECT key__pk, new__promo FROM dynamodb.shop_orders_changes__v2").text_rows()) == [
        ["ORDER#00002", "6"],
        ["ORDER#00004", '"seven"'],  # an attribute with two types in one export: JSON text (docs/dynamodb.md#types)
    ]
    exports_per_hour: dict[str, set[str]] = {}
    for key in stack.lake_objects("dynamodb_changes/shop_orders/"):
        if key.endswith(".parquet"):
            folder, name = key.rsplit("/", 1)
            exports_per_hour.setdefault(folder, set()).add(name.rsplit("-", 1)[0])
    assert len(exports_per_hour) == 2 and all(len(exports) == 1 for exports in exports_per_hour.values()), exports_per_hour
    assert checkpoint(stack)["exportedTo"] == windows[1][1]  # type: ignore[index]
    # _current reads each window from the version that registered it, and gives the text a column of its own
    current = (
        "SELECT pk, promo, promo__string FROM dynamodb.shop_orders_current "
        "WHERE coalesce(promo__string, CAST(promo AS varchar)) IS NOT NULL"
    )
    assert sorted(ask(current).text_rows()) == [["ORDER#00001", "5", None], ["ORDER#00002", None, "6"], ["ORDER#00004", None, '"seven"']]


def test_a_full_export_whose_types_changed_merges_from_its_version_and_empties_nothing(stack: EmulatedStack) -> None:
    """A full export registered in `<table>__v2` (quantity is text in one item): MergeCurrent used to read the base table,
    find no partition of this export there, and delete every item of `_current`."""
    full_export(stack)
    stack.client("dynamodb").update_item(
        TableName=ORDERS_TABLE,
        Key={"pk": {"S": "ORDER#00001"}, "sk": {"S": "HEADER"}},
        UpdateExpression="SET quantity = :v",
        ExpressionAttributeValues={":v": {"S": "two"}},
    )
    stack.clock.advance(3600)

    again = run(stack, {"tableArn": ORDERS_TABLE_ARN, "mode": "full"})

    assert again.status == "SUCCEEDED", again.cause
    assert len(registered(stack, "shop_orders__v2")) == 1
    ask = stack.athena.engine.run_sql
    total = ask("SELECT count(*) FROM dynamodb.shop_orders").text_rows()[0][0]
    assert ask("SELECT count(*) FROM dynamodb.shop_orders_current").text_rows() == [[total]]
    items = ask("SELECT count(quantity), count(quantity__string) FROM dynamodb.shop_orders_current").text_rows()
    assert items == [["0", total]]
    assert ask("SELECT quantity__string FROM dynamodb.shop_orders_current WHERE pk = 'ORDER#00001'").text_rows() == [['"two"']]
