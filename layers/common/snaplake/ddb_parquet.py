"""DynamoDB export data files (DynamoDB JSON lines) -> Parquet with exact types.

A DynamoDB export is converted in two passes, so that every data file of one
export gets the same columns and types:

1. `scan_file` reads each data file and returns an `ExportSchema`: per
   attribute path the DynamoDB types seen, number digits, map children. The
   schemas of all files are merged (`ExportSchema.merge`) and stored as JSON
   between Lambda steps.
2. `convert_file` reads each data file again and writes one Parquet file whose
   columns are exactly `ExportSchema.arrow_schema(...)`.

Both passes stream: the decompressed file is cut into blocks of complete lines
(`iter_blocks`, about `ConvertOptions.block_bytes` each), every block is parsed
by pyarrow's C++ JSON reader and turned into typed columns with
pyarrow.compute, and each block becomes one Parquet row group. Memory is
bounded by a small multiple of the block size, whatever the file size.

Type rules (DESIGN.md "Data rules"):

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
  string column with the JSON text of each value (see snaplake.dynamodb_types).
- Incremental exports: `_change_type` (INSERT / MODIFY / REMOVE),
  `_write_time` (timestamp[us, UTC]), then `key<sep>...`, `new<sep>...`,
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

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from snaplake.dynamodb_types import (
    DESCRIPTORS,
    PLAIN_NUMBER_PATTERN,
    SET_DESCRIPTORS,
    InvalidAttributeValue,
    attribute_json,
    canonical_number,
    check_attributes,
    decode_binary,
    json_string,
)
from snaplake.errors import SnaplakeError
from snaplake.lake_keys import assign_column_names

ExportKind = Literal["full", "incremental"]


# How pyarrow's JSON reader is told to read each scalar and set AttributeValue
# (numbers and binary stay text here; typing happens after parsing).
_READ_TYPES: dict[str, pa.DataType] = {
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


CHANGE_TYPE_COLUMN = "_change_type"
WRITE_TIME_COLUMN = "_write_time"
WRITE_TIME_TYPE = pa.timestamp("us", tz="UTC")
SCHEMA_FORMAT = "snaplake.dynamodb-export-schema/1"
MAX_DECIMAL_DIGITS = 38

# Top-level fields of a data line, per export kind.
_SECTIONS: dict[str, tuple[str, ...]] = {
    "full": ("Item",),
    "incremental": ("Keys", "NewImage", "OldImage", "Metadata"),
}
# Sections that become columns, with their column name prefix.
_COLUMN_SECTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "full": {"Item": ()},
    "incremental": {"Keys": ("key",), "NewImage": ("new",), "OldImage": ("old",)},
}
_INT64_DIGITS = 19  # 9223372036854775807
_CHUNK_BYTES = 1 << 20  # the JSON reader's parallel unit; lines longer than this are retried with larger chunks
_PRIME_BYTES = 256 * 1024  # first look at a file's head, to learn its attribute names cheaply
_CONTROL_CHARACTERS = "[\\x00-\\x1f]"
_NEEDS_ESCAPE = '[\\x00-\\x1f"\\\\]'
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


class MalformedExportLine(SnaplakeError):
    """A data line is not DynamoDB JSON of the export's kind; the message names the line."""


class AttributeNotInSchema(SnaplakeError):
    """A data file holds values its ExportSchema does not describe (changed after the scan, or a schema of other files)."""


class IncompatibleSchemas(SnaplakeError):
    """ExportSchemas (or a schema and the conversion options) were built for different export kinds or depth limits."""


class UnexpectedWriteTime(SnaplakeError):
    """An incremental line's Metadata.WriteTime is not an integral epoch time in seconds, milliseconds or microseconds."""


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


# --------------------------------------------------------------------------- schema model


@dataclass(frozen=True)
class _NumberStats:
    """What the N values (or NS members) of one path need: int64 or the decimal's scale and integer digits."""

    int64: bool
    max_scale: int
    max_int_digits: int

    def merged(self, other: _NumberStats | None) -> _NumberStats:
        if other is None:
            return self
        return _NumberStats(
            int64=self.int64 and other.int64,
            max_scale=max(self.max_scale, other.max_scale),
            max_int_digits=max(self.max_int_digits, other.max_int_digits),
        )

    def arrow_type(self, options: ConvertOptions) -> pa.DataType:
        if self.int64:
            return pa.int64()
        if options.float_numbers:
            return pa.float64()
        if self.max_int_digits + self.max_scale <= MAX_DECIMAL_DIGITS:
            return pa.decimal128(MAX_DECIMAL_DIGITS, self.max_scale)
        return pa.string()

    def to_json(self) -> dict[str, Any]:
        return {"int64": self.int64, "max_scale": self.max_scale, "max_int_digits": self.max_int_digits}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> _NumberStats:
        return cls(bool(raw["int64"]), int(raw["max_scale"]), int(raw["max_int_digits"]))


def _merged_stats(a: _NumberStats | None, b: _NumberStats | None) -> _NumberStats | None:
    return b if a is None else a.merged(b)


