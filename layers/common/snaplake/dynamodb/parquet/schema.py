"""ExportSchema: what the data files of one export contain, attribute path by attribute path, and the columns it gives.

The schema is learned from the parsed lines (numbers: int64 or the decimal's scale and digits; maps: their children;
every DynamoDB type seen per path), merged across files and stored as JSON between Lambda steps; the column plan
(`column_plan`) turns it into the Arrow schema of the Parquet output and the explicit schema of the JSON reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from snaplake.core.errors import SnaplakeError
from snaplake.core.names import assign_column_names
from snaplake.dynamodb.attribute_values import (
    DESCRIPTORS,
)
from snaplake.dynamodb.errors import (
    IncompatibleSchemas,
    InvalidAttributeValue,
)
from snaplake.dynamodb.parquet.numbers import NumberStats, merged_stats, number_stats
from snaplake.dynamodb.parquet.options import (
    CHANGE_TYPE_COLUMN,
    COLUMN_SECTIONS,
    READ_TYPES,
    SCHEMA_FORMAT,
    SECTIONS,
    WRITE_TIME_COLUMN,
    WRITE_TIME_TYPE,
    ConvertOptions,
    ExportKind,
)
from snaplake.dynamodb.parquet.reading import combined, located_problem, parse_discovering, require_items


@dataclass
class _Node:
    """One attribute path: the DynamoDB types seen there and, for M and L, what is inside.

    A section root (Item, Keys, ...) is a node whose children are the item's attributes.
    """

    types: set[str] = field(default_factory=set)
    number: NumberStats | None = None  # N values, tracked where the path can be a column
    set_number: NumberStats | None = None  # NS members, likewise
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
            number=merged_stats(self.number, other.number),
            set_number=merged_stats(self.set_number, other.set_number),
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
            number=NumberStats.from_json(raw["number"]) if "number" in raw else None,
            set_number=NumberStats.from_json(raw["set_number"]) if "set_number" in raw else None,
            children={name: cls.from_json(child) for name, child in raw.get("children", {}).items()},
            element=cls.from_json(raw["element"]) if "element" in raw else None,
        )

    def value_type(self) -> pa.StructType:
        """The JSON reader's type for this path's AttributeValue objects."""
        fields = []
        for descriptor in sorted(self.types):
            if descriptor in READ_TYPES:
                fields.append(pa.field(descriptor, READ_TYPES[descriptor]))
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
class LeafColumn:
    name: str
    kind: str  # string number bool binary null ss ns bs json change_type write_time
    arrow_type: pa.DataType
    section: str = ""
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnPlan:
    columns: tuple[LeafColumn, ...]
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

    Column names come from `assign_column_names` over this schema's own paths,
    unless `name_columns` fixed them (the lake's column registry, so that every
    export of a table names a path alike); fixed names are stored with the schema.
    """

    def __init__(self) -> None:
        self.kind: ExportKind | None = None
        self.max_depth: int | None = None
        self._sections: dict[str, _Node] = {}
        self._plans: dict[tuple[str, ConvertOptions], ColumnPlan] = {}
        self._names: dict[tuple[str, ...], str] | None = None  # attribute path -> column name, when fixed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExportSchema) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        attributes = sum(len(root.children) for root in self._sections.values())
        return f"ExportSchema(kind={self.kind!r}, max_depth={self.max_depth!r}, top-level attributes={attributes})"

    # ---- building

    def observe_block(self, block: bytes, kind: ExportKind, options: ConvertOptions) -> int:
        """Add one block of complete lines to the schema; returns the number of rows (items) in it."""
        return self.observe_parsed(block, kind, options, first_line=1)[1]

    def observe_parsed(self, block: bytes, kind: ExportKind, options: ConvertOptions, first_line: int) -> tuple[dict[str, pa.Array], int]:
        """Add one block (its first line's number given) to the schema; returns its parsed sections and rows."""
        self.bind(kind, options)
        if not block or block.isspace():
            return {}, 0
        table = parse_discovering(block, self._scan_parse_schema(kind), kind, first_line)
        sections, rows = {name: combined(table.column(name)) for name in table.column_names}, table.num_rows
        del table
        try:
            self.observe_sections(sections, kind, options)
        except SnaplakeError as error:
            raise located_problem(block, kind, first_line, None, error) from None
        return sections, rows

    def observe_sections(self, sections: dict[str, pa.Array], kind: ExportKind, options: ConvertOptions) -> None:
        if kind == "full":
            require_items(sections)
        self._plans.clear()
        for name in SECTIONS[kind]:
            if name in sections:
                root = self._sections.setdefault(name, _Node())
                stats = name != "Metadata"
                _observe_attributes(root, sections[name], name, 1, stats, options.max_depth)

    def bind(self, kind: ExportKind, options: ConvertOptions) -> None:
        if kind not in SECTIONS:
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
        fields = [pa.field(name, self._sections[name].attributes_type()) for name in SECTIONS[kind] if name in self._sections]
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
        raw: dict[str, Any] = {
            "format": SCHEMA_FORMAT,
            "kind": self.kind,
            "max_depth": self.max_depth,
            "sections": {name: root.to_json() for name, root in self._sections.items()},
        }
        if self._names is not None:
            raw["columns"] = [[list(path), name] for path, name in sorted(self._names.items())]
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportSchema:
        if not isinstance(raw, dict) or raw.get("format") != SCHEMA_FORMAT:
            raise IncompatibleSchemas(f"not a {SCHEMA_FORMAT} document")
        schema = cls()
        if raw.get("kind") not in (None, *SECTIONS):
            raise IncompatibleSchemas(f"unknown export kind {raw.get('kind')!r}")
        schema.kind = raw.get("kind")
        schema.max_depth = raw.get("max_depth")
        schema._sections = {name: _Node.from_json(root) for name, root in raw.get("sections", {}).items()}
        if "columns" in raw:
            schema._names = {tuple(path): str(name) for path, name in raw["columns"]}
        return schema

    # ---- output

    def arrow_schema(self, kind: ExportKind, options: ConvertOptions) -> pa.Schema:
        """The Parquet schema convert_block/convert_file produce."""
        return self.column_plan(kind, options).arrow_schema

    def column_names(self, kind: ExportKind, options: ConvertOptions) -> dict[str, str]:
        """Source path -> column name for the attribute columns.

        Source paths join the attribute names with '.' (a '.' or '\\' inside a
        name is escaped with '\\'); incremental paths start with Keys, NewImage or
        OldImage. The two fixed incremental columns are not included.
        """
        return {
            _source_path(column.section, column.path, kind): column.name
            for column in self.column_plan(kind, options).columns
            if column.path
        }

    def attribute_paths(self, kind: ExportKind, options: ConvertOptions) -> list[tuple[str, ...]]:
        """The attribute paths that become columns: the item's attribute names down to the flattened leaf, behind
        `key`, `new` or `old` for incremental exports (`("new", "address", "city")`). These are what is named."""
        return [raw for _, raw, _, _, _ in self._leaves(kind, options)]

    def column_paths(self, kind: ExportKind, options: ConvertOptions) -> dict[str, tuple[str, ...]]:
        """Column name -> attribute path (as `attribute_paths` gives it) of each attribute column."""
        prefixes = COLUMN_SECTIONS[kind]
        return {column.name: (*prefixes[column.section], *column.path) for column in self.column_plan(kind, options).columns if column.path}

    def name_columns(self, names: dict[tuple[str, ...], str]) -> None:
        """Fix the column name of each attribute path (a name for every path of `attribute_paths`, all distinct)."""
        if len(set(names.values())) != len(names):
            raise IncompatibleSchemas("two attribute paths are given the same column name")
        self._names = dict(names)
        self._plans.clear()

    def column_plan(self, kind: ExportKind, options: ConvertOptions) -> ColumnPlan:
        if kind not in SECTIONS:
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

    def _leaves(self, kind: ExportKind, options: ConvertOptions) -> list[tuple[str, tuple[str, ...], tuple[str, ...], _Node, str]]:
        leaves: list[tuple[str, tuple[str, ...], tuple[str, ...], _Node, str]] = []
        for section, prefix in COLUMN_SECTIONS[kind].items():
            root = self._sections.get(section)
            if root is None:
                continue
            found: list[tuple[tuple[str, ...], _Node, str]] = []
            for name, node in root.children.items():
                _collect_leaves(node, (name,), 1, options.max_depth, found)
            leaves.extend((section, (*prefix, *path), path, node, leaf_kind) for path, node, leaf_kind in found)
        return leaves

    def _build_plan(self, kind: ExportKind, options: ConvertOptions) -> ColumnPlan:
        leaves = self._leaves(kind, options)
        fixed: tuple[LeafColumn, ...] = ()
        if kind == "incremental":
            fixed = (
                LeafColumn(CHANGE_TYPE_COLUMN, "change_type", pa.string()),
                LeafColumn(WRITE_TIME_COLUMN, "write_time", WRITE_TIME_TYPE),
            )
        names = self._names
        if names is None:
            names = assign_column_names([raw for _, raw, _, _, _ in leaves], options.separator, frozenset(c.name for c in fixed))
        unnamed = [raw for _, raw, _, _, _ in leaves if raw not in names]
        if unnamed:
            raise IncompatibleSchemas(f"the schema's column names do not name the attribute path {list(unnamed[0])}")
        columns = sorted(
            (
                LeafColumn(names[raw], leaf_kind, _leaf_type(leaf_kind, node, options), section, path)
                for section, raw, path, node, leaf_kind in leaves
            ),
            key=lambda column: column.name,
        )
        all_columns = (*fixed, *columns)
        arrow_schema = pa.schema([pa.field(column.name, column.arrow_type) for column in all_columns])
        empty = _Node()
        parse_schema = pa.schema([pa.field(name, self._sections.get(name, empty).attributes_type()) for name in SECTIONS[kind]])
        return ColumnPlan(all_columns, arrow_schema, parse_schema)


