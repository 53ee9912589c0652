"""snaplake.catalog.conform: a change-log object's column the table cannot read is cast only when no value changes,
else moved to `<column>__<type>`; the stream change log's end-to-end cases are in
tests/integration/test_stream_type_changes.py."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest
from snaplake.catalog import IncompatibleColumnType
from snaplake.catalog.conform import conform_to_table


def conform(column: pa.Array, table_type: str) -> tuple[str, pa.DataType, list[object]]:
    conformed = conform_to_table("orders_stream_changes", pa.table({"new__price": column}), {"new__price": table_type})
    return conformed.column_names[0], conformed.schema.field(0).type, conformed.column(0).to_pylist()


def test_columns_the_table_reads_are_the_same_object() -> None:
    rows = pa.table({"new__price": pa.array([5], pa.int32()), "new__other": ["x"]})

    assert conform_to_table("t", rows, {"new__price": "bigint"}) is rows


def test_a_wider_column_the_table_can_widen_to_is_left_for_the_registration_to_widen() -> None:
    rows = pa.table({"new__price": pa.array([5], pa.int64()), "new__amount": pa.array([Decimal("1.5")], pa.decimal128(38, 1))})

    assert conform_to_table("t", rows, {"new__price": "int", "new__amount": "decimal(10,1)"}) is rows


@pytest.mark.parametrize(
    ("column", "table_type", "expected"),
    [
        (pa.array([Decimal("5"), Decimal("6.0")], pa.decimal128(38, 1)), "bigint", ("new__price", pa.int64(), [5, 6])),
        (pa.array([5, -6], pa.int64()), "decimal(38,2)", ("new__price", pa.decimal128(38, 2), [Decimal("5.00"), Decimal("-6.00")])),
        (pa.array([Decimal("1.5")], pa.decimal128(38, 1)), "decimal(38,3)", ("new__price", pa.decimal128(38, 3), [Decimal("1.500")])),
        (pa.array([Decimal("1.50")], pa.decimal128(38, 2)), "decimal(38,1)", ("new__price", pa.decimal128(38, 1), [Decimal("1.5")])),
        (pa.array([7], pa.int64()), "decimal(38,20)", ("new__price", pa.decimal128(38, 20), [Decimal("7." + "0" * 20)])),
    ],
    ids=["whole-decimal-to-bigint", "bigint-to-decimal", "scale-up", "scale-down-without-loss", "bigint-to-decimal-scale-20"],
)
def test_a_number_is_cast_when_no_value_changes(column: pa.Array, table_type: str, expected: tuple[str, pa.DataType, list[object]]) -> None:
    assert conform(column, table_type) == expected


@pytest.mark.parametrize(
    ("column", "table_type", "typed"),
    [
        (pa.array([Decimal("5.5")], pa.decimal128(38, 1)), "bigint", "new__price__decimal_38_1"),
        (pa.array([Decimal("1.25")], pa.decimal128(38, 2)), "decimal(38,1)", "new__price__decimal_38_2"),
        (pa.array([10**10], pa.int64()), "decimal(38,30)", "new__price__bigint"),  # 8 integer digits: it would overflow
        (pa.array([1.5], pa.float64()), "decimal(38,1)", "new__price__double"),  # a float is never cast to a decimal
        (pa.array(["five"]), "bigint", "new__price__string"),
        (pa.array([5], pa.int64()), "string", "new__price__bigint"),
    ],
)
def test_anything_else_moves_to_its_typed_column_unchanged(column: pa.Array, table_type: str, typed: str) -> None:
    name, kind, values = conform(column, table_type)

    assert (name, kind, values) == (typed, column.type, column.to_pylist())


def test_a_typed_column_the_table_has_with_another_type_is_cast_to_it_when_exact() -> None:
    rows = pa.table({"new__price": pa.array([Decimal("5.5")], pa.decimal128(38, 1))})
    registered = {"new__price": "bigint", "new__price__decimal_38_1": "decimal(38,2)"}

    conformed = conform_to_table("t", rows, registered)

    assert conformed.column_names == ["new__price__decimal_38_1"]
    assert conformed.schema.field(0).type == pa.decimal128(38, 2)


def test_a_typed_column_the_object_already_has_is_refused_by_name_never_overwritten() -> None:
    rows = pa.table({"new__price": ["five"], "new__price__string": ["attribute literally named so"]})

    with pytest.raises(IncompatibleColumnType, match="new__price__string"):
        conform_to_table("t", rows, {"new__price": "bigint"})


def test_two_long_columns_moving_to_the_same_type_keep_apart_and_keep_their_values() -> None:
    """Over 200 characters the typed name ends in a hash, of the column's name and the type."""
    base = "new__" + "a" * 180
    first, second = base + "__street", base + "__country"
    rows = pa.table({first: pa.array([1], pa.int64()), second: pa.array([2], pa.int64())})

    conformed = conform_to_table("t", rows, {first: "string", second: "string"})

    assert conformed.num_columns == 2 and len(set(conformed.column_names)) == 2
    assert sorted(conformed.column(i).to_pylist()[0] for i in range(2)) == [1, 2]