@dataclass
class _Node:
    """One attribute path: the DynamoDB types seen there and, for M and L, what is inside.

    A section root (Item, Keys, ...) is a node whose children are the item's attributes.
    """

    types: set[str] = field(default_factory=set)
    number: _NumberStats | None = None  # N values, tracked where the path can be a column
    set_number: _NumberStats | None = None  # NS members, likewise
    children: dict[str, _Node] = field(default_factory=dict)  # M
    element: _Node | None = None  # L: the union of the elements' shapes

    def child(self, name: str) -> _Node:
        found = self.children.get(name)
        if found is None:
            found = self.children[name] = _Node()
        return found

    def merged(self, other: _Node) -> _Node:
        names = list(self.children) + [name for name in other.children if name not in self.children]
        children = {}
        for name in names:
            mine, theirs = self.children.get(name), other.children.get(name)
            children[name] = mine.merged(theirs) if mine and theirs else (mine or theirs or _Node()).copy()
        element = self.element.merged(other.element) if self.element and other.element else self.element or other.element
        return _Node(
            types=self.types | other.types,
            number=_merged_stats(self.number, other.number),
            set_number=_merged_stats(self.set_number, other.set_number),
            children=children,
            element=element.copy() if element is not None else None,
        )

    def copy(self) -> _Node:
        return _Node.from_json(self.to_json())

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"types": sorted(self.types)}
        if self.number is not None:
            raw["number"] = self.number.to_json()
        if self.set_number is not None:
            raw["set_number"] = self.set_number.to_json()
        if self.children:
            raw["children"] = {name: child.to_json() for name, child in self.children.items()}
        if self.element is not None:
            raw["element"] = self.element.to_json()
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> _Node:
        types = set(raw.get("types", []))
        unknown = types - DESCRIPTORS
        if unknown:
            raise IncompatibleSchemas(f"schema names unknown DynamoDB types {sorted(unknown)}")
        return cls(
            types=types,
            number=_NumberStats.from_json(raw["number"]) if "number" in raw else None,
            set_number=_NumberStats.from_json(raw["set_number"]) if "set_number" in raw else None,
            children={name: cls.from_json(child) for name, child in raw.get("children", {}).items()},
            element=cls.from_json(raw["element"]) if "element" in raw else None,
        )

    def value_type(self) -> pa.StructType:
        """The JSON reader's type for this path's AttributeValue objects."""
        fields = []
        for descriptor in sorted(self.types):
            if descriptor in _READ_TYPES:
                fields.append(pa.field(descriptor, _READ_TYPES[descriptor]))
            elif descriptor == "L":
                element = self.element.value_type() if self.element is not None else pa.struct([])
                fields.append(pa.field(descriptor, pa.list_(element)))
            else:
                fields.append(pa.field(descriptor, self.attributes_type()))
        return pa.struct(fields)

    def attributes_type(self) -> pa.StructType:
        """The JSON reader's type for this node's children (an item or a map)."""
        return pa.struct([pa.field(name, self.children[name].value_type()) for name in sorted(self.children)])


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # string number bool binary null ss ns bs json change_type write_time
    arrow_type: pa.DataType
    section: str = ""
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Plan:
    columns: tuple[_Column, ...]
    arrow_schema: pa.Schema
    parse_schema: pa.Schema  # explicit schema for the JSON reader


_LEAF_KINDS = {"S": "string", "N": "number", "B": "binary", "BOOL": "bool", "SS": "ss", "NS": "ns", "BS": "bs", "L": "json"}


def _leaf_kind(node: _Node, depth: int, max_depth: int) -> str:
    types = node.types - {"NULL"}
    if not types:
        return "null"
    if len(types) > 1:
        return "json"
    (only,) = types
    if only == "M":
        return "flatten" if depth < max_depth and node.children else "json"
    return _LEAF_KINDS[only]


def _leaf_type(kind: str, node: _Node, options: ConvertOptions) -> pa.DataType:
    if kind == "number":
        return node.number.arrow_type(options) if node.number is not None else pa.string()
    if kind == "ns":
        return pa.list_(node.set_number.arrow_type(options) if node.set_number is not None else pa.string())
    return {
        "string": pa.string(),
        "bool": pa.bool_(),
        "binary": pa.binary(),
        "null": pa.string(),
        "json": pa.string(),
        "ss": pa.list_(pa.string()),
        "bs": pa.list_(pa.binary()),
    }[kind]


def _collect_leaves(node: _Node, path: tuple[str, ...], depth: int, max_depth: int, out: list[tuple[tuple[str, ...], _Node, str]]) -> None:
    kind = _leaf_kind(node, depth, max_depth)
    if kind == "flatten":
        for name, child in node.children.items():
            _collect_leaves(child, (*path, name), depth + 1, max_depth, out)
    else:
        out.append((path, node, kind))


def _source_path(section: str, path: tuple[str, ...], kind: str) -> str:
    parts = (section, *path) if kind == "incremental" else path
    return ".".join(part.replace("\\", "\\\\").replace(".", "\\.") for part in parts)


