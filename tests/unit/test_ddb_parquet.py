"""DynamoDB-JSON export data files -> Parquet (snaplake.ddb_parquet): type rules, names, blocks, incremental lines."""

from __future__ import annotations

import base64
import gc
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.dynamodb.attribute_values import (
    attribute_json,
    canonical_number,
    check_attribute_value,
    check_attributes,
    deserialize,
    nested_too_deep,
    number_digits,
)
from snaplake.dynamodb.errors import (
    AttributeNotInSchema,
    IncompatibleSchemas,
    InvalidAttributeValue,
    MalformedExportLine,
    UnexpectedWriteTime,
)
from snaplake.dynamodb.parquet import (
    ConvertOptions,
    ExportKind,
    ExportSchema,
    convert_block,
    convert_file,
    convert_lines,
    iter_blocks,
    scan_file,
)
from snaplake.dynamodb.parquet import reading as ddb_parquet

DEFAULT = ConvertOptions()


def lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def full(*items: dict[str, Any]) -> bytes:
    return lines(*({"Item": item} for item in items))


def read_parquet(data: bytes) -> pa.Table:
    # pa.BufferReader, not io.BytesIO: pyarrow 26 may abort at interpreter exit after
    # reading Parquet from a Python file object.
    return pq.read_table(pa.BufferReader(data))


def convert(data: bytes, kind: ExportKind = "full", options: ConvertOptions = DEFAULT) -> pa.Table:
    """Scan then convert one data file, checking the row counts agree; the Parquet file read back."""
    schema, scanned = scan_file(io.BytesIO(data), kind, options)
    sink = io.BytesIO()
    written = convert_file(io.BytesIO(data), schema, kind, options, sink)
    table = read_parquet(sink.getvalue())
    assert scanned == written == table.num_rows
    assert table.schema == schema.arrow_schema(kind, options)
    return table


