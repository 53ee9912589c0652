"""Where an RDS export's files land in the lake: the key template, lake table names, export key parsing.

An RDS export writes `<export root>/<database>/<schema.table>/<batch>/<file>`
(or, in older exports, `<export root>/<database>/<schema.table>/<file>`). Each
data file is copied to the key the template renders for it.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime

from snaplake.core.names import SUCCESS_MARKER, athena_name
from snaplake.core.times import snapshot_time_value
from snaplake.rds.errors import InvalidKeyTemplate, UnexpectedExportLayout

DEFAULT_KEY_TEMPLATE = "rds/{database}/{table}/snapshot_time={snapshot_time}/{batch}/{file}"
SEED_KEY_TEMPLATE = "{database}/{table}/partition_datetime={snapshot_time}/{batch}/{file}"

PLACEHOLDERS = frozenset(
    {
        "database",  # Athena-safe database name
        "table",  # Athena-safe table name, see lake_table_name
        "source_table",  # the export's folder name, e.g. "public.users"
        "source_id",  # the DB cluster / instance identifier
        "export_id",
        "snapshot_time",  # 20240502T032144Z
        "snapshot_date",  # 2024-05-02
        "batch",
        "file",
    }
)
_PER_OBJECT = frozenset({"batch", "file"})

# Old exports put files straight under the table folder; they become batch "1",
# which is what a current export of an unpartitioned table writes.
OLD_LAYOUT_BATCH = "1"

_POSTGRES_ENGINES = ("postgres", "aurora-postgresql")
_MYSQL_ENGINES = ("mysql", "mariadb", "aurora-mysql", "aurora")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def lake_table_name(engine: str, database: str, folder: str) -> str:
    """Athena-safe table name for an export table folder.

    PostgreSQL folders are `schema.table` (the default schema `public` is
    dropped); MySQL-family folders are `database.table` (the database is
    dropped). Any other schema stays as a prefix: `sales.Invoice_Lines` becomes
    `sales_invoice_lines`.
    """
    qualifier, dot, table = folder.partition(".")
    if not dot:
        return athena_name(folder)
    engine = engine.lower()
    if engine.startswith(_POSTGRES_ENGINES):
        redundant = {"public"}
    elif engine.startswith(_MYSQL_ENGINES):
        redundant = {database}
    else:
        redundant = {"public", database}
    if qualifier in redundant:
        return athena_name(table)
    return athena_name(f"{qualifier}_{table}")


@dataclass(frozen=True)
class ExportObject:
    """One object of an export, located in the export's table layout."""

    database: str
    table_folder: str
    batch: str
    file: str

    @property
    def is_marker(self) -> bool:
        return self.file == SUCCESS_MARKER

    @property
    def is_data(self) -> bool:
        return self.file.endswith(".parquet")


def parse_export_key(relative_key: str) -> ExportObject | None:
    """Place a key (relative to the export root) in the export layout.

    Returns None for export metadata and other non-table objects (never
    copied). A Parquet file outside the known layouts, or any other file in a
    table folder, raises, so no data is skipped silently.
    """
    parts = relative_key.split("/")
    if len(parts) == 4:
        database, folder, batch, file = parts
    elif len(parts) == 3:
        database, folder, file = parts
        batch = OLD_LAYOUT_BATCH
    else:
        if relative_key.endswith(".parquet"):
            raise UnexpectedExportLayout(f"Parquet object {relative_key!r} is not at <database>/<schema.table>/[<batch>/]<file>")
        return None
    found = ExportObject(database, folder, batch, file)
    if not file:
        return None  # a "folder" placeholder object
    if not (found.is_data or found.is_marker):
        raise UnexpectedExportLayout(
            f"export object {relative_key[:300]!r} in a table folder is neither Parquet data nor _SUCCESS; it would not land, "
            "so the table would be incomplete"
        )
    for segment in parts:
        if not segment or segment in (".", "..") or _CONTROL.search(segment):
            raise UnexpectedExportLayout(f"export object {relative_key!r} has an unsafe path segment {segment!r}")
    return found


_HIVE_SEGMENT = re.compile(r"^([a-z0-9_]+)=([^=/]+)$")
# What makes a partition unique per snapshot of one source ({snapshot_date} repeats within a day).
_UNIQUE_PER_SNAPSHOT = frozenset({"snapshot_time", "export_id"})


