"""Athena: moto's Athena runs no SQL (every query SUCCEEDS at once and changes nothing). Here a query
takes virtual time and then applies Athena's documented Glue/S3 effects (athena_effects.py); SELECTs
return registered rows, paged; and queries can be made to fail (see AthenaEmulator).
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
from snaplake_local.emulator.athena_effects import StatementEffects, _AthenaFailure
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
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, Athena type) of a SELECT's result
    rows: list[list[str | None]] = field(default_factory=list)


class AthenaEmulator(StatementEffects):
    """Athena's documented effects on the Glue Data Catalog and S3; moto's Athena runs no SQL
    (every query SUCCEEDS at once and changes nothing).

    A query runs for `ddl_seconds` (ALTER / DROP) or `query_seconds` on the virtual clock,
    then its effects are applied, as Athena applies them when a query completes:

    - CREATE TABLE ... WITH (...) AS SELECT: a Glue table whose columns are the SELECT's, derived
      with sqlglot (types from CAST, from the Glue columns of the tables it reads, aggregates;
      otherwise string); format, external_location (which must be empty, else
      HIVE_PATH_ALREADY_EXISTS) and partitioned_by from the WITH properties.
    - INSERT INTO: the target's partitions the query writes are registered.
    - ALTER TABLE ADD / DROP PARTITION, DROP TABLE, CREATE DATABASE: the Glue change.
    - SELECT: the rows registered with `add_results` (none otherwise), in the output location as CSV.

    Written partitions are known from the WHERE filter of a batched CTAS/INSERT
    (`("dt" = '...') OR ...`) or from a literal projected as the partition column; a
    placeholder object stands for the data files in each written folder, so "the
    location must be empty" and deleting replaced data are exercised. Referenced
    tables must exist (TABLE_NOT_FOUND), columns must resolve (COLUMN_NOT_FOUND),
    and `fail_queries` fails chosen queries with a given reason. GetQueryResults
    pages by MaxResults/NextToken with at most `page_rows` rows a page.
    """

    def __init__(self, clock: VirtualClock, account: str = DEFAULT_ACCOUNT, region: str = "eu-west-1"):
        self.clock = clock
        self.account = account
        self.region = region
        self.ddl_seconds = 1.0
        self.query_seconds = 5.0
        self.page_rows = 1000
        self.write_placeholders = True
        self.queries: dict[str, _AthenaQuery] = {}
        self._failures: list[tuple[str, str]] = []
        self._results: list[tuple[str, list[tuple[str, str]], list[tuple[Any, ...]]]] = []
        self._lock = threading.RLock()

    # ---- what tests and the runner configure
    def fail_queries(self, containing: str, reason: str) -> None:
        """The next query whose SQL contains `containing` ends FAILED with `reason` (and changes nothing)."""
        self._failures.append((containing, reason))

    def add_results(self, containing: str, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        """Rows a SELECT whose SQL contains `containing` returns; columns are (name, Athena type)."""
        self._results.append((containing, columns, rows))

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
            yield

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
        except _AthenaFailure as failure:
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
        header = [name for name, _ in query.columns]
        rows: list[list[str | None]] = [list(header), *query.rows] if query.columns else []
        start = int(handler._get_param("NextToken") or 0)
        size = min(int(handler._get_param("MaxResults") or 1000), self.page_rows)
        page = rows[start : start + size]
        body: dict[str, Any] = {
            "ResultSet": {
                "Rows": [{"Data": [{} if value is None else {"VarCharValue": str(value)} for value in row]} for row in page],
                "ResultSetMetadata": {
                    "ColumnInfo": [{"Name": name, "Label": name, "Type": kind, "CatalogName": "hive"} for name, kind in query.columns]
                },
            },
            "UpdateCount": 0,
        }
        if start + size < len(rows):
            body["NextToken"] = str(start + size)
        return json.dumps(body)
