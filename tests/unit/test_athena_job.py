"""Athena SQL job documents: defaults, named errors for bad input, stable run identity."""

from __future__ import annotations

from typing import Any

import pytest
from snaplake.athena.cursor import Cursor, run_id_for
from snaplake.athena.errors import (
    ForbiddenTarget,
    InvalidIdentifier,
    InvalidJob,
    InvalidLiteral,
    InvalidOption,
    InvalidSelect,
    UnsafePartitionValue,
)
from snaplake.athena.guard import check_step
from snaplake.athena.jobs import JobMode, parse_job, validate_jobs
from snaplake.athena.plans import ExistingTable, SaveMode, Step, plan_apas, plan_ctas
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import CtasOptions, validate_identifier

CTAS = {"mode": "ctas", "database": "marts", "table": "daily", "query": "SELECT 1 AS a;"}
SETTINGS = AthenaSettings.from_env({"LAKE_BUCKET": "lake-bucket", "LAKE_PREFIX": "lake", "ATHENA_WORK_GROUP": "etl"})


def test_a_ctas_job_gets_the_documented_defaults() -> None:
    job = parse_job(CTAS, index=2)
    assert job.mode is JobMode.CTAS and job.name == "3_ctas_daily"
    assert job.save_mode is SaveMode.ERROR_IF_EXISTS
    assert job.options is not None and (job.options.format, job.options.write_compression) == ("PARQUET", "SNAPPY")
    assert job.options.external_location is None  # the default table folder is chosen at run time
    assert job.query == "SELECT 1 AS a"


def test_the_normalized_document_parses_back_to_the_same_job() -> None:
    docs: list[dict[str, Any]] = [
        {**CTAS, "saveMode": "Overwrite", "partitionedBy": ["dt"], "bucketedBy": ["a"], "bucketCount": 4, "writeCompression": None},
        {"mode": "apas", "database": "m", "table": "t", "query": "SELECT 1", "partition": {"dt": "2024-05-01", "hour": 7}},
        {"mode": "add_partition", "database": "m", "table": "t", "partitions": [{"values": {"dt": "x"}, "location": "s3://b-b/t/x/"}]},
        {"mode": "query", "query": "WITH x AS (SELECT 1 a) SELECT a FROM x", "workGroup": "etl", "outputLocation": "s3://b-b/r/"},
    ]
    for index, doc in enumerate(docs):
        job = parse_job(doc, index)
        assert parse_job(job.as_json(), index) == job


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({**CTAS, "save_mode": "overwrite"}, r"fields \['save_mode'\] are not used by mode 'ctas'"),
        ({**CTAS, "mode": "merge"}, "'mode' must be one of"),
        ({**CTAS, "table": None}, "'table' must be a non-empty string"),
        ({"mode": "apas", "database": "m", "table": "t", "query": "SELECT 1"}, "needs 'partition'"),
        ({"mode": "apas", "database": "m", "table": "t", "query": "SELECT 1", "partition": {"dt": True}}, "string or an integer"),
        ({"mode": "add_partition", "database": "m", "table": "t", "partitions": []}, "non-empty list"),
        ({"mode": "add_partition", "database": "m", "table": "t", "query": "SELECT 1", "partitions": [{"values": {"a": "b"}}]}, "not used"),
        ({**CTAS, "name": "a b"}, "'name' must be"),
        ({**CTAS, "bucketCount": "4"}, "'bucketCount' must be an integer"),
        ("SELECT 1", "must be a JSON object"),
    ],
)
def test_malformed_jobs_raise_invalid_job_naming_the_problem(doc: Any, message: str) -> None:
    with pytest.raises(InvalidJob, match=message):
        parse_job(doc)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"table": "a; DROP TABLE x"}, InvalidIdentifier),
        ({"database": "`marts`"}, InvalidIdentifier),
        ({"partitionedBy": ['dt"']}, InvalidIdentifier),
        ({"query": "DELETE FROM x"}, InvalidSelect),
        ({"externalLocation": "s3://b-b/o'/"}, InvalidLiteral),
        ({"format": "CSV"}, InvalidOption),
        ({"saveMode": "replace"}, InvalidOption),
    ],
)
def test_unsafe_or_invalid_values_raise_the_sql_builders_errors(change: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_job({**CTAS, **change})


def test_a_job_list_must_be_non_empty_with_unique_names() -> None:
    with pytest.raises(InvalidJob, match="non-empty list"):
        validate_jobs([], SETTINGS)
    with pytest.raises(InvalidJob, match=r"repeated: \['x'\]"):
        validate_jobs([{**CTAS, "name": "x"}, {**CTAS, "name": "x"}], SETTINGS)
    assert [job["name"] for job in validate_jobs([CTAS, CTAS], SETTINGS)] == ["1_ctas_daily", "2_ctas_daily"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workGroup": "primary"}, "jobs run in the stack's work group 'etl' only"),
        ({"database": "sales"}, "does not begin with 'marts_' \\(GlueDatabasePrefix\\)"),
        (
            {"externalLocation": "s3://lake-bucket/lakehouse/daily/"},
            "s3://lake-bucket/lakehouse/daily/ is not a folder under s3://lake-bucket/lake/athena/",
        ),
        ({"externalLocation": "s3://other-bucket/lake/athena/daily/"}, "is not a folder under s3://lake-bucket/lake/athena/"),
        (
            {"outputLocation": "s3://results-bucket/"},
            "outputLocation: s3://results-bucket/ is not a folder under s3://lake-bucket/lake/athena/",
        ),
        ({"externalLocation": "s3://lake-bucket/lake/"}, "is not a folder under s3://lake-bucket/lake/athena/"),
    ],
)
def test_jobs_the_functions_role_may_not_run_are_refused_before_any_runs(change: dict[str, Any], message: str) -> None:
    settings = AthenaSettings.from_env(
        {
            "LAKE_BUCKET": "lake-bucket",
            "LAKE_PREFIX": "lake",
            "ATHENA_WORK_GROUP": "etl",
            "GLUE_DATABASE_PREFIX": "marts_",
            "ATHENA_JOB_DATABASE_PREFIX": "daily",
        }
    )
    allowed = {**CTAS, "database": "marts_daily", "workGroup": "etl", "externalLocation": "s3://lake-bucket/lake/athena/daily/"}
    assert validate_jobs([allowed], settings)

    with pytest.raises(InvalidJob, match=message):
        validate_jobs([allowed, {**allowed, "name": "second", **change}], settings)


