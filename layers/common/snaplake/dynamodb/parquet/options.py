"""What the DynamoDB export conversion is told (ConvertOptions), reads (BinaryStream) and shares: export kinds, the
JSON reader's types per AttributeValue descriptor, and the system columns of incremental exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import pyarrow as pa

from snaplake.dynamodb.attribute_values import SET_DESCRIPTORS

ExportKind = Literal["full", "incremental"]


# How pyarrow's JSON reader is told to read each scalar and set AttributeValue
# (numbers and binary stay text here; typing happens after parsing).
READ_TYPES: dict[str, pa.DataType] = {
    "S": pa.string(),
    "N": pa.string(),
    "B": pa.string(),
    "BOOL": pa.bool_(),
    "NULL": pa.bool_(),
    **{descriptor: pa.list_(pa.string()) for descriptor in SET_DESCRIPTORS},
}


class BinaryStream(Protocol):
    """What the conversion reads from: a decompressed data file (a BinaryIO, a gzip.GzipFile, ...)."""

    def read(self, size: int = -1, /) -> bytes: ...


# The system columns of incremental exports (and the stream change log). Athena-safe without quoting; the attribute
# columns beside them are prefixed key__/new__/old__, so no attribute can take these names. (Until issue 11 they were
# `_change_type` / `_write_time`; partitions landed before keep those names in their Parquet files.)
CHANGE_TYPE_COLUMN = "change_type"
WRITE_TIME_COLUMN = "write_time"
WRITE_TIME_TYPE = pa.timestamp("us", tz="UTC")
SCHEMA_FORMAT = "snaplake.dynamodb-export-schema/1"
MAX_DECIMAL_DIGITS = 38

# Top-level fields of a data line, per export kind.
SECTIONS: dict[str, tuple[str, ...]] = {
    "full": ("Item",),
    "incremental": ("Keys", "NewImage", "OldImage", "Metadata"),
}
# Sections that become columns, with their column name prefix.
COLUMN_SECTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "full": {"Item": ()},
    "incremental": {"Keys": ("key",), "NewImage": ("new",), "OldImage": ("old",)},
}
INT64_DIGITS = 19  # 9223372036854775807
CHUNK_BYTES = 1 << 20  # the JSON reader's parallel unit; lines longer than this are retried with larger chunks
PRIME_BYTES = 256 * 1024  # first look at a file's head, to learn its attribute names cheaply
CONTROL_CHARACTERS = "[\\x00-\\x1f]"
NEEDS_ESCAPE = '[\\x00-\\x1f"\\\\]'
SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


@dataclass(frozen=True)
class ConvertOptions:
    separator: str = "__"  # joins flattened map paths: address.city -> address__city
    max_depth: int = 3  # map nesting flattened to this many path segments; deeper maps become JSON text
    block_bytes: int = 32 * 1024**2  # decompressed bytes of JSON lines per block (bounded memory)
    float_numbers: bool = False  # when True, non-integral N become float64 instead of decimal

    def __post_init__(self) -> None:
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {self.max_depth}")
        if self.block_bytes < 1:
            raise ValueError(f"block_bytes must be positive, got {self.block_bytes}")
