"""Names the lake and the catalog use: Athena-safe database/table/column names, flattened column
names (collisions resolved deterministically), S3 key joining, the completion marker."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

SUCCESS_MARKER = "_SUCCESS"
# Characters Hive and Trino (Athena) percent-encode in a partition folder name `<key>=<value>/`
# (FileUtils.escapePathName): control characters, `"#%'*/:=?\`, DEL and `{[]^`.
HIVE_PATH_ESCAPED = frozenset(map(chr, range(0x20))) | frozenset("\"#%'*/:=?\\\x7f{[]^")

_UNSAFE = re.compile(r"[^a-z0-9_]+")


def athena_name(raw: str) -> str:
    """Lower-case `[a-z0-9_]` name; runs of other characters become one `_`, leading and trailing
    `_` are dropped. A name left with nothing (no ASCII letter or digit: `顧客`, `!!!`, ``) becomes
    `name_` plus the first 8 hex digits of the SHA-256 of the raw name's UTF-8 bytes, so such names
    stay distinct from each other, are the same on every run, and need no quoting in Athena."""
    name = _UNSAFE.sub("_", raw.lower()).strip("_")
    return name or f"name_{hashlib.sha256(raw.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def join_key(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def column_name(raw: tuple[str, ...], separator: str) -> str:
    return athena_name(separator.join(athena_name(part) for part in raw))


def assign_column_names(raw_paths: list[tuple[str, ...]], separator: str, reserved: frozenset[str]) -> dict[tuple[str, ...], str]:
    """Column names for nested source paths (`parent<sep>child`), Athena-safe.

    When several paths give the same name, the sorted-first path keeps it and the others get `_2`, `_3`, ...;
    a name in `reserved` (system columns, partition keys, names already given) is never given: its paths all get suffixes.
    """
    groups: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for raw in raw_paths:
        groups[column_name(raw, separator)].append(raw)
    taken = set(groups) | reserved
    names: dict[tuple[str, ...], str] = {}
    for base in sorted(groups):
        paths = sorted(groups[base])
        if base not in reserved:
            names[paths.pop(0)] = base
        suffix = 2
        for raw in paths:
            while f"{base}_{suffix}" in taken:
                suffix += 1
            names[raw] = f"{base}_{suffix}"
            taken.add(names[raw])
    return names


def path_value_problem(value: str) -> str | None:
    """Why `value` cannot be a partition value written into a key as is (None when it can): empty, `.` or `..`, or
    holding a character the engines escape in folder names (HIVE_PATH_ESCAPED), `/` (another folder level) included."""
    if value in ("", ".", ".."):
        return f"{value!r} cannot name a partition folder"
    escaped = next((char for char in value if char in HIVE_PATH_ESCAPED), None)
    if escaped is not None:
        return f"{value[:100]!r} holds {escaped!r} (U+{ord(escaped):04X}), which Hive and Athena escape in partition folder names"
    return None
