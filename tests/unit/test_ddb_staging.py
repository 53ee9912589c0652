"""The scan's staged conversion (snaplake.dynamodb.parquet.staging): carried over to the export's merged schema it
gives the very Parquet file `convert_file` writes from the JSON, or it refuses (NotCarriedOver) and the JSON is
converted instead."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pyarrow.parquet as pq
import pytest
from snaplake.dynamodb.parquet import (
    ConvertOptions,
    ExportKind,
    ExportSchema,
    NotCarriedOver,
    convert_file,
    convert_staged,
    scan_file,
)

SMALL_BLOCKS = ConvertOptions(block_bytes=300)  # a few lines per block: the schema grows between blocks


def full(*items: dict[str, Any]) -> bytes:
    return b"".join(json.dumps({"Item": item}).encode() + b"\n" for item in items)


def scanned(data: bytes, kind: ExportKind = "full", options: ConvertOptions = SMALL_BLOCKS) -> tuple[ExportSchema, bytes]:
    stage = io.BytesIO()
    schema, _ = scan_file(io.BytesIO(data), kind, options, stage)
    return schema, stage.getvalue()


def both_ways(
    data: bytes, stage: bytes, merged: ExportSchema, kind: ExportKind = "full", options: ConvertOptions = SMALL_BLOCKS
) -> tuple[bytes, bytes]:
    """(Parquet from the JSON, Parquet from the stage) with the merged schema."""
    from_json, from_stage = io.BytesIO(), io.BytesIO()
    convert_file(io.BytesIO(data), merged, kind, options, from_json)
    convert_staged(io.BytesIO(stage), merged, kind, options, from_stage)
    return from_json.getvalue(), from_stage.getvalue()


def merged_of(*schemas: ExportSchema) -> ExportSchema:
    merged = ExportSchema()
    for schema in schemas:
        merged = merged.merge(schema)
    return merged


def test_a_file_alone_gives_the_same_parquet_bytes_from_its_stage() -> None:
    data = full(*({"pk": {"S": f"k{i}"}, "n": {"N": str(i)}, "m": {"M": {"a": {"S": "x"}}}} for i in range(40)))
    schema, stage = scanned(data)
    assert len(stage) > 0
    from_json, from_stage = both_ways(data, stage, schema)
    assert from_stage == from_json


def test_numbers_widened_by_another_file_are_cast_exactly() -> None:
    integers = full(*({"pk": {"S": f"a{i}"}, "n": {"N": str(i * 1000)}, "s": {"NS": ["1", "2"]}} for i in range(30)))
    decimals = full({"pk": {"S": "b"}, "n": {"N": "-12345.678"}, "s": {"NS": ["0.5"]}})
    (first, stage), (second, _) = scanned(integers), scanned(decimals)
    merged = merged_of(first, second)
    assert str(merged.arrow_schema("full", SMALL_BLOCKS).field("n").type) == "decimal128(38, 3)"
    from_json, from_stage = both_ways(integers, stage, merged)
    assert from_stage == from_json


def test_integers_that_another_file_makes_too_wide_for_a_decimal_become_their_text() -> None:
    integers = full(*({"pk": {"S": f"a{i}"}, "n": {"N": str(-(i + 1) * 10**17)}} for i in range(10)))
    wide = full({"pk": {"S": "b"}, "n": {"N": "1." + "1" * 37}})
    (first, stage), (second, _) = scanned(integers), scanned(wide)
    merged = merged_of(first, second)
    assert str(merged.arrow_schema("full", SMALL_BLOCKS).field("n").type) == "string"
    from_json, from_stage = both_ways(integers, stage, merged)
    assert from_stage == from_json


def test_paths_only_another_file_has_and_null_only_paths_carry_over() -> None:
    mine = full(*({"pk": {"S": f"a{i}"}, "gone": {"NULL": True}} for i in range(10)))
    theirs = full({"pk": {"S": "b"}, "gone": {"S": "text"}, "extra": {"M": {"x": {"BOOL": True}}}})
    (first, stage), (second, _) = scanned(mine), scanned(theirs)
    merged = merged_of(first, second)
    from_json, from_stage = both_ways(mine, stage, merged)
    assert from_stage == from_json
    assert pq.read_table(io.BytesIO(from_stage)).column("gone").null_count == 10


def test_a_path_of_another_type_in_another_file_is_not_carried_over() -> None:
    strings = full(*({"pk": {"S": f"a{i}"}, "v": {"S": "x"}} for i in range(5)))
    numbers = full({"pk": {"S": "b"}, "v": {"N": "1"}})
    (first, stage), (second, _) = scanned(strings), scanned(numbers)
    merged = merged_of(first, second)  # v: JSON text of each AttributeValue
    with pytest.raises(NotCarriedOver, match="json in the merged schema"):
        convert_staged(io.BytesIO(stage), merged, "full", SMALL_BLOCKS, io.BytesIO())


def test_a_map_another_file_cuts_to_json_text_is_not_carried_over() -> None:
    maps = full(*({"pk": {"S": f"a{i}"}, "m": {"M": {"a": {"S": "x"}}}} for i in range(5)))
    mixed = full({"pk": {"S": "b"}, "m": {"S": "not a map"}})
    (first, stage), (second, _) = scanned(maps), scanned(mixed)
    with pytest.raises(NotCarriedOver):
        convert_staged(io.BytesIO(stage), merged_of(first, second), "full", SMALL_BLOCKS, io.BytesIO())


def test_a_truncated_stage_is_not_carried_over_and_leaves_no_file(tmp_path: Any) -> None:
    data = full(*({"pk": {"S": f"k{i}"}} for i in range(40)))
    schema, stage = scanned(data)
    out = tmp_path / "out.parquet"
    with pytest.raises(NotCarriedOver):
        convert_staged(io.BytesIO(stage[:-5]), schema, "full", SMALL_BLOCKS, out)
    assert not out.exists()


def test_incremental_lines_give_the_same_parquet_bytes_from_their_stage() -> None:
    records = []
    for i in range(30):
        record: dict[str, Any] = {
            "Metadata": {"WriteTimestampMicros": {"N": str(1_700_000_000_000_000 + i * 10**9)}},
            "Keys": {"pk": {"S": f"k{i}"}},
        }
        if i % 3:
            record["NewImage"] = {"pk": {"S": f"k{i}"}, "qty": {"N": str(i)}, "tags": {"SS": ["a"]}}
        if i % 2:
            record["OldImage"] = {"pk": {"S": f"k{i}"}, "qty": {"N": f"{i}.5"}}
        records.append(record)
    data = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    schema, stage = scanned(data, "incremental")
    from_json, from_stage = both_ways(data, stage, schema, "incremental")
    assert from_stage == from_json


def _random_value(rng: random.Random, depth: int) -> dict[str, Any]:
    choice = rng.choice(["S", "N", "Nd", "Nbig", "BOOL", "NULL", "B", "SS", "NS", "L", "M"] if depth < 3 else ["S", "N", "NULL"])
    if choice == "N":
        return {"N": str(rng.randint(-(10**6), 10**6))}
    if choice == "Nd":
        return {"N": f"{rng.randint(-999, 999)}.{rng.randint(0, 999):0{rng.randint(1, 4)}d}"}
    if choice == "Nbig":
        return {"N": str(rng.randint(10**20, 10**25))}
    if choice == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if choice == "NULL":
        return {"NULL": True}
    if choice == "B":
        return {"B": "AAEC"}
    if choice == "SS":
        return {"SS": ["x", "y"]}
    if choice == "NS":
        return {"NS": [str(rng.randint(0, 9)), "1.25"] if rng.random() < 0.3 else [str(rng.randint(0, 9))]}
    if choice == "L":
        return {"L": [_random_value(rng, depth + 1)]}
    if choice == "M":
        return {"M": {name: _random_value(rng, depth + 1) for name in rng.sample(["a", "b", "c"], rng.randint(0, 2))}}
    return {"S": rng.choice(["x", 'q"uote', "line\nbreak"])}


def test_random_files_either_carry_over_to_the_same_bytes_or_are_refused() -> None:
    """Differential: random files of one export, each converted from the JSON and from its stage."""
    rng = random.Random(13)
    carried = refused = 0
    for _ in range(12):
        # Each file favours a type per attribute, so some files agree with the merged schema and some do not.
        favourite = {name: rng.choice(["S", "N", "Nd", "M", "NS"]) for name in ("a1", "a2", "a3", "a4")}
        files = []
        for _ in range(3):
            items = []
            odd = rng.random() < 0.3  # this file has one value of any type per attribute
            for i in range(rng.randint(1, 25)):
                item: dict[str, Any] = {"pk": {"S": f"k{i}"}}
                for name, kind in favourite.items():
                    if rng.random() < 0.7:
                        item[name] = _random_value(rng, 1) if odd and i == 0 else _typed(rng, kind)
                items.append(item)
            files.append(full(*items))
        scans = [scanned(data) for data in files]
        merged = merged_of(*(schema for schema, _ in scans))
        for data, (_, stage) in zip(files, scans, strict=True):
            try:
                from_json, from_stage = both_ways(data, stage, merged)
            except NotCarriedOver:
                refused += 1
                continue
            assert from_stage == from_json
            carried += 1
    assert carried >= 5 and refused  # both paths taken


def _typed(rng: random.Random, kind: str) -> dict[str, Any]:
    for _ in range(100):
        value = _random_value(rng, 1)
        if (kind == "Nd" and "N" in value) or next(iter(value)) == kind:
            return value
    return {kind: "1"} if kind in ("N", "Nd") else {"S": "x"}