def test_run_ids_are_stable_per_execution_and_job_and_valid_identifiers() -> None:
    execution, started = "arn:aws:states:eu-west-1:1:execution:m:e", "2024-05-02T05:00:00.123Z"
    first = run_id_for(execution, started, 0)
    assert first == run_id_for(execution, started, 0) and first.startswith("20240502t050000_")
    assert first != run_id_for(execution, started, 1)
    assert validate_identifier(first) == first
    with pytest.raises(InvalidJob):
        run_id_for(execution, "yesterday", 0)


def test_a_cursor_from_another_run_is_refused() -> None:
    cursor = Cursor("r1", phase="steps", step=2, steps=3, query_execution_id="q")
    assert Cursor.parse(cursor.as_json(), "r1") == cursor
    assert Cursor.parse({}, "r1") == Cursor("r1")
    with pytest.raises(InvalidJob):
        Cursor.parse(cursor.as_json(), "r2")


def _glue_errors(*codes: str) -> dict[str, Any]:
    return {
        "Errors": [
            {"PartitionValues": [f"2024-05-0{i}"], "ErrorDetail": {"ErrorCode": c, "ErrorMessage": "no"}} for i, c in enumerate(codes)
        ]
    }


@pytest.mark.parametrize(
    ("answer", "tolerated", "raised"),
    [
        (_glue_errors("InvalidInputException"), "", "CatalogUpdateFailed"),
        (_glue_errors("ThrottlingException"), "", "TransientAwsError"),
        (_glue_errors("AlreadyExistsException", "EntityNotFoundException"), "AlreadyExistsException", "CatalogUpdateFailed"),
        (_glue_errors("AlreadyExistsException"), "AlreadyExistsException", None),
        ({}, "", None),
    ],
)
def test_partition_swap_stops_on_any_failure_glue_reports_in_its_answer(answer: dict[str, Any], tolerated: str, raised: str | None) -> None:
    # Glue's batch partition calls answer per-entry failures instead of raising; the overwrite deletes the old
    # data right after the swap, so an unnoticed failure would leave a partition pointing at deleted data.
    from snaplake.athena.catalog_ops import JobTables

    tables = JobTables(None, parse_job(CTAS, 0), "run1")
    if raised is None:
        tables.check_partition_errors("create", "daily", answer, tolerated=tolerated)
        return
    with pytest.raises(Exception) as caught:
        tables.check_partition_errors("create", "daily", answer, tolerated=tolerated)
    assert type(caught.value).__name__ == raised
    assert "marts.daily" in str(caught.value)


