"""Glue Data Catalog registration of landed Parquet partitions.

Columns come from Parquet footers only: each landed data file is read with a
ranged GET of its tail (never the whole object). Arrow types map to Hive types
as Athena declares them. Snapshots are merged into one table definition:

- new columns are appended, existing columns keep their position, columns a
  snapshot no longer has are kept (older partitions still hold them);
- safe widenings are applied, because Athena's Parquet reader coerces the
  narrower physical type of older files: tinyint < smallint < int < bigint,
  float < double, decimal(p1,s) < decimal(p2,s) with the same scale, and the
  same rules inside array/map/struct (struct fields may be appended);
- anything else (int vs string, a decimal scale change, timestamp vs string...)
  raises `IncompatibleColumnType` naming the table and column, before the
  table is touched, so the previous definition and partitions stay queryable.

Column names are lower-cased (Athena resolves Parquet columns by lower-cased
name) but not otherwise renamed: renaming a column would make Athena read it
as all NULL. Database and table names are made Athena-safe with
`lake_keys.athena_name`.

A partition is registered with BatchCreatePartition (an existing partition is
reported, never registered twice), or, in projection mode, the table carries
partition projection properties and nothing is registered per snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from snaplake.aws import lake_access
from snaplake.errors import ConfigError, InvalidEvent, LandedManifestInvalid, SnaplakeError
from snaplake.handler_input import athena_identifier, s3_key
from snaplake.lake_keys import athena_name

log = logging.getLogger(__name__)

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
TABLE_TYPE = "EXTERNAL_TABLE"
MANAGED_BY = "snaplake"

FOOTER_TAIL_BYTES = 64 * 1024  # one GET covers the footer of almost every file
MAX_FOOTER_BYTES = 64 * 1024**2
PARQUET_MAGIC = b"PAR1"
BATCH_CREATE_LIMIT = 100  # BatchCreatePartition's per-call maximum
FOOTER_THREADS = 8

# Partition value formats of the lake layout and their projection settings.
SNAPSHOT_TIME_FORMAT = "yyyyMMdd'T'HHmmss'Z'"  # 20240502T120555Z, no ':'
_KEY_VALUE = re.compile(r"^([a-z0-9_]+)=([^=/]+)$")
_STRUCT_FIELD = re.compile(r"^[a-z0-9_.]+$")


class CatalogError(SnaplakeError):
    """Base class of the catalog step's errors."""


class IncompatibleColumnType(CatalogError):
    """A column's type changed between snapshots in a way Athena cannot read across partitions."""


class UnsupportedColumnType(CatalogError):
    """A Parquet column has a type Athena/Glue cannot declare (e.g. time, uint64, decimal precision > 38)."""


class DuplicateColumn(CatalogError):
    """Two columns of a Parquet schema have the same name once lower-cased."""


class ParquetFooterUnreadable(CatalogError):
    """A landed object is not a readable Parquet file (bad magic or footer)."""


class NoDataFiles(CatalogError):
    """A landed partition holds no Parquet data files to take the schema from."""


class UnsupportedPartitionLayout(CatalogError):
    """The partition prefix does not end in Hive `key=value` segments, or projection cannot describe a key."""


class PartitionKeysChanged(CatalogError):
    """The existing Glue table is partitioned by other keys than the landed layout."""