def column(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist()


def types(table: pa.Table) -> dict[str, pa.DataType]:
    return {field.name: field.type for field in table.schema}


# --------------------------------------------------------------------------- scalar types


def test_strings_become_string_columns() -> None:
    table = convert(full({"name": {"S": "Ada"}}, {"name": {"S": ""}}))
    assert types(table) == {"name": pa.string()}
    assert column(table, "name") == ["Ada", ""]


def test_strings_that_look_like_timestamps_stay_exact_text() -> None:
    # More than one JSON reader chunk (1 MB) of ISO-8601 strings, then other strings: pyarrow
    # would infer timestamp[s] for the first chunk.
    items = [{"at": {"S": "2024-05-01"}, "pad": {"S": "x" * 200}} for _ in range(6000)]
    items += [{"at": {"S": "2024-05-01T10:00:00.123456+02:00"}}, {"at": {"S": "not a date"}}]
    table = convert(full(*items))
    assert types(table)["at"] == pa.string()
    assert column(table, "at")[0] == "2024-05-01"
    assert column(table, "at")[-2:] == ["2024-05-01T10:00:00.123456+02:00", "not a date"]


def test_an_attribute_first_seen_deep_into_a_large_block_is_read_exactly() -> None:
    # Names are learnt from the block's first 256 KB; "when" comes later, as ISO dates over several
    # 1 MB reader chunks, then as other text: the reader's per-chunk inference disagrees with itself.
    filler: list[dict[str, Any]] = [{"pad": {"S": "x" * 200}} for _ in range(1500)]
    dated: list[dict[str, Any]] = [{"when": {"S": "2024-05-01"}, "pad": {"S": "y" * 200}} for _ in range(6000)]
    table = convert(full(*filler, *dated, {"when": {"S": "soon"}}))
    assert types(table)["when"] == pa.string()
    assert column(table, "when")[1499:1501] == [None, "2024-05-01"]
    assert column(table, "when")[-1] == "soon"


def test_bools_become_bool_columns() -> None:
    table = convert(full({"ok": {"BOOL": True}}, {"ok": {"BOOL": False}}))
    assert types(table) == {"ok": pa.bool_()}
    assert column(table, "ok") == [True, False]


def test_an_attribute_that_is_only_ever_null_becomes_an_all_null_string_column() -> None:
    table = convert(full({"k": {"S": "a"}, "gone": {"NULL": True}}, {"k": {"S": "b"}}))
    assert types(table)["gone"] == pa.string()
    assert column(table, "gone") == [None, None]


def test_null_values_are_nulls_in_a_typed_column() -> None:
    table = convert(full({"qty": {"N": "3"}}, {"qty": {"NULL": True}}, {"qty": {"N": "4"}}))
    assert types(table) == {"qty": pa.int64()}
    assert column(table, "qty") == [3, None, 4]


def test_binary_values_are_base64_decoded() -> None:
    raw = bytes(range(256))
    table = convert(full({"blob": {"B": base64.b64encode(raw).decode()}}, {"blob": {"B": ""}}))
    assert types(table) == {"blob": pa.binary()}
    assert column(table, "blob") == [raw, b""]


def test_bad_base64_is_rejected_naming_the_line() -> None:
    with pytest.raises(MalformedExportLine, match=r"line 2: Item\.blob: 'not base64!' is not base64"):
        convert(full({"blob": {"B": "aGk="}}, {"blob": {"B": "not base64!"}}))


def test_missing_attributes_are_null() -> None:
    table = convert(full({"a": {"S": "x"}, "b": {"N": "1"}}, {"a": {"S": "y"}}, {"b": {"N": "2"}}))
    assert column(table, "a") == ["x", "y", None]
    assert column(table, "b") == [1, None, 2]


# --------------------------------------------------------------------------- numbers


def test_integral_numbers_within_int64_become_int64() -> None:
    values = ["0", "-1", "42", "9223372036854775807", "-9223372036854775808"]
    table = convert(full(*({"n": {"N": value}} for value in values)))
    assert types(table) == {"n": pa.int64()}
    assert column(table, "n") == [int(value) for value in values]


def test_integers_written_with_leading_zeros_or_a_minus_zero_are_typed_and_quoted_by_their_plain_form() -> None:
    # pyarrow's int64 cast takes these (and "0x10") as they are; the plain JSON form is what counts.
    table = convert(full({"n": {"N": "007"}, "l": {"L": [{"N": "007"}, {"N": "-0"}]}}, {"n": {"N": "-0"}}))
    assert types(table) == {"l": pa.string(), "n": pa.int64()}
    assert column(table, "n") == [7, 0]
    assert column(table, "l") == ["[7,-0]", None]


def test_a_hexadecimal_number_is_refused_not_read_as_an_integer() -> None:
    with pytest.raises((MalformedExportLine, InvalidAttributeValue), match="0x10"):
        convert(full({"n": {"N": "1"}}, {"n": {"N": "0x10"}}))


def test_one_integer_beyond_int64_makes_the_column_decimal() -> None:
    table = convert(full({"n": {"N": "1"}}, {"n": {"N": "9223372036854775808"}}))
    assert types(table) == {"n": pa.decimal128(38, 0)}
    assert column(table, "n") == [Decimal(1), Decimal("9223372036854775808")]


def test_non_integral_numbers_become_decimal_with_the_largest_scale() -> None:
    table = convert(full({"n": {"N": "12.5"}}, {"n": {"N": "-0.001"}}, {"n": {"N": "7"}}))
    assert types(table) == {"n": pa.decimal128(38, 3)}
    assert column(table, "n") == [Decimal("12.5"), Decimal("-0.001"), Decimal(7)]


def test_a_38_digit_number_survives_to_the_last_digit() -> None:
    digits = "12345678901234567890123456789012345678"
    table = convert(full({"big": {"N": digits}, "frac": {"N": "1." + digits[:37]}}, {"big": {"N": "-" + digits}}))
    assert types(table)["big"] == pa.decimal128(38, 0)
    assert column(table, "big") == [Decimal(digits), Decimal("-" + digits)]
    assert types(table)["frac"] == pa.decimal128(38, 37)
    assert column(table, "frac") == [Decimal("1." + digits[:37]), None]


def test_numbers_too_wide_for_decimal38_become_their_exact_text() -> None:
    # 38 integer digits in one item and a scale of 1 in another need 39 digits.
    wide = "9" * 38
    table = convert(full({"n": {"N": wide}}, {"n": {"N": "0.5"}}, {"n": {"N": "1E-130"}}))
    assert types(table) == {"n": pa.string()}
    assert column(table, "n") == [wide, "0.5", "1E-130"]


def test_numbers_written_with_exponents_are_read_exactly() -> None:
    table = convert(full({"i": {"N": "1E+2"}, "d": {"N": "1.25E-1"}}, {"i": {"N": "-7"}, "d": {"N": "3"}}))
    assert types(table) == {"d": pa.decimal128(38, 3), "i": pa.int64()}
    assert column(table, "i") == [100, -7]
    assert column(table, "d") == [Decimal("0.125"), Decimal(3)]


def test_float_numbers_option_gives_float64_for_non_integral_numbers() -> None:
    options = ConvertOptions(float_numbers=True)
    table = convert(full({"f": {"N": "1.5"}, "i": {"N": "2"}}), options=options)
    assert types(table) == {"f": pa.float64(), "i": pa.int64()}
    assert column(table, "f") == [1.5]


def test_invalid_numbers_are_rejected_naming_the_line() -> None:
    with pytest.raises(MalformedExportLine, match=r"line 1: Item\.n: '12abc' is not a DynamoDB number"):
        convert(full({"n": {"N": "12abc"}}))


# --------------------------------------------------------------------------- sets and lists


def test_string_sets_become_string_lists() -> None:
    table = convert(full({"tags": {"SS": ["b", "a"]}}, {}))
    assert types(table) == {"tags": pa.list_(pa.string())}
    assert column(table, "tags") == [["b", "a"], None]


def test_number_sets_follow_the_number_rule() -> None:
    table = convert(full({"ints": {"NS": ["1", "-2"]}, "decs": {"NS": ["1", "2.25"]}}, {"ints": {"NS": ["9223372036854775807"]}}))
    assert types(table) == {"decs": pa.list_(pa.decimal128(38, 2)), "ints": pa.list_(pa.int64())}
    assert column(table, "ints") == [[1, -2], [9223372036854775807]]
    assert column(table, "decs") == [[Decimal(1), Decimal("2.25")], None]


def test_binary_sets_become_binary_lists() -> None:
    table = convert(full({"bs": {"BS": [base64.b64encode(b"\x00\xff").decode(), "aGk="]}}))
    assert types(table) == {"bs": pa.list_(pa.binary())}
    assert column(table, "bs") == [[b"\x00\xff", b"hi"]]


def test_lists_become_json_text() -> None:
    value = {
        "L": [
            {"S": 'say "hi"\n'},
            {"N": "12345678901234567890123456789012345678"},
            {"N": "-0.50"},
            {"BOOL": False},
            {"NULL": True},
            {"B": "aGk="},
            {"SS": ["z", "a"]},
            {"NS": ["10", "9", "-1.5"]},
            {"BS": ["Ag==", "AQ=="]},
            {"L": []},
            {"M": {"b": {"N": "1"}, "a": {"L": [{"S": "x"}]}}},
            {"M": {}},
        ]
    }
    table = convert(full({"list": value}, {"list": {"L": []}}))
    assert types(table) == {"list": pa.string()}
    text, empty = column(table, "list")
    assert text == (
        '["say \\"hi\\"\\n",12345678901234567890123456789012345678,-0.50,false,null,"aGk=",["a","z"],[-1.5,9,10],'
        '["AQ==","Ag=="],[],{"a":["x"],"b":1},{}]'
    )
    assert text == attribute_json(value)
    assert empty == "[]"
    assert json.loads(text, parse_float=Decimal)[1] == 12345678901234567890123456789012345678


def test_json_text_escapes_strings_as_json_dumps_does() -> None:
    tricky = 'tab\t nl\n cr\r bs\\ q" nul\x00 bell\x07 esc\x1b del\x7f é 😀 \u2028'
    value = {"L": [{"S": tricky}, {"M": {tricky: {"S": tricky}}}]}
    table = convert(full({"l": value}))
    (text,) = column(table, "l")
    assert text == attribute_json(value)
    assert (
        text
        == "["
        + json.dumps(tricky, ensure_ascii=False)
        + ",{"
        + json.dumps(tricky, ensure_ascii=False)
        + ":"
        + json.dumps(tricky, ensure_ascii=False)
        + "}]"
    )
    assert json.loads(text) == [tricky, {tricky: tricky}]


# --------------------------------------------------------------------------- maps


def test_maps_are_flattened_into_separator_joined_columns() -> None:
    item = {"address": {"M": {"city": {"S": "Berlin"}, "geo": {"M": {"lat": {"N": "52.52"}}}}}}
    table = convert(full(item))
    assert types(table) == {"address__city": pa.string(), "address__geo__lat": pa.decimal128(38, 2)}
    assert column(table, "address__geo__lat") == [Decimal("52.52")]
    dotted = convert(full(item), options=ConvertOptions(separator="_x_"))
    assert dotted.column_names == ["address_x_city", "address_x_geo_x_lat"]


def test_map_children_that_differ_between_items_give_the_union_of_columns() -> None:
    table = convert(full({"m": {"M": {"a": {"S": "x"}}}}, {"m": {"M": {"b": {"N": "1"}}}}, {"m": {"NULL": True}}, {}))
    assert column(table, "m__a") == ["x", None, None, None]
    assert column(table, "m__b") == [None, 1, None, None]


def test_maps_deeper_than_max_depth_become_json_text_at_the_cut() -> None:
    item = {"a": {"M": {"b": {"M": {"c": {"M": {"d": {"N": "1"}, "e": {"SS": ["y", "x"]}}}, "f": {"S": "g"}}}}}}
    table = convert(full(item))
    assert types(table) == {"a__b__c": pa.string(), "a__b__f": pa.string()}
    assert column(table, "a__b__c") == ['{"d":1,"e":["x","y"]}']
    shallow = convert(full(item), options=ConvertOptions(max_depth=1))
    assert column(shallow, "a") == ['{"b":{"c":{"d":1,"e":["x","y"]},"f":"g"}}']


def test_a_map_never_seen_with_children_becomes_json_text() -> None:
    table = convert(full({"m": {"M": {}}}, {}))
    assert types(table) == {"m": pa.string()}
    assert column(table, "m") == ["{}", None]


# --------------------------------------------------------------------------- mixed types


def test_an_attribute_with_different_types_becomes_json_text_of_each_value() -> None:
    items: list[dict[str, Any]] = [
        {"v": {"S": "12"}},
        {"v": {"N": "12"}},
        {"v": {"BOOL": True}},
        {"v": {"NULL": True}},
        {"v": {"L": [{"N": "1"}]}},
        {"v": {"B": "aGk="}},
        {"v": {"SS": ["b", "a"]}},
        {},
    ]
    table = convert(full(*items))
    assert types(table) == {"v": pa.string()}
    assert column(table, "v") == ['"12"', "12", "true", None, "[1]", '"aGk="', '["a","b"]', None]


def test_a_map_and_another_type_at_one_path_make_one_json_column_without_flattening() -> None:
    table = convert(full({"addr": {"M": {"city": {"S": "Lisbon"}}}}, {"addr": {"S": "unknown"}}))
    assert types(table) == {"addr": pa.string()}
    assert column(table, "addr") == ['{"city":"Lisbon"}', '"unknown"']


def test_mixed_types_inside_a_map_only_affect_that_path() -> None:
    table = convert(full({"a": {"M": {"zip": {"S": "01099"}, "city": {"S": "Dresden"}}}}, {"a": {"M": {"zip": {"N": "1099"}}}}))
    assert types(table) == {"a__city": pa.string(), "a__zip": pa.string()}
    assert column(table, "a__zip") == ['"01099"', "1099"]


# --------------------------------------------------------------------------- names


def test_column_names_are_athena_safe() -> None:
    table = convert(full({"Order Total": {"N": "1"}, "Display-Name": {"S": "x"}, "date": {"S": "d"}, "Ünïcode key!": {"S": "u"}}))
    assert table.column_names == ["date", "display_name", "n_code_key", "order_total"]


def test_colliding_names_go_to_the_sorted_first_source_path_then_get_suffixes() -> None:
    items = [{"order total": {"N": "1"}}, {"Order-Total": {"N": "2"}}, {"ORDER_TOTAL": {"N": "3"}}]
    expected = {"ORDER_TOTAL": "order_total", "Order-Total": "order_total_2", "order total": "order_total_3"}
    for ordering in (items, items[::-1]):
        data = full(*ordering)
        schema, _ = scan_file(io.BytesIO(data), "full", DEFAULT)
        assert schema.column_names("full", DEFAULT) == expected
    table = convert(full(*items))
    assert column(table, "order_total") == [None, None, 3]
    assert column(table, "order_total_3") == [1, None, None]


def test_collision_suffixes_skip_names_already_taken() -> None:
    table = convert(full({"a b": {"S": "1"}, "a-b": {"S": "2"}, "a_b_2": {"S": "3"}}))
    schema, _ = scan_file(io.BytesIO(full({"a b": {"S": "1"}, "a-b": {"S": "2"}, "a_b_2": {"S": "3"}})), "full", DEFAULT)
    assert schema.column_names("full", DEFAULT) == {"a b": "a_b", "a-b": "a_b_3", "a_b_2": "a_b_2"}
    assert table.column_names == ["a_b", "a_b_2", "a_b_3"]


def test_flattened_paths_that_collide_with_attributes_are_resolved_too() -> None:
    data = full({"a": {"M": {"b": {"S": "nested"}}}, "a__b": {"S": "flat"}})
    schema, _ = scan_file(io.BytesIO(data), "full", DEFAULT)
    assert schema.column_names("full", DEFAULT) == {"a.b": "a__b", "a__b": "a__b_2"}


def test_columns_are_sorted_by_name() -> None:
    table = convert(full({"zeta": {"S": "z"}, "Alpha": {"S": "a"}, "mid": {"M": {"b": {"S": "b"}, "a": {"S": "a"}}}}))
    assert table.column_names == ["alpha", "mid__a", "mid__b", "zeta"]


# --------------------------------------------------------------------------- files and blocks


def test_an_empty_file_gives_zero_rows_and_a_valid_parquet_file(tmp_path: Path) -> None:
    schema, rows = scan_file(io.BytesIO(b""), "full", DEFAULT)
    assert rows == 0
    target = tmp_path / "empty.parquet"
    assert convert_file(io.BytesIO(b""), schema, "full", DEFAULT, str(target)) == 0
    assert pq.read_table(str(target)).num_rows == 0


def test_an_empty_file_still_gets_the_export_schema() -> None:
    merged = scan_file(io.BytesIO(full({"a": {"N": "1"}})), "full", DEFAULT)[0]
    merged = merged.merge(scan_file(io.BytesIO(b""), "full", DEFAULT)[0])
    sink = io.BytesIO()
    assert convert_file(io.BytesIO(b""), merged, "full", DEFAULT, sink) == 0
    assert read_parquet(sink.getvalue()).schema == pa.schema([("a", pa.int64())])


def test_the_last_line_without_a_newline_is_read() -> None:
    data = full({"a": {"S": "1"}}, {"a": {"S": "2"}}).rstrip(b"\n")
    assert column(convert(data), "a") == ["1", "2"]
    assert column(convert(data, options=ConvertOptions(block_bytes=7)), "a") == ["1", "2"]


def test_a_line_longer_than_the_readers_chunks_is_read() -> None:
    big = "x" * (3 * 1024**2)
    table = convert(full({"a": {"S": "short"}}, {"a": {"S": big}}, {"a": {"L": [{"S": big}]}}))
    assert column(table, "a")[:2] == ['"short"', json.dumps(big)]
    assert column(table, "a")[2] == "[" + json.dumps(big) + "]"


def test_blank_lines_are_not_rows() -> None:
    data = b"\n" + full({"a": {"S": "1"}}) + b"\n\n" + full({"a": {"S": "2"}}) + b"\n"
    assert column(convert(data), "a") == ["1", "2"]


def test_a_file_bigger_than_a_block_whose_later_blocks_add_attributes_and_map_children() -> None:
    items: list[dict[str, Any]] = [{"id": {"N": str(i)}, "at": {"S": "2024-01-01"}, "m": {"M": {"a": {"S": "x"}}}} for i in range(50)]
    items.append({"id": {"N": "50"}, "late": {"S": "new"}, "m": {"M": {"b": {"N": "0.5"}}}, "at": {"S": "noon"}})
    items.append({"id": {"N": "51"}, "deep": {"M": {"x": {"M": {"y": {"BOOL": True}}}}}, "id2": {"N": "1.5"}})
    items.append({"id": {"N": "52"}, "l": {"L": [{"S": "2024-01-01"}]}})
    options = ConvertOptions(block_bytes=200)
    data = full(*items)
    assert len(list(iter_blocks(io.BytesIO(data), options.block_bytes))) > 20
    table = convert(data, options=options)
    assert table.num_rows == 53
    assert types(table) == {
        "at": pa.string(),
        "deep__x__y": pa.bool_(),
        "id": pa.int64(),
        "id2": pa.decimal128(38, 1),
        "l": pa.string(),
        "late": pa.string(),
        "m__a": pa.string(),
        "m__b": pa.decimal128(38, 1),
    }
    assert column(table, "id") == list(range(53))
    assert column(table, "at")[49:] == ["2024-01-01", "noon", None, None]
    assert column(table, "late")[49:] == [None, "new", None, None]
    assert column(table, "m__b")[49:] == [None, Decimal("0.5"), None, None]
    assert column(table, "deep__x__y")[51] is True
    assert column(table, "l")[52] == '["2024-01-01"]'


def test_each_block_becomes_a_row_group() -> None:
    data = full(*({"n": {"N": str(i)}} for i in range(30)))
    options = ConvertOptions(block_bytes=100)
    blocks = list(iter_blocks(io.BytesIO(data), options.block_bytes))
    schema, _ = scan_file(io.BytesIO(data), "full", options)
    sink = io.BytesIO()
    assert convert_file(io.BytesIO(data), schema, "full", options, sink) == 30
    assert pq.ParquetFile(pa.BufferReader(sink.getvalue())).num_row_groups == len(blocks) > 1


def test_convert_block_returns_exactly_the_arrow_schema() -> None:
    data = full({"a": {"N": "1"}, "b": {"M": {"c": {"S": "x"}}}}, {"a": {"N": "2.5"}})
    schema, _ = scan_file(io.BytesIO(data), "full", DEFAULT)
    first_line_only = data.split(b"\n")[0] + b"\n"
    table = convert_block(first_line_only, schema, "full", DEFAULT)
    assert table.schema == schema.arrow_schema("full", DEFAULT)
    assert table.column("a").to_pylist() == [Decimal("1.0")]
    assert convert_block(b"\n", schema, "full", DEFAULT).schema == schema.arrow_schema("full", DEFAULT)


@pytest.mark.parametrize("block_bytes", [1, 2, 5, 16, 1000])
def test_iter_blocks_never_splits_a_line(block_bytes: int) -> None:
    data = b'{"a":1}\n\n{"bb":22}\n{"ccc":333}'
    blocks = list(iter_blocks(io.BytesIO(data), block_bytes))
    assert b"".join(blocks) == data
    assert all(block.endswith(b"\n") for block in blocks[:-1])
    for block in blocks:
        for line in block.split(b"\n"):
            assert line in (b"", b'{"a":1}', b'{"bb":22}', b'{"ccc":333}')


def test_iter_blocks_of_an_empty_stream_yields_nothing() -> None:
    assert list(iter_blocks(io.BytesIO(b""), 10)) == []


def test_iter_blocks_raises_the_streams_errors() -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise OSError("connection reset")
            return b'{"a":1}\n'

    blocks = iter_blocks(Broken(), 4)
    assert next(blocks) == b'{"a":1}\n'
    with pytest.raises(OSError, match="connection reset"):
        next(blocks)


def test_a_failed_conversion_leaves_no_parquet_file_behind(tmp_path: Path) -> None:
    good = full(*({"n": {"N": str(i)}} for i in range(20)))
    schema, _ = scan_file(io.BytesIO(good), "full", ConvertOptions(block_bytes=50))
    changed = good + full({"n": {"N": "1.5"}})
    target = tmp_path / "out.parquet"
    with pytest.raises(AttributeNotInSchema):
        convert_file(io.BytesIO(changed), schema, "full", ConvertOptions(block_bytes=50), target)
    assert not target.exists()
    sink = io.BytesIO()
    with pytest.raises(AttributeNotInSchema):
        convert_file(io.BytesIO(changed), schema, "full", ConvertOptions(block_bytes=50), sink)
    gc.collect()  # pyarrow's writers write the footer when collected: it must not reach the sink
    assert sink.getvalue().startswith(b"PAR1")  # row groups before the bad line were written ...
    assert not sink.getvalue().endswith(b"PAR1")  # ... but no footer


# --------------------------------------------------------------------------- errors


def test_a_block_the_reader_cannot_split_into_chunks_is_read_in_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    read = ddb_parquet._read
    failures = []

    def flaky(data: bytes, schema: pa.Schema | None, unexpected: str, single_chunk: bool = False) -> pa.Table:
        if unexpected == "infer" and not single_chunk and schema is not None:
            failures.append(len(data))
            raise pa.ArrowNotImplementedError("JSON conversion to struct<S: timestamp[s]> is not supported")
        return read(data, schema, unexpected, single_chunk)

    monkeypatch.setattr(ddb_parquet, "_read", flaky)
    table = convert(full({"a": {"S": "2024-01-01"}}, {"a": {"S": "x"}, "b": {"N": "1"}}))
    assert failures
    assert column(table, "a") == ["2024-01-01", "x"]
    assert column(table, "b") == [None, 1]


def test_data_the_schema_does_not_describe_is_rejected_naming_the_line() -> None:
    schema, _ = scan_file(io.BytesIO(full({"a": {"S": "x"}, "m": {"M": {"a": {"S": "x"}}}})), "full", DEFAULT)
    with pytest.raises(AttributeNotInSchema, match=r"line 2: Item\.m\.b is not in the export schema"):
        convert_block(full({"a": {"S": "y"}}, {"m": {"M": {"b": {"S": "z"}}}}), schema, "full", DEFAULT)
    with pytest.raises(AttributeNotInSchema, match=r"line 1: Item\.a \(N\) is not in the export schema"):
        convert_block(full({"a": {"N": "1"}}), schema, "full", DEFAULT)


def test_a_line_that_is_not_json_is_rejected_naming_the_line() -> None:
    data = full({"a": {"S": "x"}}, {"a": {"S": "y"}}) + b'{"Item": {"a": \n'
    with pytest.raises(MalformedExportLine, match="line 3: not JSON"):
        scan_file(io.BytesIO(data), "full", DEFAULT)


def test_a_full_export_line_without_item_is_rejected() -> None:
    with pytest.raises(MalformedExportLine, match="line 2: unexpected field 'Keys'"):
        scan_file(io.BytesIO(full({"a": {"S": "x"}}) + lines({"Keys": {}})), "full", DEFAULT)
    with pytest.raises(MalformedExportLine, match="line 1: no Item"):
        scan_file(io.BytesIO(b"{}\n"), "full", DEFAULT)


def test_unknown_type_descriptors_are_rejected() -> None:
    with pytest.raises(MalformedExportLine, match=r"line 1: Item\.a: unknown type descriptor 'X'"):
        scan_file(io.BytesIO(full({"a": {"X": "1"}})), "full", DEFAULT)


def test_an_attribute_value_with_two_descriptors_is_rejected() -> None:
    with pytest.raises(MalformedExportLine, match=r"line 1: Item\.a: an AttributeValue has exactly one type descriptor"):
        scan_file(io.BytesIO(full({"a": {"S": "1", "N": "1"}})), "full", DEFAULT)


def test_a_descriptor_holding_the_wrong_json_type_is_rejected() -> None:
    with pytest.raises(MalformedExportLine, match=r"line 2: Item\.a: S must hold a string"):
        scan_file(io.BytesIO(full({"a": {"S": "1"}}, {"a": {"S": 5}})), "full", DEFAULT)


# --------------------------------------------------------------------------- schema


def test_the_schema_round_trips_through_json() -> None:
    schema, _ = scan_file(
        io.BytesIO(full({"a": {"N": "1.5"}, "m": {"M": {"b": {"SS": ["x"]}}}, "l": {"L": [{"S": "x"}]}})), "full", DEFAULT
    )
    stored = json.loads(json.dumps(schema.to_json()))
    restored = ExportSchema.from_json(stored)
    assert restored == schema
    assert restored.arrow_schema("full", DEFAULT) == schema.arrow_schema("full", DEFAULT)


def test_schemas_merge_so_every_file_of_an_export_gets_the_same_columns() -> None:
    first = full({"n": {"N": "1"}, "only_first": {"S": "x"}})
    second = full({"n": {"N": "2.25"}, "m": {"M": {"c": {"BOOL": True}}}})
    a, _ = scan_file(io.BytesIO(first), "full", DEFAULT)
    b, _ = scan_file(io.BytesIO(second), "full", DEFAULT)
    merged = ExportSchema().merge(a).merge(b)
    assert merged == b.merge(a)
    sink = io.BytesIO()
    convert_file(io.BytesIO(first), merged, "full", DEFAULT, sink)
    table = read_parquet(sink.getvalue())
    assert types(table) == {"m__c": pa.bool_(), "n": pa.decimal128(38, 2), "only_first": pa.string()}
    assert table.to_pylist() == [{"m__c": None, "n": Decimal("1.00"), "only_first": "x"}]
    assert a.arrow_schema("full", DEFAULT) == pa.schema([("n", pa.int64()), ("only_first", pa.string())])  # merge changed neither


def test_schemas_of_different_kinds_or_depths_do_not_merge() -> None:
    full_schema, _ = scan_file(io.BytesIO(b""), "full", DEFAULT)
    incremental, _ = scan_file(io.BytesIO(b""), "incremental", DEFAULT)
    shallow, _ = scan_file(io.BytesIO(b""), "full", ConvertOptions(max_depth=2))
    with pytest.raises(IncompatibleSchemas):
        full_schema.merge(incremental)
    with pytest.raises(IncompatibleSchemas):
        full_schema.merge(shallow)
    with pytest.raises(IncompatibleSchemas):
        full_schema.arrow_schema("full", ConvertOptions(max_depth=2))


# --------------------------------------------------------------------------- incremental exports


def test_incremental_lines_give_change_type_write_time_and_key_new_old_columns() -> None:
    data = lines(
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1695075601123456"}},
            "Keys": {"pk": {"S": "c#1"}},
            "NewImage": {"pk": {"S": "c#1"}, "qty": {"N": "3"}},
        },
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1695075902000000"}},
            "Keys": {"pk": {"S": "c#1"}},
            "NewImage": {"pk": {"S": "c#1"}, "qty": {"N": "4"}},
            "OldImage": {"pk": {"S": "c#1"}, "qty": {"N": "3"}},
        },
        {
            "Metadata": {"WriteTimestampMicros": {"N": "1695076203000000"}},
            "Keys": {"pk": {"S": "c#2"}},
            "OldImage": {"pk": {"S": "c#2"}, "qty": {"N": "9.5"}},
        },
    )
    table = convert(data, kind="incremental")
    assert table.column_names == ["change_type", "write_time", "key__pk", "new__pk", "new__qty", "old__pk", "old__qty"]
    assert types(table)["write_time"] == pa.timestamp("us", tz="UTC")
    assert types(table)["new__qty"] == pa.int64()
    assert types(table)["old__qty"] == pa.decimal128(38, 1)
    assert column(table, "change_type") == ["INSERT", "MODIFY", "REMOVE"]
    assert [t.isoformat() for t in column(table, "write_time")] == [
        "2023-09-18T22:20:01.123456+00:00",
        "2023-09-18T22:25:02+00:00",
        "2023-09-18T22:30:03+00:00",
    ]
    assert column(table, "key__pk") == ["c#1", "c#1", "c#2"]
    assert column(table, "new__qty") == [3, 4, None]
    assert column(table, "old__qty") == [None, Decimal(3), Decimal("9.5")]


