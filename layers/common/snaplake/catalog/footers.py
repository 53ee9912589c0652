"""The columns of landed Parquet files, from their footers only (ranged GETs of each file's tail, never the whole
object), as the Glue/Hive types Athena declares for them."""

from __future__ import annotations

import logging
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from snaplake.catalog.errors import DuplicateColumn, NoDataFiles, ParquetFooterUnreadable, UnsupportedColumnType
from snaplake.catalog.hive_types import Column, merge_columns
from snaplake.catalog.partitions import LandedPartition
from snaplake.core.names import athena_name
from snaplake.core.s3 import Bucket

log = logging.getLogger(__name__)

FOOTER_TAIL_BYTES = 64 * 1024  # one GET covers the footer of almost every file
MAX_FOOTER_BYTES = 64 * 1024**2
PARQUET_MAGIC = b"PAR1"
FOOTER_THREADS = 8
FOOTER_SAMPLE = 4
_STRUCT_FIELD = re.compile(r"^[a-z0-9_.]+$")


def read_parquet_schema(
    s3: Any, bucket: str, key: str, *, tail_bytes: int = FOOTER_TAIL_BYTES, expected_bucket_owner: str | None = None
) -> Any:
    """The Arrow schema of one Parquet object, from its footer only.

    One GET of the last `tail_bytes`; a second, exact GET when the footer is
    larger. A file smaller than `tail_bytes` comes back whole, which is fine.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = Bucket(s3, bucket, expected_bucket_owner, lake=True)
    where = lake.uri(key)
    tail, total = lake.read_tail(key, tail_bytes)
    if len(tail) < 12 or tail[-4:] != PARQUET_MAGIC:
        raise ParquetFooterUnreadable(f"{where} is not a Parquet file (no PAR1 footer)")
    footer_length = struct.unpack("<I", tail[-8:-4])[0]
    needed = footer_length + 8
    if needed > total - 4 or footer_length > MAX_FOOTER_BYTES:
        raise ParquetFooterUnreadable(f"{where} declares a {footer_length}-byte footer in a {total}-byte file")
    if needed > len(tail):
        tail, _ = lake.read_tail(key, needed)
    # The reader only looks at the end of the buffer; the leading magic keeps its size checks happy.
    buffer = PARQUET_MAGIC + tail[-needed:]
    try:
        return pq.ParquetFile(pa.BufferReader(buffer)).schema_arrow
    except (OSError, ValueError) as error:
        raise ParquetFooterUnreadable(f"{where}: {error}") from None


_INTEGERS = {8: "tinyint", 16: "smallint", 32: "int", 64: "bigint"}
_UNSIGNED = {8: "smallint", 16: "int", 32: "bigint"}  # one size up holds every value


def glue_type(arrow_type: Any, column: str = "?") -> str:
    """The Glue/Hive type Athena uses to read a Parquet column of this Arrow type.

    A null-typed (all-NULL) column maps to `void`, which merging treats as
    "unknown yet"; `column_types` turns a lone `void` into `string`.
    """
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        return glue_type(arrow_type.value_type, column)
    if t.is_null(arrow_type):
        return "void"
    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_signed_integer(arrow_type):
        return _INTEGERS[arrow_type.bit_width]
    if t.is_unsigned_integer(arrow_type):
        if arrow_type.bit_width in _UNSIGNED:
            return _UNSIGNED[arrow_type.bit_width]
        raise UnsupportedColumnType(f"column {column!r}: uint64 has no Athena type (bigint would overflow)")
    if t.is_float32(arrow_type):
        return "float"
    if t.is_float64(arrow_type):
        return "double"
    if t.is_decimal(arrow_type):
        if arrow_type.precision > 38:
            raise UnsupportedColumnType(f"column {column!r}: decimal({arrow_type.precision},{arrow_type.scale}) exceeds precision 38")
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or arrow_type == pa.string_view():
        return "string"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return "binary"
    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_date(arrow_type):
        return "date"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type):
        return f"array<{_nested(glue_type(arrow_type.value_type, column))}>"
    if t.is_map(arrow_type):
        return f"map<{_nested(glue_type(arrow_type.key_type, column))},{_nested(glue_type(arrow_type.item_type, column))}>"
    if t.is_struct(arrow_type):
        fields = []
        for index in range(arrow_type.num_fields):
            child = arrow_type.field(index)
            name = child.name.lower()
            if not _STRUCT_FIELD.match(name):
                raise UnsupportedColumnType(f"column {column!r}: struct field {child.name!r} has characters Athena does not allow")
            fields.append(f"{name}:{_nested(glue_type(child.type, f'{column}.{name}'))}")
        return f"struct<{','.join(fields)}>"
    raise UnsupportedColumnType(f"column {column!r}: Arrow type {arrow_type} has no Athena type")


def _nested(type_text: str) -> str:
    return "string" if type_text == "void" else type_text


def schema_columns(schema: Any) -> list[Column]:
    """Glue columns of an Arrow schema, in file order, names lower-cased."""
    columns: list[Column] = []
    seen: dict[str, str] = {}
    for arrow_field in schema:
        name = arrow_field.name.lower()
        if name in seen:
            raise DuplicateColumn(f"columns {seen[name]!r} and {arrow_field.name!r} are the same column in Athena")
        seen[name] = arrow_field.name
        if athena_name(name) != name:
            log.warning("column name is not Athena-safe; queries must quote it", extra={"column": arrow_field.name})
        columns.append(Column(name, glue_type(arrow_field.type, name)))
    return columns


def list_data_files(s3: Any, partition: LandedPartition, expected_bucket_owner: str | None = None) -> list[str]:
    lake = Bucket(s3, partition.bucket, expected_bucket_owner, lake=True)
    return sorted(o["Key"] for o in lake.objects_under(partition.prefix) if o["Key"].endswith(".parquet") and o.get("Size", 0) > 0)


def landed_columns(s3: Any, table: str, partition: LandedPartition, expected_bucket_owner: str | None = None) -> list[Column]:
    """The merged columns of the partition's data files (footers only).

    The files of one export's table share one schema (RDS writes one per table,
    snaplake one per DynamoDB export), so a bounded sample of footers (first,
    last and evenly spaced) is read: a 100,000-file export costs a few GETs.
    """
    owner = expected_bucket_owner
    keys = list_data_files(s3, partition, owner)
    if not keys:
        raise NoDataFiles(f"table {table!r}: no Parquet files under {partition.location}")
    if len(keys) > FOOTER_SAMPLE:
        step = (len(keys) - 1) / (FOOTER_SAMPLE - 1)
        keys = [keys[round(i * step)] for i in range(FOOTER_SAMPLE)]
    with ThreadPoolExecutor(max_workers=min(FOOTER_THREADS, len(keys))) as pool:
        schemas = list(pool.map(lambda key: read_parquet_schema(s3, partition.bucket, key, expected_bucket_owner=owner), keys))
    columns: list[Column] = []
    for schema in schemas:
        columns = merge_columns(table, columns, schema_columns(schema))
    return columns
