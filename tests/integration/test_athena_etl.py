"""The Athena SQL jobs state machine (statemachine/athena_etl.asl.json) on the emulator, handlers in-process.

Athena comes from snaplake_local.emulator.AthenaEmulator: each query runs on DuckDB over the Parquet the
tables' partitions hold, and its effects on Glue and S3 are applied. One stack serves the module (deploying
takes seconds); each test writes its own tables, so the tests do not depend on each other.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from snaplake.catalog import PARQUET_INPUT_FORMAT, PARQUET_SERDE
from snaplake_local.sources import default_parameters, sample_event
from snaplake_local.stack import EmulatedStack, Execution
from sqlglot import exp

MACHINE = "AthenaEtlStateMachine"
SNAPSHOT = "20240502T000000Z"
# lake.orders: four orders, three of acme's; lake.events: one row for each of 250 (dt, hour) pairs.
ORDERS = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "amount": pa.array([Decimal("10.50"), Decimal("4.25"), Decimal("7.00"), Decimal("99.99")], pa.decimal128(12, 2)),
        "customer": ["acme", "acme", "acme", "zenith"],
    }
)
EVENT_PARTITIONS = [(f"2024-01-{day:02d}", hour) for day in range(1, 11) for hour in range(25)]
EVENTS = pa.table(
    {
        "id": pa.array(range(len(EVENT_PARTITIONS)), pa.int64()),
        "amount": pa.array([Decimal(n) / 4 for n in range(len(EVENT_PARTITIONS))], pa.decimal128(12, 2)),
        "customer": ["acme" if n % 3 else "zenith" for n in range(len(EVENT_PARTITIONS))],
        "dt": [dt for dt, _ in EVENT_PARTITIONS],
        "hour": pa.array([hour for _, hour in EVENT_PARTITIONS], pa.int32()),
    }
)


def parquet(table: pa.Table) -> bytes:
    body = io.BytesIO()
    pq.write_table(table, body)
    return body.getvalue()


@pytest.fixture(scope="module")
def module_stack() -> Iterator[EmulatedStack]:
    # Without the DynamoDB, stream and Firehose functions: fewer handlers to load, a quicker deploy.
    parameters = default_parameters(DynamoDbTableArns="", DynamoDbStreamArns="", FirehoseTransform="false")
    with EmulatedStack(parameters, function_log_level="ERROR") as deployed:
        glue = deployed.client("glue")
        glue.create_database(DatabaseInput={"Name": "lake"})
        bucket = deployed.lake_bucket
        for name, data in {"events": EVENTS, "orders": ORDERS}.items():
            columns = [
                {"Name": f.name, "Type": {"int64": "bigint", "int32": "int", "string": "string"}.get(str(f.type), "decimal(12,2)")}
                for f in data.schema
            ]
            descriptor = {
                "Columns": columns,
                "Location": f"s3://{bucket}/rds/{name}/",
                "InputFormat": PARQUET_INPUT_FORMAT,
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
            }
            glue.create_table(
                DatabaseName="lake",
                TableInput={
                    "Name": name,
                    "TableType": "EXTERNAL_TABLE",
                    "PartitionKeys": [{"Name": "snapshot_time", "Type": "string"}],
                    "StorageDescriptor": descriptor,
                },
            )
            folder = f"rds/{name}/snapshot_time={SNAPSHOT}/"
            deployed.client("s3").put_object(Bucket=bucket, Key=f"{folder}batch-1/part-00000.parquet", Body=parquet(data))
            glue.create_partition(
                DatabaseName="lake",
                TableName=name,
                PartitionInput={"Values": [SNAPSHOT], "StorageDescriptor": {**descriptor, "Location": f"s3://{bucket}/{folder}"}},
            )
        yield deployed


@pytest.fixture
def stack(module_stack: EmulatedStack) -> Iterator[EmulatedStack]:
    module_stack.notifications()
    module_stack.athena.page_rows = 1000
    yield module_stack
    module_stack.athena._failures.clear()


def run(stack: EmulatedStack, *jobs: dict[str, Any]) -> Execution:
    return stack.run(MACHINE, {"jobs": list(jobs)})


def statements_of(stack: EmulatedStack, start: int) -> list[str]:
    return [sql for _, sql in stack.athena.statements()[start:]]


def table(stack: EmulatedStack, database: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(stack.client("glue").get_table(DatabaseName=database, Name=name)["Table"])
    except stack.client("glue").exceptions.EntityNotFoundException:
        return None


def partitions(stack: EmulatedStack, database: str, name: str) -> dict[tuple[str, ...], str]:
    pages = stack.client("glue").get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name)
    return {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}


def objects(stack: EmulatedStack, location: str) -> list[str]:
    prefix = location.split("/", 3)[3]
    return sorted(stack.lake_objects(prefix))


def parse_athena(sql: str) -> list[Any]:
    """Each statement as sqlglot's Athena dialect reads it (Hive for DDL, Trino for DML); an ALTER TABLE
    with several PARTITION clauses is checked clause by clause, as sqlglot takes one per statement."""
    header, *rest = sql.splitlines()
    pieces = [f"{header}\n{line}" for line in rest] if header.startswith("ALTER TABLE") and len(rest) > 1 else [sql]
    parsed = []
    for piece in pieces:
        (statement,) = sqlglot.parse(piece, read="athena")
        assert statement is not None and not isinstance(statement, exp.Command), piece
        parsed.append(statement)
    return parsed


def ctas(name: str, table_name: str, save_mode: str, database: str = "marts", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "mode": "ctas",
        "database": database,
        "table": table_name,
        "saveMode": save_mode,
        "query": "SELECT customer, CAST(sum(amount) AS decimal(12,2)) AS total FROM lake.orders GROUP BY customer",
        **extra,
    }


# ---------------------------------------------------------------------- CTAS save modes
def test_ctas_overwrite_swaps_the_new_table_in_before_deleting_the_old_data(stack: EmulatedStack) -> None:
    job = ctas("totals", "totals_ow", "overwrite")
    first = run(stack, job)
    assert first.status == "SUCCEEDED", first.cause
    old = table(stack, "marts", "totals_ow")
    assert old is not None
    old_location = old["StorageDescriptor"]["Location"]
    assert old_location.startswith(f"s3://{stack.lake_bucket}/athena/marts/totals_ow/") and objects(stack, old_location)
    assert [(c["Name"], c["Type"]) for c in old["StorageDescriptor"]["Columns"]] == [("customer", "string"), ("total", "decimal(12,2)")]

    stack.athena.fail_queries('CREATE TABLE "marts"."totals_ow__snaplake_', "HIVE_CURSOR_ERROR: emulated failure writing the new table")
    failed = run(stack, job)
    assert failed.status == "FAILED" and failed.error == "QueryFailed"
    kept = table(stack, "marts", "totals_ow")
    assert kept is not None and kept["StorageDescriptor"]["Location"] == old_location
    assert objects(stack, old_location), "the old data must survive a failed rewrite"

    # Each DeleteObjects call of the job's function records where the table points at that moment.
    locations_at_delete: list[str] = []

    def record(**_: Any) -> None:
        current = table(stack, "marts", "totals_ow")
        locations_at_delete.append(current["StorageDescriptor"]["Location"] if current else "")

    events = stack.function("AthenaQueryFunction").module().CLIENTS.s3.meta.events
    events.register("before-call.s3.DeleteObjects", record)
    try:
        again = run(stack, job)
    finally:
        events.unregister("before-call.s3.DeleteObjects", record)
    assert again.status == "SUCCEEDED", again.cause
    assert locations_at_delete and old_location not in locations_at_delete, "old data is deleted only once the table points elsewhere"
    new = table(stack, "marts", "totals_ow")
    assert new is not None and new["StorageDescriptor"]["Location"] != old_location
    assert objects(stack, new["StorageDescriptor"]["Location"])
    assert not objects(stack, old_location), "the replaced table's data is deleted"
    names = [t["Name"] for t in stack.client("glue").get_tables(DatabaseName="marts")["TableList"]]
    assert not [n for n in names if n.startswith("totals_ow__")], "no staging table is left behind"


def test_ctas_skip_if_exists_runs_nothing_for_an_existing_table(stack: EmulatedStack) -> None:
    assert run(stack, ctas("create", "totals_skip", "error_if_exists")).status == "SUCCEEDED"
    before = len(stack.athena.statements())

    skipped = run(stack, ctas("again", "totals_skip", "skip_if_exists"))

    assert skipped.status == "SUCCEEDED", skipped.cause
    assert skipped.output["jobs"][0]["status"] == "SKIPPED"
    assert statements_of(stack, before) == []


def test_ctas_error_if_exists_fails_with_table_already_exists_and_names_the_job(stack: EmulatedStack) -> None:
    assert run(stack, ctas("create", "totals_err", "error_if_exists")).status == "SUCCEEDED"
    before = len(stack.athena.statements())

    failed = run(stack, ctas("rebuild_totals", "totals_err", "error_if_exists"))

    assert failed.status == "FAILED" and failed.error == "TableAlreadyExists"
    assert statements_of(stack, before) == []
    (notice,) = stack.notifications()
    assert notice["message"]["error"] == "TableAlreadyExists" and "job rebuild_totals" in notice["message"]["cause"]


def test_ctas_none_writes_into_the_external_location_which_must_be_empty(stack: EmulatedStack) -> None:
    location = f"s3://{stack.lake_bucket}/athena/marts/totals_none/"
    first = run(stack, ctas("plain", "totals_none", "none", externalLocation=location))
    assert first.status == "SUCCEEDED", first.cause
    created = table(stack, "marts", "totals_none")
    assert created is not None and created["StorageDescriptor"]["Location"] == location

    stack.client("glue").delete_table(DatabaseName="marts", Name="totals_none")  # the data stays behind
    before = len(stack.athena.statements())
    refused = run(stack, ctas("plain", "totals_none", "none", externalLocation=location))

    assert refused.status == "FAILED" and refused.error == "LocationNotEmpty"
    assert statements_of(stack, before) == []


def test_ctas_with_more_than_100_partitions_writes_them_in_batches_of_100(stack: EmulatedStack) -> None:
    # lake.events holds 250 (dt, hour) partitions' rows.
    stack.athena.page_rows = 100  # GetQueryResults pages: the partition list (and its header row) arrives in 3 pages
    before = len(stack.athena.statements())
    job = {
        "name": "hourly",
        "mode": "ctas",
        "database": "marts",
        "table": "hourly",
        "saveMode": "error_if_exists",
        "partitionedBy": ["dt", "hour"],
        "query": "SELECT id, amount, dt, hour FROM lake.events",
    }

    execution = run(stack, job)

    assert execution.status == "SUCCEEDED", execution.cause
    ran = statements_of(stack, before)
    assert ran[0].startswith('SELECT DISTINCT "dt", "hour"')
    assert ran[1].startswith('CREATE TABLE "marts"."hourly"') and all(s.startswith('INSERT INTO "marts"."hourly"') for s in ran[2:])
    assert [s.count(' AND CAST("hour" AS varchar) = ') for s in ran[1:]] == [100, 100, 50]
    registered = partitions(stack, "marts", "hourly")
    assert set(registered) == {(dt, str(hour)) for dt, hour in EVENT_PARTITIONS}
    assert registered[("2024-01-03", "7")] == f"s3://{stack.lake_bucket}/athena/marts/hourly/dt=2024-01-03/hour=7/"
    for sql in ran:
        parse_athena(sql)
    written = stack.athena.engine.run_sql("SELECT count(*), sum(id), count(DISTINCT dt) FROM marts.hourly")
    assert written.text_rows() == [[str(len(EVENT_PARTITIONS)), str(sum(range(len(EVENT_PARTITIONS)))), "10"]]


# ---------------------------------------------------------------------- APAS
def daily_table_job(table_name: str) -> dict[str, Any]:
    return {
        "name": f"{table_name}_table",
        "mode": "ctas",
        "database": "marts",
        "table": table_name,
        "saveMode": "skip_if_exists",
        "partitionedBy": ["dt"],
        "query": "SELECT customer, CAST(amount AS decimal(12,2)) AS amount, CAST(NULL AS varchar) AS dt FROM lake.orders WHERE false",
    }


def apas(table_name: str, query: str, save_mode: str = "error_if_exists", **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{table_name}_day",
        "mode": "apas",
        "database": "marts",
        "table": table_name,
        "partition": {"dt": "2024-05-02"},
        "saveMode": save_mode,
        "query": query,
        **extra,
    }


MATCHING = "SELECT customer, amount FROM lake.orders WHERE snapshot_time = '20240502T000000Z'"


def test_apas_schema_mismatch_fails_naming_the_columns_and_writes_nothing(stack: EmulatedStack) -> None:
    assert run(stack, daily_table_job("daily_mismatch")).status == "SUCCEEDED"
    before = len(stack.athena.statements())
    wrong = "SELECT customer, CAST(amount AS double) AS amount, id FROM lake.orders"

    failed = run(stack, apas("daily_mismatch", wrong))

    assert failed.status == "FAILED" and failed.error == "SchemaMismatch"
    assert "unexpected ['id']" in (failed.cause or "") and "amount: table decimal(12,2), select double" in (failed.cause or "")
    assert not [s for s in statements_of(stack, before) if s.startswith("INSERT")]
    assert partitions(stack, "marts", "daily_mismatch") == {}
    names = [t["Name"] for t in stack.client("glue").get_tables(DatabaseName="marts")["TableList"]]
    assert not [n for n in names if "__probe_" in n], "the schema probe is dropped"


def test_apas_ignoring_a_schema_mismatch_writes_and_adds_the_partition(stack: EmulatedStack) -> None:
    assert run(stack, daily_table_job("daily_ignore")).status == "SUCCEEDED"
    coerced = "SELECT customer, CAST(amount AS decimal(10,2)) AS amount FROM lake.orders"  # INSERT INTO widens it

    execution = run(stack, apas("daily_ignore", coerced, ignoreSchemaMismatch=True))

    assert execution.status == "SUCCEEDED", execution.cause
    location = f"s3://{stack.lake_bucket}/athena/marts/daily_ignore/dt=2024-05-02/"
    assert partitions(stack, "marts", "daily_ignore") == {("2024-05-02",): location}
    assert objects(stack, location)
    rows = stack.athena.engine.run_sql("SELECT customer, amount, dt FROM marts.daily_ignore ORDER BY amount").text_rows()
    assert rows == [
        ["acme", "4.25", "2024-05-02"],
        ["acme", "7.00", "2024-05-02"],
        ["acme", "10.50", "2024-05-02"],
        ["zenith", "99.99", "2024-05-02"],
    ]


def test_apas_ignoring_a_mismatch_athena_cannot_coerce_fails_the_insert(stack: EmulatedStack) -> None:
    """INSERT INTO coerces only what Trino coerces implicitly: a double is not written into a decimal column."""
    assert run(stack, daily_table_job("daily_uncoerced")).status == "SUCCEEDED"
    as_double = "SELECT customer, CAST(amount AS double) AS amount FROM lake.orders"

    execution = run(stack, apas("daily_uncoerced", as_double, ignoreSchemaMismatch=True))

    assert execution.status == "FAILED" and execution.error == "QueryFailed"
    assert "TYPE_MISMATCH: Insert query has mismatched column types: column 'amount' is decimal(12,2)" in (execution.cause or "")
    assert partitions(stack, "marts", "daily_uncoerced") == {}
    assert objects(stack, f"s3://{stack.lake_bucket}/athena/marts/daily_uncoerced/") == []


def test_apas_save_modes_for_an_existing_partition(stack: EmulatedStack) -> None:
    assert run(stack, daily_table_job("daily_modes"), apas("daily_modes", MATCHING)).status == "SUCCEEDED"
    location = f"s3://{stack.lake_bucket}/athena/marts/daily_modes/dt=2024-05-02/"
    (first_object,) = objects(stack, location)

    before = len(stack.athena.statements())
    skipped = run(stack, apas("daily_modes", MATCHING, "skip_if_exists"))
    assert skipped.status == "SUCCEEDED" and skipped.output["jobs"][0]["status"] == "SKIPPED"
    assert statements_of(stack, before) == []

    refused = run(stack, apas("daily_modes", MATCHING, "error_if_exists"))
    assert refused.status == "FAILED" and refused.error == "PartitionAlreadyExists"

    before = len(stack.athena.statements())
    rewritten = run(stack, apas("daily_modes", MATCHING, "overwrite"))
    assert rewritten.status == "SUCCEEDED", rewritten.cause
    ran = statements_of(stack, before)
    assert any(s.startswith("ALTER TABLE `marts`.`daily_modes` DROP IF EXISTS PARTITION") for s in ran)
    (new_object,) = objects(stack, location)
    assert new_object != first_object, "the partition's old data is replaced, not added to"
    assert partitions(stack, "marts", "daily_modes") == {("2024-05-02",): location}


def test_add_partition_registers_each_partition_at_its_location(stack: EmulatedStack) -> None:
    assert run(stack, daily_table_job("daily_add")).status == "SUCCEEDED"
    elsewhere = f"s3://{stack.lake_bucket}/athena/imported/daily/2024-05-01/"
    job = {
        "name": "register_days",
        "mode": "add_partition",
        "database": "marts",
        "table": "daily_add",
        "partitions": [{"values": {"dt": "2024-05-01"}, "location": elsewhere}, {"values": {"dt": "2024-05-03"}}],
    }

    execution = run(stack, job)

    assert execution.status == "SUCCEEDED", execution.cause
    assert partitions(stack, "marts", "daily_add") == {
        ("2024-05-01",): elsewhere,
        ("2024-05-03",): f"s3://{stack.lake_bucket}/athena/marts/daily_add/dt=2024-05-03/",
    }


# ---------------------------------------------------------------------- failures
def test_a_failed_query_is_reported_through_sns_naming_the_job_and_later_jobs_do_not_run(stack: EmulatedStack) -> None:
    stack.athena.fail_queries('"marts"."fail_second"', "HIVE_BAD_DATA: Error parsing field value '12,5' for field 1")

    execution = run(
        stack,
        ctas("first", "fail_first", "error_if_exists"),
        ctas("second", "fail_second", "error_if_exists"),
        ctas("third", "fail_third", "error_if_exists"),
    )

    assert execution.status == "FAILED" and execution.error == "QueryFailed"
    (notice,) = stack.notifications()
    message = notice["message"]
    assert notice["subject"] == "snaplake: Athena SQL job failed"
    assert message["pipeline"] == "athena-etl" and message["step"] == "RunJobs" and message["error"] == "QueryFailed"
    assert message["cause"].startswith("job second (jobs[1]) failed with QueryFailed")
    assert "HIVE_BAD_DATA: Error parsing field value '12,5' for field 1" in message["cause"]
    assert table(stack, "marts", "fail_first") is not None
    assert table(stack, "marts", "fail_second") is None and table(stack, "marts", "fail_third") is None


INJECTIONS = [
    pytest.param({"table": "a; DROP TABLE x"}, "InvalidIdentifier", id="table"),
    pytest.param({"database": "marts`; DROP TABLE x; --"}, "InvalidIdentifier", id="database"),
    pytest.param({"partitionedBy": ["dt'"]}, "InvalidIdentifier", id="partition-column"),
    pytest.param({"bucketedBy": ['id"'], "bucketCount": 4}, "InvalidIdentifier", id="bucket-column"),
    pytest.param({"query": "SELECT 1 AS a; DROP TABLE lake.orders"}, "InvalidSelect", id="second-statement"),
    pytest.param({"query": "DROP TABLE lake.orders"}, "InvalidSelect", id="not-a-select"),
    pytest.param({"query": "INSERT INTO lake.orders SELECT * FROM lake.orders"}, "InvalidSelect", id="insert"),
    pytest.param({"externalLocation": "s3://lake-bucket/x'/"}, "InvalidLiteral", id="location-quote"),
    # Trino ends a `--` comment at '\r' too: what follows is a second statement, not comment.
    pytest.param({"query": "SELECT 1 AS a -- note\r; DROP TABLE lake.orders"}, "InvalidSelect", id="comment-ended-by-cr"),
    pytest.param(
        {"query": "WITH x AS (SELECT * FROM lake.orders) INSERT INTO lake.orders SELECT * FROM x"}, "InvalidSelect", id="with-insert"
    ),
    pytest.param({"partitionedBy": ["total", "total"]}, "InvalidOption", id="duplicate-partition-column"),
]


@pytest.mark.parametrize(("change", "error"), INJECTIONS)
def test_unsafe_names_and_sql_are_rejected_before_any_job_runs(stack: EmulatedStack, change: dict[str, Any], error: str) -> None:
    before = len(stack.athena.statements())

    execution = run(stack, ctas("fine", "never_written", "overwrite"), {**ctas("bad", "t", "overwrite"), **change})

    assert execution.status == "FAILED" and execution.error == error, execution.cause
    assert statements_of(stack, before) == [], "nothing may run, not even the valid job before it"
    (notice,) = stack.notifications()
    assert notice["message"]["step"] == "ValidateJobs"


@pytest.mark.parametrize(
    "job",
    [
        pytest.param({"partition": {"dt; DROP TABLE x": "2024-05-02"}}, id="apas-partition-column"),
        pytest.param({"partition": {"dt": "2024'); DROP TABLE x; --"}}, id="apas-partition-value"),
        pytest.param({"table": "daily`x"}, id="apas-table"),
        pytest.param(
            {"mode": "add_partition", "query": None, "partition": None, "saveMode": None, "partitions": [{"values": {'dt"': "x"}}]},
            id="add-partition-column",
        ),
    ],
)
def test_unsafe_partition_columns_and_values_are_rejected(stack: EmulatedStack, job: dict[str, Any]) -> None:
    before = len(stack.athena.statements())
    execution = run(stack, {key: value for key, value in {**apas("daily_unsafe", MATCHING), **job}.items() if value is not None})
    refusals = ("InvalidIdentifier", "InvalidLiteral", "UnsafePartitionValue")
    assert execution.status == "FAILED" and execution.error in refusals, execution.cause
    assert statements_of(stack, before) == []


# ---------------------------------------------------------------------- query mode, SQL, sample events
def test_query_job_leaves_its_results_in_the_output_location(stack: EmulatedStack) -> None:
    query = "SELECT customer, count(*) AS n FROM lake.orders GROUP BY customer ORDER BY 2 DESC"
    job = {"name": "report", "mode": "query", "database": "lake", "query": query}

    execution = run(stack, job)

    assert execution.status == "SUCCEEDED", execution.cause
    location = execution.output["jobs"][0]["outputLocation"]
    assert location.startswith(f"s3://{stack.lake_bucket}/_snaplake/athena/results/") and location.endswith(".csv")
    body = stack.client("s3").get_object(Bucket=stack.lake_bucket, Key=location.split("/", 3)[3])["Body"].read().decode()
    assert body.splitlines() == ['"customer","n"', '"acme","3"', '"zenith","1"']


def test_every_generated_statement_parses_as_athena_sql(stack: EmulatedStack) -> None:
    before = len(stack.athena.statements())
    jobs = [
        ctas("sql_ctas", "sql_totals", "overwrite", bucketedBy=["customer"], bucketCount=4),
        ctas("sql_ctas_again", "sql_totals", "overwrite"),
        daily_table_job("sql_daily"),
        apas("sql_daily", MATCHING, "overwrite"),
        apas("sql_daily", MATCHING, "overwrite") | {"name": "sql_daily_again"},
        {"name": "sql_add", "mode": "add_partition", "database": "marts", "table": "sql_daily", "partitions": [{"values": {"dt": "x1"}}]},
    ]
    assert run(stack, *jobs).status == "SUCCEEDED"
    ran = statements_of(stack, before)
    kinds = {type(statement).__name__ for sql in ran for statement in parse_athena(sql)}
    assert {"Create", "Insert", "Drop", "Alter", "Select"} <= kinds


def test_the_athena_sample_events_are_accepted_by_the_function(stack: EmulatedStack) -> None:
    function = stack.function("AthenaQueryFunction")
    validated, errored = function.invoke(sample_event("athena_etl_jobs.json"))
    assert not errored, validated
    assert [job["name"] for job in validated["jobs"]] == [job["name"] for job in sample_event("athena_etl_jobs.json")["jobs"]]

    glue = stack.client("glue")
    glue.create_database(DatabaseInput={"Name": "world"})
    columns = [("code", "string"), ("continent", "string"), ("population", "int")]
    glue.create_table(
        DatabaseName="world",
        TableInput={
            "Name": "country",
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in columns],
                "Location": f"s3://{stack.lake_bucket}/rds/world/country/",  # no files: an empty table
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
            },
        },
    )
    step = sample_event("athena_query_step.json")
    cursor, errored = function.invoke(step)
    assert not errored, cursor
    assert cursor["queryExecutionId"] and not cursor["done"] and cursor["waitSeconds"] > 0
    stack.clock.advance(cursor["waitSeconds"])
    finished, errored = function.invoke({**step, "cursor": cursor})
    assert not errored, finished
    assert finished["done"] and finished["result"]["status"] == "SUCCEEDED"
    json.dumps(finished)  # the cursor is plain JSON for the state payload


# ---------------------------------------------------------------------- partition values Athena escapes in folder names
@pytest.mark.parametrize("value", ["2024#05", "50%", "a*b", "why?", "x{y", "[x]", "x^2", 'say "hi"', "tab\there", "del\x7f"], ids=repr)
def test_an_apas_overwrite_of_a_value_athena_escapes_is_refused_before_anything_runs(stack: EmulatedStack, value: str) -> None:
    """Athena writes `dt=2024%2305/` for "2024#05"; dropping and deleting `dt=2024#05/` would keep the old rows."""
    assert run(stack, daily_table_job("daily_escaped")).status == "SUCCEEDED"
    before = len(stack.athena.statements())
    job = apas("daily_escaped", MATCHING, "overwrite", partition={"dt": value})

    first, second = run(stack, job), run(stack, job)

    for execution in (first, second):
        assert execution.status == "FAILED" and execution.error == "UnsafePartitionValue", execution.cause
    assert statements_of(stack, before) == []
    assert partitions(stack, "marts", "daily_escaped") == {}
    assert objects(stack, f"s3://{stack.lake_bucket}/athena/marts/daily_escaped/") == []


@pytest.mark.parametrize("value", ["São Paulo", "東京 2024", "a}b(c)+d,e!@~$&;|<>"])
def test_an_apas_overwrite_of_a_value_with_spaces_or_unicode_replaces_the_partition(stack: EmulatedStack, value: str) -> None:
    assert run(stack, daily_table_job("daily_unicode")).status == "SUCCEEDED"
    job = apas("daily_unicode", MATCHING, "overwrite", partition={"dt": value})
    location = f"s3://{stack.lake_bucket}/athena/marts/daily_unicode/dt={value}/"

    assert run(stack, job).status == "SUCCEEDED"
    (first,) = objects(stack, location)
    again = run(stack, job)

    assert again.status == "SUCCEEDED", again.cause
    (second,) = objects(stack, location)
    assert second != first, "the old rows are deleted, not kept beside the new ones"
    assert partitions(stack, "marts", "daily_unicode")[(value,)] == location


# ---------------------------------------------------------------------- what the jobs may touch (issue 12)
LANDED = "rds/orders/snapshot_time=20240101T000000Z/part-0000.parquet"  # not a registered partition: no query reads it


def land_pipeline_data(stack: EmulatedStack) -> None:
    stack.client("s3").put_object(Bucket=stack.lake_bucket, Key=LANDED, Body=b"PAR1 landed rows")


def pipeline_data_intact(stack: EmulatedStack) -> bool:
    return LANDED in stack.lake_objects("rds/") and table(stack, "lake", "orders") is not None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"externalLocation": "s3://{bucket}/rds/orders/"}, id="rds-folder"),
        pytest.param({"externalLocation": "s3://{bucket}/_snaplake/athena/plans/"}, id="snaplake-folder"),
        pytest.param({"externalLocation": "s3://{bucket}/_snaplake_staging/x/"}, id="staging-folder"),
        pytest.param({"externalLocation": "s3://{bucket}/athena/"}, id="jobs-root"),
        pytest.param({"externalLocation": "s3://other-bucket/athena/marts/x/"}, id="other-bucket"),
        pytest.param({"database": "lake", "table": "orders"}, id="pipeline-database"),
        pytest.param({"database": "dynamodb"}, id="dynamodb-database"),
        pytest.param({"outputLocation": "s3://{bucket}/rds/"}, id="output-in-rds"),
    ],
)
def test_a_job_targeting_pipeline_data_or_tables_is_refused_before_any_runs(stack: EmulatedStack, change: dict[str, str]) -> None:
    land_pipeline_data(stack)
    before = len(stack.athena.statements())
    bad = {**ctas("bad", "orders", "overwrite"), **{k: v.format(bucket=stack.lake_bucket) for k, v in change.items()}}

    execution = run(stack, ctas("fine", "never_written_scope", "overwrite"), bad)

    assert execution.status == "FAILED" and execution.error == "ForbiddenTarget", execution.cause
    assert statements_of(stack, before) == []
    assert pipeline_data_intact(stack)


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(
            lambda: apas("orders", MATCHING, "overwrite", partition={"snapshot_time": "20240502T000000Z"}) | {"database": "lake"},
            id="apas-pipeline-table",
        ),
        pytest.param(
            lambda: {
                "name": "reg",
                "mode": "add_partition",
                "database": "lake",
                "table": "orders",
                "partitions": [{"values": {"snapshot_time": "x"}}],
            },
            id="add-partition-pipeline-table",
        ),
        pytest.param(
            lambda: {
                "name": "reg",
                "mode": "add_partition",
                "database": "marts",
                "table": "t",
                "partitions": [{"values": {"dt": "x"}, "location": "s3://elsewhere-bucket/athena/t/dt=x/"}],
            },
            id="add-partition-other-bucket",
        ),
    ],
)
def test_partition_jobs_on_pipeline_tables_or_foreign_locations_are_refused(stack: EmulatedStack, job: Any) -> None:
    land_pipeline_data(stack)
    before = len(stack.athena.statements())

    execution = run(stack, job())

    assert execution.status == "FAILED" and execution.error == "ForbiddenTarget", execution.cause
    assert statements_of(stack, before) == [] and pipeline_data_intact(stack)


def test_an_apas_overwrite_of_a_job_table_pointing_into_pipeline_data_deletes_nothing(stack: EmulatedStack) -> None:
    """A table of a job database whose Glue location is a pipeline folder: its plan is refused before any step runs."""
    land_pipeline_data(stack)
    glue = stack.client("glue")
    if "marts" not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]:
        glue.create_database(DatabaseInput={"Name": "marts"})
    glue.create_table(
        DatabaseName="marts",
        TableInput={
            "Name": "hijacked",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": "snapshot_time", "Type": "string"}],
            "StorageDescriptor": {
                "Columns": [{"Name": "customer", "Type": "string"}, {"Name": "amount", "Type": "decimal(12,2)"}],
                "Location": f"s3://{stack.lake_bucket}/rds/orders/",
            },
        },
    )
    before = len(stack.athena.statements())
    job = apas("hijacked", MATCHING, "overwrite", partition={"snapshot_time": "20240502T000000Z"})

    execution = run(stack, job)

    assert execution.status == "FAILED" and execution.error == "ForbiddenTarget", execution.cause
    assert statements_of(stack, before) == [] and pipeline_data_intact(stack)


def plan_keys(stack: EmulatedStack, job_name: str) -> list[str]:
    return sorted(stack.lake_objects(f"_snaplake/athena/plans/{job_name}/"))


def tamper_after_first_query(stack: EmulatedStack, job_name: str, rewrite: Any) -> Any:
    """Registers a hook that rewrites the job's plan of the next run once its first query has started (between steps)."""
    s3, earlier = stack.client("s3"), set(plan_keys(stack, job_name))
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if done:
            return
        done.append(True)
        (key,) = set(plan_keys(stack, job_name)) - earlier
        original = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=stack.lake_bucket, Key=key, Body=rewrite(key, original))

    events = stack.function("AthenaQueryFunction").module().CLIENTS.athena.meta.events
    events.register("after-call.athena.StartQueryExecution", hook)
    return lambda: events.unregister("after-call.athena.StartQueryExecution", hook)