class PartitionRegistrationFailed(CatalogError):
    """BatchCreatePartition reported an error other than AlreadyExists for a partition."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str

    def as_glue(self) -> dict[str, str]:
        return {"Name": self.name, "Type": self.type}


# --- Parquet footers ---------------------------------------------------------------------------


def _ranged_get(s3: Any, bucket: str, key: str, range_header: str, owner: str | None) -> tuple[bytes, int]:
    extra = {"ExpectedBucketOwner": owner} if owner else {}
    response = s3.get_object(Bucket=bucket, Key=key, Range=range_header, **extra)
    body = bytes(response["Body"].read())
    content_range = response.get("ContentRange")  # "bytes 100-707/708"; absent when the whole object came back
    total = int(content_range.rsplit("/", 1)[1]) if content_range else len(body)
    return body, total


def read_parquet_schema(
    s3: Any, bucket: str, key: str, *, tail_bytes: int = FOOTER_TAIL_BYTES, expected_bucket_owner: str | None = None
) -> Any:
    """The Arrow schema of one Parquet object, from its footer only.

    One GET of the last `tail_bytes`; a second, exact GET when the footer is
    larger. A file smaller than `tail_bytes` comes back whole, which is fine.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = f"s3://{bucket}/{key}"
    tail, total = _ranged_get(s3, bucket, key, f"bytes=-{tail_bytes}", expected_bucket_owner)
    if len(tail) < 12 or tail[-4:] != PARQUET_MAGIC:
        raise ParquetFooterUnreadable(f"{where} is not a Parquet file (no PAR1 footer)")
    footer_length = struct.unpack("<I", tail[-8:-4])[0]
    needed = footer_length + 8
    if needed > total - 4 or footer_length > MAX_FOOTER_BYTES:
        raise ParquetFooterUnreadable(f"{where} declares a {footer_length}-byte footer in a {total}-byte file")
    if needed > len(tail):
        tail, _ = _ranged_get(s3, bucket, key, f"bytes=-{needed}", expected_bucket_owner)
    # The reader only looks at the end of the buffer; the leading magic keeps its size checks happy.
    buffer = PARQUET_MAGIC + tail[-needed:]
    try:
        return pq.ParquetFile(pa.BufferReader(buffer)).schema_arrow
    except (OSError, ValueError) as error:
        raise ParquetFooterUnreadable(f"{where}: {error}") from None


# --- Arrow → Hive types ------------------------------------------------------------------------

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


# --- Hive type strings and merging -------------------------------------------------------------


@dataclass(frozen=True)
class HiveType:
    """A parsed Hive type: a primitive (`name`, `params` for decimal) or array/map/struct with `children`."""

    name: str
    params: tuple[int, ...] = ()
    children: tuple[tuple[str, HiveType], ...] = ()

    def text(self) -> str:
        if self.name == "decimal":
            return f"decimal({self.params[0]},{self.params[1]})"
        if self.name == "array":
            return f"array<{self.children[0][1].text()}>"
        if self.name == "map":
            return f"map<{self.children[0][1].text()},{self.children[1][1].text()}>"
        if self.name == "struct":
            return "struct<" + ",".join(f"{name}:{child.text()}" for name, child in self.children) + ">"
        return self.name


_TOKEN = re.compile(r"\s*([a-z_][a-z0-9_.]*|\d+|[<>(),:])", re.IGNORECASE)


def parse_hive_type(text: str) -> HiveType:
    tokens = _TOKEN.findall(text)
    if "".join(tokens).replace(" ", "") != re.sub(r"\s+", "", text):
        raise ValueError(f"cannot parse Hive type {text!r}")
    position = 0

    def take(expected: str | None = None) -> str:
        nonlocal position
        if position >= len(tokens):
            raise ValueError(f"Hive type {text!r} ends early")
        token = tokens[position]
        if expected is not None and token != expected:
            raise ValueError(f"Hive type {text!r}: expected {expected!r}, found {token!r}")
        position += 1
        return token

    def parse() -> HiveType:
        name = take().lower()
        if name in ("decimal", "char", "varchar"):
            if position < len(tokens) and tokens[position] == "(":
                take("(")
                params = [int(take())]
                if tokens[position] == ",":
                    take(",")
                    params.append(int(take()))
                take(")")
                if name == "decimal":
                    return HiveType(name, (params[0], params[1] if len(params) > 1 else 0))
                return HiveType(name, tuple(params))
            return HiveType(name, (10, 0)) if name == "decimal" else HiveType(name)
        if name == "array":
            take("<")
            element = parse()
            take(">")
            return HiveType(name, children=(("element", element),))
        if name == "map":
            take("<")
            key = parse()
            take(",")
            value = parse()
            take(">")
            return HiveType(name, children=(("key", key), ("value", value)))
        if name == "struct":
            take("<")
            fields: list[tuple[str, HiveType]] = []
            while True:
                field_name = take().lower()
                take(":")
                fields.append((field_name, parse()))
                if take() == ">":
                    break
            return HiveType(name, children=tuple(fields))
        return HiveType("int" if name == "integer" else name)

    parsed = parse()
    if position != len(tokens):
        raise ValueError(f"Hive type {text!r} has trailing text")
    return parsed


