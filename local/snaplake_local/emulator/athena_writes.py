"""What a CTAS or INSERT INTO writes: the result's rows as Parquet files at the table's location, one folder per
partition as Athena's engine names it (`<key>=<value>/`, the characters Hive escapes as %XX, NULL as
__HIVE_DEFAULT_PARTITION__), the partition columns left out of the files. A query writing more than 100
partitions fails with HIVE_TOO_MANY_OPEN_PARTITIONS before it writes anything, as Athena's does.
"""

from __future__ import annotations

import io
from typing import Any

from snaplake_local.emulator.athena_lake import HIVE_DEFAULT_PARTITION, LakeStorage, folder
from snaplake_local.emulator.athena_types import AthenaQueryError, varchar_value

MAX_OPEN_PARTITIONS = 100
_COMPRESSIONS = {"SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd", "LZ4": "lz4", "NONE": "none"}
# Hive's FileUtils.escapePathName list, which Athena's engine uses to name partition folders.
_PATH_ESCAPED = frozenset(map(chr, range(0x20))) | frozenset("\"#%'*/:=?\\\x7f{[]^")


def hive_path_name(text: str) -> str:
    """A partition column or value as Athena writes it in a folder name: those characters as %XX."""
    return "".join(f"%{ord(c):02X}" if c in _PATH_ESCAPED else c for c in text)


def partition_folder(keys: list[str], values: tuple[str, ...] | list[str]) -> str:
    return "".join(f"{hive_path_name(k)}={hive_path_name(str(v))}/" for k, v in zip(keys, values, strict=True))


def parquet_compression(name: str | None) -> str:
    """pyarrow's name for a CTAS `write_compression` (Athena writes Parquet with GZIP when none is given)."""
    chosen = (name or "GZIP").upper()
    if chosen not in _COMPRESSIONS:
        raise AthenaQueryError(f"NOT_SUPPORTED: the emulator writes Parquet with {sorted(_COMPRESSIONS)} compression, not {chosen}")
    return _COMPRESSIONS[chosen]


def write_result(
    storage: LakeStorage,
    table: Any,
    location: str,
    keys: list[str],
    file_name: str,
    compression: str,
    existing: dict[tuple[str, ...], str] | None = None,
) -> list[tuple[tuple[str, ...], str]]:
    """Write `table` (pyarrow) under `location`; returns (partition values, folder URI) of each partition written
    (`((), location)` for an unpartitioned table, nothing when there are no rows). A partition in `existing` is
    written into its registered location."""
    if table.num_rows == 0:
        return []
    if not keys:
        _put(storage, folder(location) + file_name, table, compression)
        return [((), folder(location))]
    rows: dict[tuple[str, ...], list[int]] = {}
    texts = [table.column(key).to_pylist(maps_as_pydicts="lossy") for key in keys]
    for index, values in enumerate(zip(*texts, strict=True)):
        key = tuple(HIVE_DEFAULT_PARTITION if v is None else str(varchar_value(v)) for v in values)
        rows.setdefault(key, []).append(index)
    if len(rows) > MAX_OPEN_PARTITIONS:
        raise AthenaQueryError(
            f"HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of {MAX_OPEN_PARTITIONS} open writers for partitions/buckets "
            f"(the query writes {len(rows)} partitions)"
        )
    data = table.drop_columns(keys)
    written = []
    for values, indices in rows.items():
        where = (existing or {}).get(values) or folder(location) + partition_folder(keys, values)
        _put(storage, folder(where) + file_name, data.take(indices), compression)
        written.append((values, folder(where)))
    return written


def _put(storage: LakeStorage, uri: str, table: Any, compression: str) -> None:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=compression)
    try:
        storage.put(uri, buffer.getvalue())
    except AthenaQueryError:
        raise
    except Exception as error:  # moto's MissingBucket and the like
        raise AthenaQueryError(f"HIVE_WRITER_OPEN_ERROR: cannot write {uri}: {error}") from None
