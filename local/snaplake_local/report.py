"""What landed in the lake: tables, partitions, files, rows, and a sample."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from snaplake.core.names import SUCCESS_MARKER


@dataclass
class Partition:
    prefix: str
    files: int = 0
    rows: int = 0
    bytes: int = 0
    complete: bool = False
    keys: list[str] = field(default_factory=list)


def lake_partitions(s3: Any, bucket: str, prefix: str = "") -> list[Partition]:
    """Group the lake's Parquet files by table partition (the folder holding `_SUCCESS`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    objects = {
        obj["Key"]: obj["Size"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    }
    roots = sorted(key[: -len(SUCCESS_MARKER)] for key in objects if key.endswith("/" + SUCCESS_MARKER))
    # A partition's marker sits above its batch folders, whose own markers are deeper.
    partition_roots = [root for root in roots if not any(root != other and root.startswith(other) for other in roots)]
    found: dict[str, Partition] = defaultdict(lambda: Partition(""))
    for key, size in sorted(objects.items()):
        if not key.endswith(".parquet"):
            continue
        root = next((r for r in partition_roots if key.startswith(r)), key.rsplit("/", 2)[0] + "/")
        partition = found[root]
        partition.prefix = root
        partition.complete = root in partition_roots
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        partition.rows += pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
        partition.files += 1
        partition.bytes += size
        partition.keys.append(key)
    return sorted(found.values(), key=lambda p: p.prefix)


def sample_rows(s3: Any, bucket: str, partition: Partition, limit: int = 3) -> list[dict[str, Any]]:
    """The first `limit` rows of the partition's files. Read with ParquetFile on this thread, never
    pq.read_table: on an in-memory buffer its dataset scan leaves Arrow pool threads releasing the
    Python buffer after it returns (apache/arrow#33975), and one still doing so when the interpreter
    finalizes aborts the process ("terminate called without an active exception", exit 134)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for key in partition.keys:
        table = pq.ParquetFile(pa.BufferReader(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).read(use_threads=False)
        rows.extend(table.slice(0, limit - len(rows)).to_pylist())
        if len(rows) >= limit:
            break
    return rows


def format_table(partitions: list[Partition]) -> str:
    header = ("partition", "files", "rows", "bytes", "_SUCCESS")
    lines = [(p.prefix, str(p.files), str(p.rows), str(p.bytes), "yes" if p.complete else "NO") for p in partitions]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
