"""`<table>_current`: a DynamoDB table's current items as an Iceberg table, advanced by each export with Athena.

The DynamoDB state machine's MergeCurrent step, after RegisterCatalog and before CommitCheckpoint, one call at a
time like the Athena jobs (ADR 0009): a call starts at most one query and returns its QueryExecutionId; the state
machine polls GetQueryExecution and calls again. The queries are those of `current_sql`: CREATE TABLE (Iceberg) when
the table is missing, ALTER TABLE ADD COLUMNS for attributes it lacks, then the export's MERGE.

Exactly once per window: after the MERGE succeeded the step records the export in `_snaplake/current/<table>.json`
(lake), and checks that record before anything else, so a retried or repeated run of the same window (CommitCheckpoint
failed, the next run finished the same export) merges nothing. A MERGE whose record was not written (the run died in
between) runs again, which leaves the table as it was: each MERGE is idempotent. Windows apply in order: a window must
start where the recorded one ended, else `CurrentTableBehind` (a full export rebuilds the table).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from snaplake.athena.current_sql import (
    KEY_PREFIX,
    NEW_PREFIX,
    MergeTarget,
    build_add_columns,
    build_create,
    snapshot_merge,
    window_merge,
)
from snaplake.athena.current_upkeep import MERGE, UPKEEP, current_landing, next_upkeep
from snaplake.athena.errors import CurrentTableBehind, CurrentTableSchemaMismatch, QueryCancelled, QueryFailed
from snaplake.athena.queries import query_ended, start_request, wait_seconds
from snaplake.athena.settings import ATHENA_WORK_GROUP
from snaplake.athena.sql import validate_identifier
from snaplake.catalog import (
    CatalogOptions,
    CatalogSettings,
    LandedPartition,
    get_table,
    landing_event_bus,
    put_landing_events,
    typed_column,
    version_holding,
)
from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import text, timestamp
from snaplake.core.names import column_name, join_key
from snaplake.core.settings import Env, LakeSettings, Setting, environ
from snaplake.core.times import iso_utc, parse_iso_utc

DYNAMODB_CURRENT_TABLES = Setting("DYNAMODB_CURRENT_TABLES", "on", "'on' keeps a <table>_current Iceberg table per DynamoDB table")
CURRENT_FOLDER = "dynamodb_current"  # the Iceberg tables' data and metadata, under LAKE_PREFIX
RECORDS_FOLDER = "_snaplake/current"  # what each table applied last, and the queries' results
RECORD_FORMAT = "snaplake.current-applied/1"
_FULL, _INCREMENTAL = "FULL_EXPORT", "INCREMENTAL_EXPORT"
_REBUILD = "start a full export ({'mode': 'full'}) to rebuild it"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurrentSettings:
    """DYNAMODB_CURRENT_TABLES (on/off), the lake (LAKE_BUCKET, LAKE_PREFIX, ...), the DynamoDB Glue database
    (GLUE_DATABASE_PREFIX + DYNAMODB_GLUE_DATABASE), ATHENA_WORK_GROUP, CHANGE_LOG_RETENTION_DAYS (how long VACUUM
    keeps the tables' snapshots, current_upkeep) and LANDING_EVENT_BUS."""

    enabled: bool
    lake: LakeSettings
    database: str
    work_group: str
    retention_days: int = 0
    landing_bus: str = "default"

    @classmethod
    def from_env(cls, env: Env | None = None) -> CurrentSettings:
        env = environ() if env is None else env
        catalog = CatalogSettings.from_env(env)
        return cls(
            enabled=DYNAMODB_CURRENT_TABLES.choice(env, ("on", "off")) == "on",
            lake=LakeSettings.from_env(env),
            database=catalog.database_prefix + catalog.dynamodb_database,
            work_group=ATHENA_WORK_GROUP.matching(env, r"[A-Za-z0-9._-]{1,128}", "is not a work group name"),
            retention_days=catalog.change_log_retention.keep_days,
            landing_bus=landing_event_bus(env),
        )

    def location(self, table: str) -> str:
        return f"{self.lake.root}{CURRENT_FOLDER}/{table}/"

    @property
    def output_location(self) -> str:
        return f"{self.lake.root}{RECORDS_FOLDER}/results/"

    def record_key(self, table: str) -> str:
        return join_key(self.lake.prefix, RECORDS_FOLDER, f"{table}.json")


@dataclass(frozen=True)
class CurrentClients:
    athena: Any
    glue: Any
    s3: Any
    dynamodb: Any
    events: Any


@dataclass(frozen=True)
class ExportToApply:
    """MergeCurrent's input: the export that just landed and was registered."""

    table_arn: str
    export_arn: str
    export_type: str
    exported_to: datetime
    window_from: datetime | None
    table: str  # the lake table: <table>, <table>_changes, <table>_current in the DynamoDB database
    partitions: tuple[str, ...]  # the partition prefixes FinalizeConversion published
    execution: str

    @classmethod
    def parse(cls, request: Mapping[str, Any]) -> ExportToApply:
        kind = request.get("exportType")
        if kind not in (_FULL, _INCREMENTAL):
            raise InvalidEvent(f"exportType must be {_FULL} or {_INCREMENTAL}, got {str(kind)[:50]!r}")
        partitions = request.get("partitions")
        if not isinstance(partitions, list) or not all(isinstance(p, str) for p in partitions):
            raise InvalidEvent("'partitions' must be the list of partition prefixes FinalizeConversion published")
        window_from = timestamp(request.get("windowFrom"), "windowFrom") if kind == _INCREMENTAL else None
        return cls(
            table_arn=text(request.get("tableArn"), "tableArn"),
            export_arn=text(request.get("exportArn"), "exportArn"),
            export_type=kind,
            exported_to=timestamp(request.get("exportedTo"), "exportedTo"),
            window_from=window_from,
            table=validate_identifier(request.get("table"), "table"),
            partitions=tuple(partitions),
            execution=text(request.get("execution"), "execution"),
        )

    @property
    def full(self) -> bool:
        return self.export_type == _FULL


def _columns(table: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if table is None:
        return []
    return [(str(c["Name"]).lower(), str(c["Type"]).lower()) for c in table.get("StorageDescriptor", {}).get("Columns", [])]


@dataclass
class CurrentStep:
    """One MergeCurrent call for one export."""

    clients: CurrentClients
    settings: CurrentSettings
    export: ExportToApply

    @property
    def current(self) -> str:
        return validate_identifier(f"{self.export.table}_current", "table")

    def _glue_table(self, name: str) -> dict[str, Any] | None:
        return get_table(self.clients.glue, self.settings.database, name, CatalogOptions())

    def applied_record(self) -> dict[str, Any] | None:
        found = self.settings.lake.lake_bucket(self.clients.s3).read_json_or_none(self.settings.record_key(self.export.table))
        return found if isinstance(found, dict) and found.get("format") == RECORD_FORMAT else None

    def record_applied(self) -> None:
        body = {
            "format": RECORD_FORMAT,
            "tableArn": self.export.table_arn,
            "exportArn": self.export.export_arn,
            "exportType": self.export.export_type,
            "exportedTo": iso_utc(self.export.exported_to),
        }
        self.settings.lake.lake_bucket(self.clients.s3).write_bytes(
            self.settings.record_key(self.export.table), json.dumps(body, sort_keys=True).encode(), "application/json"
        )

    def key_columns(self) -> tuple[str, ...]:
        """The table's key attributes (DescribeTable), as the columns the conversion names them."""
        described = self.clients.dynamodb.describe_table(TableName=self.export.table_arn)["Table"]
        ordered = sorted(described["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        return tuple(column_name((str(k["AttributeName"]),), "__") for k in ordered)

    def source_table(self, base: str) -> str:
        """The version of `base` (snaplake.catalog.versions) that registers this export's partitions.

        A column type change puts the export's partitions in `<base>__v<N>`: reading `base` instead would merge
        nothing, and for a full export delete every item. Each partition of an export is that export's own (DynamoDB
        windows end on whole hours), so they are all in one version; when two versions hold them all (the hour an
        upgrade from windows to the latest restorable time shares), the newest registered them last.
        """
        partitions = [LandedPartition.parse(self.settings.lake.bucket, prefix) for prefix in self.export.partitions]
        holding = version_holding(self.clients.glue, self.settings.database, base, partitions, CatalogOptions())
        if holding is None:
            raise CurrentTableSchemaMismatch(
                f"no table version of {base} registers every partition of export {self.export.export_arn}: "
                f"{self.current} cannot merge it in one statement"
            )
        return holding

    def landed_columns(self) -> tuple[str, list[tuple[str, str]], list[str]]:
        """The Glue table this export's rows are read from, the `_current` columns it gives, and its own columns."""
        if self.export.full:
            name = self.source_table(self.export.table)
            columns = _columns(self._glue_table(name))
            return name, columns, [c for c, _ in columns]
        name = self.source_table(f"{self.export.table}_changes")
        columns = _columns(self._glue_table(name))
        found: dict[str, str] = {}
        for column, kind in columns:
            for prefix in (KEY_PREFIX, NEW_PREFIX):
                if column.startswith(prefix):
                    found.setdefault(column.removeprefix(prefix), kind)
        return name, list(found.items()), [c for c, _ in columns]

    def next_statement(self) -> tuple[str, str] | None:
        """(label, SQL) of the next query this export needs, or None when it needs none (record it and finish)."""
        landed, wanted, source_columns = self.landed_columns()
        source_table = landed if self.export.partitions and source_columns else None
        keys = self.key_columns()
        given = dict(wanted)
        missing_keys = [k for k in keys if k not in given]
        if source_table is not None and missing_keys:
            raise CurrentTableSchemaMismatch(
                f"{self.settings.database}.{source_table} has no column for the key attribute(s) {missing_keys} of {self.export.table_arn}"
            )
        existing = self._glue_table(self.current)
        if existing is None:
            if source_table is None:
                return None  # nothing landed and nothing to empty: the record says the table has no items
            ordered = [(k, given[k]) for k in keys] + [(c, t) for c, t in wanted if c not in keys]
            return "create", build_create(self.settings.database, self.current, ordered, self.settings.location(self.export.table))
        columns = dict(_columns(existing))
        # An attribute whose type is not its column's gets a column of its own (typed_column): never a failed merge,
        # and its old column is NULL in the items this export writes (their new image has no value of that type).
        placed = {c: c if c in keys or columns.get(c, t) == t else typed_column(c, t) for c, t in wanted}
        if source_table is not None:
            new = [(placed[c], t) for c, t in wanted if placed[c] not in columns]
            if new:
                return "add-columns", build_add_columns(self.settings.database, self.current, new)
        sources: dict[str, str | None] = {column: attribute for attribute, column in placed.items()}
        sources.update({attribute: None for attribute, column in placed.items() if column != attribute})
        target = MergeTarget(self.settings.database, self.current, keys, tuple(columns))
        if self.export.full:
            return "merge", snapshot_merge(target, source_table, list(given), self._export_time(), sources)
        if source_table is None:
            return None  # a quiet window: nothing to merge
        assert self.export.window_from is not None
        return "merge", window_merge(target, source_table, source_columns, self.export.window_from, self.export.exported_to, sources)

    def _export_time(self) -> str | None:
        for prefix in self.export.partitions:
            partition = LandedPartition.parse(self.settings.lake.bucket, prefix)
            if partition.keys == ("export_time",):
                return partition.values[0]
        return None

    def check_order(self, record: Mapping[str, Any] | None) -> str | None:
        """Why this export needs no MERGE (already applied, or no table to advance yet), or None when it does.
        Raises CurrentTableBehind when the table did not apply the window before this one."""
        applied = parse_iso_utc(str(record["exportedTo"])) if record is not None else None
        if applied is not None and applied >= self.export.exported_to:
            return "ALREADY_APPLIED"
        if self.export.full:
            return None
        if applied is None:
            if self._glue_table(self.current) is None:
                return "NOT_BUILT"  # the table was never built: a full export builds it
            raise CurrentTableBehind(f"{self.settings.database}.{self.current} exists but records no export applied; {_REBUILD}")
        if applied != self.export.window_from:
            assert self.export.window_from is not None
            raise CurrentTableBehind(
                f"{self.settings.database}.{self.current} applied exports up to {iso_utc(applied)}, but this window starts at "
                f"{iso_utc(self.export.window_from)}: windows in between were not applied; {_REBUILD}"
            )
        return None

    def token(self, label: str) -> str:
        seed = f"{self.export.execution}#{self.export.export_arn}#{label}"
        return f"snaplake-current-{hashlib.sha256(seed.encode()).hexdigest()[:40]}-{label}"

    def advance(self, cursor: Mapping[str, Any]) -> dict[str, Any]:
        """One call: wait for the running query, record the MERGE once it succeeded, or start the next query."""
        queries = int(cursor.get("queries", 0) or 0)
        state: dict[str, Any] = {"queryExecutionId": None, "label": None, "queries": queries, "waitSeconds": 0}
        running = cursor.get("queryExecutionId")
        if running:
            label = str(cursor.get("label"))
            try:
                ended, _ = query_ended(self.clients.athena, str(running), lambda: f"{self.current}: {label}")
            except (QueryFailed, QueryCancelled) as error:
                if label not in UPKEEP:
                    raise
                log.warning("current table upkeep failed; the next merge runs it again", extra={"table": self.current, "error": str(error)})
                return {**state, "done": True, "status": "MERGED", "upkeep": f"{label} failed: {str(error)[:500]}"}
            if not ended:
                return {
                    **state,
                    "queryExecutionId": running,
                    "label": label,
                    "waitSeconds": int(cursor.get("waitSeconds") or 5),
                    "done": False,
                }
            if label == MERGE:
                self.put_landing(str(running))
                self.record_applied()
            if label in (MERGE, *UPKEEP):
                upkeep = next_upkeep(label, self.settings.database, self.current, self._parameters(), self.settings.retention_days)
                return self.start(state, upkeep)
        if not self.settings.enabled:
            return {**state, "done": True, "status": "OFF"}
        skipped = self.check_order(self.applied_record())
        if skipped is not None:
            return {**state, "done": True, "status": skipped}
        statement = self.next_statement()
        if statement is None:
            self.record_applied()
            return {**state, "done": True, "status": "NOTHING_TO_MERGE"}
        return self.start(state, statement)

    def _parameters(self) -> Mapping[str, Any]:
        return (self._glue_table(self.current) or {}).get("Parameters") or {}

    def put_landing(self, merge_query: str) -> None:
        """The `_current` landing event: `rows` is the MERGE's UpdateCount."""
        counted = self.clients.athena.get_query_results(QueryExecutionId=merge_query, MaxResults=1).get("UpdateCount")
        location = self.settings.location(self.export.table)
        landing = current_landing(self.settings.database, self.current, location, self.export, int(counted or 0))
        put_landing_events(self.clients.events, self.settings.landing_bus, [landing])

    def start(self, state: dict[str, Any], statement: tuple[str, str] | None) -> dict[str, Any]:
        """Start the query `statement` (label, SQL); None: the MERGE and its upkeep are done."""
        if statement is None:
            return {**state, "done": True, "status": "MERGED"}
        queries = int(state["queries"])
        label, sql = statement
        request = start_request(sql, self.token(label), self.settings.work_group, self.settings.output_location, self.settings.database)
        query_id = str(self.clients.athena.start_query_execution(**request)["QueryExecutionId"])
        return {
            **state,
            "queryExecutionId": query_id,
            "label": label,
            "queries": queries + 1,
            "waitSeconds": wait_seconds(sql),
            "done": False,
        }


def merge_current(clients: CurrentClients, settings: CurrentSettings, request: Mapping[str, Any]) -> dict[str, Any]:
    """MergeCurrent: `{"tableArn", "exportArn", "exportType", "exportedTo", "windowFrom", "table", "partitions",
    "execution", "cursor"}` -> the next cursor (`done`, or the `queryExecutionId` to poll before calling again)."""
    cursor = request.get("cursor") or {}
    if not isinstance(cursor, dict):
        raise InvalidEvent("'cursor' must be {} or the cursor the previous MergeCurrent call returned")
    return CurrentStep(clients, settings, ExportToApply.parse(request)).advance(cursor)