_WIDENING = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}
_FLOATS = {"float": 1, "double": 2}


def _merge(old: HiveType, new: HiveType) -> HiveType | None:
    """The type that reads both, or None when there is none (see the module docstring)."""
    if old == new:
        return old
    if new.name == "void":
        return old
    if old.name == "void":
        return new
    for order in (_WIDENING, _FLOATS):
        if old.name in order and new.name in order:
            return old if order[old.name] >= order[new.name] else new
    if old.name == new.name == "decimal":
        if old.params[1] != new.params[1]:
            return None
        return old if old.params[0] >= new.params[0] else new
    if old.name == new.name and old.name in ("array", "map"):
        merged = [_merge(a, b) for (_, a), (_, b) in zip(old.children, new.children, strict=True)]
        if any(child is None for child in merged):
            return None
        return HiveType(old.name, children=tuple((name, child) for (name, _), child in zip(old.children, merged, strict=True) if child))
    if old.name == new.name == "struct":
        fields = dict(old.children)
        for name, child in new.children:
            if name in fields:
                merged_child = _merge(fields[name], child)
                if merged_child is None:
                    return None
                fields[name] = merged_child
            else:
                fields[name] = child
        return HiveType("struct", children=tuple(fields.items()))
    return None


def merge_columns(table: str, existing: Sequence[Column], landed: Sequence[Column]) -> list[Column]:
    """The table's columns after a snapshot: existing order kept, widenings applied, new columns appended."""

    def parsed(column: Column) -> HiveType:
        try:
            return parse_hive_type(column.type)
        except ValueError as error:
            raise IncompatibleColumnType(f"table {table!r} column {column.name!r}: {error}") from None

    merged: dict[str, HiveType] = {column.name: parsed(column) for column in existing}
    for column in landed:
        incoming = parsed(column)
        if column.name not in merged:
            merged[column.name] = incoming
            continue
        result = _merge(merged[column.name], incoming)
        if result is None:
            raise IncompatibleColumnType(
                f"table {table!r} column {column.name!r}: type {column.type} cannot be read together with the "
                f"catalog's {merged[column.name].text()}; earlier partitions keep the old definition"
            )
        merged[column.name] = result
    return [Column(name, "string" if kind.name == "void" else kind.text()) for name, kind in merged.items()]


# --- Layout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandedPartition:
    """One landed partition: the table's location and its Hive partition keys/values."""

    bucket: str
    table_prefix: str  # "lake/rds/world/users/" (ends with "/")
    keys: tuple[str, ...]  # ("snapshot_time",)
    values: tuple[str, ...]  # ("20240502T120555Z",)

    @property
    def table_location(self) -> str:
        return f"s3://{self.bucket}/{self.table_prefix}"

    @property
    def prefix(self) -> str:
        return self.table_prefix + "".join(f"{k}={v}/" for k, v in zip(self.keys, self.values, strict=True))

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @classmethod
    def parse(cls, bucket: str, partition_prefix: str) -> LandedPartition:
        """Split `<table prefix>/<k1>=<v1>/<k2>=<v2>/` into the table location and partition keys."""
        segments = [s for s in partition_prefix.strip("/").split("/") if s]
        first = next((i for i, s in enumerate(segments) if _KEY_VALUE.match(s)), None)
        if first is None or first == 0:
            raise UnsupportedPartitionLayout(
                f"partition prefix {partition_prefix!r} must end in Hive key=value segments after the table folder"
            )
        pairs = [_KEY_VALUE.match(s) for s in segments[first:]]
        if not all(pairs):
            raise UnsupportedPartitionLayout(f"partition prefix {partition_prefix!r}: only key=value segments may follow the table folder")
        keys = tuple(m.group(1) for m in pairs if m)
        if len(set(keys)) != len(keys):
            raise UnsupportedPartitionLayout(f"partition prefix {partition_prefix!r} repeats a partition key")
        return cls(bucket, "/".join(segments[:first]) + "/", keys, tuple(m.group(2) for m in pairs if m))