class ExportSchema:
    """What the data files of one export contain, column by column.

    Built by observe_block() (scan_file), merged across files, JSON-serializable
    (to_json() -> dict, from_json(dict)) so it can be stored in S3 between Lambda
    steps. It remembers the export kind and the depth limit it was observed
    with; merging or converting with others raises IncompatibleSchemas.
    """

    def __init__(self) -> None:
        self.kind: ExportKind | None = None
        self.max_depth: int | None = None
        self._sections: dict[str, _Node] = {}
        self._plans: dict[tuple[str, ConvertOptions], _Plan] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExportSchema) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        attributes = sum(len(root.children) for root in self._sections.values())
        return f"ExportSchema(kind={self.kind!r}, max_depth={self.max_depth!r}, top-level attributes={attributes})"

    # ---- building

    def observe_block(self, block: bytes, kind: ExportKind, options: ConvertOptions) -> int:
        """Add one block of complete lines to the schema; returns the number of rows (items) in it."""
        return self._observe(block, kind, options, first_line=1)

    def _observe(self, block: bytes, kind: ExportKind, options: ConvertOptions, first_line: int) -> int:
        self._bind(kind, options)
        if not block or block.isspace():
            return 0
        known = self._scan_parse_schema(kind)
        table = _parse_discovering(block, known, kind, first_line)
        sections = {name: _combined(table.column(name)) for name in table.column_names}
        rows = table.num_rows
        del table
        try:
            self._observe_sections(sections, kind, options)
        except SnaplakeError as error:
            raise _located_problem(block, kind, first_line, None, error) from None
        return rows

    def _observe_sections(self, sections: dict[str, pa.Array], kind: ExportKind, options: ConvertOptions) -> None:
        if kind == "full":
            _require_items(sections)
        self._plans.clear()
        for name in _SECTIONS[kind]:
            if name in sections:
                root = self._sections.setdefault(name, _Node())
                stats = name != "Metadata"
                _observe_attributes(root, sections[name], name, 1, stats, options.max_depth)

    def _bind(self, kind: ExportKind, options: ConvertOptions) -> None:
        if kind not in _SECTIONS:
            raise ValueError(f"export kind must be 'full' or 'incremental', got {kind!r}")
        if self.kind is None:
            self.kind = kind
        elif self.kind != kind:
            raise IncompatibleSchemas(f"this schema describes a {self.kind} export, not a {kind} one")
        if self.max_depth is None:
            self.max_depth = options.max_depth
        elif self.max_depth != options.max_depth:
            raise IncompatibleSchemas(f"this schema was observed with max_depth={self.max_depth}, not {options.max_depth}")

    def _scan_parse_schema(self, kind: str) -> pa.Schema | None:
        fields = [pa.field(name, self._sections[name].attributes_type()) for name in _SECTIONS[kind] if name in self._sections]
        return pa.schema(fields) if fields else None

    def merge(self, other: ExportSchema) -> ExportSchema:
        """A new schema describing the files of both (neither is changed)."""
        merged = ExportSchema()
        merged.kind = _same("kind", self.kind, other.kind)
        merged.max_depth = _same("max_depth", self.max_depth, other.max_depth)
        for name in list(self._sections) + [name for name in other._sections if name not in self._sections]:
            mine, theirs = self._sections.get(name), other._sections.get(name)
            merged._sections[name] = mine.merged(theirs) if mine and theirs else (mine or theirs or _Node()).copy()
        return merged

    # ---- storage

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "kind": self.kind,
            "max_depth": self.max_depth,
            "sections": {name: root.to_json() for name, root in self._sections.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportSchema:
        if not isinstance(raw, dict) or raw.get("format") != SCHEMA_FORMAT:
            raise IncompatibleSchemas(f"not a {SCHEMA_FORMAT} document")
        schema = cls()
        if raw.get("kind") not in (None, *_SECTIONS):
            raise IncompatibleSchemas(f"unknown export kind {raw.get('kind')!r}")
        schema.kind = raw.get("kind")
        schema.max_depth = raw.get("max_depth")
        schema._sections = {name: _Node.from_json(root) for name, root in raw.get("sections", {}).items()}
        return schema

    # ---- output

    def arrow_schema(self, kind: ExportKind, options: ConvertOptions) -> pa.Schema:
        """The Parquet schema convert_block/convert_file produce."""
        return self._plan(kind, options).arrow_schema

    def column_names(self, kind: ExportKind, options: ConvertOptions) -> dict[str, str]:
        """Source path -> column name for the attribute columns.

        Source paths join the attribute names with '.' (a '.' or '\\' inside a
        name is escaped with '\\'); incremental paths start with Keys, NewImage or
        OldImage. The two fixed incremental columns are not included.
        """
        return {_source_path(column.section, column.path, kind): column.name for column in self._plan(kind, options).columns if column.path}

    def _plan(self, kind: ExportKind, options: ConvertOptions) -> _Plan:
        if kind not in _SECTIONS:
            raise ValueError(f"export kind must be 'full' or 'incremental', got {kind!r}")
        if self.kind is not None and self.kind != kind:
            raise IncompatibleSchemas(f"this schema describes a {self.kind} export, not a {kind} one")
        if self.max_depth is not None and self.max_depth != options.max_depth:
            raise IncompatibleSchemas(f"this schema was observed with max_depth={self.max_depth}, not {options.max_depth}")
        key = (kind, options)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._build_plan(kind, options)
        return plan

    def _build_plan(self, kind: ExportKind, options: ConvertOptions) -> _Plan:
        leaves: list[tuple[str, tuple[str, ...], tuple[str, ...], _Node, str]] = []
        for section, prefix in _COLUMN_SECTIONS[kind].items():
            root = self._sections.get(section)
            if root is None:
                continue
            found: list[tuple[tuple[str, ...], _Node, str]] = []
            for name, node in root.children.items():
                _collect_leaves(node, (name,), 1, options.max_depth, found)
            leaves.extend((section, (*prefix, *path), path, node, leaf_kind) for path, node, leaf_kind in found)
        fixed: tuple[_Column, ...] = ()
        if kind == "incremental":
            fixed = (
                _Column(CHANGE_TYPE_COLUMN, "change_type", pa.string()),
                _Column(WRITE_TIME_COLUMN, "write_time", WRITE_TIME_TYPE),
            )
        names = assign_column_names([raw for _, raw, _, _, _ in leaves], options.separator, frozenset(c.name for c in fixed))
        columns = sorted(
            (
                _Column(names[raw], leaf_kind, _leaf_type(leaf_kind, node, options), section, path)
                for section, raw, path, node, leaf_kind in leaves
            ),
            key=lambda column: column.name,
        )
        all_columns = (*fixed, *columns)
        arrow_schema = pa.schema([pa.field(column.name, column.arrow_type) for column in all_columns])
        empty = _Node()
        parse_schema = pa.schema([pa.field(name, self._sections.get(name, empty).attributes_type()) for name in _SECTIONS[kind]])
        return _Plan(all_columns, arrow_schema, parse_schema)


def _same(what: str, a: Any, b: Any) -> Any:
    if a is not None and b is not None and a != b:
        raise IncompatibleSchemas(f"cannot merge schemas with {what} {a!r} and {b!r}")
    return a if a is not None else b


# --------------------------------------------------------------------------- observation


def _observe_attributes(node: _Node, attributes: pa.Array, path: str, depth: int, stats: bool, max_depth: int) -> None:
    """Observe a struct array of attributes (an item, or the members of maps) into node.children."""
    for index, attribute in enumerate(attributes.type):
        values = pc.struct_field(attributes, [index])
        if values.null_count == len(values):
            continue
        _observe_value(node.child(attribute.name), values, f"{path}.{attribute.name}", depth, stats, max_depth)


def _observe_value(node: _Node, values: pa.Array, path: str, depth: int, stats: bool, max_depth: int) -> None:
    """Observe a struct array of AttributeValue objects (one path, many items)."""
    present = []
    for index, descriptor_field in enumerate(values.type):
        descriptor = descriptor_field.name
        payload = pc.struct_field(values, [index])
        if payload.null_count == len(payload):
            continue
        present.append(payload)
        node.types.add(descriptor)
        if descriptor == "N" and stats:
            node.number = _merged_stats(node.number, _number_stats(payload, path))
        elif descriptor == "NS" and stats:
            node.set_number = _merged_stats(node.set_number, _number_stats(pc.list_flatten(payload), path))
        elif descriptor == "M":
            _observe_attributes(node, payload, path, depth + 1, stats and depth < max_depth, max_depth)
        elif descriptor == "L":
            if node.element is None:
                node.element = _Node()
            elements = pc.list_flatten(payload)
            if len(elements):
                _observe_value(node.element, elements, f"{path}[]", depth + 1, False, max_depth)
    if len(present) > 1:
        counts = pc.add(*[pc.cast(pc.is_valid(payload), pa.int8()) for payload in present[:2]])
        for payload in present[2:]:
            counts = pc.add(counts, pc.cast(pc.is_valid(payload), pa.int8()))
        if pc.max(counts).as_py() > 1:
            raise InvalidAttributeValue(f"{path}: an AttributeValue with several type descriptors")


def _number_stats(texts: pa.Array, path: str) -> _NumberStats | None:
    values = pc.drop_null(texts)
    if len(values) == 0:
        return None
    try:
        values = _canonical_numbers(values)
    except InvalidAttributeValue as error:
        raise InvalidAttributeValue(f"{path}: {error}") from None
    trimmed = pc.ascii_ltrim(values, characters="-0")
    dot = pc.find_substring(trimmed, ".")
    length = pc.binary_length(trimmed)
    has_dot = pc.greater_equal(dot, 0)
    int_digits = pc.if_else(has_dot, dot, length)
    scale = pc.if_else(has_dot, pc.subtract(pc.subtract(length, dot), 1), 0)
    max_scale = pc.max(scale).as_py()
    max_int_digits = pc.max(int_digits).as_py()
    int64 = max_scale == 0 and max_int_digits <= _INT64_DIGITS
    if int64 and max_int_digits == _INT64_DIGITS:
        longest = pc.filter(values, pc.equal(int_digits, _INT64_DIGITS)).to_pylist()
        int64 = all(-(2**63) <= int(text) < 2**63 for text in longest)
    return _NumberStats(int64, max_scale, max_int_digits)


def _canonical_numbers(texts: pa.Array) -> pa.Array:
    """Number texts in plain JSON form (the common case passes through untouched)."""
    plain = pc.match_substring_regex(texts, PLAIN_NUMBER_PATTERN)
    if pc.all(plain).as_py() is not False:
        return texts
    fixed = [text if text is None or ok else canonical_number(text) for text, ok in zip(texts.to_pylist(), plain.to_pylist(), strict=True)]
    return pa.array(fixed, pa.string())


# --------------------------------------------------------------------------- parsing


def _read(data: bytes, schema: pa.Schema | None, unexpected: str, single_chunk: bool = False) -> pa.Table:
    """pyarrow's JSON reader on complete lines; lines longer than a chunk are retried with bigger chunks."""
    buffer = pa.py_buffer(data)
    block_size = len(data) + 1 if single_chunk else _CHUNK_BYTES
    parse_options = pj.ParseOptions(explicit_schema=schema, newlines_in_values=False, unexpected_field_behavior=unexpected)
    while True:
        try:
            return pj.read_json(pa.BufferReader(buffer), read_options=pj.ReadOptions(block_size=block_size), parse_options=parse_options)
        except pa.ArrowInvalid as error:
            if "straddl" not in str(error) or block_size > len(data):
                raise
            block_size = min(block_size * 8, len(data) + 1)


def _parse_discovering(data: bytes, known: pa.Schema | None, kind: ExportKind, first_line: int) -> pa.Table:
    """Parse a block exactly, learning attribute names the known schema lacks."""
    if known is None:
        known = _discover(_head(data, _PRIME_BYTES), None, kind, first_line)
    try:
        table: pa.Table | None = _read(data, known, "infer")
    except pa.ArrowException:
        table = None  # e.g. a new field inferred differently in two chunks
    if table is not None and table.schema == known:
        return table
    if table is None:
        complete = _discover(data, known, kind, first_line)
    else:
        try:
            complete = _merged_schema(known, _normalized_row(table.schema, kind))
        except SnaplakeError as error:
            raise _located_problem(data, kind, first_line, None, error) from None
    return _read_exact(data, complete, kind, first_line)


def _discover(data: bytes, known: pa.Schema | None, kind: ExportKind, first_line: int) -> pa.Schema:
    """The explicit schema (grammar types) of `data`'s lines, in one chunk so the reader cannot disagree with itself."""
    try:
        inferred = _read(data, known, "infer", single_chunk=True).schema
        normalized = _normalized_row(inferred, kind)
    except (pa.ArrowException, SnaplakeError) as error:
        raise _located_problem(data, kind, first_line, None, error) from None
    return normalized if known is None else _merged_schema(known, normalized)


def _read_exact(data: bytes, schema: pa.Schema, kind: ExportKind, first_line: int) -> pa.Table:
    try:
        return _read(data, schema, "error")
    except pa.ArrowException as error:
        raise _located_problem(data, kind, first_line, schema, error) from None


def _head(data: bytes, size: int) -> bytes:
    end = data.find(b"\n", size)
    return data if end < 0 else data[: end + 1]


def _normalized_row(schema: pa.Schema, kind: ExportKind) -> pa.Schema:
    """The inferred schema of a block with every type replaced by the DynamoDB JSON grammar's."""
    sections = _SECTIONS[kind]
    fields = []
    for section in schema:
        if section.name not in sections:
            raise MalformedExportLine(f"unexpected field {section.name!r}; a {kind} export line has {', '.join(sections)}")
        fields.append(pa.field(section.name, _normalized_attributes(section.type, section.name)))
    return pa.schema(fields)


def _normalized_attributes(inferred: pa.DataType, path: str) -> pa.StructType:
    if pa.types.is_null(inferred):
        return pa.struct([])
    if not pa.types.is_struct(inferred):
        raise InvalidAttributeValue(f"{path}: expected an object of attributes")
    return pa.struct([pa.field(f.name, _normalized_value(f.type, f"{path}.{f.name}")) for f in inferred])


def _normalized_value(inferred: pa.DataType, path: str) -> pa.StructType:
    if pa.types.is_null(inferred):
        return pa.struct([])
    if not pa.types.is_struct(inferred):
        raise InvalidAttributeValue(f'{path}: an AttributeValue is an object such as {{"S": "..."}}')
    fields = []
    for f in inferred:
        descriptor = f.name
        if descriptor in _READ_TYPES:
            fields.append(pa.field(descriptor, _READ_TYPES[descriptor]))
        elif descriptor == "L":
            if pa.types.is_null(f.type):
                element = pa.struct([])
            elif pa.types.is_list(f.type):
                element = _normalized_value(f.type.value_type, f"{path}[]")
            else:
                raise InvalidAttributeValue(f"{path}: L must hold a list")
            fields.append(pa.field(descriptor, pa.list_(element)))
        elif descriptor == "M":
            fields.append(pa.field(descriptor, _normalized_attributes(f.type, path)))
        else:
            raise InvalidAttributeValue(f"{path}: unknown type descriptor {descriptor!r}")
    return pa.struct(fields)


def _merged_schema(a: pa.Schema, b: pa.Schema) -> pa.Schema:
    return pa.schema(list(_merged_type(pa.struct(list(a)), pa.struct(list(b)))))


def _merged_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a == b:
        return a
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        theirs = {f.name: f for f in b}
        fields = [pa.field(f.name, _merged_type(f.type, theirs[f.name].type)) if f.name in theirs else f for f in a]
        mine = {f.name for f in a}
        fields.extend(f for f in b if f.name not in mine)
        return pa.struct(fields)
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(_merged_type(a.value_type, b.value_type))
    raise InvalidAttributeValue(f"conflicting JSON types {a} and {b}")  # both come from the grammar: cannot happen


def _combined(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks()


def _require_items(sections: dict[str, pa.Array]) -> None:
    items = sections.get("Item")
    if items is None or items.null_count:
        raise MalformedExportLine("a full export line has no Item")


# --------------------------------------------------------------------------- error location


def _located_problem(data: bytes, kind: ExportKind, first_line: int, schema: pa.Schema | None, cause: Exception | None) -> SnaplakeError:
    """A named error for the first line of `data` that is wrong (slow; only on the error path)."""
    for offset, raw in enumerate(data.split(b"\n")):
        line = first_line + offset
        if not raw.strip():
            continue
        try:
            parsed = json.loads(raw)
        except ValueError as error:
            return MalformedExportLine(f"line {line}: not JSON ({error})")
        problem = _line_problem(parsed, kind)
        if problem:
            return MalformedExportLine(f"line {line}: {problem}")
        if schema is not None:
            unknown = _unexpected_section_path(parsed, schema)
            if unknown:
                return AttributeNotInSchema(f"line {line}: {unknown} is not in the export schema (was the file changed after the scan?)")
    if isinstance(cause, SnaplakeError):
        return cause
    return MalformedExportLine(f"lines from {first_line}: {cause}")


def _line_problem(parsed: Any, kind: ExportKind) -> str | None:
    if not isinstance(parsed, dict):
        return "not a JSON object"
    sections = _SECTIONS[kind]
    for name in parsed:
        if name not in sections:
            return f"unexpected field {name!r}; a {kind} export line has {', '.join(sections)}"
    if kind == "full" and "Item" not in parsed:
        return "no Item"
    for name, attributes in parsed.items():
        try:
            check_attributes(attributes, name)
        except InvalidAttributeValue as error:
            return str(error)
    return None


def _unexpected_section_path(parsed: dict[str, Any], schema: pa.Schema) -> str | None:
    sections = {f.name: f.type for f in schema}
    for section, attributes in parsed.items():
        if section not in sections:
            return section
        if isinstance(attributes, dict):
            found = _unexpected_path(attributes, sections[section], section)
            if found:
                return found
    return None


def _unexpected_path(value: Any, expected: pa.DataType, path: str) -> str | None:
    """The first path of a parsed line (attributes object) that the explicit schema type lacks."""
    if not pa.types.is_struct(expected):
        return None
    names = {f.name: f.type for f in expected}
    for name, child in value.items():
        where = f"{path}.{name}" if path else name
        if name not in names:
            return where
        child_type = names[name]
        if not isinstance(child, dict):
            continue
        for descriptor, payload in child.items():
            descriptors = {f.name: f.type for f in child_type} if pa.types.is_struct(child_type) else {}
            if descriptor not in descriptors:
                return f"{where} ({descriptor})"
            if descriptor == "M" and isinstance(payload, dict):
                found = _unexpected_path(payload, descriptors["M"], where)
                if found:
                    return found
            if descriptor == "L" and isinstance(payload, list):
                element_type = descriptors["L"].value_type
                for element in payload:
                    found = _unexpected_path({"[]": element}, pa.struct([pa.field("[]", element_type)]), where)
                    if found:
                        return found
    return None


# --------------------------------------------------------------------------- conversion


def _descriptor(values: pa.Array, descriptor: str, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_struct(values.type) and values.type.get_field_index(descriptor) >= 0:
        return pc.struct_field(values, [descriptor])
    return pa.nulls(len(values), arrow_type)


def _numbers(texts: pa.Array, arrow_type: pa.DataType, path: str) -> pa.Array:
    if pa.types.is_string(arrow_type):
        return texts
    try:
        return pc.cast(texts, arrow_type)
    except pa.ArrowInvalid:
        pass
    try:
        return pc.cast(_canonical_numbers(texts), arrow_type)
    except (pa.ArrowInvalid, InvalidAttributeValue) as error:
        raise AttributeNotInSchema(f"{path}: a number does not fit the schema's {arrow_type} ({error})") from None


def _binaries(texts: pa.Array) -> pa.Array:
    return pa.array([None if text is None else decode_binary(text) for text in texts.to_pylist()], pa.binary())


def _with_values(lists: pa.Array, values: pa.Array) -> pa.Array:
    """A list array shaped like `lists` (same lengths, same nulls) holding `values`."""
    lengths = pc.cast(pc.list_value_length(lists).fill_null(0), pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths)]) if len(lists) else pa.array([0], pa.int32())
    mask = pc.is_null(lists) if lists.null_count else None
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def _leaf_array(column: _Column, values: pa.Array, rows: int) -> pa.Array:
    kind = column.kind
    where = ".".join((column.section, *column.path))
    if kind == "null":
        return pa.nulls(rows, pa.string())
    if kind == "json":
        return _json_texts(values, top=True)
    if kind == "string":
        return _descriptor(values, "S", pa.string())
    if kind == "bool":
        return _descriptor(values, "BOOL", pa.bool_())
    if kind == "number":
        return _numbers(_descriptor(values, "N", pa.string()), column.arrow_type, where)
    if kind == "binary":
        return _binaries(_descriptor(values, "B", pa.string()))
    if kind == "ss":
        return _descriptor(values, "SS", pa.list_(pa.string()))
    lists = _descriptor(values, "NS" if kind == "ns" else "BS", pa.list_(pa.string()))
    members = pc.list_flatten(lists)
    if kind == "ns":
        return _with_values(lists, _numbers(members, column.arrow_type.value_type, where))
    return _with_values(lists, _binaries(members))


def _json_quote(texts: pa.Array) -> pa.Array:
    """JSON string literals, escaped exactly as json.dumps(..., ensure_ascii=False) does."""
    if pc.any(pc.match_substring_regex(texts, _NEEDS_ESCAPE)).as_py():
        texts = pc.replace_substring(texts, "\\", "\\\\")
        texts = pc.replace_substring(texts, '"', '\\"')
        if pc.any(pc.match_substring_regex(texts, _CONTROL_CHARACTERS)).as_py():
            for code in range(0x20):
                character = chr(code)
                escaped = _SHORT_ESCAPES.get(character, f"\\u{code:04x}")
                texts = pc.replace_substring(texts, character, escaped)
    return pc.binary_join_element_wise('"', texts, '"', "")


def _json_texts(values: pa.Array, top: bool) -> pa.Array:
    """The canonical JSON text (snaplake.dynamodb_types.attribute_json) of each AttributeValue, vectorized.

    At the top of a column a NULL value is a null cell; inside lists and maps it is `null`.
    """
    rows = len(values)
    if not pa.types.is_struct(values.type) or values.null_count == rows:
        return pa.nulls(rows, pa.string())
    pieces = []
    for index, descriptor_field in enumerate(values.type):
        descriptor = descriptor_field.name
        payload = pc.struct_field(values, [index])
        if payload.null_count == rows:
            continue
        if descriptor in ("S", "B"):
            pieces.append(_json_quote(payload))
        elif descriptor == "N":
            pieces.append(_canonical_numbers(payload))
        elif descriptor == "BOOL":
            pieces.append(pc.if_else(payload, pa.scalar("true"), pa.scalar("false")))
        elif descriptor == "NULL":
            if not top:
                pieces.append(pc.if_else(pc.is_null(payload), pa.scalar(None, pa.string()), pa.scalar("null")))
        elif descriptor in SET_DESCRIPTORS:
            sets = payload.to_pylist()
            pieces.append(pa.array([None if members is None else attribute_json({descriptor: members}) for members in sets], pa.string()))
        elif descriptor == "L":
            elements = _json_texts(pc.list_flatten(payload), top=False).fill_null("null")
            joined = pc.binary_join(_with_values(payload, elements), ",")
            pieces.append(pc.binary_join_element_wise("[", joined, "]", ""))
        else:
            pieces.append(_json_object(payload))
    if not pieces:
        return pa.nulls(rows, pa.string())
    return pieces[0] if len(pieces) == 1 else pc.coalesce(*pieces)


def _json_object(maps: pa.Array) -> pa.Array:
    """JSON objects (keys sorted) for a struct array of map members; null where the map is null."""
    rows = len(maps)
    members = []
    for name in sorted(f.name for f in maps.type):
        texts = _json_texts(pc.struct_field(maps, [name]), top=False)
        if texts.null_count < rows:
            members.append((json_string(name) + ":", texts))
    if all(texts.null_count == maps.null_count for _, texts in members):
        # Every member present in every map (the common case): one concatenation.
        parts: list[Any] = ["{"]
        for index, (key, texts) in enumerate(members):
            parts.extend(("," + key if index else key, texts))
        parts.append("}")
        return pc.binary_join_element_wise(*parts, "") if members else _maybe_null(maps, pa.array(["{}"] * rows, pa.string()))
    # Members with a leading comma, absent ones as "", then the first comma dropped. (Not
    # binary_join_element_wise(null_handling="skip"): pyarrow 26 drops rows where all inputs are null.)
    with_commas = [pc.binary_join_element_wise("," + key, texts, "") for key, texts in members]
    joined = pc.binary_join_element_wise(*with_commas, "", null_handling="replace", null_replacement="")
    objects = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    return _maybe_null(maps, objects)


def _maybe_null(maps: pa.Array, objects: pa.Array) -> pa.Array:
    if maps.null_count:
        return pc.if_else(pc.is_valid(maps), objects, pa.scalar(None, pa.string()))
    return objects


def _change_types(sections: dict[str, pa.Array], rows: int) -> pa.Array:
    has_new = pc.is_valid(sections["NewImage"]) if "NewImage" in sections else pa.array([False] * rows)
    has_old = pc.is_valid(sections["OldImage"]) if "OldImage" in sections else pa.array([False] * rows)
    modify_or_insert = pc.if_else(has_old, pa.scalar("MODIFY"), pa.scalar("INSERT"))
    return pc.if_else(has_new, modify_or_insert, pa.scalar("REMOVE"))


def _write_times(sections: dict[str, pa.Array], rows: int) -> pa.Array:
    metadata = sections.get("Metadata")
    if metadata is None or metadata.type.get_field_index("WriteTime") < 0:
        return pa.nulls(rows, WRITE_TIME_TYPE)
    write_time = pc.struct_field(metadata, ["WriteTime"])
    texts = _descriptor(write_time, "N", pa.string())
    if write_time.null_count != texts.null_count:
        raise UnexpectedWriteTime("Metadata.WriteTime is not a number (N)")
    try:
        epoch = pc.cast(texts, pa.int64())
    except pa.ArrowInvalid as error:
        raise UnexpectedWriteTime(f"Metadata.WriteTime is not an integral epoch time ({error})") from None
    # Documented as microseconds but not verified against a real export: take the
    # unit from the magnitude (seconds < 1e11 <= milliseconds < 1e14 <= microseconds
    # < 1e17, unambiguous for 1973..5138).
    magnitude = pc.abs(epoch)
    if pc.any(pc.greater_equal(magnitude, 10**17)).as_py():
        raise UnexpectedWriteTime("Metadata.WriteTime is beyond microseconds since the epoch")
    factor = pc.if_else(pc.less(magnitude, 10**11), 1_000_000, pc.if_else(pc.less(magnitude, 10**14), 1000, 1))
    return pc.cast(pc.multiply(epoch, factor), WRITE_TIME_TYPE)


def _convert(block: bytes, schema: ExportSchema, kind: ExportKind, options: ConvertOptions, first_line: int) -> pa.Table:
    plan = schema._plan(kind, options)
    if not block or block.isspace():
        return plan.arrow_schema.empty_table()
    table = _read_exact(block, plan.parse_schema, kind, first_line)
    rows = table.num_rows
    sections = {name: _combined(table.column(name)) for name in table.column_names}
    del table
    try:
        return _convert_sections(sections, rows, plan, kind)
    except SnaplakeError as error:
        raise _located_problem(block, kind, first_line, None, error) from None


def _convert_sections(sections: dict[str, pa.Array], rows: int, plan: _Plan, kind: ExportKind) -> pa.Table:
    if kind == "full":
        _require_items(sections)
    arrays = []
    for column in plan.columns:
        if column.kind == "change_type":
            arrays.append(_change_types(sections, rows))
        elif column.kind == "write_time":
            arrays.append(_write_times(sections, rows))
        else:
            values = pc.struct_field(sections[column.section], _field_path(column.path))
            arrays.append(_leaf_array(column, values, rows))
    return pa.Table.from_arrays(arrays, schema=plan.arrow_schema)


def _field_path(path: tuple[str, ...]) -> list[str]:
    steps = [path[0]]
    for name in path[1:]:
        steps.extend(("M", name))
    return steps


# --------------------------------------------------------------------------- public functions


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


def scan_file(stream: BinaryStream, kind: ExportKind, options: ConvertOptions) -> tuple[ExportSchema, int]:
    """Schema and row count of one data file (stream: the decompressed file)."""
    schema = ExportSchema()
    schema._bind(kind, options)
    rows = 0
    first_line = 1
    for block in iter_blocks(stream, options.block_bytes):
        rows += schema._observe(block, kind, options, first_line)
        first_line += block.count(b"\n")
    return schema, rows


def convert_block(block: bytes, schema: ExportSchema, kind: ExportKind, options: ConvertOptions) -> pa.Table:
    """One block of complete lines as a table with exactly schema.arrow_schema(kind, options)."""
    return _convert(block, schema, kind, options, first_line=1)


def convert_lines(lines: Sequence[Mapping[str, Any]], kind: ExportKind, options: ConvertOptions) -> pa.Table:
    """Export lines already decoded from JSON (dicts, e.g. from a Lambda event) -> a table typed by their own schema.

    The same table as `observe_block` then `convert_block` on their JSON text, without the JSON round trip:
    pyarrow converts the Python objects once, with the explicit type of the DynamoDB JSON grammar (which is
    as strict as the JSON reader: a wrong type fails instead of being coerced).
    """
    schema = ExportSchema()
    schema._bind(kind, options)
    if not lines:
        return schema._plan(kind, options).arrow_schema.empty_table()
    try:
        inferred = pa.array(lines)
        if not pa.types.is_struct(inferred.type) or inferred.null_count:
            raise MalformedExportLine("an export line is a JSON object")
        row_type = pa.struct(list(_normalized_row(pa.schema(list(inferred.type)), kind)))
        rows = inferred if inferred.type == row_type else pa.array(lines, type=row_type)
        sections = {field.name: rows.field(index) for index, field in enumerate(row_type)}
        schema._observe_sections(sections, kind, options)
        return _convert_sections(sections, len(rows), schema._plan(kind, options), kind)
    except (SnaplakeError, pa.ArrowException, UnicodeError, RecursionError, OverflowError, TypeError, ValueError) as error:
        # pyarrow raises UnicodeEncodeError for a string with a lone surrogate and OverflowError for an integer beyond
        # int64 where text belongs; the schema code recurses per map level.
        raise _located_line_problem(lines, kind, error) from None


def _located_line_problem(lines: Sequence[Any], kind: ExportKind, cause: Exception) -> SnaplakeError:
    """A named error for the first of the decoded lines that is wrong (slow; only on the error path)."""
    for number, line in enumerate(lines, 1):
        problem = _line_problem(line, kind)
        if problem:
            return MalformedExportLine(f"line {number}: {problem}")
    if isinstance(cause, SnaplakeError):
        return cause
    return MalformedExportLine(f"lines from 1: {cause}")


def convert_file(stream: BinaryStream, schema: ExportSchema, kind: ExportKind, options: ConvertOptions, sink: Any) -> int:
    """Write one Parquet file (a row group per block) to sink (a path or a writable binary file); returns rows written.

    A file without rows still gets a valid Parquet file with the schema. If the
    conversion fails midway nothing more reaches the sink (no Parquet footer),
    so a partial file can never pass for a complete one; a path sink is removed.
    """
    plan = schema._plan(kind, options)
    if isinstance(sink, str | bytes | os.PathLike):
        try:
            with open(sink, "wb") as file:
                return _write_parquet(stream, schema, kind, options, plan, file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(sink)
            raise
    return _write_parquet(stream, schema, kind, options, plan, sink)


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


def _write_parquet(stream: BinaryStream, schema: ExportSchema, kind: ExportKind, options: ConvertOptions, plan: _Plan, sink: Any) -> int:
    guard = _SinkGuard(sink)
    writer = pq.ParquetWriter(guard, plan.arrow_schema)
    rows = 0
    first_line = 1
    # Row group k is encoded and written on a helper thread while block k+1 is parsed
    # and converted; at most one write is in flight, so memory stays bounded.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snaplake-parquet") as background:
        pending: Future[None] | None = None
        try:
            for block in iter_blocks(stream, options.block_bytes):
                table = _convert(block, schema, kind, options, first_line)
                first_line += block.count(b"\n")
                del block
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
