"""The scan's own conversion of each block, kept so the convert pass need not parse the JSON a second time.

While `scan_file` learns a data file's schema it converts every block it has parsed with the schema learned so far
and appends the typed table to a *stage* (`write_staged`): per block, its columns' kinds and attribute paths
(JSON), then the table as an Arrow IPC stream (zstd), each behind its length. The convert pass (`staged_tables`)
then only carries each staged column over to the export's merged schema, by attribute path: renamed, an absent
path as nulls, an int64 column cast to the decimal or number text a wider schema gives, a decimal to a larger
scale. Anything else (a path whose column kind changed, e.g. to JSON text because another file holds another type
there) is not carried over (`NotCarriedOver`): the caller converts that file from its JSON instead, which is
always exact.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from snaplake.dynamodb.parquet.options import BinaryStream
from snaplake.dynamodb.parquet.schema import ColumnPlan, LeafColumn

_LENGTH = struct.Struct("<Q")
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")  # cheaper than lz4 here (Arrow 26), and smaller


class NotCarriedOver(Exception):
    """A staged block whose columns cannot be carried over exactly to the merged schema."""


class CappedStage:
    """A stage file that stops taking blocks once they pass `limit` bytes; `overflowed` then says not to use it."""

    def __init__(self, file: Any, limit: int) -> None:
        self.file, self.limit, self.size, self.overflowed = file, limit, 0, False

    def write(self, data: Any) -> None:
        self.size += memoryview(data).nbytes
        self.overflowed = self.overflowed or self.size > self.limit
        if not self.overflowed:
            self.file.write(data)


def write_staged(stage: Any, table: pa.Table, plan: ColumnPlan) -> None:
    """Append one block's typed table (columns as `plan` gives them) to `stage`: its column tags (JSON), then the
    table (an Arrow IPC stream), each behind its length."""
    tags = json.dumps([[column.kind, column.section, list(column.path)] for column in plan.columns]).encode()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    body = sink.getvalue()
    stage.write(_LENGTH.pack(len(tags)) + tags)
    stage.write(_LENGTH.pack(body.size))
    stage.write(body)


def staged_tables(stage: BinaryStream, plan: ColumnPlan) -> Iterator[pa.Table]:
    """Each staged block as a table with exactly `plan.arrow_schema`; raises NotCarriedOver where that is not exact."""
    while True:
        header = stage.read(_LENGTH.size)
        if not header:
            return
        tags = _tags(_read_exactly(stage, _length(header)))
        body = _read_exactly(stage, _length(stage.read(_LENGTH.size)))
        table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        del body
        if len(tags) != table.num_columns:
            raise NotCarriedOver("a staged block's column tags do not match its columns")
        yield carried_over(table, tags, plan)


def _length(header: bytes) -> int:
    if len(header) != _LENGTH.size:
        raise NotCarriedOver("the stage ends inside a block's length")
    return int(_LENGTH.unpack(header)[0])


def _read_exactly(stream: BinaryStream, size: int) -> bytes:
    pieces, left = [], size
    while left:
        piece = stream.read(min(left, 1 << 24))
        if not piece:
            raise NotCarriedOver("the stage ends inside a block")
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _tags(raw: bytes) -> list[tuple[str, str, tuple[str, ...]]]:
    """(column kind, section, attribute path) of each column of a staged block."""
    return [(kind, section, tuple(path)) for kind, section, path in json.loads(raw)]


def carried_over(table: pa.Table, tags: list[tuple[str, str, tuple[str, ...]]], plan: ColumnPlan) -> pa.Table:
    """A staged block's table (its columns tagged) with the merged plan's columns, or NotCarriedOver."""
    rows = table.num_rows
    staged: dict[tuple[str, str, tuple[str, ...]], tuple[str, pa.ChunkedArray]] = {}
    for (kind, section, path), column in zip(tags, table.columns, strict=True):
        key = (section, kind, ()) if not path else (section, "", path)  # the two system columns have no path
        staged[key] = (kind, column)
    arrays = []
    for target in plan.columns:
        found = staged.pop((target.section, target.kind, ()) if not target.path else (target.section, "", target.path), None)
        if found is None:
            arrays.append(pa.nulls(rows, target.arrow_type))  # no value at this path in the block
            continue
        kind, column = found
        arrays.append(_carried_column(kind, column, target, rows))
    if any(kind != "null" for kind, _ in staged.values()):
        # A path with values in the block has no column of its own in the merged plan (e.g. a map now JSON text).
        raise NotCarriedOver("a staged column has no column of the same path in the merged schema")
    return pa.Table.from_arrays(arrays, schema=plan.arrow_schema)


def _carried_column(kind: str, column: pa.ChunkedArray, target: LeafColumn, rows: int) -> Any:
    if kind == "null":
        return pa.nulls(rows, target.arrow_type)  # only NULL values: a null cell in any column kind
    if kind != target.kind:
        raise NotCarriedOver(f"{target.name}: {kind} in the stage, {target.kind} in the merged schema")
    if column.type == target.arrow_type:
        return column
    if kind == "number" and _exact_widening(column.type, target.arrow_type):
        return pc.cast(column, target.arrow_type)
    if kind == "ns" and _exact_widening(column.type.value_type, target.arrow_type.value_type):
        return pc.cast(column, target.arrow_type)
    raise NotCarriedOver(f"{target.name}: {column.type} in the stage, {target.arrow_type} in the merged schema")


def _exact_widening(staged: pa.DataType, target: pa.DataType) -> bool:
    """Whether casting gives what converting the number texts to `target` gives: an int64's text is its plain
    form (the scan checked the round trip), a decimal only gains zeros at a larger scale."""
    if pa.types.is_int64(staged):
        return pa.types.is_decimal128(target) or pa.types.is_string(target)
    if pa.types.is_decimal128(staged) and pa.types.is_decimal128(target):
        return bool(target.scale >= staged.scale and target.precision >= staged.precision)
    return False
