"""Athena job runs on the emulator (statemachine/athena_etl.asl.json, handlers in-process, DuckDB-backed Athena):
run-date variables from the schedule's input, job lists and SQL from the definitions folder, table modes, temporary
tables, add/drop partition and drop table jobs, and runs started by a landing. Assertions are on the data.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from snaplake.catalog import PARQUET_INPUT_FORMAT, PARQUET_SERDE
from snaplake_local.sources import default_parameters
from snaplake_local.stack import EmulatedStack, Execution

MACHINE = "AthenaEtlStateMachine"
DAYS = ["2024-05-01", "2024-05-02", "2024-05-03"]
SALES = pa.table(
    {
        "customer": [c for _ in DAYS for c in ("acme", "acme", "zenith")],
        "amount": pa.array([n * 10 + k for n in range(len(DAYS)) for k in (1, 2, 3)], pa.int64()),
        "day": [d for d in DAYS for _ in range(3)],
    }
)
# The daily jobs as the AthenaJobs parameter holds them: the table once (no rows), then yesterday's partition.
DAILY_JOBS = [
    {
        "name": "daily_sales_table",
        "mode": "ctas",
        "database": "marts",
        "table": "daily_sales",
        "saveMode": "skip_if_exists",
        "tableMode": "empty",
        "partitionedBy": ["dt"],
        "query": "SELECT customer, amount, day AS dt FROM lake.sales",
    },
    {
        "name": "daily_sales_day",
        "mode": "apas",
        "database": "marts",
        "table": "daily_sales",
        "partition": {"dt": "{run_date - 1d}"},
        "saveMode": "overwrite",
        "query": "SELECT customer, amount FROM lake.sales WHERE day = '{run_date - 1d}'",
    },
]


@pytest.fixture(scope="module")
def stack() -> Iterator[EmulatedStack]:
    parameters = default_parameters(
        DynamoDbTableArns="", DynamoDbStreamArns="", FirehoseTransform="false", AthenaJobs=json.dumps(DAILY_JOBS)
    )
    with EmulatedStack(parameters, function_log_level="ERROR") as deployed:
        glue = deployed.client("glue")
        glue.create_database(DatabaseInput={"Name": "lake"})
        body = io.BytesIO()
        pq.write_table(SALES, body)
        deployed.client("s3").put_object(Bucket=deployed.lake_bucket, Key="rds/sales/part-0.parquet", Body=body.getvalue())
        columns = [{"Name": "customer", "Type": "string"}, {"Name": "amount", "Type": "bigint"}, {"Name": "day", "Type": "string"}]
        descriptor = {
            "Columns": columns,
            "Location": f"s3://{deployed.lake_bucket}/rds/sales/",
            "InputFormat": PARQUET_INPUT_FORMAT,
            "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
        }
        glue.create_table(DatabaseName="lake", TableInput={"Name": "sales", "TableType": "EXTERNAL_TABLE", "StorageDescriptor": descriptor})
        yield deployed


def scheduled_input(stack: EmulatedStack, scheduled_time: str) -> Any:
    """The input EventBridge Scheduler gives the state machine at `scheduled_time`: the template's Input with its
    context attribute filled in, as Scheduler does."""
    schedule = stack.template["Resources"][MACHINE]["Properties"]["Events"]["Scheduled"]["Properties"]
    text = stack.evaluator.evaluate(schedule["Input"])
    return json.loads(text.replace("<aws.scheduler.scheduled-time>", scheduled_time))


def rows(stack: EmulatedStack, sql: str) -> list[list[str | None]]:
    return stack.athena.engine.run_sql(sql).text_rows()


def glue_table(stack: EmulatedStack, database: str, name: str) -> dict[str, Any] | None:
    glue = stack.client("glue")
    try:
        return dict(glue.get_table(DatabaseName=database, Name=name)["Table"])
    except glue.exceptions.EntityNotFoundException:
        return None


def partition_values(stack: EmulatedStack, database: str, name: str) -> dict[tuple[str, ...], str]:
    pages = stack.client("glue").get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name)
    return {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}


def keys(stack: EmulatedStack, prefix: str) -> list[str]:
    return sorted(stack.lake_objects(prefix))


def run(stack: EmulatedStack, run_input: dict[str, Any]) -> Execution:
    return stack.run(MACHINE, run_input)


def ctas(name: str, table: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "mode": "ctas", "database": "marts", "table": table, "query": query, **extra}


# ---------------------------------------------------------------------- run-date variables


def test_the_daily_apas_adds_yesterdays_partition_on_two_consecutive_days(stack: EmulatedStack) -> None:
    first = run(stack, scheduled_input(stack, "2024-05-03T05:00:00Z"))
    second = run(stack, scheduled_input(stack, "2024-05-04T05:00:00Z"))

    assert first.status == second.status == "SUCCEEDED", (first.cause, second.cause)
    assert first.output["variables"]["run_date"] == "2024-05-03" and second.output["variables"]["run_date"] == "2024-05-04"
    assert set(partition_values(stack, "marts", "daily_sales")) == {("2024-05-02",), ("2024-05-03",)}
    for day in ("2024-05-02", "2024-05-03"):
        expected = SALES.filter(pc.equal(SALES["day"], day))
        got = rows(stack, f"SELECT customer, amount FROM marts.daily_sales WHERE dt = '{day}' ORDER BY amount")
        assert got == [[c, str(a)] for c, a in zip(expected["customer"].to_pylist(), expected["amount"].to_pylist(), strict=True)]
    assert rows(stack, "SELECT count(*) FROM marts.daily_sales") == [["6"]], "day 1 is not written twice, day 3 not at all"


def test_a_repeated_schedule_delivery_rewrites_the_same_partition(stack: EmulatedStack) -> None:
    again = run(stack, scheduled_input(stack, "2024-05-03T05:00:00Z"))

    assert again.status == "SUCCEEDED", again.cause
    assert rows(stack, "SELECT count(*) FROM marts.daily_sales WHERE dt = '2024-05-02'") == [["3"]]


def test_the_run_date_is_taken_in_the_jobs_time_zone(stack: EmulatedStack) -> None:
    job = {"name": "when", "mode": "query", "query": "SELECT '{run_date}' AS d, '{run_time}' AS t, '{run_date + 1d:%Y%m%d}' AS n"}
    late = run(stack, {"jobs": [job], "scheduledTime": "2024-05-04T23:30:00Z", "timeZone": "Europe/Berlin"})

    assert late.status == "SUCCEEDED", late.cause
    assert late.output["variables"] == {
        "run_date": "2024-05-05",
        "run_time": "2024-05-05 01:30:00",
        "run_time_utc": "2024-05-04T23:30:00Z",
    }
    (result,) = late.output["jobs"]
    assert result["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("SELECT '{run_dat}' AS d", "unknown variable {run_dat}"),
        ("SELECT '{run_date - 1y}' AS d", "the offset unit must be d, w or h"),
        ("SELECT '{landed.table}' AS d", "no landing started this one"),
        ("SELECT '{run_date:%s}' AS d", "a format takes"),
    ],
)
def test_a_bad_variable_fails_the_run_before_any_job_runs(stack: EmulatedStack, query: str, problem: str) -> None:
    before = len(stack.athena.statements())

    failed = run(stack, {"jobs": [{"name": "bad", "mode": "query", "query": query}]})

    assert failed.status == "FAILED" and failed.error == "InvalidJob" and problem in str(failed.cause)
    assert len(stack.athena.statements()) == before


# ---------------------------------------------------------------------- definitions in the lake


def put_definition(stack: EmulatedStack, name: str, body: str) -> None:
    stack.client("s3").put_object(Bucket=stack.lake_bucket, Key=f"athena/_definitions/{name}", Body=body.encode())


def test_jobs_and_their_sql_come_from_the_definitions_folder(stack: EmulatedStack) -> None:
    put_definition(stack, "sql/totals.sql", "SELECT customer, sum(amount) AS total\nFROM lake.sales\nGROUP BY customer")
    job = {"name": "totals", "mode": "ctas", "database": "marts", "table": "totals_from_file", "queryFile": "sql/totals.sql"}
    put_definition(stack, "totals.json", json.dumps({"timeZone": "UTC", "jobs": [job]}))

    done = run(stack, {"jobsFile": "totals.json"})

    assert done.status == "SUCCEEDED", done.cause
    expected = SALES.group_by("customer").aggregate([("amount", "sum")]).sort_by("customer")
    assert rows(stack, "SELECT customer, total FROM marts.totals_from_file ORDER BY customer") == [
        [c, str(t)] for c, t in zip(expected["customer"].to_pylist(), expected["amount_sum"].to_pylist(), strict=True)
    ]


def test_a_missing_definition_or_a_job_writing_into_the_definitions_folder_is_refused(stack: EmulatedStack) -> None:
    missing = run(stack, {"jobsFile": "nope.json"})
    climbing = run(stack, {"jobsFile": "../plans/x.json"})
    writer = run(
        stack,
        {"jobs": [ctas("w", "w", "SELECT 1 AS a", externalLocation=f"s3://{stack.lake_bucket}/athena/_definitions/w/")]},
    )

    assert missing.error == "InvalidJob" and "does not exist" in str(missing.cause)
    assert climbing.error == "InvalidJob" and "not a .json file name" in str(climbing.cause)
    assert writer.error == "ForbiddenTarget" and "job definitions" in str(writer.cause)


# ---------------------------------------------------------------------- table modes and temporary tables


def test_table_mode_empty_creates_the_table_without_rows(stack: EmulatedStack) -> None:
    done = run(stack, {"jobs": [ctas("shape", "sales_shape", "SELECT customer, amount FROM lake.sales", tableMode="empty")]})

    assert done.status == "SUCCEEDED", done.cause
    table = glue_table(stack, "marts", "sales_shape")
    assert table is not None and [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["customer", "amount"]
    assert rows(stack, "SELECT count(*) FROM marts.sales_shape") == [["0"]]


def test_table_mode_data_only_writes_the_files_and_no_table(stack: EmulatedStack) -> None:
    location = f"s3://{stack.lake_bucket}/athena/exports/acme/"
    job = ctas("acme_export", "acme_export", "SELECT amount, day FROM lake.sales WHERE customer = 'acme'", tableMode="data_only")
    job["externalLocation"] = location

    first = run(stack, {"jobs": [job]})
    skipped = run(stack, {"jobs": [{**job, "saveMode": "skip_if_exists"}]})
    refused = run(stack, {"jobs": [job]})

    assert first.status == "SUCCEEDED", first.cause
    assert glue_table(stack, "marts", "acme_export") is None
    assert not [t for t in stack.client("glue").get_tables(DatabaseName="marts")["TableList"] if t["Name"].startswith("acme_export")]
    files = [k for k in keys(stack, "athena/exports/acme/") if not k.rsplit("/", 1)[1].startswith("_")]
    written = pa.concat_tables(
        pq.read_table(io.BytesIO(stack.client("s3").get_object(Bucket=stack.lake_bucket, Key=k)["Body"].read())) for k in files
    )
    assert sorted(written["amount"].to_pylist()) == sorted(SALES.filter(pc.equal(SALES["customer"], "acme"))["amount"].to_pylist())
    assert skipped.status == "SUCCEEDED" and skipped.output["jobs"][0]["status"] == "SKIPPED"
    assert refused.status == "FAILED" and refused.error == "LocationNotEmpty"


def test_a_temporary_table_feeds_later_jobs_and_is_dropped_with_its_data(stack: EmulatedStack) -> None:
    stage = ctas("stage", "stage_big", "SELECT customer, amount FROM lake.sales WHERE amount > 10", temporary=True)
    final = ctas(
        "final", "big_totals", "SELECT customer, sum(amount) AS total FROM marts.stage_big GROUP BY customer", saveMode="overwrite"
    )

    done = run(stack, {"jobs": [stage, final]})

    assert done.status == "SUCCEEDED", done.cause
    big = SALES.filter(pc.greater(SALES["amount"], 10)).group_by("customer").aggregate([("amount", "sum")]).sort_by("customer")
    assert rows(stack, "SELECT customer, total FROM marts.big_totals ORDER BY customer") == [
        [c, str(t)] for c, t in zip(big["customer"].to_pylist(), big["amount_sum"].to_pylist(), strict=True)
    ]
    assert glue_table(stack, "marts", "stage_big") is None
    assert keys(stack, "athena/_temporary/") == []


def test_a_temporary_table_is_dropped_when_a_later_job_fails(stack: EmulatedStack) -> None:
    stage = ctas("stage", "stage_fail", "SELECT customer FROM lake.sales", temporary=True)
    broken = ctas("broken", "broken", "SELECT no_such_column FROM marts.stage_fail")

    failed = run(stack, {"jobs": [stage, broken]})

    assert failed.status == "FAILED" and failed.error == "QueryFailed", failed.cause
    assert glue_table(stack, "marts", "stage_fail") is None
    assert keys(stack, "athena/_temporary/") == []
    assert stack.notifications()[-1]["message"]["error"] == "QueryFailed"


def test_a_temporary_table_never_drops_a_job_table_of_the_same_name(stack: EmulatedStack) -> None:
    assert run(stack, {"jobs": [ctas("keep", "kept", "SELECT 1 AS a")]}).status == "SUCCEEDED"

    refused = run(stack, {"jobs": [ctas("stage", "kept", "SELECT 2 AS a", temporary=True)]})

    assert refused.status == "FAILED" and refused.error == "UnsafeOverwrite"
    assert rows(stack, "SELECT a FROM marts.kept") == [["1"]]


# ---------------------------------------------------------------------- partitions and tables


def test_add_partition_save_modes_and_drop_partition_with_its_data(stack: EmulatedStack) -> None:
    base = f"s3://{stack.lake_bucket}/athena/marts/daily_sales/"
    add = {"name": "add", "mode": "add_partition", "database": "marts", "table": "daily_sales"}
    elsewhere = f"{base}moved/"
    spec = {"values": {"dt": "2024-05-02"}, "location": elsewhere}
    assert run(stack, scheduled_input(stack, "2024-05-03T05:00:00Z")).status == "SUCCEEDED"

    refused = run(stack, {"jobs": [{**add, "partitions": [spec], "saveMode": "error_if_exists"}]})
    kept = run(stack, {"jobs": [{**add, "partitions": [spec]}]})
    location_after_skip = partition_values(stack, "marts", "daily_sales")[("2024-05-02",)]
    moved = run(stack, {"jobs": [{**add, "partitions": [spec], "saveMode": "overwrite"}]})
    location_after_overwrite = partition_values(stack, "marts", "daily_sales")[("2024-05-02",)]
    moved_back = run(stack, {"jobs": [{**add, "partitions": [{"values": {"dt": "2024-05-02"}}], "saveMode": "overwrite"}]})
    dropped = run(
        stack,
        {
            "jobs": [
                {
                    "name": "drop",
                    "mode": "drop_partition",
                    "database": "marts",
                    "table": "daily_sales",
                    "partitions": [{"values": {"dt": "2024-05-02"}}],
                    "deleteData": True,
                }
            ]
        },
    )

    assert refused.error == "PartitionAlreadyExists"
    assert kept.status == moved.status == moved_back.status == dropped.status == "SUCCEEDED"
    assert location_after_skip.rstrip("/") == f"{base}dt=2024-05-02"
    assert location_after_overwrite == elsewhere
    assert ("2024-05-02",) not in partition_values(stack, "marts", "daily_sales")
    assert keys(stack, "athena/marts/daily_sales/dt=2024-05-02/") == []
    assert keys(stack, "athena/marts/daily_sales/dt=2024-05-03/"), "the other day's data stays"


def test_drop_table_removes_the_definition_then_with_delete_data_its_folder(stack: EmulatedStack) -> None:
    assert run(stack, {"jobs": [ctas("t", "to_drop", "SELECT 1 AS a"), ctas("u", "to_keep_data", "SELECT 1 AS a")]}).status == "SUCCEEDED"
    drop = {"mode": "drop_table", "database": "marts"}

    done = run(
        stack, {"jobs": [{**drop, "name": "d1", "table": "to_drop", "deleteData": True}, {**drop, "name": "d2", "table": "to_keep_data"}]}
    )
    again = run(stack, {"jobs": [{**drop, "name": "d1", "table": "to_drop"}]})

    assert done.status == "SUCCEEDED", done.cause
    assert glue_table(stack, "marts", "to_drop") is None and glue_table(stack, "marts", "to_keep_data") is None
    assert keys(stack, "athena/marts/to_drop/") == []
    assert keys(stack, "athena/marts/to_keep_data/"), "without deleteData the data stays"
    assert again.output["jobs"][0]["status"] == "SKIPPED"


def test_drop_jobs_never_reach_pipeline_tables(stack: EmulatedStack) -> None:
    failed = run(stack, {"jobs": [{"name": "evil", "mode": "drop_table", "database": "lake", "table": "sales", "deleteData": True}]})

    assert failed.status == "FAILED" and failed.error == "ForbiddenTarget"
    assert glue_table(stack, "lake", "sales") is not None and keys(stack, "rds/sales/")


# ---------------------------------------------------------------------- runs started by a landing


def landing(stack: EmulatedStack, landing_id: str, day: str = "2024-05-02") -> dict[str, Any]:
    """A `Lake Partition Landed` detail (docs/events.md) for lake.sales."""
    return {
        "version": 1,
        "landingId": landing_id,
        "pipeline": "rds",
        "database": "lake",
        "table": "sales",
        "qualifiedTable": "lake.sales",
        "partition": {"day": day},
        "location": f"s3://{stack.lake_bucket}/rds/sales/",
        "rows": 3,
        "files": 1,
        "bytes": 100,
        "exportIds": ["export-1"],
        "snapshotTime": "2024-05-02T03:00:00Z",
        "landedAt": "2024-05-02T04:00:00Z",
    }


def landing_job(table: str) -> dict[str, Any]:
    query = "SELECT customer, amount, '{landed.table}' AS source FROM {landed.database}.{landed.table} WHERE day = '{landed.partition.day}'"
    return ctas("on_landing", table, query, saveMode="overwrite")


def test_a_landing_runs_its_jobs_once_with_the_landed_partition_as_variables(stack: EmulatedStack) -> None:
    event = landing(stack, "a" * 32)

    first = run(stack, {"jobs": [landing_job("landed_day")], "landed": event})
    repeated = run(stack, {"jobs": [landing_job("landed_day")], "landed": event})

    assert first.status == repeated.status == "SUCCEEDED", (first.cause, repeated.cause)
    assert first.output["variables"]["landed.partition.day"] == "2024-05-02" and first.output["variables"]["run_date"] == "2024-05-02"
    assert rows(stack, "SELECT count(*), min(source) FROM marts.landed_day") == [["3", "sales"]]
    assert repeated.output["jobs"] == [], "a second delivery of the landing runs no job"


def test_a_landing_whose_first_run_failed_is_run_again(stack: EmulatedStack) -> None:
    event = landing(stack, "b" * 32)
    broken = ctas("on_landing", "landed_retry", "SELECT nope FROM lake.sales", saveMode="overwrite")

    failed = run(stack, {"jobs": [broken], "landed": event})
    repaired = run(stack, {"jobs": [landing_job("landed_retry")], "landed": event})

    assert failed.status == "FAILED" and repaired.status == "SUCCEEDED", repaired.cause
    assert rows(stack, "SELECT count(*) FROM marts.landed_retry") == [["3"]]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"table": "sales' OR '1'='1"}, "InvalidIdentifier"),
        ({"partition": {"day": "x' UNION SELECT 1 --"}}, "UnsafePartitionValue"),
        ({"version": 2}, "InvalidJob"),
    ],
)
def test_a_forged_landing_cannot_put_sql_into_the_jobs(stack: EmulatedStack, change: dict[str, Any], error: str) -> None:
    before = len(stack.athena.statements())

    failed = run(stack, {"jobs": [landing_job("forged")], "landed": {**landing(stack, "c" * 32), **change}})

    assert failed.status == "FAILED" and failed.error == error, failed.cause
    assert len(stack.athena.statements()) == before