def _same(what: str, a: Any, b: Any) -> Any:
    if a is not None and b is not None and a != b:
        raise IncompatibleSchemas(f"cannot merge schemas with {what} {a!r} and {b!r}")
    return a if a is not None else b


# --------------------------------------------------------------------------- observation


def _observe_attributes(node: _Node, attributes: pa.Array, path: str, depth: int, stats: bool, max_depth: int) -> None:
    """Observe a struct array of attributes (an item, or the members of maps) into node.children."""
    # StructArray.flatten: every field with the struct's nulls, for about the cost of one pc.struct_field call.
    for attribute, values in zip(attributes.type, attributes.flatten(), strict=True):
        if values.null_count == len(values):
            continue
        _observe_value(node.child(attribute.name), values, f"{path}.{attribute.name}", depth, stats, max_depth)


def _observe_value(node: _Node, values: pa.Array, path: str, depth: int, stats: bool, max_depth: int) -> None:
    """Observe a struct array of AttributeValue objects (one path, many items)."""
    present = []
    for descriptor_field, payload in zip(values.type, values.flatten(), strict=True):
        descriptor = descriptor_field.name
        if payload.null_count == len(payload):
            continue
        present.append(payload)
        node.types.add(descriptor)
        if descriptor == "N" and stats:
            node.number = merged_stats(node.number, number_stats(payload, path))
        elif descriptor == "NS" and stats:
            node.set_number = merged_stats(node.set_number, number_stats(pc.list_flatten(payload), path))
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
