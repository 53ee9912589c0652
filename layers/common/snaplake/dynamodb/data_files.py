"""One export data file's rows on their way to the lake: its converted blocks, read from its JSON or from the
conversion ScanFiles staged for it, written as one Parquet file per lake partition."""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Callable, Iterator
from typing import Any, Literal

from snaplake.core.aws import is_not_found
from snaplake.core.s3 import Bucket


def open_data_file(export: Bucket, key: str) -> gzip.GzipFile:
    """One gzip DynamoDB-JSON data file of the export, read as it streams from S3."""
    return gzip.GzipFile(fileobj=export.open_stream(key), mode="rb")


def tables_from_json(export: Bucket, source: str, schema: Any, kind: Literal["full", "incremental"]) -> Iterator[Any]:
    """The data file's blocks, converted from its JSON with the merged schema."""
    from snaplake.dynamodb.parquet import ConvertOptions, convert_block, iter_blocks

    options = ConvertOptions()
    with open_data_file(export, source) as stream:
        for block in iter_blocks(stream, options.block_bytes):
            yield convert_block(block, schema, kind, options)


def tables_from_stage(export: Bucket, key: str, schema: Any, kind: Literal["full", "incremental"]) -> Iterator[Any]:
    """The data file's blocks as ScanFiles converted them, carried over to the merged schema; NotCarriedOver when
    there is no staged conversion or it does not carry over exactly."""
    from snaplake.dynamodb.parquet import ConvertOptions, NotCarriedOver, staged_blocks

    try:
        stream = export.open_stream(key)
    except Exception as error:
        if is_not_found(error):
            raise NotCarriedOver("no staged conversion") from None
        raise
    with contextlib.closing(stream):
        yield from staged_blocks(stream, schema, kind, ConvertOptions())


def write_partitions(
    tables: Iterator[Any], scratch: str, attempt: str, arrow_schema: Any, split: Callable[[Any], list[tuple[str, Any]]]
) -> tuple[int, dict[str, str], dict[str, int]]:
    """The tables' rows written to one zstd Parquet file per lake partition under scratch/attempt:
    (rows, partition -> path, partition -> rows)."""
    import pyarrow.parquet as pq

    folder = os.path.join(scratch, attempt)
    os.makedirs(folder)
    writers: dict[str, Any] = {}
    paths: dict[str, str] = {}
    partition_rows: dict[str, int] = {}
    rows = 0
    try:
        for converted in tables:
            rows += converted.num_rows
            for partition, part in split(converted):
                if not part.num_rows:
                    continue
                if partition not in writers:
                    paths[partition] = os.path.join(folder, f"{len(writers)}.parquet")
                    writers[partition] = pq.ParquetWriter(paths[partition], arrow_schema, compression="zstd")
                writers[partition].write_table(part)
                partition_rows[partition] = partition_rows.get(partition, 0) + part.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    return rows, paths, partition_rows