_DECODED_LINES: list[dict[str, Any]] = [
    {
        "Metadata": {"WriteTimestampMicros": {"N": "1695075601123456"}},
        "Keys": {"pk": {"S": "c#1"}},
        "NewImage": {
            "pk": {"S": "c#1"},
            "qty": {"N": "3"},
            "when": {"S": "2024-05-01T10:00:00Z"},
            "tags": {"SS": ["a", "b"]},
            "blob": {"B": "AAE="},
            "lines": {"L": []},
            "m": {"M": {"x": {"BOOL": True}, "deep": {"M": {"y": {"NULL": True}}}}},
        },
    },
    {
        "Metadata": {"WriteTimestampMicros": {"N": "1695075902000000"}},
        "Keys": {"pk": {"S": "c#1"}},
        "NewImage": {"pk": {"S": "c#1"}, "qty": {"N": "4.25"}, "lines": {"L": [{"S": "x"}, {"N": "1"}]}, "m": {"M": {}}},
        "OldImage": {"pk": {"S": "c#1"}, "qty": {"N": "3"}},
    },
    {"Metadata": {"WriteTimestampMicros": {"N": "1695076203000000"}}, "Keys": {"pk": {"S": "c#2"}}, "OldImage": {"pk": {"S": "c#2"}}},
]