# --- Partition projection ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectionRule:
    """How a partition key is projected; `range_start` None means "the earliest value registered"."""

    type: str  # date | integer
    format: str | None = None
    interval: str | None = None
    interval_unit: str | None = None
    range_end: str = "NOW"
    digits: str | None = None


# Keys the lake layouts write. Second precision is what snapshot times carry; queries
# should filter on the key (an unfiltered query enumerates every second since the start).
DEFAULT_PROJECTION_RULES: Mapping[str, ProjectionRule] = {
    "snapshot_time": ProjectionRule("date", SNAPSHOT_TIME_FORMAT, "1", "SECONDS"),
    "export_time": ProjectionRule("date", SNAPSHOT_TIME_FORMAT, "1", "SECONDS"),
    "partition_datetime": ProjectionRule("date", SNAPSHOT_TIME_FORMAT, "1", "SECONDS"),
    "snapshot_date": ProjectionRule("date", "yyyy-MM-dd", "1", "DAYS"),
    "dt": ProjectionRule("date", "yyyy-MM-dd", "1", "DAYS"),
    "hour": ProjectionRule("integer", range_end="23", digits="2"),
}


def projection_parameters(
    partition: LandedPartition, existing: Mapping[str, str] | None = None, rules: Mapping[str, ProjectionRule] = DEFAULT_PROJECTION_RULES
) -> dict[str, str]:
    """Table properties projecting every partition key; the date range starts at the earliest value seen."""
    existing = existing or {}
    parameters = {"projection.enabled": "true"}
    for key, value in zip(partition.keys, partition.values, strict=True):
        rule = rules.get(key)
        if rule is None:
            raise UnsupportedPartitionLayout(f"no partition projection rule for key {key!r}; use partition registration instead")
        prefix = f"projection.{key}"
        parameters[f"{prefix}.type"] = rule.type
        if rule.type == "date":
            assert rule.format is not None
            previous = existing.get(f"{prefix}.range", "").split(",")[0]
            start = min(previous, value) if previous and existing.get(f"{prefix}.format") == rule.format else value
            parameters[f"{prefix}.format"] = rule.format
            parameters[f"{prefix}.range"] = f"{start},{rule.range_end}"
            if rule.interval:
                parameters[f"{prefix}.interval"] = rule.interval
            if rule.interval_unit:
                parameters[f"{prefix}.interval.unit"] = rule.interval_unit
        elif rule.type == "integer":
            parameters[f"{prefix}.range"] = f"0,{rule.range_end}"
            if rule.digits:
                parameters[f"{prefix}.digits"] = rule.digits
        else:
            raise UnsupportedPartitionLayout(f"projection type {rule.type!r} for key {key!r} is not supported")
    template = partition.table_location + "".join(f"{key}=${{{key}}}/" for key in partition.keys)
    parameters["storage.location.template"] = template
    return parameters


# --- Glue --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogOptions:
    projection: bool = False
    expected_bucket_owner: str | None = None  # for the footer reads
    catalog_id: str | None = None  # Glue catalog (account) when it is not the caller's
    projection_rules: Mapping[str, ProjectionRule] = field(default_factory=lambda: dict(DEFAULT_PROJECTION_RULES))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> CatalogOptions:
        """CATALOG_MODE (`partitions` or `projection`), GLUE_CATALOG_ID, LAKE_BUCKET_OWNER."""
        mode = env.get("CATALOG_MODE", "").strip().lower() or "partitions"
        if mode not in ("partitions", "projection"):
            raise ConfigError(f"environment variable CATALOG_MODE={mode!r} must be 'partitions' or 'projection'")
        catalog_id = env.get("GLUE_CATALOG_ID", "").strip() or None
        if catalog_id is not None and not re.fullmatch(r"\d{12}", catalog_id):
            raise ConfigError(f"environment variable GLUE_CATALOG_ID={catalog_id!r} must be a 12-digit account id")
        owner = env.get("LAKE_BUCKET_OWNER", "").strip() or None
        return cls(projection=mode == "projection", expected_bucket_owner=owner, catalog_id=catalog_id)

    def catalog(self) -> dict[str, str]:
        return {"CatalogId": self.catalog_id} if self.catalog_id else {}


