"""Athena: moto's Athena runs no SQL (every query SUCCEEDS at once and changes nothing). Here a query
takes virtual time, then runs on DuckDB over the lake's Parquet (athena_engine) and applies Athena's
documented Glue/S3 effects (athena_effects); SELECTs return their rows through GetQueryResults, paged;
and queries can be made to fail (see AthenaEmulator).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.emulator.athena_effects import StatementEffects
from snaplake_local.emulator.athena_engine import AthenaEngine
from snaplake_local.emulator.athena_iceberg import IcebergStatements
from snaplake_local.emulator.athena_lake import GlueBackendCatalog, MotoLakeStorage
from snaplake_local.emulator.athena_types import AthenaQueryError
from snaplake_local.emulator.clock import VirtualClock, patched_attribute


@dataclass
class _AthenaQuery:
    id: str
    sql: str
    database: str | None
    output_location: str | None
    started: datetime
    seconds: float
    state: str = "RUNNING"
    reason: str = ""
    failure: str | None = None  # injected by fail_queries
    columns: list[dict[str, Any]] = field(default_factory=list)  # GetQueryResults' ColumnInfo of a SELECT's result
    rows: list[list[str | None]] = field(default_factory=list)  # a SELECT's rows as VarCharValue text (None: NULL)
    update_count: int = 0  # rows a CTAS or INSERT INTO wrote
    scanned_bytes: int = 0


class AthenaEmulator(StatementEffects):
    """Athena's query execution and its documented effects on the Glue Data Catalog and S3; moto's Athena
    runs no SQL (every query SUCCEEDS at once and changes nothing).

    A query runs for `ddl_seconds` (ALTER / DROP) or `query_seconds` on the virtual clock; then, as Athena
    does when a query completes, its SQL runs on DuckDB over the lake's Parquet as Glue describes it
    (`engine`, an AthenaEngine: see athena_engine and athena_translate) and its effects are applied
    (athena_effects): CTAS and INSERT INTO write real Parquet files and register the partitions they wrote,
    a SELECT's rows come back through GetQueryResults (the header row first, ColumnInfo with Athena's type
    names, at most `page_rows` rows a page with NextToken) and as CSV in the output location; ALTER TABLE
    ADD / DROP PARTITION, DROP TABLE and CREATE DATABASE change Glue. current_timestamp and partition
    projection's NOW are the virtual clock. A query that fails does so with Athena's error name
    (TABLE_NOT_FOUND, COLUMN_NOT_FOUND, TYPE_MISMATCH, NOT_SUPPORTED where DuckDB would answer differently,
    ...) and changes nothing; `fail_queries` fails chosen queries with a given reason.
    """

    def __init__(self, clock: VirtualClock, account: str = DEFAULT_ACCOUNT, region: str = "eu-west-1"):
        self.clock = clock
        self.account = account
        self.region = region
        self.ddl_seconds = 1.0
        self.query_seconds = 5.0
        self.page_rows = 1000
        self.queries: dict[str, _AthenaQuery] = {}
        self._failures: list[tuple[str, str]] = []
        self._storage = MotoLakeStorage(account)
        self.engine = AthenaEngine(GlueBackendCatalog(account, region), self._storage, clock.now)
        self.iceberg = IcebergStatements(self, clock.now)
        self._lock = threading.RLock()

    # ---- what tests and the runner configure
    def fail_queries(self, containing: str, reason: str) -> None:
        """The next query whose SQL contains `containing` ends FAILED with `reason` (and changes nothing)."""
        self._failures.append((containing, reason))

    def statements(self) -> list[tuple[str, str]]:
        """(state, SQL) of every query started so far, in order."""
        with self._lock:
            for query in self.queries.values():
                self._refresh(query)
            return [(query.state, query.sql) for query in self.queries.values()]

    # ---- moto patching
    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.athena import models, responses

        emulator = self
        original_start = models.AthenaBackend.start_query_execution
        original_describe = responses.AthenaResponse.get_query_execution

        def start_query_execution(backend: Any, query: str, context: Any, config: Any, workgroup: str, execution_parameters: Any) -> str:
            output = (config or {}).get("OutputLocation")
            query_id = str(original_start(backend, query, context, config, workgroup, execution_parameters))
            emulator._started(query_id, query, (context or {}).get("Database"), output)
            return query_id

        def get_query_execution(handler: Any) -> str:
            query_id = handler._get_param("QueryExecutionId")
            described = json.loads(original_describe(handler))
            query = emulator.queries.get(query_id)
            if query is not None:
                with emulator._lock:
                    emulator._refresh(query)
                status = described["QueryExecution"]["Status"]
                status["State"] = query.state
                described["QueryExecution"].setdefault("Statistics", {})["DataScannedInBytes"] = query.scanned_bytes
                if query.state in ("FAILED", "CANCELLED"):
                    status["StateChangeReason"] = query.reason
                    status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1000, "Retryable": False, "ErrorMessage": query.reason}
            return json.dumps(described)

        def get_query_results(handler: Any) -> Any:
            return emulator._results_page(handler)

        def stop_query_execution(backend: Any, exec_id: str) -> None:
            with emulator._lock:
                query = emulator.queries.get(exec_id)
                if query is not None:
                    emulator._refresh(query)
                    if query.state in ("QUEUED", "RUNNING"):
                        query.state, query.reason = "CANCELLED", "Query cancelled by user"

        with (
            patched_attribute(models.AthenaBackend, "start_query_execution", start_query_execution),
            patched_attribute(models.AthenaBackend, "stop_query_execution", stop_query_execution),
            patched_attribute(responses.AthenaResponse, "get_query_execution", get_query_execution),
            patched_attribute(responses.AthenaResponse, "get_query_results", get_query_results),
        ):
            try:
                yield
            finally:
                self._storage.close()

    def _started(self, query_id: str, sql: str, database: str | None, output: str | None) -> None:
        ddl = sql.lstrip().upper().startswith(("ALTER", "DROP"))
        injected = next((item for item in self._failures if item[0] in sql), None)
        if injected is not None:
            self._failures.remove(injected)
        failure = injected[1] if injected else None
        query = _AthenaQuery(
            query_id, sql, database, output, self.clock.now(), self.ddl_seconds if ddl else self.query_seconds, failure=failure
        )
        with self._lock:
            self.queries[query_id] = query
            self._refresh(query)

    def _refresh(self, query: _AthenaQuery) -> None:
        if query.state != "RUNNING" or (self.clock.now() - query.started).total_seconds() < query.seconds:
            return
        if query.failure is not None:
            query.state, query.reason = "FAILED", query.failure
            return
        try:
            self._apply(query)
        except AthenaQueryError as failure:
            query.state, query.reason = "FAILED", str(failure)
            return
        query.state = "SUCCEEDED"

    def _results_page(self, handler: Any) -> Any:
        query = self.queries.get(handler._get_param("QueryExecutionId"))
        if query is None:
            return handler.error("QueryExecution was not found", 400)
        with self._lock:
            self._refresh(query)
        if query.state != "SUCCEEDED":
            return handler.error(f"Query has not yet finished. Current state: {query.state}", 400)
        header: list[str | None] = [column["Name"] for column in query.columns]
        rows: list[list[str | None]] = [header, *query.rows] if query.columns else []
        start = int(handler._get_param("NextToken") or 0)
        size = min(int(handler._get_param("MaxResults") or 1000), self.page_rows)
        page = rows[start : start + size]
        body: dict[str, Any] = {
            "ResultSet": {
                "Rows": [{"Data": [{} if value is None else {"VarCharValue": str(value)} for value in row]} for row in page],
                "ResultSetMetadata": {"ColumnInfo": query.columns},
            },
            "UpdateCount": query.update_count,
        }
        if start + size < len(rows):
            body["NextToken"] = str(start + size)
        return json.dumps(body)
