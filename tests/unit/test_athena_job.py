"""Athena SQL job documents: defaults, named errors for bad input, stable run identity."""

from __future__ import annotations

from typing import Any

import pytest
from snaplake.athena.cursor import Cursor, run_id_for
from snaplake.athena.errors import InvalidIdentifier, InvalidJob, InvalidLiteral, InvalidOption, InvalidSelect
from snaplake.athena.jobs import JobMode, parse_job, validate_jobs
from snaplake.athena.plans import SaveMode
from snaplake.athena.settings import AthenaSettings
from snaplake.athena.sql import validate_identifier

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
        ({"externalLocation": "s3://lake-bucket/lakehouse/daily/"}, "externalLocation .* is not a folder under s3://lake-bucket/lake/"),
        ({"externalLocation": "s3://other-bucket/lake/daily/"}, "externalLocation .* is not a folder under s3://lake-bucket/lake/"),
        ({"outputLocation": "s3://results-bucket/"}, "outputLocation .* is not a folder under s3://lake-bucket/lake/"),
        ({"externalLocation": "s3://lake-bucket/lake/"}, "externalLocation .* is not a folder under s3://lake-bucket/lake/"),
    ],
)
def test_jobs_the_functions_role_may_not_run_are_refused_before_any_runs(change: dict[str, Any], message: str) -> None:
    settings = AthenaSettings.from_env(
        {"LAKE_BUCKET": "lake-bucket", "LAKE_PREFIX": "lake", "ATHENA_WORK_GROUP": "etl", "GLUE_DATABASE_PREFIX": "marts_"}
    )
    allowed = {**CTAS, "database": "marts_daily", "workGroup": "etl", "externalLocation": "s3://lake-bucket/lake/marts/daily/"}
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
