"""The Athena side of one job run: start a step's query (idempotently), learn how it ended, read its rows.

No invocation waits on Athena: a started query's id goes back to the state
machine, which polls and calls the runner again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from snaplake.athena.cursor import Cursor
from snaplake.athena.errors import InvalidLiteral, QueryCancelled, QueryFailed
from snaplake.athena.jobs import Job
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import PartitionValues
from snaplake.core import metrics

RUNNING_STATES = ("QUEUED", "RUNNING")
DDL_WAIT_SECONDS = 2  # ALTER / DROP finish in about a second
QUERY_WAIT_SECONDS = 5
_INTEGER_TYPES = {"tinyint", "smallint", "int", "integer", "bigint"}


def wait_seconds(sql: str) -> int:
    """How long the state machine waits before it polls the query."""
    return DDL_WAIT_SECONDS if sql.lstrip().upper().startswith(("ALTER", "DROP")) else QUERY_WAIT_SECONDS


def start_request(sql: str, token: str, work_group: str, output_location: str, database: str | None) -> dict[str, Any]:
    """StartQueryExecution's parameters, with an idempotency token (a retried call starts no second query)."""
    params: dict[str, Any] = {
        "QueryString": sql,
        "WorkGroup": work_group,
        "ClientRequestToken": token,
        "ResultConfiguration": {"OutputLocation": output_location},
    }
    if database:
        params["QueryExecutionContext"] = {"Database": database}
    return params


def query_ended(athena: Any, query_id: str, what: Callable[[], str]) -> tuple[bool, dict[str, Any]]:
    """(False, its QueryExecution) while the query runs; (True, its QueryExecution) once it SUCCEEDED; raises
    `QueryFailed` / `QueryCancelled` with Athena's reason, after `what` the caller was doing."""
    execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    status = execution["Status"]
    state = status["State"]
    if state in RUNNING_STATES:
        return False, execution
    if state == "SUCCEEDED":
        return True, execution
    reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage") or "Athena gave no reason"
    error = QueryCancelled if state == "CANCELLED" else QueryFailed
    raise error(f"{what()}: Athena query {query_id} {state}: {reason}")


@dataclass
class JobQueries:
    """Athena for one job of one execution."""

    athena: Any
    settings: AthenaSettings
    job: Job
    index: int

    def token(self, cursor: Cursor, label: str) -> str:
        """Athena's idempotency token: a retried call starts no second query for the same step."""
        return f"snaplake-{cursor.run_id}-{self.index}-{label}".ljust(32, "0")[:128]

    def start(self, cursor: Cursor, sql: str, label: str) -> None:
        database = self.job.database or None
        output = self.job.output_location or self.settings.output_location
        request = start_request(sql, self.token(cursor, label), self.job.work_group or self.settings.work_group, output, database)
        cursor.query_execution_id = str(self.athena.start_query_execution(**request)["QueryExecutionId"])
        cursor.queries += 1
        cursor.wait_seconds = wait_seconds(sql)

    def finished(self, cursor: Cursor, what: Callable[[], str]) -> bool:
        """False while the query runs; raises `QueryFailed` / `QueryCancelled` with Athena's reason (and `what` the job was doing)."""
        query_id = cursor.query_execution_id
        assert query_id is not None
        ended, execution = query_ended(self.athena, query_id, lambda: f"job {self.job.name}: {what()}")
        if ended:
            cursor.output_location = execution.get("ResultConfiguration", {}).get("OutputLocation")
            self._publish_metrics(execution.get("Statistics", {}))
        return ended

    def _publish_metrics(self, statistics: dict[str, Any]) -> None:
        """Each finished query's run time and bytes scanned, per job and target table: their Sum is the job's."""
        values = {
            "AthenaQueryTime": statistics.get("TotalExecutionTimeInMillis"),
            "AthenaBytesScanned": statistics.get("DataScannedInBytes"),
        }
        known = {name: float(value) for name, value in values.items() if isinstance(value, int | float)}
        if known:
            metrics.publish(metrics.ATHENA, self.job.name, self.job.target if self.job.table else self.job.name, **known)

    def partition_values(self, query_id: str) -> list[PartitionValues]:
        """The distinct-partitions query's rows (GetQueryResults, every page; the first row is the header)."""
        rows: list[PartitionValues] = []
        types: list[str] = []
        header = True
        for page in self.athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
            result = page["ResultSet"]
            if not types:
                types = [str(c.get("Type", "varchar")).lower() for c in result.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
            data = result.get("Rows", [])
            if header:
                data, header = data[1:], False
            for row in data:
                values: list[str | int] = []
                for position, cell in enumerate(row["Data"]):
                    value = cell.get("VarCharValue")
                    if value is None:
                        raise InvalidLiteral(
                            f"job {self.job.name}: the SELECT yields NULL partition values; COALESCE the partition columns in the SELECT"
                        )
                    kind = types[position] if position < len(types) else "varchar"
                    values.append(int(value) if kind in _INTEGER_TYPES else value)
                rows.append(tuple(values))
        return rows
