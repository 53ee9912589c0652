"""The emulated Athena computes real answers: the sample Athena jobs (events/athena_etl_jobs.json) over the world
tables the RDS pipeline landed and RegisterCatalog registered, checked against independent pyarrow computations over
the same Parquet; and queries sent through the Athena API (GetQueryResults pages, ColumnInfo, failures)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from snaplake.athena import AthenaSettings
from snaplake_local.report import athena_answer
from snaplake_local.sources import default_parameters, sample_event, seed_sample_sources
from snaplake_local.stack import EmulatedStack

WORLD_SNAPSHOT = "20240502T024019Z"  # the snapshot events/rds_automated_cluster_snapshot.json exports


@pytest.fixture(scope="module")
def stack() -> Iterator[EmulatedStack]:
    parameters = default_parameters(DynamoDbTableArns="", DynamoDbStreamArns="", FirehoseTransform="false")
    with EmulatedStack(parameters, function_log_level="ERROR") as deployed:
        seed_sample_sources(deployed)
        landed = deployed.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))
        assert landed.status == "SUCCEEDED", landed.cause
        jobs = deployed.run("AthenaEtlStateMachine", sample_event("athena_etl_jobs.json"))
        assert jobs.status == "SUCCEEDED", jobs.cause
        yield deployed


def lake_table(stack: EmulatedStack, prefix: str) -> pa.Table:
    """Every Parquet data file under `prefix`, read with pyarrow (not through the emulator)."""
    s3 = stack.client("s3")
    tables = []
    for key in sorted(stack.lake_objects(prefix)):
        if key.rsplit("/", 1)[-1].startswith("_"):
            continue
        body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
        tables.append(pq.ParquetFile(pa.BufferReader(body)).read(use_threads=False))
    return pa.concat_tables(tables, promote_options="permissive")


def ask(stack: EmulatedStack, sql: str, database: str | None = None) -> tuple[list[dict[str, Any]], list[list[str | None]]]:
    settings = AthenaSettings.from_env(stack.environment("AthenaQueryFunction"))
    return athena_answer(
        stack.client("athena"),
        stack.clock.advance,
        sql,
        work_group=settings.work_group,
        output_location=settings.output_location,
        database=database,
    )


def start(stack: EmulatedStack, sql: str) -> str:
    query_id = stack.client("athena").start_query_execution(QueryString=sql, WorkGroup="primary")["QueryExecutionId"]
    stack.clock.advance(10)
    return str(query_id)


def test_the_ctas_summary_holds_what_pyarrow_computes_from_the_same_parquet(stack: EmulatedStack) -> None:
    country = lake_table(stack, f"rds/world/country/snapshot_time={WORLD_SNAPSHOT}/")
    expected = country.group_by("continent").aggregate([("code", "count"), ("population", "sum")])
    want = sorted([row["continent"], str(row["code_count"]), str(row["population_sum"])] for row in expected.to_pylist())

    columns, rows = ask(stack, "SELECT continent, countries, population FROM marts.continent_summary")

    assert sorted(rows) == want
    assert [(c["Name"], c["Type"]) for c in columns] == [("continent", "varchar"), ("countries", "bigint"), ("population", "bigint")]
    glue = stack.client("glue").get_table(DatabaseName="marts", Name="continent_summary")["Table"]
    written = lake_table(stack, glue["StorageDescriptor"]["Location"].split("/", 3)[3])
    assert sorted([r["continent"], str(r["countries"]), str(r["population"])] for r in written.to_pylist()) == want, "the CTAS wrote it"


def test_the_apas_partition_holds_the_snapshots_cities(stack: EmulatedStack) -> None:
    city = lake_table(stack, f"rds/world/city/snapshot_time={WORLD_SNAPSHOT}/")
    want = sorted([r["name"], r["countrycode"], str(r["population"]), "2024-05-02"] for r in city.to_pylist())

    _, rows = ask(stack, "SELECT name, countrycode, population, dt FROM marts.city_population WHERE dt = '2024-05-02'")

    assert sorted(rows) == want
    written = lake_table(stack, "athena/marts/city_population/dt=2024-05-02/")
    assert written.num_rows == city.num_rows and written.column_names == ["name", "countrycode", "population"]
    assert pc.sum(written["population"]).as_py() == pc.sum(city["population"]).as_py()


def test_get_query_results_pages_with_the_header_first(stack: EmulatedStack) -> None:
    athena = stack.client("athena")
    query_id = start(stack, "SELECT name, population FROM world.city ORDER BY population DESC, name LIMIT 5")

    first = athena.get_query_results(QueryExecutionId=query_id, MaxResults=3)
    second = athena.get_query_results(QueryExecutionId=query_id, MaxResults=3, NextToken=first["NextToken"])

    values = [[cell.get("VarCharValue") for cell in row["Data"]] for page in (first, second) for row in page["ResultSet"]["Rows"]]
    assert values[0] == ["name", "population"]
    assert values[1:3] == [["São Paulo", "9968485"], ["New York", "8008278"]] and len(values) == 6
    assert "NextToken" not in second
    info = first["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"], c["Precision"]) for c in info] == [("name", "varchar", 2147483647), ("population", "integer", 10)]


def test_a_select_naming_a_wrong_column_fails_with_column_not_found(stack: EmulatedStack) -> None:
    athena = stack.client("athena")
    query_id = start(stack, "SELECT nmae FROM world.city")

    status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]

    assert status["State"] == "FAILED"
    assert status["StateChangeReason"].startswith("COLUMN_NOT_FOUND: line 1:1: Column 'nmae' cannot be resolved")
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_results(QueryExecutionId=query_id)


def test_a_ctas_writes_parquet_reports_its_rows_and_registers_the_partitions_it_wrote(stack: EmulatedStack) -> None:
    athena = stack.client("athena")
    location = f"s3://{stack.lake_bucket}/athena/marts/by_country/"
    sql = (
        "CREATE TABLE marts.by_country WITH (format = 'PARQUET', external_location = '" + location + "', "
        "partitioned_by = ARRAY['countrycode']) AS SELECT name, population, countrycode FROM world.city WHERE countrycode IN ('BRA', 'NLD')"
    )
    query_id = start(stack, sql)

    assert athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    assert athena.get_query_results(QueryExecutionId=query_id)["UpdateCount"] == 7
    pages = stack.client("glue").get_paginator("get_partitions").paginate(DatabaseName="marts", TableName="by_country")
    found = {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}
    assert found == {("BRA",): f"{location}countrycode=BRA/", ("NLD",): f"{location}countrycode=NLD/"}
    body = stack.client("s3").get_object(Bucket=stack.lake_bucket, Key=f"athena/marts/by_country/countrycode=NLD/{query_id}_00000")
    netherlands = pq.read_table(io.BytesIO(body["Body"].read()))
    assert netherlands.column_names == ["name", "population"] and netherlands.num_rows == 4


def test_current_timestamp_is_the_emulators_clock(stack: EmulatedStack) -> None:
    before = stack.clock.now()
    _, rows = ask(stack, "SELECT current_date, current_timestamp")
    assert rows == [[before.date().isoformat(), before.strftime("%Y-%m-%d %H:%M:%S.") + f"{before.microsecond // 1000:03d} UTC"]]
