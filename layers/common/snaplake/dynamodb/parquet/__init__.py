"""DynamoDB export data files (DynamoDB JSON lines) -> Parquet with exact types.

A DynamoDB export is converted in two passes, so that every data file of one
export gets the same columns and types:

1. `scan_file` reads each data file and returns an `ExportSchema`: per
   attribute path the DynamoDB types seen, number digits, map children. The
   schemas of all files are merged (`ExportSchema.merge`) and stored as JSON
   between Lambda steps.
2. `convert_file` reads each data file again and writes one Parquet file whose
   columns are exactly `ExportSchema.arrow_schema(...)`.

The JSON need not be parsed twice: given a stage, `scan_file` also converts
each block it parsed with the schema learned so far, and `convert_staged` carries
those tables over to the merged schema (`snaplake.dynamodb.parquet.staging`),
giving the same Parquet file as `convert_file`; where a block does not carry
over exactly (`NotCarriedOver`), the file is converted from its JSON.

Both passes stream: the decompressed file is cut into blocks of complete lines
(`iter_blocks`, about `ConvertOptions.block_bytes` each), every block is parsed
by pyarrow's C++ JSON reader and turned into typed columns with
pyarrow.compute, and each block becomes one Parquet row group. Memory is
bounded by a small multiple of the block size, whatever the file size.

Type rules:

- S -> string, BOOL -> bool, B -> binary, NULL -> null (a path that is only
  ever NULL -> string column, all null).
- N -> int64 if every value of the path in the export is integral and fits
  int64; otherwise decimal128(38, s) with s the largest scale seen; a string
  column with the exact number text when integer digits + s exceed 38. With
  `float_numbers`, float64 instead of decimal/string.
- SS -> list<string>, NS -> list<number typed as N>, BS -> list<binary>.
- M -> one column per child (`parent<sep>child`) down to `max_depth` path
  segments; a map at the depth limit, or a map never seen with children,
  -> JSON text.
- L, and any path whose DynamoDB type differs between items (NULL aside) ->
  string column with the JSON text of each value (see snaplake.dynamodb.attribute_values).
- Incremental exports: `change_type` (INSERT / MODIFY / REMOVE: which of
  NewImage / OldImage a line carries), `write_time` (timestamp[us, UTC], the
  line's `Metadata.WriteTimestampMicros`), then `key<sep>...`, `new<sep>...`,
  `old<sep>...` columns typed by the same rules.

Column names are Athena-safe (`athena_name`); when several source paths give
the same name, the first of them in sorted order keeps it and the others get
`_2`, `_3`, ... Columns are sorted by name (the two incremental columns first).

The JSON reader infers types per block and per 1 MB chunk (ISO-8601-looking
strings even become timestamps), so nothing here trusts an inferred type:
every block is read with an explicit schema built from the DynamoDB JSON
grammar and the shapes seen so far; inference is only used to discover new
attribute names, and a block that brings new names is read again with the
extended explicit schema.
"""

from snaplake.dynamodb.parquet.decoded import convert_lines
from snaplake.dynamodb.parquet.files import convert_block, convert_file, convert_staged, iter_blocks, scan_file, staged_blocks
from snaplake.dynamodb.parquet.options import (
    CHANGE_TYPE_COLUMN,
    WRITE_TIME_COLUMN,
    WRITE_TIME_TYPE,
    BinaryStream,
    ConvertOptions,
    ExportKind,
)
from snaplake.dynamodb.parquet.schema import ExportSchema
from snaplake.dynamodb.parquet.staging import CappedStage, NotCarriedOver

__all__ = [
    "CHANGE_TYPE_COLUMN",
    "WRITE_TIME_COLUMN",
    "WRITE_TIME_TYPE",
    "BinaryStream",
    "CappedStage",
    "ConvertOptions",
    "ExportKind",
    "ExportSchema",
    "NotCarriedOver",
    "convert_block",
    "convert_file",
    "convert_lines",
    "convert_staged",
    "iter_blocks",
    "scan_file",
    "staged_blocks",
]