def test_a_plan_replaced_between_steps_is_refused_and_nothing_of_it_runs(stack: EmulatedStack) -> None:
    land_pipeline_data(stack)
    job = ctas("tampered", "totals_tampered", "overwrite")
    assert run(stack, job).status == "SUCCEEDED"
    live = table(stack, "marts", "totals_tampered")
    assert live is not None
    live_objects = objects(stack, live["StorageDescriptor"]["Location"])

    def evil(_: str, original: bytes) -> bytes:
        body = json.loads(original)  # same job and run: only the steps are changed
        body["steps"] = [
            {"kind": "delete_location", "description": "clean up", "location": f"s3://{stack.lake_bucket}/rds/"},
            {"kind": "query", "description": "tidy", "sql": "DROP TABLE IF EXISTS `lake`.`orders`"},
        ]
        return json.dumps(body, indent=1).encode()

    before = len(stack.athena.statements())
    stop = tamper_after_first_query(stack, "tampered", evil)
    try:
        execution = run(stack, job)
    finally:
        stop()

    assert execution.status == "FAILED" and execution.error == "PlanTampered", execution.cause
    assert len(statements_of(stack, before)) == 1, "only the query started before the plan was replaced"
    assert pipeline_data_intact(stack)
    assert objects(stack, live["StorageDescriptor"]["Location"]) == live_objects


def test_another_runs_valid_plan_swapped_in_is_refused(stack: EmulatedStack) -> None:
    job = ctas("swapped", "totals_swapped", "overwrite")
    assert run(stack, job).status == "SUCCEEDED"
    (first_plan,) = plan_keys(stack, "swapped")
    other = stack.client("s3").get_object(Bucket=stack.lake_bucket, Key=first_plan)["Body"].read()
    live = table(stack, "marts", "totals_swapped")
    assert live is not None
    live_objects = objects(stack, live["StorageDescriptor"]["Location"])

    before = len(stack.athena.statements())
    stop = tamper_after_first_query(stack, "swapped", lambda _key, _original: other)
    try:
        execution = run(stack, job)
    finally:
        stop()

    assert execution.status == "FAILED" and execution.error == "PlanTampered", execution.cause
    assert len(statements_of(stack, before)) == 1
    assert table(stack, "marts", "totals_swapped") == live
    assert objects(stack, live["StorageDescriptor"]["Location"]) == live_objects