def test_convert_lines_gives_the_table_of_the_same_lines_as_json_text() -> None:
    block = lines(*_DECODED_LINES)
    schema = ExportSchema()
    schema.observe_block(block, "incremental", DEFAULT)
    assert convert_lines(_DECODED_LINES, "incremental", DEFAULT).equals(convert_block(block, schema, "incremental", DEFAULT))


def test_convert_lines_observes_into_the_schema_it_is_given_which_names_each_columns_attribute_path() -> None:
    schema = ExportSchema()

    table = convert_lines(_DECODED_LINES, "incremental", DEFAULT, schema)

    paths = schema.column_paths("incremental", DEFAULT)
    assert sorted(paths) == table.column_names[2:]
    assert paths["new__m__deep__y"] == ("new", "m", "deep", "y")
    assert paths["key__pk"] == ("key", "pk")
    assert sorted(paths.values()) == sorted(schema.attribute_paths("incremental", DEFAULT))


def test_convert_lines_of_no_lines_is_an_empty_table_with_the_fixed_columns() -> None:
    assert convert_lines([], "incremental", DEFAULT).column_names == ["change_type", "write_time"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"Keys": {"pk": {"BOOL": 1}}}, r"line 1: Keys\.pk: BOOL must hold true or false"),
        ({"Keys": {"pk": {"S": 5}}}, r"line 1: Keys\.pk: S must hold a string"),
        ({"Keys": {"pk": {"S": "a", "N": "1"}}}, r"line 1: Keys\.pk: an AttributeValue has exactly one type descriptor"),
        # pyarrow, told list<string>, would take a string for the list of its characters.
        ({"Keys": {"pk": {"SS": "ab"}}}, r"line 1: Keys\.pk: SS must hold a non-empty list of strings"),
        ({"Keys": ["pk"]}, r"line 1: Keys: .*object"),
        ({"Item": {"pk": {"S": "a"}}}, r"line 1: unexpected field 'Item'"),
    ],
)
def test_convert_lines_is_as_strict_as_the_json_reader(line: dict[str, Any], message: str) -> None:
    with pytest.raises((MalformedExportLine, InvalidAttributeValue), match=message):
        convert_lines([line], "incremental", DEFAULT)


