"""Property: any DynamoDB items, written as a one-file full export, come back from Parquet with equal values.

"Equal" after the documented mapping, computed here independently of snaplake.ddb_parquet: maps flattened
to `max_depth` path segments, JSON text for lists, cut maps and paths whose type differs between items,
numbers as int64 / decimal128(38, s) / exact text by the digits of the whole column.
"""

from __future__ import annotations

import base64
import io
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snaplake.dynamodb.attribute_values import attribute_json
from snaplake.dynamodb.parquet import ConvertOptions, convert_file, scan_file

Path = tuple[str, ...]

# Few distinct characters, so that attributes meet again in other items (mixed types) and names collide.
names = st.text(alphabet="aA b-é.", min_size=1, max_size=3)
strings = st.one_of(st.text(max_size=10), st.sampled_from(["2024-01-01", "2024-01-01T12:00:00Z", "", "null", '"', "\\"]))


def _number_text(unscaled: int, scale: int, negative: bool, plain: bool) -> str:
    value = Decimal(-unscaled if negative else unscaled).scaleb(-scale).normalize()
    return format(value, "f") if plain else str(value)


numbers = st.one_of(
    st.integers(-(10**18), 10**18).map(str),
    st.integers(-(10**38) + 1, 10**38 - 1).map(str),
    st.sampled_from([str(2**63 - 1), str(-(2**63)), str(2**63), str(10**19), "-" + "9" * 20, "9" * 38, "0", "-1"]),
    st.builds(_number_text, st.integers(0, 10**38 - 1), st.integers(0, 40), st.booleans(), st.booleans()),
    st.builds(_number_text, st.integers(1, 10**5), st.sampled_from([60, 130]), st.booleans(), st.booleans()),
)
binaries = st.binary(max_size=12).map(lambda raw: base64.b64encode(raw).decode())

scalars = st.one_of(
    strings.map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    binaries.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(strings, min_size=1, max_size=3, unique=True).map(lambda members: {"SS": members}),
    st.lists(numbers, min_size=1, max_size=3, unique_by=Decimal).map(lambda members: {"NS": members}),
    st.lists(binaries, min_size=1, max_size=3, unique=True).map(lambda members: {"BS": members}),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda elements: {"L": elements}),
        st.dictionaries(names, inner, max_size=3).map(lambda members: {"M": members}),
    ),
    max_leaves=8,
)
items = st.dictionaries(names, values, min_size=1, max_size=4)


# --------------------------------------------------------------------------- the documented mapping, independently


def _descriptor(value: dict[str, Any]) -> str:
    (descriptor,) = value
    return descriptor


def _collect_types(attributes: dict[str, Any], path: Path, max_depth: int, seen: dict[Path, set[str]]) -> None:
    for name, value in attributes.items():
        child = (*path, name)
        descriptor = _descriptor(value)
        seen.setdefault(child, set()).add(descriptor)
        if descriptor == "M" and len(child) < max_depth:
            _collect_types(value["M"], child, max_depth, seen)


def _leaves(seen: dict[Path, set[str]], max_depth: int) -> dict[Path, set[str]]:
    def flattened(path: Path) -> bool:
        has_children = any(len(other) == len(path) + 1 and other[: len(path)] == path for other in seen)
        return seen[path] - {"NULL"} == {"M"} and len(path) < max_depth and has_children

    leaves = {}
    for path, found in seen.items():
        ancestors_flattened = all(flattened(path[:depth]) for depth in range(1, len(path)))
        if ancestors_flattened and not flattened(path):
            leaves[path] = found
    return leaves


def _value_at(item: dict[str, Any], path: Path) -> dict[str, Any] | None:
    value: Any = {"M": item}
    for name in path:
        if _descriptor(value) != "M" or name not in value["M"]:
            return None
        value = value["M"][name]
    return value  # type: ignore[no-any-return]


def _digits(text: str) -> tuple[int, int, bool]:
    """(integer digits, scale, fits int64) of a number, from its value (the generated texts carry no trailing zeros)."""
    value = Decimal(text)
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    integer_digits = max(0, len(digits) + exponent) if value != 0 else 0
    return integer_digits, scale, scale == 0 and -(2**63) <= value < 2**63


def _number_type(texts: list[str]) -> pa.DataType:
    shapes = [_digits(text) for text in texts]
    if all(fits for _, _, fits in shapes):
        return pa.int64()
    scale = max(s for _, s, _ in shapes)
    if max(i for i, _, _ in shapes) + scale <= 38:
        return pa.decimal128(38, scale)
    return pa.string()


