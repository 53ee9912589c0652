"""Athena SQL jobs, one step at a time: `run_job_step` is the athena_etl state machine's RunJobStep.

Execution is split so no Lambda invocation waits on Athena: the first call
plans the job (the plan is stored in S3, the state payload only carries a
cursor), then runs steps in order until it starts a query that has not finished
yet, and returns the cursor with that QueryExecutionId. The state machine polls
the query and calls back; the next call checks the query's final state (FAILED
/ CANCELLED raise `QueryFailed` / `QueryCancelled` with Athena's
StateChangeReason) and carries on with the next step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from snaplake.athena.catalog_ops import JobTables
from snaplake.athena.cursor import Cursor, run_id_for
from snaplake.athena.errors import InvalidJob
from snaplake.athena.guard import check_step
from snaplake.athena.jobs import Job, JobMode, TableMode, check_permitted, parse_job
from snaplake.athena.lake import RESERVE_MS, JobStorage
from snaplake.athena.planner import JobPlanner
from snaplake.athena.plans import Plan, Step
from snaplake.athena.queries import JobQueries
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import PartitionValues, build_distinct_partitions, validate_identifier
from snaplake.catalog import ensure_database


@dataclass(frozen=True)
class AthenaClients:
    athena: Any
    glue: Any
    s3: Any


@dataclass
class JobRun:
    """One job of one execution: plans it and runs its steps."""

    job: Job
    run_id: str
    storage: JobStorage
    tables: JobTables
    queries: JobQueries
    planner: JobPlanner
    remaining_ms: Callable[[], int]

    @classmethod
    def of(
        cls, clients: AthenaClients, settings: AthenaSettings, job: Job, index: int, run_id: str, remaining_ms: Callable[[], int]
    ) -> JobRun:
        tables = JobTables(clients.glue, job, run_id)
        return cls(
            job,
            run_id,
            JobStorage(clients.s3, settings, job, remaining_ms),
            tables,
            JobQueries(clients.athena, settings, job, index),
            JobPlanner(tables, settings, job),
            remaining_ms,
        )

    def _what(self, cursor: Cursor) -> str:
        if cursor.phase == "partitions":
            return "listing the partitions to write"
        steps = self.storage.load_steps(cursor)
        return f"step {cursor.step + 1}/{len(steps)} ({steps[cursor.step].description})"

    def _begin(self, cursor: Cursor) -> None:
        """Plan the job (CTAS into a partitioned table first lists its partitions with a query)."""
        job = self.job
        if job.mode is JobMode.QUERY:
            assert job.query is not None
            self.storage.store_plan(cursor, Plan((Step("query", "run the query", sql=job.query),)))
        elif job.mode is JobMode.ADD_PARTITION:
            self.storage.store_plan(cursor, self.planner.plan_add_partition())
        elif job.mode is JobMode.DROP_PARTITION:
            self.storage.store_plan(cursor, self.planner.plan_drop_partition())
        elif job.mode is JobMode.DROP_TABLE:
            self.storage.store_plan(cursor, self.planner.plan_drop_table())
        elif job.mode is JobMode.APAS:
            self.storage.store_plan(cursor, self.planner.plan_apas(cursor.run_id))
        else:
            assert job.options is not None and job.query is not None
            ensure_database(self.tables.glue, self.tables.database)
            plan = self._plan_ctas(cursor.run_id, None)  # raises for error_if_exists, decides skip_if_exists
            if plan.skipped or not job.options.partitioned_by or job.table_mode is TableMode.EMPTY:
                self.storage.store_plan(cursor, plan)
                return
            cursor.phase = "partitions"
            self.queries.start(cursor, build_distinct_partitions(job.query, job.options.partitioned_by), "partitions")

    def _plan_ctas(self, run_id: str, partition_values: Sequence[PartitionValues] | None) -> Plan:
        occupied = self.job.table_mode is TableMode.DATA_ONLY and not self.storage.is_empty(self.planner.table_folder())
        return self.planner.plan_ctas(run_id, partition_values, occupied)

    def _after_query(self, cursor: Cursor) -> None:
        query_id = cursor.query_execution_id
        assert query_id is not None
        cursor.query_execution_id = None
        if cursor.phase == "partitions":
            self.storage.store_plan(cursor, self._plan_ctas(cursor.run_id, self.queries.partition_values(query_id)))
        else:
            cursor.step += 1

    def _run_step(self, step: Step) -> bool:
        """Run one non-query step; False when it ran out of time and must be called again."""
        if step.kind == "require_empty":
            assert step.location is not None
            self.storage.require_empty(step.location)
        elif step.kind == "replace_table":
            assert step.table is not None and step.source_table is not None
            self.tables.replace_table(step.table, step.source_table)
        elif step.kind == "delete_location":
            assert step.location is not None
            return self.storage.delete_location(step.location, step.keep)
        elif step.kind == "check_schema":
            assert step.table is not None and step.source_table is not None
            self.tables.check_schema(step.table, step.source_table)
        else:
            raise InvalidJob(f"job {self.job.name}: the stored plan has an unknown step kind {step.kind!r}")
        return True

    def advance(self, cursor: Cursor) -> Cursor:
        """Run steps until a query is started (or the job ends).

        The invocation returns as soon as a query is started: a retried
        invocation then repeats only steps that are safe to repeat (Glue and
        S3 steps of this run, and a start with the same idempotency token).
        """
        if cursor.query_execution_id is not None:
            if not self.queries.finished(cursor, lambda: self._what(cursor)):
                return cursor
            self._after_query(cursor)
        worked = False
        while not cursor.done and cursor.query_execution_id is None:
            if cursor.phase == "start":
                self._begin(cursor)
                worked = True
                continue
            steps = self.storage.load_steps(cursor)
            if cursor.step >= len(steps):
                cursor.phase = "done"
                break
            if worked and self.remaining_ms() < RESERVE_MS:
                cursor.wait_seconds = 0
                return cursor
            step = steps[cursor.step]
            check_step(self.job, step, self.storage.settings)  # a stored step is held to the job rules again
            worked = True
            if step.kind == "query":
                assert step.sql is not None
                self.queries.start(cursor, step.sql, f"s{cursor.step:05d}")
                return cursor
            if not self._run_step(step):
                cursor.wait_seconds = 0
                return cursor
            cursor.step += 1
        if cursor.done:
            cursor.wait_seconds = 0
        return cursor


def run_job_step(
    clients: AthenaClients, settings: AthenaSettings, request: Mapping[str, Any], remaining_ms: Callable[[], int]
) -> dict[str, Any]:
    """One call of the job loop: `{"job", "index", "execution", "startTime", "cursor"}` -> the next cursor.

    The cursor says `done`, or names the running `queryExecutionId` to poll
    before calling again, or (`queryExecutionId` null, not done) asks to be
    called again at once because the invocation ran short of time.
    """
    index = request.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise InvalidJob("'index' must be the job's position in the list (an integer >= 0)")
    job = parse_job(request.get("job"), index)
    check_permitted(job, settings)
    execution, start_time = request.get("execution"), request.get("startTime")
    if (execution is not None and not isinstance(execution, str)) or (start_time is not None and not isinstance(start_time, str)):
        raise InvalidJob("'execution' and 'startTime' must be strings (the execution's id and start time)")
    raw_cursor = request.get("cursor")
    # A cursor carries its run id, so calls outside a state machine (no execution id) continue the same run.
    carried = raw_cursor.get("runId") if isinstance(raw_cursor, dict) else None
    run_id = validate_identifier(carried, "cursor runId") if carried is not None else run_id_for(execution, start_time, index)
    cursor = Cursor.parse(raw_cursor, run_id)
    cursor = JobRun.of(clients, settings, job, index, run_id, remaining_ms).advance(cursor)
    result = cursor.as_json()
    if cursor.done:
        result["result"] = {
            "job": job.name,
            "mode": job.mode.value,
            "status": "SKIPPED" if cursor.skipped else "SUCCEEDED",
            "reason": cursor.reason,
            "queries": cursor.queries,
            "target": job.target if job.table else None,
            "outputLocation": cursor.output_location if job.mode is JobMode.QUERY else None,
        }
    return result