@dataclass(frozen=True)
class Registration:
    database: str
    table: str
    partition_values: tuple[str, ...]
    location: str
    table_created: bool
    table_updated: bool
    added_columns: tuple[str, ...]
    widened_columns: tuple[str, ...]
    partition_registered: bool  # False: it already existed, or projection mode

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "partitionValues": list(self.partition_values),
            "location": self.location,
            "tableCreated": self.table_created,
            "tableUpdated": self.table_updated,
            "addedColumns": list(self.added_columns),
            "widenedColumns": list(self.widened_columns),
            "partitionRegistered": self.partition_registered,
        }


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def ensure_database(glue: Any, name: str, *, description: str = "", options: CatalogOptions | None = None) -> bool:
    """Create the Glue database if missing; returns True when it was created."""
    options = options or CatalogOptions()
    name = athena_name(name)
    try:
        glue.get_database(Name=name, **options.catalog())
        return False
    except ClientError as error:
        if _error_code(error) != "EntityNotFoundException":
            raise
    try:
        database_input: dict[str, Any] = {"Name": name, "Parameters": {"managed_by": MANAGED_BY}}
        if description:
            database_input["Description"] = description
        glue.create_database(DatabaseInput=database_input, **options.catalog())
    except ClientError as error:
        if _error_code(error) != "AlreadyExistsException":  # created concurrently: fine
            raise
        return False
    return True


def list_data_files(s3: Any, partition: LandedPartition, expected_bucket_owner: str | None = None) -> list[str]:
    extra = {"ExpectedBucketOwner": expected_bucket_owner} if expected_bucket_owner else {}
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=partition.bucket, Prefix=partition.prefix, **extra):
        keys.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".parquet") and obj.get("Size", 0) > 0)
    return sorted(keys)


FOOTER_SAMPLE = 4


def landed_columns(s3: Any, table: str, partition: LandedPartition, expected_bucket_owner: str | None = None) -> list[Column]:
    """The merged columns of the partition's data files (footers only).

    The files of one export's table share one schema (RDS writes one per table,
    snaplake one per DynamoDB export), so a bounded sample of footers (first,
    last and evenly spaced) is read: a 100,000-file export costs a few GETs.
    """
    owner = expected_bucket_owner
    with lake_access(partition.bucket, owner, None, "read"):
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