def test_convert_lines_rejects_a_line_that_is_not_an_object() -> None:
    with pytest.raises(MalformedExportLine, match="line 2: not a JSON object"):
        convert_lines([{"Keys": {"pk": {"S": "a"}}}, None], "incremental", DEFAULT)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"pk": {"S": "a\udcff"}}, r"line 2: NewImage\.pk: S holds a string that is not valid Unicode"),
        ({"pk": {"S": "a"}, "\udcff": {"S": "x"}}, r"line 2: NewImage: attribute name '\\udcff' is not valid Unicode"),
        ({"pk": {"L": [{"SS": ["\udcff"]}]}}, r"line 2: NewImage\.pk\[0\]: SS holds a string that is not valid Unicode"),
    ],
    ids=["value", "name", "set-member-in-a-list"],
)
def test_convert_lines_names_a_string_that_is_not_valid_unicode(image: dict[str, Any], message: str) -> None:
    # pyarrow raises UnicodeEncodeError for a lone surrogate; the caller gets the named error for its line.
    good = {"Keys": {"pk": {"S": "a"}}, "NewImage": {"pk": {"S": "a"}}}
    with pytest.raises(MalformedExportLine, match=message):
        convert_lines([good, {"Keys": {"pk": {"S": "a"}}, "NewImage": image}], "incremental", DEFAULT)