@pytest.mark.parametrize("bucket", ["lake-bucket", "results-bucket"])
def test_s3_refusing_an_overwrites_deletion_names_the_lake_and_what_to_check(bucket: str) -> None:
    from types import SimpleNamespace

    from botocore.exceptions import ClientError
    from snaplake.athena.lake import JobStorage

    class RefusingS3:
        def get_paginator(self, operation: str) -> Any:
            return SimpleNamespace(paginate=lambda **kwargs: [{"Contents": [{"Key": "marts/daily/old.parquet"}]}])

        def delete_objects(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "DeleteObjects")

    settings = AthenaSettings.from_env({"LAKE_BUCKET": "lake-bucket", "LAKE_BUCKET_OWNER": "111122223333"})
    storage = JobStorage(RefusingS3(), settings, parse_job(CTAS, 0), lambda: 60_000)

    with pytest.raises(Exception) as caught:
        storage.delete_location(f"s3://{bucket}/marts/daily/", None)

    if bucket == "lake-bucket":
        assert type(caught.value).__name__ == "LakeAccessDenied"
        assert "DeleteObjects in lake bucket lake-bucket" in str(caught.value) and "111122223333" in str(caught.value)
    else:  # not the lake: S3's own error, for named_errors and the state machine's Retry to judge
        assert isinstance(caught.value, ClientError)


# ---------------------------------------------------------------- partition values Athena would escape in a path
# Hive's FileUtils.escapePathName (Athena's engine keeps Hive's list) writes these as %XX in the partition folder
# name, while a job deletes and registers the folder named by the raw value.
APAS = {"mode": "apas", "database": "marts", "table": "daily", "query": "SELECT 1 AS a", "saveMode": "overwrite"}
CONTROL_CHARACTERS = [chr(c) for c in range(0x01, 0x20)] + ["\x7f"]
PUNCTUATION = list("\"#%'*/:=?\\{[]^")


def _apas_with(value: str) -> dict[str, Any]:
    return {**APAS, "partition": {"dt": f"2024{value}05"}}


def _add_partition_with(value: str, location: str | None = None) -> dict[str, Any]:
    entry = {"values": {"dt": f"2024{value}05"}, **({"location": location} if location else {})}
    return {"mode": "add_partition", "database": "marts", "table": "daily", "partitions": [entry]}


@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_an_apas_partition_value_with_a_control_character_is_refused_by_name(char: str) -> None:
    with pytest.raises(UnsafePartitionValue, match=rf"U\+{ord(char):04X}"):
        validate_jobs([_apas_with(char)], SETTINGS)


@pytest.mark.parametrize("char", PUNCTUATION)
def test_an_apas_partition_value_with_a_character_athena_escapes_in_paths_is_refused_by_name(char: str) -> None:
    with pytest.raises(UnsafePartitionValue, match="escapes"):
        validate_jobs([_apas_with(char)], SETTINGS)


@pytest.mark.parametrize("char", [*PUNCTUATION, "\x01", "\x7f"], ids=repr)
def test_an_add_partition_value_with_an_escaped_character_and_no_location_is_refused(char: str) -> None:
    with pytest.raises(UnsafePartitionValue):
        validate_jobs([_add_partition_with(char)], SETTINGS)


@pytest.mark.parametrize("char", ["#", "%", "*", "?", "{", "[", "]", "^", '"'])
def test_an_add_partition_value_with_its_own_location_needs_no_path_and_is_accepted(char: str) -> None:
    (doc,) = validate_jobs([_add_partition_with(char, "s3://lake-bucket/lake/athena/marts/daily/x/")], SETTINGS)

    assert doc["partitions"][0]["values"] == {"dt": f"2024{char}05"}


@pytest.mark.parametrize("value", ["São Paulo", "2024 05 02", "東京", "naïve-value_1.2", "a}b", "(x)+y,z;&!~@$|<>", 20240502])
def test_partition_values_athena_writes_unescaped_are_accepted(value: str | int) -> None:
    (doc,) = validate_jobs([{**APAS, "partition": {"dt": value}}], SETTINGS)

    assert doc["partition"] == {"dt": value}


# ---------------------------------------------------------------------- issue 12, finding 3: what the jobs may touch
LAKE = "s3://lake-bucket/lake/"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"externalLocation": f"{LAKE}rds/orders/"}, id="pipeline-folder"),
        pytest.param({"externalLocation": f"{LAKE}_snaplake/athena/plans/"}, id="snaplake-folder"),
        pytest.param({"externalLocation": f"{LAKE}_snaplake_staging/orders/"}, id="staging-folder"),
        pytest.param({"externalLocation": f"{LAKE}athena/"}, id="jobs-folder-itself"),
        pytest.param({"externalLocation": "s3://other-bucket/lake/athena/daily/"}, id="other-bucket"),
        pytest.param({"outputLocation": f"{LAKE}_snaplake/athena/plans/"}, id="output-among-plans"),
        pytest.param({"database": "world"}, id="rds-source-database"),
        pytest.param({"database": "dynamodb"}, id="dynamodb-database"),
    ],
)
def test_a_ctas_job_on_pipeline_data_is_refused_by_name(change: dict[str, Any]) -> None:
    with pytest.raises(ForbiddenTarget):
        validate_jobs([{**CTAS, **change}], SETTINGS)