def _storage_descriptor(columns: Sequence[Column], location: str) -> dict[str, Any]:
    return {
        "Columns": [c.as_glue() for c in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": False,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "StoredAsSubDirectories": False,
    }


def _get_table(glue: Any, database: str, table: str, options: CatalogOptions) -> dict[str, Any] | None:
    try:
        return dict(glue.get_table(DatabaseName=database, Name=table, **options.catalog())["Table"])
    except ClientError as error:
        if _error_code(error) == "EntityNotFoundException":
            return None
        raise


@dataclass(frozen=True)
class TableChange:
    created: bool
    updated: bool
    columns: tuple[Column, ...]  # the table's columns after the change
    added: tuple[Column, ...]
    widened: tuple[Column, ...]


def upsert_table(
    glue: Any, database: str, table: str, partition: LandedPartition, columns: Sequence[Column], options: CatalogOptions
) -> TableChange:
    """Create the table or merge `columns` into it.

    Every check runs before any write: on an incompatible column nothing changes.
    """
    partition_keys = [Column(key, "string") for key in partition.keys]
    existing = _get_table(glue, database, table, options)
    old_parameters: dict[str, str] = dict(existing.get("Parameters", {})) if existing else {}
    old_columns = [Column(c["Name"], c["Type"]) for c in existing["StorageDescriptor"].get("Columns", [])] if existing else []
    if existing:
        old_keys = [c["Name"] for c in existing.get("PartitionKeys", [])]
        if old_keys != list(partition.keys):
            raise PartitionKeysChanged(
                f"table {database}.{table} is partitioned by {old_keys}, the landed layout by {list(partition.keys)}"
            )
    merged = merge_columns(table, old_columns, columns)
    parameters = {**old_parameters, "classification": "parquet", "EXTERNAL": "TRUE", "managed_by": MANAGED_BY}
    if options.projection:
        parameters.update(projection_parameters(partition, old_parameters, options.projection_rules))
    table_input: dict[str, Any] = {
        "Name": table,
        "TableType": TABLE_TYPE,
        "Parameters": parameters,
        "PartitionKeys": [c.as_glue() for c in partition_keys],
        "StorageDescriptor": _storage_descriptor(merged, partition.table_location),
    }
    old_types = {c.name: c.type for c in old_columns}
    added = [c for c in merged if c.name not in old_types]
    widened = [c for c in merged if c.name in old_types and old_types[c.name] != c.type]
    if existing is None:
        try:
            glue.create_table(DatabaseName=database, TableInput=table_input, **options.catalog())
        except ClientError as error:
            if _error_code(error) != "AlreadyExistsException":
                raise
            # Another run (a redelivered event) created it a moment ago: merge into that one.
            return upsert_table(glue, database, table, partition, columns, options)
        return TableChange(True, False, tuple(merged), tuple(merged), ())
    unchanged = (
        not added
        and not widened
        and parameters == old_parameters
        and existing["StorageDescriptor"].get("Location") == partition.table_location
        and existing.get("TableType") == TABLE_TYPE
    )
    if unchanged:
        return TableChange(False, False, tuple(merged), (), ())
    if existing.get("Description"):
        table_input["Description"] = existing["Description"]
    glue.update_table(DatabaseName=database, TableInput=table_input, **options.catalog())
    return TableChange(False, True, tuple(merged), tuple(added), tuple(widened))


def register_partitions(
    glue: Any, database: str, table: str, partitions: Sequence[LandedPartition], columns: Sequence[Column], options: CatalogOptions
) -> list[tuple[str, ...]]:
    """BatchCreatePartition in calls of ≤ 100; returns the values actually created.

    AlreadyExists entries are skipped (a re-run registers nothing twice); any
    other per-entry error raises `PartitionRegistrationFailed` naming the partition.
    """
    created: list[tuple[str, ...]] = []
    for start in range(0, len(partitions), BATCH_CREATE_LIMIT):
        chunk = partitions[start : start + BATCH_CREATE_LIMIT]
        entries = [
            {"Values": list(p.values), "StorageDescriptor": _storage_descriptor(columns, p.location), "Parameters": {}} for p in chunk
        ]
        response = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=entries, **options.catalog())
        existed: set[tuple[str, ...]] = set()
        for error in response.get("Errors", []):
            values = tuple(error.get("PartitionValues", []))
            detail = error.get("ErrorDetail", {})
            if detail.get("ErrorCode") == "AlreadyExistsException":
                existed.add(values)
                continue
            raise PartitionRegistrationFailed(
                f"{database}.{table} partition {values}: {detail.get('ErrorCode')}: {detail.get('ErrorMessage', '')}"
            )
        for p in chunk:
            if p.values in existed:
                _check_existing_location(glue, database, table, p, options)
        created.extend(p.values for p in chunk if p.values not in existed)
    return created


def _check_existing_location(glue: Any, database: str, table: str, partition: LandedPartition, options: CatalogOptions) -> None:
    """An already registered partition must point where this one landed; otherwise Athena reads other data."""
    found = glue.get_partition(DatabaseName=database, TableName=table, PartitionValues=list(partition.values), **options.catalog())
    location = found["Partition"].get("StorageDescriptor", {}).get("Location", "")
    if location.rstrip("/") != partition.location.rstrip("/"):
        raise PartitionRegistrationFailed(
            f"{database}.{table} partition {partition.values} is already registered at {location}, not at {partition.location}"
        )