@dataclass(frozen=True)
class KeyTemplate:
    """A lake key template such as DEFAULT_KEY_TEMPLATE: `<table folder>/<key>=<value>/.../{batch}/{file}`.

    The segments before the first one naming {batch} or {file} form the table
    partition prefix, which is where the partition's `_SUCCESS` goes. Of those,
    the ones before the first Hive `key=value` segment are the table folder (the
    Glue table's location, which names {table} or {source_table}); the rest are
    the partition keys and values, at least one of which is unique per snapshot
    ({snapshot_time} or {export_id}). So every rule RegisterCatalog and the next
    snapshot rely on is checked when a function starts, before anything lands.
    """

    text: str
    partition_segments: tuple[str, ...]
    object_segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> KeyTemplate:
        if ":" in text or "\\" in text or text.startswith("/") or "//" in text:
            raise InvalidKeyTemplate(f"key template {text!r} must be a relative path without ':', '\\' or '//'")
        segments = text.split("/")
        names_per_segment = [_placeholders(text, segment) for segment in segments]
        if segments[-1] != "{file}":
            raise InvalidKeyTemplate(f"key template {text!r} must end with '/{{file}}'")
        split = next(i for i, names in enumerate(names_per_segment) if names & _PER_OBJECT)
        for names in names_per_segment[split:]:
            if names - _PER_OBJECT:
                raise InvalidKeyTemplate(f"key template {text!r}: only {{batch}} and {{file}} may follow the partition segments")
        hive = next((i for i in range(split) if _HIVE_SEGMENT.match(segments[i])), split)
        table_names = set().union(*names_per_segment[:hive]) if hive else set()
        if hive == 0 or not ({"table", "source_table"} & table_names):
            raise InvalidKeyTemplate(
                f"key template {text!r} must name {{table}} or {{source_table}} in the table folder, before the key=value segments"
            )
        if hive == split:
            raise InvalidKeyTemplate(
                f"key template {text!r} must end its partition in Hive key=value segments after the table folder "
                "(e.g. snapshot_time={snapshot_time}), which RegisterCatalog turns into partition keys"
            )
        if not all(_HIVE_SEGMENT.match(segment) for segment in segments[hive:split]):
            raise InvalidKeyTemplate(f"key template {text!r}: only key=value segments may follow the table folder")
        keys = [segment.split("=", 1)[0] for segment in segments[hive:split]]
        if len(set(keys)) != len(keys):
            raise InvalidKeyTemplate(f"key template {text!r} repeats a partition key")
        if not (_UNIQUE_PER_SNAPSHOT & set().union(*names_per_segment[hive:split])):
            raise InvalidKeyTemplate(
                f"key template {text!r} must name {{snapshot_time}} or {{export_id}} in a key=value segment, so two snapshots "
                "of one source never share a partition ({snapshot_date} alone repeats for snapshots of the same day)"
            )
        return cls(text, tuple(segments[:split]), tuple(segments[split:]))

    @property
    def _table_segment_count(self) -> int:
        return next(i for i, segment in enumerate(self.partition_segments) if _HIVE_SEGMENT.match(segment))

    @property
    def partition_keys(self) -> tuple[str, ...]:
        """The Hive partition keys (`snapshot_time`): no data column may have one of these names."""
        return tuple(segment.split("=", 1)[0] for segment in self.partition_segments[self._table_segment_count :])

    def table_folder(self, values: dict[str, str]) -> str:
        """The lake table's folder (the Glue table location), e.g. `rds/world/users`."""
        return "/".join(segment.format(**values) for segment in self.partition_segments[: self._table_segment_count])

    def partition_prefix(self, values: dict[str, str]) -> str:
        return "/".join(segment.format(**values) for segment in self.partition_segments)

    def object_path(self, values: dict[str, str]) -> str:
        return "/".join(segment.format(**values) for segment in self.object_segments)


def _placeholders(text: str, segment: str) -> set[str]:
    """The placeholders one template segment names; InvalidKeyTemplate for anything else in braces."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(segment))
    except ValueError as error:
        raise InvalidKeyTemplate(f"key template {text!r}: {error}") from None
    for literal, name, spec, conversion in parsed:
        if ".." in literal:
            raise InvalidKeyTemplate(f"key template {text!r} must not contain '..'")
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise InvalidKeyTemplate(f"key template {text!r}: unknown placeholder {{{name}}}; known: {', '.join(sorted(PLACEHOLDERS))}")
        names.add(name)
    if not segment or segment in (".", ".."):
        raise InvalidKeyTemplate(f"key template {text!r} has an empty or relative path segment")
    return names


@dataclass(frozen=True)
class SnapshotLayout:
    """Everything about one exported snapshot that the key template can use."""

    engine: str
    source_id: str
    export_id: str
    snapshot_time: datetime

    def partition_values(self, database: str, table_folder: str) -> dict[str, str]:
        return {
            "database": athena_name(database),
            "table": lake_table_name(self.engine, database, table_folder),
            "source_table": table_folder,
            "source_id": self.source_id,
            "export_id": self.export_id,
            "snapshot_time": snapshot_time_value(self.snapshot_time),
            "snapshot_date": self.snapshot_time.astimezone(UTC).strftime("%Y-%m-%d"),
        }