def test_convert_lines_names_a_line_nested_too_deep_for_its_recursion() -> None:
    deep: dict[str, Any] = {"S": "bottom"}
    for _ in range(700):
        deep = {"M": {"a": deep}}

    with pytest.raises(MalformedExportLine, match=r"line 1: NewImage: maps and lists nested more than 32 levels deep"):
        convert_lines([{"Keys": {"pk": {"S": "a"}}, "NewImage": {"deep": deep}}], "incremental", DEFAULT)


def test_incremental_lines_without_metadata_get_a_null_write_time() -> None:
    data = lines({"Keys": {"pk": {"S": "a"}}, "NewImage": {"pk": {"S": "a"}}}, {"Keys": {"pk": {"S": "b"}}})
    table = convert(data, kind="incremental")
    assert column(table, "write_time") == [None, None]
    assert column(table, "change_type") == ["INSERT", "REMOVE"]


def test_write_timestamp_micros_is_taken_as_microseconds_whatever_its_magnitude() -> None:
    data = lines(
        {"Metadata": {"WriteTimestampMicros": {"N": "1768387654353205"}}, "Keys": {"pk": {"S": "real"}}},
        {"Metadata": {"WriteTimestampMicros": {"N": "1695075601"}}, "Keys": {"pk": {"S": "small"}}},
    )
    times = column(convert(data, kind="incremental"), "write_time")
    assert [t.isoformat() for t in times] == ["2026-01-14T10:47:34.353205+00:00", "1970-01-01T00:28:15.075601+00:00"]


