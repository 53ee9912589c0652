"""Hive type strings (`decimal(10,2)`, `array<struct<a:int>>`, ...) parsed, and snapshots' columns merged into one table
definition.

Merging: new columns are appended, existing columns keep their position,
columns a snapshot no longer has are kept (older partitions still hold them);
safe widenings are applied, because Athena's Parquet reader coerces the
narrower physical type of older files: tinyint < smallint < int < bigint,
float < double, decimal(p1,s) < decimal(p2,s) with the same scale, and the
same rules inside array/map/struct (struct fields may be appended); anything
else (int vs string, a decimal scale change, timestamp vs string...) raises
`IncompatibleColumnType` naming the table and column, before the table is
touched, so the previous definition and partitions stay queryable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from snaplake.catalog.errors import IncompatibleColumnType


@dataclass(frozen=True)
class Column:
    name: str
    type: str

    def as_glue(self) -> dict[str, str]:
        return {"Name": self.name, "Type": self.type}


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


def typed_column(name: str, kind: str) -> str:
    """The column a value of type `kind` goes to when column `name` has a type that cannot read it: `<name>__<type>`
    (`zip__string`, `price__decimal_38_2`). It depends on the type alone, so every writer and every retry picks it."""
    typed = f"{name}__{re.sub(r'[^a-z0-9]+', '_', kind.lower()).strip('_')}"
    return typed if len(typed) <= 200 else f"{name[:180]}__{hashlib.sha256(f'{name}|{kind}'.encode()).hexdigest()[:16]}"


def fits(table: str, column: str, table_type: str, file_type: str) -> bool:
    """Whether a file column of `file_type` can join a table column of `table_type`: the same type, or a safe
    widening either way (merge_columns widens the table when the file's type is the wider one)."""
    try:
        merge_columns(table, [Column(column, table_type)], [Column(column, file_type)])
    except IncompatibleColumnType:
        return False
    return True