def test_the_dynamodb_database_is_refused_even_when_it_looks_like_a_job_database() -> None:
    settings = AthenaSettings.from_env({"LAKE_BUCKET": "lake-bucket", "DYNAMODB_GLUE_DATABASE": "marts_ddb"})
    assert validate_jobs([{**CTAS, "database": "marts_daily"}], settings)
    with pytest.raises(ForbiddenTarget, match="'marts_ddb' is not a job database"):
        validate_jobs([{**CTAS, "database": "marts_ddb"}], settings)


@pytest.mark.parametrize("mode", ["apas", "add_partition"])
def test_partition_jobs_on_pipeline_tables_or_foreign_locations_are_refused_by_name(mode: str) -> None:
    job: dict[str, Any] = {"mode": mode, "database": "world", "table": "city"}
    if mode == "apas":
        job |= {"query": "SELECT 1 AS a", "partition": {"dt": "x"}}
    else:
        job |= {"partitions": [{"values": {"dt": "x"}}]}
    with pytest.raises(ForbiddenTarget):
        validate_jobs([job], SETTINGS)
    elsewhere = [{"values": {"dt": "x"}, "location": "s3://other-bucket/lake/athena/t/dt=x/"}]
    with pytest.raises(ForbiddenTarget):
        validate_jobs([{"mode": "add_partition", "database": "marts", "table": "t", "partitions": elsewhere}], SETTINGS)


def test_a_query_job_may_read_any_database_of_the_prefix() -> None:
    assert validate_jobs([{"mode": "query", "database": "world", "query": "SELECT * FROM world.city"}], SETTINGS)


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(Step("delete_location", "x", location=f"{LAKE}rds/"), id="delete-pipeline-folder"),
        pytest.param(Step("delete_location", "x", location=f"{LAKE}_snaplake/athena/plans/"), id="delete-work-files"),
        pytest.param(Step("require_empty", "x", location="s3://other-bucket/athena/"), id="other-bucket"),
        pytest.param(Step("query", "x", sql="DROP TABLE IF EXISTS `world`.`city`"), id="drop-pipeline-table"),
        pytest.param(Step("query", "x", sql="DROP TABLE IF EXISTS `marts`.`t`; DROP TABLE `world`.`city`"), id="two-statements"),
        pytest.param(Step("query", "x", sql='INSERT INTO "world"."city" SELECT 1'), id="insert-into-pipeline-table"),
        pytest.param(
            Step("query", "x", sql=f'CREATE TABLE "marts"."t" WITH (external_location = \'{LAKE}rds/city/\') AS SELECT 1 AS a'),
            id="ctas-into-pipeline-folder",
        ),
        pytest.param(
            Step("query", "x", sql="ALTER TABLE `marts`.`t` ADD IF NOT EXISTS\n  PARTITION (`dt` = 'x') LOCATION 's3://evil-bucket/x/'"),
            id="partition-in-other-bucket",
        ),
        pytest.param(Step("query", "x", sql="ALTER TABLE `world`.`city` DROP IF EXISTS PARTITION (`dt` = 'x')"), id="alter-pipeline-table"),
        pytest.param(Step("query", "x", sql="MSCK REPAIR TABLE `marts`.`t`"), id="another-statement"),
        pytest.param(Step("vacuum", "x"), id="unknown-kind"),
    ],
)
def test_a_stored_step_outside_the_job_rules_is_refused(step: Step) -> None:
    with pytest.raises(InvalidJob) as raised:
        check_step(parse_job(CTAS), step, SETTINGS)
    assert raised.type is (InvalidJob if step.kind == "vacuum" else ForbiddenTarget)


def test_the_steps_the_planner_builds_pass_the_job_rules() -> None:
    folder = f"{LAKE}athena/marts/daily/"
    ctas = plan_ctas(
        "marts", "daily", "SELECT 1 AS a", CtasOptions(external_location=folder), SaveMode.OVERWRITE, ExistingTable(folder), run_id="r1"
    )
    apas = plan_apas(
        "marts",
        "daily",
        "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
        partition_columns=["dt"],
        partition_values=("2024-05-02",),
        table_location=folder,
        mode=SaveMode.OVERWRITE,
        partition_exists=True,
        run_id="r1",
        probe_location=f"{LAKE}_snaplake/athena/probes/",
    )
    job = parse_job(CTAS)
    for step in (*ctas.steps, *apas.steps):
        check_step(job, step, SETTINGS)


def test_a_query_jobs_stored_step_must_be_its_own_select() -> None:
    job = parse_job({"mode": "query", "query": "SELECT 1 AS a"})
    check_step(job, Step("query", "run", sql="SELECT 1 AS a"), SETTINGS)
    with pytest.raises(ForbiddenTarget):
        check_step(job, Step("query", "run", sql="SELECT 2 AS a"), SETTINGS)
