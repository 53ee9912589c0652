"""OPTIMIZE and VACUUM on the emulated Athena's Iceberg tables (the local representation of athena_iceberg).

VACUUM as Athena documents it ("VACUUM" in the Athena guide), on the virtual clock:

- expires every snapshot committed longer than `vacuum_max_snapshot_age_seconds` ago (table property, default
  432000: 5 days), except the newest `vacuum_min_snapshots_to_keep` (default 1); the current snapshot always stays.
  Time travel to an expired snapshot then fails as Athena's does (no version at or before the time, or no such id);
- deletes the data files no kept snapshot references, and the metadata files but the current one and the newest
  `vacuum_max_metadata_files_to_keep` (default 100) before it.

Athena deletes an orphan file (one no snapshot ever referenced, left by a failed write) only once it is older than
the snapshot age, so that a write in flight keeps its files. The emulator applies one statement at a time, so no
write is ever in flight during a VACUUM, and every unreferenced file under `data/` goes at once.

OPTIMIZE ... REWRITE DATA USING BIN_PACK: each emulated snapshot is already a single file holding the whole table,
so there is never anything to compact; the statement checks its table and, as Athena does when no file needs
rewriting, commits nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from snaplake_local.emulator.athena_iceberg import is_iceberg, snapshots
from snaplake_local.emulator.athena_lake import folder
from snaplake_local.emulator.athena_types import AthenaQueryError

if TYPE_CHECKING:
    from snaplake_local.emulator.athena import _AthenaQuery
    from snaplake_local.emulator.athena_iceberg import IcebergStatements

UPKEEP_STATEMENT = re.compile(r"^\s*(?P<verb>VACUUM|OPTIMIZE)\s+(?P<table>[^\s]+)(?P<rest>.*?);?\s*$", re.IGNORECASE | re.DOTALL)
_BIN_PACK = re.compile(r"\s*REWRITE\s+DATA\s+USING\s+BIN_PACK(\s+WHERE\s+.+)?\s*", re.IGNORECASE | re.DOTALL)
_NAME_PART = re.compile(r'`(?P<tick>[^`]+)`|"(?P<quote>[^"]+)"|(?P<bare>[A-Za-z0-9_]+)')
DEFAULTS = {"vacuum_max_snapshot_age_seconds": 432_000, "vacuum_min_snapshots_to_keep": 1, "vacuum_max_metadata_files_to_keep": 100}


def _table_name(text: str, query: _AthenaQuery, verb: str) -> tuple[str, str]:
    parts = []
    for piece in text.split("."):
        found = _NAME_PART.fullmatch(piece)
        if found is None or (verb == "VACUUM" and found["quote"]):  # VACUUM takes backticks, not double quotes
            raise AthenaQueryError(f"SYNTAX_ERROR: line 1:1: mismatched input '{text[:80]}'")
        parts.append((found["tick"] or found["quote"] or found["bare"]).lower())
    if len(parts) == 1 and query.database:
        parts.insert(0, query.database)
    if len(parts) != 2:
        raise AthenaQueryError(f"SYNTAX_ERROR: table {text[:80]} has no database and the query has no database context")
    return parts[0], parts[1]


def _property(parameters: dict[str, Any], name: str) -> int:
    value = parameters.get(name, DEFAULTS[name])
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AthenaQueryError(f"INVALID_TABLE_PROPERTY: {name} must be an integer, got {str(value)[:50]!r}") from None


def run_upkeep(iceberg: IcebergStatements, query: _AthenaQuery, statement: re.Match[str]) -> None:
    """OPTIMIZE or VACUUM (`statement` matched UPKEEP_STATEMENT)."""
    verb = statement["verb"].upper()
    rest = statement["rest"]
    if (verb == "OPTIMIZE" and not _BIN_PACK.fullmatch(rest)) or (verb == "VACUUM" and rest.strip()):
        raise AthenaQueryError(f"SYNTAX_ERROR: line 1:1: the emulated Athena runs {verb} as Athena documents it: {query.sql[:200]}")
    database, name = _table_name(statement["table"], query, verb)
    table = iceberg.effects._glue_table(database, name)
    if table is None:
        raise AthenaQueryError(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist")
    if not is_iceberg(table):
        raise AthenaQueryError(f"NOT_SUPPORTED: {verb} is supported for Iceberg tables only ({database}.{name} is not one)")
    if verb == "VACUUM":
        vacuum(iceberg, query, database, name, table)


def vacuum(iceberg: IcebergStatements, query: _AthenaQuery, database: str, name: str, table: dict[str, Any]) -> None:
    storage = iceberg.effects.engine.storage
    parameters = dict(table.get("Parameters") or {})
    cutoff = iceberg.clock() - timedelta(seconds=_property(parameters, "vacuum_max_snapshot_age_seconds"))
    keep_newest = max(1, _property(parameters, "vacuum_min_snapshots_to_keep"))
    history = snapshots(storage, table)
    kept = [s for i, s in enumerate(history) if i >= len(history) - keep_newest or datetime.fromisoformat(s["committedAt"]) >= cutoff]
    if len(kept) != len(history):
        iceberg.write_metadata(database, name, kept, query)
    location = folder(str(table["StorageDescriptor"]["Location"]))
    referenced = {s["file"] for s in kept if s.get("file")}
    for uri in storage.objects(f"{location}data/"):
        if uri not in referenced:
            storage.delete(uri)
    current = (iceberg.effects._glue_table(database, name) or {}).get("Parameters", {}).get("metadata_location")
    older = [uri for uri in sorted(storage.objects(f"{location}metadata/")) if uri != current]
    for uri in older[: max(0, len(older) - _property(parameters, "vacuum_max_metadata_files_to_keep"))]:
        storage.delete(uri)
