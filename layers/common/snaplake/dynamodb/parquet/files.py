"""Whole data files: cut into blocks of complete lines (read ahead on a helper thread), scanned for their schema
or converted to Parquet row groups with bounded memory."""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from snaplake.core.errors import SnaplakeError
from snaplake.dynamodb.parquet.columns import convert, convert_sections
from snaplake.dynamodb.parquet.options import BinaryStream, ConvertOptions, ExportKind
from snaplake.dynamodb.parquet.reading import located_problem
from snaplake.dynamodb.parquet.schema import ColumnPlan, ExportSchema
from snaplake.dynamodb.parquet.staging import staged_tables, write_staged


def iter_blocks(stream: BinaryStream, block_bytes: int) -> Iterator[bytes]:
    """Split a decompressed stream into blocks of complete lines of about block_bytes.

    A line is never split (a line longer than block_bytes becomes a block of its
    own); the last line may lack its newline; an empty stream yields nothing.
    The next block is read (and decompressed) on a helper thread while the
    caller works on the current one; errors reading the stream surface here.
    """
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be positive, got {block_bytes}")
    return _read_ahead(_line_blocks(stream, block_bytes))


_READ_BYTES = 1 << 20  # the stream is read in pieces of this size and assembled into blocks


def _line_blocks(stream: BinaryStream, block_bytes: int) -> Iterator[bytes]:
    pieces: list[bytes] = []
    size = 0
    while True:
        piece = stream.read(min(block_bytes, _READ_BYTES))
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
        if size < block_bytes:
            continue
        cut = piece.rfind(b"\n")
        if cut < 0:
            continue  # inside a long line: read on to its end
        tail = piece[cut + 1 :]
        pieces[-1] = piece[: cut + 1]
        del piece
        block = b"".join(pieces)
        pieces = [tail] if tail else []
        size = len(tail)
        yield block
        del block
    if pieces:
        yield b"".join(pieces)


def _read_ahead(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Yield `blocks`, reading the next one on a helper thread while the caller works on the current one.

    Double buffering: the helper starts on block k+1 only once the caller has taken block k,
    so at most two blocks exist at a time.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    taken = threading.Semaphore(0)
    stop = threading.Event()

    def offer(message: tuple[str, Any]) -> bool:
        handoff.put(message)
        while not taken.acquire(timeout=0.05):
            if stop.is_set():
                return False
        return not stop.is_set()

    def produce() -> None:
        try:
            for block in blocks:
                if not offer(("block", block)):
                    return
                del block
            offer(("end", None))
        except BaseException as error:  # handed to the consumer, raised there
            offer(("error", error))

    helper = threading.Thread(target=produce, name="snaplake-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            what, value = handoff.get()
            taken.release()
            if what == "block":
                yield value
                del value
            elif what == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        helper.join()


def scan_file(stream: BinaryStream, kind: ExportKind, options: ConvertOptions, stage: Any = None) -> tuple[ExportSchema, int]:
    """Schema and row count of one data file (stream: the decompressed file).

    With a `stage` (a writable binary file), each block is also converted with the schema learned so far and
    appended to it (`snaplake.dynamodb.parquet.staging`), so that `convert_staged` need not parse the JSON again.
    """
    schema = ExportSchema()
    schema.bind(kind, options)
    rows = 0
    first_line = 1
    for block in iter_blocks(stream, options.block_bytes):
        sections, block_rows = schema.observe_parsed(block, kind, options, first_line)
        if stage is not None and block_rows:
            plan = schema.column_plan(kind, options)
            try:
                table = convert_sections(sections, block_rows, plan, kind)
            except SnaplakeError as error:
                raise located_problem(block, kind, first_line, None, error) from None
            write_staged(stage, table, plan)
            del table
        del sections
        rows += block_rows
        first_line += block.count(b"\n")
    return schema, rows


def convert_block(block: bytes, schema: ExportSchema, kind: ExportKind, options: ConvertOptions) -> pa.Table:
    """One block of complete lines as a table with exactly schema.arrow_schema(kind, options)."""
    return convert(block, schema, kind, options, first_line=1)


def convert_file(stream: BinaryStream, schema: ExportSchema, kind: ExportKind, options: ConvertOptions, sink: Any) -> int:
    """Write one Parquet file (a row group per block) to sink (a path or a writable binary file); returns rows written.

    A file without rows still gets a valid Parquet file with the schema. If the
    conversion fails midway nothing more reaches the sink (no Parquet footer),
    so a partial file can never pass for a complete one; a path sink is removed.
    """
    plan = schema.column_plan(kind, options)

    def tables() -> Iterator[pa.Table]:
        first_line = 1
        for block in iter_blocks(stream, options.block_bytes):
            table = convert(block, schema, kind, options, first_line)
            first_line += block.count(b"\n")
            del block
            yield table

    return _to_sink(tables(), plan, sink)


def convert_staged(stage: BinaryStream, schema: ExportSchema, kind: ExportKind, options: ConvertOptions, sink: Any) -> int:
    """`convert_file` from what `scan_file` staged instead of the JSON: the same Parquet file, or NotCarriedOver
    (nothing usable reaches the sink, as after any failure) when a staged block does not fit the merged schema
    exactly; then convert the JSON."""
    plan = schema.column_plan(kind, options)
    return _to_sink(staged_tables(stage, plan), plan, sink)


def staged_blocks(stage: BinaryStream, schema: ExportSchema, kind: ExportKind, options: ConvertOptions) -> Iterator[pa.Table]:
    """The tables `convert_block` gives for each block of the file, from what `scan_file` staged; NotCarriedOver
    where a block does not fit the merged schema exactly."""
    return staged_tables(stage, schema.column_plan(kind, options))


def _to_sink(tables: Iterator[pa.Table], plan: ColumnPlan, sink: Any) -> int:
    if isinstance(sink, str | bytes | os.PathLike):
        try:
            with open(sink, "wb") as file:
                return _write_parquet(tables, plan, file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(sink)
            raise
    return _write_parquet(tables, plan, sink)


class _SinkGuard:
    """The caller's file as pyarrow sees it: passes bytes on until the conversion fails, and is never closed.

    pyarrow's writers write the Parquet footer when they are garbage collected;
    after a failure that footer must not reach the sink.
    """

    def __init__(self, target: Any) -> None:
        self.target = target
        self.failed = False
        self.closed = False
        self.position = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if not self.failed:
            self.target.write(data)
        self.position += size
        return size

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        if not self.failed and hasattr(self.target, "flush"):
            self.target.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        self.flush()
        self.closed = True


def _write_parquet(tables: Iterator[pa.Table], plan: ColumnPlan, sink: Any) -> int:
    guard = _SinkGuard(sink)
    writer = pq.ParquetWriter(guard, plan.arrow_schema)
    rows = 0
    # Row group k is encoded and written on a helper thread while block k+1 is parsed
    # and converted; at most one write is in flight, so memory stays bounded.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snaplake-parquet") as background:
        pending: Future[None] | None = None
        try:
            for table in tables:
                if pending is not None:
                    pending.result()
                    pending = None
                if table.num_rows:
                    pending = background.submit(writer.write_table, table, row_group_size=table.num_rows)
                rows += table.num_rows
                del table
            if pending is not None:
                pending.result()
        except BaseException:
            guard.failed = True
            if pending is not None:
                pending.cancel()
            raise
    writer.close()
    return rows