def test_a_made_up_write_time_field_is_not_a_write_time() -> None:
    """Real incremental exports carry Metadata.WriteTimestampMicros; an earlier guess read Metadata.WriteTime."""
    data = lines({"Metadata": {"WriteTime": {"N": "1695075601123456"}}, "Keys": {"pk": {"S": "s"}}})
    assert column(convert(data, kind="incremental"), "write_time") == [None]


@pytest.mark.parametrize("value", [{"S": "yesterday"}, {"N": "1.5"}, {"N": "1e20"}])
def test_a_write_time_that_is_not_an_integral_number_is_rejected(value: dict[str, str]) -> None:
    data = lines({"Metadata": {"WriteTimestampMicros": value}, "Keys": {"pk": {"S": "s"}}})
    with pytest.raises(UnexpectedWriteTime, match="WriteTimestampMicros"):
        convert(data, kind="incremental")


def test_an_incremental_line_with_an_item_field_is_rejected() -> None:
    with pytest.raises(MalformedExportLine, match="unexpected field 'Item'"):
        scan_file(io.BytesIO(full({"a": {"S": "x"}})), "incremental", DEFAULT)


# --------------------------------------------------------------------------- dynamodb_types


@pytest.mark.parametrize(
    ("text", "plain", "digits"),
    [
        ("0", "0", (0, 0)),
        ("-12.50", "-12.50", (2, 2)),
        ("0.001", "0.001", (0, 3)),
        (".5", "0.5", (0, 1)),
        ("+7", "7", (1, 0)),
        ("1E+2", "100", (3, 0)),
        ("1.50e1", "15.0", (2, 1)),
        ("-1E-130", "-0." + "0" * 129 + "1", (0, 130)),
    ],
)
def test_numbers_have_a_plain_json_form_with_the_same_digits(text: str, plain: str, digits: tuple[int, int]) -> None:
    assert canonical_number(text) == plain
    assert number_digits(text) == digits