def register_partition(
    glue: Any,
    s3: Any,
    *,
    database: str,
    table: str,
    bucket: str,
    partition_prefix: str,
    options: CatalogOptions | None = None,
) -> Registration:
    """Bring the Glue table of one landed partition up to date and make the partition visible.

    `partition_prefix` is the key prefix of the landed partition, e.g.
    `lake/rds/world/users/snapshot_time=20240502T120555Z/` (the `partition` of
    a landed.json table entry) or `lake/dynamodb_changes/orders/dt=2024-05-02/hour=07/`.
    """
    options = options or CatalogOptions()
    database, table = athena_name(database), athena_name(table)
    partition = LandedPartition.parse(bucket, partition_prefix)
    columns = landed_columns(s3, table, partition, options.expected_bucket_owner)
    reserved = {c.name for c in columns} & set(partition.keys)
    if reserved:
        raise DuplicateColumn(f"table {table!r}: data columns {sorted(reserved)} clash with the partition keys")
    ensure_database(glue, database, options=options)
    change = upsert_table(glue, database, table, partition, columns, options)
    registered = False
    if not options.projection:
        registered = bool(register_partitions(glue, database, table, [partition], change.columns, options))
    log.info("catalog registered", extra={"database": database, "table": table, "partition": partition.values, "new": registered})
    return Registration(
        database=database,
        table=table,
        partition_values=partition.values,
        location=partition.location,
        table_created=change.created,
        table_updated=change.updated,
        added_columns=tuple(c.name for c in change.added),
        widened_columns=tuple(c.name for c in change.widened),
        partition_registered=registered,
    )


def register_landed(
    glue: Any, s3: Any, landed: Mapping[str, Any], *, database: str | None = None, options: CatalogOptions | None = None
) -> list[Registration]:
    """Register every table of a landed manifest (`landed.json` of lake_copy.finalize_copy).

    `database` overrides the per-source database named in the manifest.
    """
    bucket = landed["lakeBucket"]
    tables: Iterable[Mapping[str, Any]] = landed["tables"]
    return [
        register_partition(
            glue,
            s3,
            database=database or str(entry["database"]),
            table=str(entry["table"]),
            bucket=bucket,
            partition_prefix=str(entry["partition"]),
            options=options,
        )
        for entry in tables
    ]


# --- Inputs of the catalog step ----------------------------------------------------------------


def parse_landed_manifest(body: bytes, where: str, *, lake_bucket: str) -> dict[str, Any]:
    """`landed.json` as FinalizeCopy writes it (read from `where`), checked whole before anything is registered.

    Its names must already be Athena names (FinalizeCopy writes them so): a
    name that is not did not come from FinalizeCopy and is refused, not made safe.
    """
    try:
        landed = json.loads(body)
    except ValueError as error:  # also UnicodeDecodeError
        raise LandedManifestInvalid(f"landed manifest {where} is not JSON: {str(error)[:200]}") from None
    if not isinstance(landed, dict) or not isinstance(landed.get("tables"), list):
        raise LandedManifestInvalid(f"landed manifest {where} is not an object with a 'tables' list")
    if landed.get("lakeBucket") != lake_bucket:
        named = str(landed.get("lakeBucket"))[:100]
        raise LandedManifestInvalid(f"landed manifest {where} names lake bucket {named!r}, not {lake_bucket!r}")
    for index, entry in enumerate(landed["tables"]):
        try:
            if not isinstance(entry, dict):
                raise InvalidEvent(f"the entry is a {type(entry).__name__}, not an object")
            athena_identifier(entry.get("database"), "database")
            athena_identifier(entry.get("table"), "table")
            LandedPartition.parse(lake_bucket, s3_key(entry.get("partition"), "partition", folder=True))
        except (InvalidEvent, UnsupportedPartitionLayout) as error:
            raise LandedManifestInvalid(f"landed manifest {where} tables[{index}]: {error}") from None
    return landed


def dynamodb_partitions(kind: str, table: str, partitions: Sequence[Any]) -> list[str]:
    """The partition prefixes FinalizeConversion published for `table`, checked before any is registered.

    Each must be a Hive partition under the table's own folder: `.../dynamodb/<table>/...`
    for a full export, `.../dynamodb_changes/<table>/...` for an incremental one.
    """
    folder = ("dynamodb" if kind == "full" else "dynamodb_changes", table)
    checked = []
    for index, raw in enumerate(partitions):
        prefix = s3_key(raw, f"partitions[{index}]", folder=True)
        try:
            partition = LandedPartition.parse("", prefix)
        except UnsupportedPartitionLayout as error:
            raise InvalidEvent(f"partitions[{index}]: {error}") from None
        if tuple(partition.table_prefix.rstrip("/").split("/")[-2:]) != folder:
            raise InvalidEvent(f"partitions[{index}] {prefix[:200]!r} is not a partition of {'/'.join(folder)}/")
        checked.append(prefix)
    return checked