def _plain(value: dict[str, Any]) -> Any:
    """The plain value the JSON text must parse back to (numbers as Decimal)."""
    descriptor = _descriptor(value)
    payload = value[descriptor]
    if descriptor in ("S", "B", "BOOL"):
        return payload
    if descriptor == "NULL":
        return None
    if descriptor == "N":
        return Decimal(payload)
    if descriptor == "SS":
        return sorted(payload)
    if descriptor == "NS":
        return sorted(Decimal(member) for member in payload)
    if descriptor == "BS":
        return sorted(payload, key=base64.b64decode)
    if descriptor == "L":
        return [_plain(element) for element in payload]
    return {name: _plain(child) for name, child in payload.items()}


def _same(expected: Any, actual: Any) -> bool:
    """Equality that tells bools from numbers (Decimal(1) == True in Python)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(_same, expected, actual))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() and all(_same(expected[k], actual[k]) for k in expected)
    return type(expected) is type(actual) and expected == actual


def _source_path(path: Path) -> str:
    return ".".join(part.replace("\\", "\\\\").replace(".", "\\.") for part in path)


def _check_column(path: Path, found: set[str], cells: list[dict[str, Any] | None], column: list[Any], arrow_type: pa.DataType) -> None:
    kinds = found - {"NULL"}
    present = [cell if cell is not None and _descriptor(cell) != "NULL" else None for cell in cells]
    if not kinds:
        assert arrow_type == pa.string() and column == [None] * len(cells), path
        return
    if len(kinds) > 1 or kinds & {"L", "M"}:
        assert arrow_type == pa.string(), path
        for cell, text in zip(present, column, strict=True):
            if cell is None:
                assert text is None, path
            else:
                assert text == attribute_json(cell), path
                assert _same(_plain(cell), json.loads(text, parse_float=Decimal, parse_int=Decimal)), path
        return
    (kind,) = kinds
    if kind == "N":
        assert arrow_type == _number_type([cell["N"] for cell in present if cell is not None]), path
    if kind == "NS":
        assert arrow_type == pa.list_(_number_type([member for cell in present if cell is not None for member in cell["NS"]])), path
    for cell, got in zip(present, column, strict=True):
        if cell is None:
            assert got is None, path
        elif kind in ("S", "BOOL"):
            assert _same(cell[kind], got), path
        elif kind == "B":
            assert got == base64.b64decode(cell["B"]), path
        elif kind == "N":
            assert Decimal(cell["N"]) == (Decimal(got) if isinstance(got, str) else got), path
        elif kind == "SS":
            assert sorted(got) == sorted(cell["SS"]), path
        elif kind == "NS":
            assert sorted(Decimal(member) for member in cell["NS"]) == sorted(Decimal(x) if isinstance(x, str) else x for x in got), path
        else:  # BS
            assert sorted(got) == sorted(base64.b64decode(member) for member in cell["BS"]), path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    export=st.lists(items, min_size=1, max_size=4),
    max_depth=st.sampled_from([1, 2, 3]),
    block_bytes=st.sampled_from([1, 200, 32 * 1024**2]),
    ascii_only=st.booleans(),
)
def test_any_items_round_trip_through_parquet(export: list[dict[str, Any]], max_depth: int, block_bytes: int, ascii_only: bool) -> None:
    options = ConvertOptions(max_depth=max_depth, block_bytes=block_bytes)
    data = b"".join(json.dumps({"Item": item}, ensure_ascii=ascii_only).encode() + b"\n" for item in export)
    schema, scanned = scan_file(io.BytesIO(data), "full", options)
    schema = type(schema).from_json(json.loads(json.dumps(schema.to_json())))  # as stored between Lambda steps
    sink = io.BytesIO()
    written = convert_file(io.BytesIO(data), schema, "full", options, sink)
    table = pq.read_table(pa.BufferReader(sink.getvalue()))
    assert scanned == written == table.num_rows == len(export)

    seen: dict[Path, set[str]] = {}
    for item in export:
        _collect_types(item, (), max_depth, seen)
    leaves = _leaves(seen, max_depth)
    column_names = schema.column_names("full", options)
    assert set(column_names) == {_source_path(path) for path in leaves}
    assert table.column_names == sorted(column_names.values())
    for path, found in leaves.items():
        name = column_names[_source_path(path)]
        cells = [_value_at(item, path) for item in export]
        _check_column(path, found, cells, table.column(name).to_pylist(), table.schema.field(name).type)