@pytest.mark.parametrize("text", ["", "1_000", "NaN", "Infinity", "1e999999", " 1", "0x10", "1.2.3"])
def test_texts_that_are_not_dynamodb_numbers_are_rejected(text: str) -> None:
    with pytest.raises(InvalidAttributeValue):
        canonical_number(text)


def test_deserialize_gives_plain_python_values() -> None:
    item = {
        "M": {
            "s": {"S": "x"},
            "n": {"N": "1.50"},
            "b": {"B": "aGk="},
            "t": {"BOOL": True},
            "z": {"NULL": True},
            "ss": {"SS": ["b", "a"]},
            "ns": {"NS": ["10", "9"]},
            "bs": {"BS": ["Ag==", "AQ=="]},
            "l": {"L": [{"N": "1"}, {"S": "y"}]},
        }
    }
    assert deserialize(item) == {
        "s": "x",
        "n": Decimal("1.50"),
        "b": b"hi",
        "t": True,
        "z": None,
        "ss": ["a", "b"],
        "ns": [Decimal(9), Decimal(10)],
        "bs": [b"\x01", b"\x02"],
        "l": [Decimal(1), "y"],
    }
    with pytest.raises(InvalidAttributeValue, match="exactly one type descriptor"):
        deserialize({"S": "x", "N": "1"})


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"N": "1"}
    for level in range(levels):
        value = {"M": {"a": value}} if level % 2 else {"L": [{"S": "x"}, value]}
    return value


def test_nesting_up_to_dynamodbs_32_levels_is_accepted_and_deeper_is_refused_without_recursion() -> None:
    assert not nested_too_deep({"a": _nested(32)})
    check_attributes({"a": _nested(32)})
    assert nested_too_deep({"a": _nested(33)})
    assert nested_too_deep({"ok": {"S": "x"}}, {"a": _nested(100_000)})
    with pytest.raises(InvalidAttributeValue, match="nested more than 32 levels deep"):
        check_attributes({"a": _nested(100_000)}, "Item")
    with pytest.raises(InvalidAttributeValue, match="nested more than 32 levels deep"):
        check_attribute_value(_nested(100_000))


def test_nesting_check_skips_malformed_values_for_the_full_check_to_report() -> None:
    assert not nested_too_deep({"a": "not a value", "b": {"M": ["not", "a", "map"]}, "c": {"L": {"not": "a list"}}, "d": None})


# --------------------------------------------------------------------------- benchmark


def test_the_conversion_benchmark_runs_at_smoke_size(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import ddb_convert

    assert ddb_convert.main(["--smoke"]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(printed[: printed.rindex("}") + 1])
    assert figures["throughput"]["rows"] > 0
    assert all(rate > 0 for rate in figures["throughput"]["mb_per_s"].values())
    assert all(entry["peak_rss_mb"] > 0 for entry in figures["peak_rss"].values())


def test_the_duckdb_comparison_runs_at_smoke_size_on_identical_output_types(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import ddb_convert

    assert ddb_convert.main(["--smoke", "--vs-duckdb"]) == 0
    printed = capsys.readouterr().out
    versus = json.loads(printed[: printed.rindex("}") + 1])["versus_duckdb"]
    assert versus["rows"] > 0 and set(versus["ratios"]) == {
        "snaplake scan + convert / duckdb",
        "snaplake scan / duckdb",
        "before: scan + convert from JSON / duckdb",
        "floor (gunzip + parse, once) / duckdb",
        "duckdb discovering / duckdb",
        "snaplake scan + convert / duckdb discovering",
    }


@pytest.mark.parametrize("engine", ["typed_unwrap", "discovering_unwrap"])
def test_duckdb_writes_the_types_snaplake_infers_for_the_benchmark_items(tmp_path: Path, engine: str) -> None:
    """The comparison is fair only if both engines produce the same Parquet schema from the same file: DuckDB told
    the types, and DuckDB finding them in the data (whole-file detection, number shapes) by snaplake's rules."""
    import gzip

    from benchmarks import ddb_convert, duckdb_reference

    source = tmp_path / "items.json.gz"
    source.write_bytes(gzip.compress(ddb_convert.generate_lines(200_000, seed=3)))
    getattr(duckdb_reference, engine)(source, tmp_path / "duckdb.parquet")
    options = ConvertOptions()
    with gzip.open(source, "rb") as stream:
        schema, _ = scan_file(stream, "full", options)
    with gzip.open(source, "rb") as stream:
        convert_file(stream, schema, "full", options, tmp_path / "snaplake.parquet")
    theirs, ours = pq.read_schema(tmp_path / "duckdb.parquet"), pq.read_schema(tmp_path / "snaplake.parquet")
    assert {f.name: f.type for f in theirs} == {f.name: f.type for f in ours}
