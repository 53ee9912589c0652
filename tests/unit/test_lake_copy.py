"""Copying an RDS export into the lake with moto S3: plan, copy batches, finalize."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.core.errors import InvalidEvent
from snaplake.rds.copy_batch import MAX_SINGLE_COPY_BYTES, copy_batches
from snaplake.rds.copy_plan import plan_copy
from snaplake.rds.errors import ColumnNameConflict, CopyIncomplete, ExportFileUnreadable, KeyCollision, UnexpectedExportLayout
from snaplake.rds.finalize import finalize_copy
from snaplake.rds.layout import KeyTemplate
from snaplake.rds.settings import CopySettings as LakeSettings

from tests.unit.helpers import ACCOUNT, REGION

EXPORT_BUCKET = "snaplake-exports"
LAKE_BUCKET = "snaplake-lake"
EXPORT_ID = "sl-world-aurora-manual-1-0123456789"
EXPORT_ROOT = f"exports/{EXPORT_ID}/"
PLAN_ROOT = "_snaplake/plans"
REQUEST: dict[str, Any] = {
    "exportBucket": EXPORT_BUCKET,
    "exportRoot": EXPORT_ROOT,
    "exportTaskIdentifier": EXPORT_ID,
    "snapshotArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:world-aurora-manual-1",
    "sourceType": "cluster",
    "sourceIdentifier": "world-aurora",
    "engine": "aurora-postgresql",
    "snapshotTime": "2024-05-02T12:05:55Z",
}

# The export as RDS writes it, relative to EXPORT_ROOT. Object bodies are opaque to the copy, except for one
# footer per table, which PlanCopy reads for the columns.
METADATA_FILES = {
    f"export_info_{EXPORT_ID}.json": b'{"status": "COMPLETE", "percentProgress": 100}',
    f"export_tables_info_{EXPORT_ID}_from_1_to_3.json": b'{"perTableStatus": []}',
}


def parquet(columns: dict[str, list[Any]], filler: int = 0) -> bytes:
    """A Parquet file whose footer has these columns; `filler` opaque bytes in front (only the footer is ever read)."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return os.urandom(filler) + sink.getvalue().to_pybytes()


def sized_parquet(size: int) -> bytes:
    body = parquet({"id": [1]})
    return parquet({"id": [1]}, filler=size - len(body))


DATA_FILES = {
    "world/public.users/1/part-00000-a.gz.parquet": parquet({"id": [1], "name": ["users a"]}),
    "world/public.users/1/part-00001-b.gz.parquet": parquet({"id": [2], "name": ["users b" * 10]}),
    "world/sales.Invoice_Lines/2/part-00000-c.gz.parquet": parquet({"line": [1], "amount": ["invoice lines c"]}),
    "world/sales.Invoice_Lines/3/part-00000-d.gz.parquet": parquet({"line": [2], "amount": ["invoice lines d" * 5]}),
    "world/public.legacy_orders/part-00000-e.parquet": parquet({"order_id": [7]}),  # old layout, no batch folder
}
EXPORT_MARKERS = ["world/public.users/1/_SUCCESS", "world/sales.Invoice_Lines/2/_SUCCESS", "world/sales.Invoice_Lines/3/_SUCCESS"]

USERS = "lake/rds/world/users/snapshot_time=20240502T120555Z"
INVOICE_LINES = "lake/rds/world/sales_invoice_lines/snapshot_time=20240502T120555Z"
LEGACY_ORDERS = "lake/rds/world/legacy_orders/snapshot_time=20240502T120555Z"
LAKE_KEY_OF = {
    "world/public.users/1/part-00000-a.gz.parquet": f"{USERS}/1/part-00000-a.gz.parquet",
    "world/public.users/1/part-00001-b.gz.parquet": f"{USERS}/1/part-00001-b.gz.parquet",
    "world/sales.Invoice_Lines/2/part-00000-c.gz.parquet": f"{INVOICE_LINES}/2/part-00000-c.gz.parquet",
    "world/sales.Invoice_Lines/3/part-00000-d.gz.parquet": f"{INVOICE_LINES}/3/part-00000-d.gz.parquet",
    "world/public.legacy_orders/part-00000-e.parquet": f"{LEGACY_ORDERS}/1/part-00000-e.parquet",
}
EXPECTED_LAKE_KEYS = {
    *LAKE_KEY_OF.values(),
    f"{USERS}/1/_SUCCESS",
    f"{INVOICE_LINES}/2/_SUCCESS",
    f"{INVOICE_LINES}/3/_SUCCESS",
    f"{USERS}/_SUCCESS",
    f"{INVOICE_LINES}/_SUCCESS",
    f"{LEGACY_ORDERS}/_SUCCESS",
}
MIB = 1024**2
PLENTY_OF_TIME: Callable[[], int] = lambda: 10**9  # noqa: E731


class SimulatedCrash(Exception):
    """The copy worker died (timeout, out of memory) in the middle of a batch."""


class CrashAfterCopies:
    """An S3 client whose server-side copies fail after `allowed` successes."""

    def __init__(self, s3: Any, allowed: int) -> None:
        self._s3 = s3
        self._allowed = allowed
        self._lock = threading.Lock()

    def copy_object(self, **kwargs: Any) -> Any:
        with self._lock:
            if self._allowed <= 0:
                raise SimulatedCrash("worker died mid-batch")
            self._allowed -= 1
        return self._s3.copy_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def lake_settings(**overrides: Any) -> LakeSettings:
    settings = LakeSettings.from_env({"LAKE_BUCKET": LAKE_BUCKET, "LAKE_PREFIX": "lake", "COPY_THREADS": "4"})
    return replace(settings, **overrides)


def put_export(s3: Any, files: dict[str, bytes], root: str = EXPORT_ROOT) -> None:
    for key, body in files.items():
        s3.put_object(Bucket=EXPORT_BUCKET, Key=root + key, Body=body)


@pytest.fixture
def buckets(s3: Any) -> Iterator[Any]:
    """The export bucket holding one finished export, and an empty lake bucket."""
    for bucket in (EXPORT_BUCKET, LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    put_export(s3, {**METADATA_FILES, **DATA_FILES, **dict.fromkeys(EXPORT_MARKERS, b"")})
    yield s3


def lake_keys(s3: Any, claims: bool = False) -> set[str]:
    """The lake's keys: data and markers, or (claims=True) the claims under _snaplake/claims/ only."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET)
    return {obj["Key"] for page in pages for obj in page.get("Contents", []) if ("/_snaplake/claims/" in "/" + obj["Key"]) == claims}


def lake_etags(s3: Any) -> dict[str, str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET)
    return {obj["Key"]: obj["ETag"] for page in pages for obj in page.get("Contents", [])}


def lake_body(s3: Any, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read()
    return body


def worker_requests(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The CopyToLake map's items: the plan and one worker's share of the batches."""
    return [{"plan": plan["plan"], "share": share} for share in plan["workers"]]


def copy_worker(
    s3: Any, request: dict[str, Any], lake: LakeSettings, remaining_ms: Callable[[], int] = PLENTY_OF_TIME, **kwargs: Any
) -> dict[str, Any]:
    """Call copy_batches as the state machine's loop does, until the worker reports done."""
    for _ in range(50):
        request = copy_batches(s3, request, lake, remaining_ms, **kwargs)
        if request["done"]:
            return request
    raise AssertionError("copy worker never finished")


def run_copy(s3: Any, lake: LakeSettings, request: dict[str, Any] = REQUEST, **kwargs: Any) -> dict[str, Any]:
    """Plan, every worker's copy, finalize: returns the plan, worker results and finalize result."""
    plan = plan_copy(s3, request, lake)
    results = [copy_worker(s3, worker, lake, **kwargs) for worker in worker_requests(plan)]
    final = finalize_copy(s3, {"plan": plan["plan"], "batches": plan["batches"]}, lake)
    return {"plan": plan, "results": results, "final": final}


# ---------------------------------------------------------------- the whole copy


def test_export_lands_in_the_lake_as_data_and_success_markers_only(buckets: Any) -> None:
    run_copy(buckets, lake_settings())

    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS
    assert not any(key.endswith(".json") for key in lake_keys(buckets))


def test_copied_data_is_byte_identical_to_the_export(buckets: Any) -> None:
    run_copy(buckets, lake_settings())

    for relative, body in DATA_FILES.items():
        assert lake_body(buckets, LAKE_KEY_OF[relative]) == body
    assert lake_body(buckets, f"{USERS}/_SUCCESS") == b""


def test_plan_and_finalize_summaries_count_tables_objects_and_skipped_metadata(buckets: Any) -> None:
    outcome = run_copy(buckets, lake_settings())

    data_bytes = sum(len(body) for body in DATA_FILES.values())
    plan, final = outcome["plan"], outcome["final"]
    assert (plan["objects"], plan["bytes"], plan["tables"], plan["ignored"], plan["batches"]) == (5, data_bytes, 3, 2, 1)
    assert sum(result["copied"] for result in outcome["results"]) == 5
    assert sum(result["copiedBytes"] for result in outcome["results"]) == data_bytes
    assert (final["lakeBucket"], final["tables"], final["objects"], final["bytes"]) == (LAKE_BUCKET, 3, 5, data_bytes)


def test_landed_manifest_describes_each_table_partition(buckets: Any) -> None:
    final = run_copy(buckets, lake_settings())["final"]

    manifest_ref = final["landedManifest"]
    assert manifest_ref["bucket"] == EXPORT_BUCKET
    manifest = json.loads(buckets.get_object(Bucket=manifest_ref["bucket"], Key=manifest_ref["key"])["Body"].read())
    assert manifest["lakeBucket"] == LAKE_BUCKET
    tables = {table["table"]: table for table in manifest["tables"]}
    assert set(tables) == {"users", "sales_invoice_lines", "legacy_orders"}
    assert tables["users"]["partition"] == f"{USERS}/"
    assert tables["users"]["database"] == "world"
    assert tables["users"]["sourceTable"] == "public.users"
    assert tables["users"]["objects"] == 2
    assert tables["sales_invoice_lines"]["sourceTable"] == "sales.Invoice_Lines"
    assert tables["legacy_orders"]["bytes"] == len(DATA_FILES["world/public.legacy_orders/part-00000-e.parquet"])


def test_rerun_of_a_finished_copy_copies_nothing_new_and_leaves_identical_keys(buckets: Any) -> None:
    lake = lake_settings()
    first = run_copy(buckets, lake)
    before = lake_etags(buckets)

    second = run_copy(buckets, lake)

    assert second["plan"]["plan"] == first["plan"]["plan"]
    assert sum(result["copied"] for result in second["results"]) == 0
    assert sum(result["skipped"] for result in second["results"]) == 5
    assert lake_etags(buckets) == before
    assert set(before) == EXPECTED_LAKE_KEYS | lake_keys(buckets, claims=True)


@pytest.mark.parametrize(
    ("batch_size", "workers", "expected_batches", "expected_workers"),
    [(2, 2, 3, 2), (2, 3, 3, 3), (1, 40, 5, 5), (2, 1, 3, 1)],
)
def test_small_batches_spread_over_several_workers_land_the_same_keys(
    buckets: Any, batch_size: int, workers: int, expected_batches: int, expected_workers: int
) -> None:
    outcome = run_copy(buckets, lake_settings(batch_size=batch_size, workers=workers))

    assert outcome["plan"]["batches"] == expected_batches
    assert len(outcome["plan"]["workers"]) == expected_workers
    assert sum(result["copied"] for result in outcome["results"]) == 5
    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS


def test_lake_without_prefix_and_seed_template_lands_under_the_seed_layout(buckets: Any) -> None:
    lake = lake_settings(prefix="", key_template=KeyTemplate.parse("{database}/{table}/partition_datetime={snapshot_time}/{batch}/{file}"))

    run_copy(buckets, lake)

    assert "world/users/partition_datetime=20240502T120555Z/1/part-00000-a.gz.parquet" in lake_keys(buckets)
    assert "world/users/partition_datetime=20240502T120555Z/_SUCCESS" in lake_keys(buckets)
    assert len(lake_keys(buckets)) == len(EXPECTED_LAKE_KEYS)


def test_mysql_export_drops_the_database_qualifier_from_table_names(buckets: Any) -> None:
    root = "exports/sl-shop-mysql-0123456789/"
    put_export(
        buckets, {"shop/shop.customers/1/part-00000-x.gz.parquet": parquet({"id": [1]}), "shop/shop.customers/1/_SUCCESS": b""}, root
    )
    request = {
        **REQUEST,
        "exportRoot": root,
        "exportTaskIdentifier": "sl-shop-mysql-0123456789",
        "engine": "mysql",
        "sourceIdentifier": "shop-mysql",
    }

    run_copy(buckets, lake_settings(), request)

    partition = "lake/rds/shop/customers/snapshot_time=20240502T120555Z"
    assert lake_keys(buckets) == {f"{partition}/1/part-00000-x.gz.parquet", f"{partition}/1/_SUCCESS", f"{partition}/_SUCCESS"}


def test_export_with_only_metadata_plans_no_batches_and_lands_nothing(buckets: Any) -> None:
    root = "exports/sl-empty-0123456789/"
    put_export(buckets, METADATA_FILES, root)
    request = {**REQUEST, "exportRoot": root, "exportTaskIdentifier": "sl-empty-0123456789"}

    outcome = run_copy(buckets, lake_settings(), request)

    assert outcome["plan"]["batches"] == 0
    assert outcome["plan"]["workers"] == []
    assert outcome["final"]["tables"] == 0
    assert lake_keys(buckets) == set()


def test_expected_bucket_owners_of_the_right_account_still_copy(buckets: Any) -> None:
    run_copy(buckets, lake_settings(bucket_owner=ACCOUNT, source_bucket_owner=ACCOUNT))

    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS


# ---------------------------------------------------------------- time budget and interrupted batches


def test_exhausted_time_budget_returns_a_cursor_and_the_follow_up_call_finishes(buckets: Any) -> None:
    lake = lake_settings(threads=1)
    plan = plan_copy(buckets, REQUEST, lake)
    [worker] = worker_requests(plan)
    budgets = iter([10**9])  # the first object always starts; time for one more, then the Lambda is about to time out

    partial = copy_batches(buckets, worker, lake, lambda: next(budgets, 0))

    assert partial["done"] is False
    assert partial["cursor"] == {"batch": 0, "offset": 2}
    assert partial["copied"] == 2
    with pytest.raises(CopyIncomplete):
        finalize_copy(buckets, {"plan": plan["plan"], "batches": plan["batches"]}, lake)

    finished = copy_batches(buckets, partial, lake, PLENTY_OF_TIME)

    assert finished["done"] is True
    assert finished["cursor"] is None
    assert finished["copied"] == 5
    assert finished["skipped"] == 0
    finalize_copy(buckets, {"plan": plan["plan"], "batches": plan["batches"]}, lake)
    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS


def test_no_time_left_still_copies_one_object_so_the_loop_moves_forward(buckets: Any) -> None:
    lake = lake_settings(batch_size=2, workers=2)
    plan = plan_copy(buckets, REQUEST, lake)

    partial = copy_batches(buckets, worker_requests(plan)[1], lake, lambda: 0)

    assert partial["done"] is False
    assert partial["cursor"] == {"batch": 1, "offset": 1}
    assert partial["copied"] == 1
    assert len(lake_keys(buckets)) == 1


def test_crash_after_a_cursor_handover_is_verified_on_the_retry_of_the_same_input(buckets: Any) -> None:
    lake = lake_settings(threads=1)
    plan = plan_copy(buckets, REQUEST, lake)
    [worker] = worker_requests(plan)
    budgets = iter([10**9])
    handover = copy_batches(buckets, worker, lake, lambda: next(budgets, 0))
    assert handover["cursor"] == {"batch": 0, "offset": 2}
    with pytest.raises(SimulatedCrash):
        copy_batches(CrashAfterCopies(buckets, allowed=2), handover, lake, PLENTY_OF_TIME)
    assert len(lake_keys(buckets)) == 4

    retry = copy_batches(buckets, handover, lake, PLENTY_OF_TIME)

    assert retry["done"] is True
    assert retry["skipped"] == 2  # the two the crashed invocation copied after the handover
    assert retry["copied"] == 2 + 1
    finalize_copy(buckets, {"plan": plan["plan"], "batches": plan["batches"]}, lake)
    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS


def test_batch_left_started_by_a_crash_is_verified_object_by_object_on_rerun(buckets: Any) -> None:
    lake = lake_settings(threads=1)
    plan = plan_copy(buckets, REQUEST, lake)
    [worker] = worker_requests(plan)
    with pytest.raises(SimulatedCrash):
        copy_batches(CrashAfterCopies(buckets, allowed=2), worker, lake, PLENTY_OF_TIME)
    assert len(lake_keys(buckets)) == 2

    rerun = copy_batches(buckets, worker, lake, PLENTY_OF_TIME)

    assert rerun["done"] is True
    assert rerun["skipped"] == 2
    assert rerun["copied"] == 3
    finalize_copy(buckets, {"plan": plan["plan"], "batches": plan["batches"]}, lake)
    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS
    for relative, body in DATA_FILES.items():
        assert lake_body(buckets, LAKE_KEY_OF[relative]) == body


def test_verification_recopies_an_object_whose_lake_copy_differs_from_the_export(buckets: Any) -> None:
    lake = lake_settings(threads=1)
    plan = plan_copy(buckets, REQUEST, lake)
    [worker] = worker_requests(plan)
    with pytest.raises(SimulatedCrash):
        copy_batches(CrashAfterCopies(buckets, allowed=2), worker, lake, PLENTY_OF_TIME)
    [damaged, *_] = sorted(lake_keys(buckets))
    buckets.put_object(Bucket=LAKE_BUCKET, Key=damaged, Body=b"truncated")

    rerun = copy_batches(buckets, worker, lake, PLENTY_OF_TIME)

    assert (rerun["copied"], rerun["skipped"]) == (4, 1)
    for relative, body in DATA_FILES.items():
        assert lake_body(buckets, LAKE_KEY_OF[relative]) == body


def test_finalize_before_every_batch_is_done_is_copy_incomplete_and_writes_no_markers(buckets: Any) -> None:
    lake = lake_settings(batch_size=2, workers=2)
    plan = plan_copy(buckets, REQUEST, lake)
    first, second = worker_requests(plan)
    copy_worker(buckets, first, lake)

    with pytest.raises(CopyIncomplete):
        finalize_copy(buckets, {"plan": plan["plan"], "batches": plan["batches"]}, lake)

    assert not any(key.endswith("/_SUCCESS") for key in lake_keys(buckets))
    copy_worker(buckets, second, lake)
    finalize_copy(buckets, {"plan": plan["plan"], "batches": plan["batches"]}, lake)
    assert lake_keys(buckets) == EXPECTED_LAKE_KEYS


# ---------------------------------------------------------------- large objects and encryption


def test_object_above_the_multipart_threshold_is_copied_in_parts_byte_identical(buckets: Any) -> None:
    big = sized_parquet(12 * MIB + 100 * 1024)
    put_export(buckets, {"world/public.events/1/part-00000-big.gz.parquet": big})

    run_copy(buckets, lake_settings(), multipart_threshold=6 * MIB)

    key = "lake/rds/world/events/snapshot_time=20240502T120555Z/1/part-00000-big.gz.parquet"
    head = buckets.head_object(Bucket=LAKE_BUCKET, Key=key)
    assert head["ContentLength"] == len(big)
    assert head["ETag"].strip('"').endswith("-3")  # 6 MiB + 6 MiB + 100 KiB parts
    assert lake_body(buckets, key) == big
    small = LAKE_KEY_OF["world/public.users/1/part-00000-a.gz.parquet"]
    assert "-" not in buckets.head_object(Bucket=LAKE_BUCKET, Key=small)["ETag"]


def test_object_at_the_multipart_threshold_is_copied_in_one_request(buckets: Any) -> None:
    body = sized_parquet(6 * MIB)
    put_export(buckets, {"world/public.events/1/part-00000-edge.gz.parquet": body})

    run_copy(buckets, lake_settings(), multipart_threshold=6 * MIB)

    key = "lake/rds/world/events/snapshot_time=20240502T120555Z/1/part-00000-edge.gz.parquet"
    assert "-" not in buckets.head_object(Bucket=LAKE_BUCKET, Key=key)["ETag"]
    assert lake_body(buckets, key) == body


def test_lake_kms_key_encrypts_every_copied_object_and_marker(buckets: Any) -> None:
    key_arn = boto3.client("kms", region_name=REGION).create_key(Description="snaplake lake")["KeyMetadata"]["Arn"]
    put_export(buckets, {"world/public.events/1/part-00000-big.gz.parquet": sized_parquet(12 * MIB)})
    lake = LakeSettings.from_env({"LAKE_BUCKET": LAKE_BUCKET, "LAKE_PREFIX": "lake", "LAKE_KMS_KEY_ARN": key_arn})

    run_copy(buckets, lake, multipart_threshold=6 * MIB)

    keys = lake_keys(buckets)
    assert keys >= EXPECTED_LAKE_KEYS
    for key in keys:
        head = buckets.head_object(Bucket=LAKE_BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == key_arn, key


# ---------------------------------------------------------------- layouts the copy refuses


def test_template_without_batch_and_repeated_file_names_is_a_key_collision(buckets: Any) -> None:
    root = "exports/sl-collide-0123456789/"
    put_export(
        buckets,
        {
            "world/sales.Invoice_Lines/2/part-00000-same.gz.parquet": b"batch 2",
            "world/sales.Invoice_Lines/3/part-00000-same.gz.parquet": b"batch 3",
        },
        root,
    )
    request = {**REQUEST, "exportRoot": root, "exportTaskIdentifier": "sl-collide-0123456789"}
    lake = lake_settings(key_template=KeyTemplate.parse("rds/{database}/{table}/snapshot_time={snapshot_time}/{file}"))

    with pytest.raises(KeyCollision):
        plan_copy(buckets, request, lake)

    assert buckets.list_objects_v2(Bucket=EXPORT_BUCKET, Prefix=PLAN_ROOT).get("KeyCount") == 0


def test_template_without_batch_and_distinct_file_names_lands_files_under_the_partition(buckets: Any) -> None:
    lake = lake_settings(key_template=KeyTemplate.parse("rds/{database}/{table}/snapshot_time={snapshot_time}/{file}"))

    run_copy(buckets, lake)

    assert lake_keys(buckets) == {
        f"{USERS}/part-00000-a.gz.parquet",
        f"{USERS}/part-00001-b.gz.parquet",
        f"{INVOICE_LINES}/part-00000-c.gz.parquet",
        f"{INVOICE_LINES}/part-00000-d.gz.parquet",
        f"{LEGACY_ORDERS}/part-00000-e.parquet",
        f"{USERS}/_SUCCESS",
        f"{INVOICE_LINES}/_SUCCESS",
        f"{LEGACY_ORDERS}/_SUCCESS",
    }


def test_parquet_file_outside_the_export_layout_stops_the_plan(buckets: Any) -> None:
    put_export(buckets, {"world/stray-part-00000.gz.parquet": b"where does this go?"})

    with pytest.raises(UnexpectedExportLayout):
        plan_copy(buckets, REQUEST, lake_settings())


@pytest.mark.parametrize(
    "overrides",
    [
        {"snapshotTime": None},
        {"snapshotTime": "2024-05-02T12:05:55"},
        {"snapshotTime": "not a time"},
        {"exportRoot": EXPORT_ROOT.rstrip("/")},
        {"exportRoot": None},
        {"exportBucket": None},
    ],
)
def test_plan_request_missing_or_malformed_fields_is_an_invalid_event(buckets: Any, overrides: dict[str, Any]) -> None:
    request = {key: value for key, value in {**REQUEST, **overrides}.items() if value is not None}

    with pytest.raises(InvalidEvent):
        plan_copy(buckets, request, lake_settings())


@pytest.mark.parametrize("missing", ["sourceIdentifier", "exportTaskIdentifier", "snapshotTime"])
def test_plan_request_without_earlier_step_output_is_an_invalid_event(buckets: Any, missing: str) -> None:
    request = {key: value for key, value in REQUEST.items() if key != missing}

    with pytest.raises(InvalidEvent, match=missing):
        plan_copy(buckets, request, lake_settings())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("worker", 2),
        ("worker", -1),
        ("worker", "first"),
        ("workers", None),
        ("batches", None),
        ("batchSize", 0),
        ("objects", None),
    ],
)
def test_copy_request_with_malformed_share_is_an_invalid_event(buckets: Any, field: str, value: Any) -> None:
    lake = lake_settings(batch_size=2, workers=2)
    [request, _] = worker_requests(plan_copy(buckets, REQUEST, lake))
    share = {key: val for key, val in {**request["share"], field: value}.items() if val is not None}

    with pytest.raises(InvalidEvent):
        copy_batches(buckets, {**request, "share": share}, lake, PLENTY_OF_TIME)


@pytest.mark.parametrize(
    "change",
    [
        {"share": None},
        {"share": [0, 2]},
        {"plan": None},
        {"plan": {"bucket": EXPORT_BUCKET, "prefix": "plans/../elsewhere/"}},
        {"plan": {"bucket": EXPORT_BUCKET, "prefix": "no-trailing-slash"}},
        {"cursor": {"batch": 1, "offset": 0}},  # worker 0 of 2 owns the even batches
        {"cursor": {"batch": 0, "offset": -1}},
        {"cursor": "batch 0"},
    ],
)
def test_copy_request_that_is_malformed_is_an_invalid_event(buckets: Any, change: dict[str, Any]) -> None:
    lake = lake_settings(batch_size=2, workers=2)
    [request, _] = worker_requests(plan_copy(buckets, REQUEST, lake))
    request = {key: value for key, value in {**request, **change}.items() if value is not None}

    with pytest.raises(InvalidEvent):
        copy_batches(buckets, request, lake, PLENTY_OF_TIME)


@pytest.mark.parametrize("request_", [{}, {"batches": 1}, {"plan": {"bucket": EXPORT_BUCKET, "prefix": "p/"}}])
def test_finalize_request_that_is_malformed_is_an_invalid_event(buckets: Any, request_: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        finalize_copy(buckets, request_, lake_settings())


def test_single_copy_limit_is_the_s3_copy_object_limit() -> None:
    assert MAX_SINGLE_COPY_BYTES == 5 * 1024**3


def test_copy_of_the_same_export_into_another_lake_bucket_lands_the_data_there(buckets: Any) -> None:
    run_copy(buckets, lake_settings())
    buckets.create_bucket(Bucket="snaplake-lake-2", CreateBucketConfiguration={"LocationConstraint": REGION})

    run_copy(buckets, lake_settings(bucket="snaplake-lake-2"))

    pages = buckets.get_paginator("list_objects_v2").paginate(Bucket="snaplake-lake-2")
    assert {obj["Key"] for page in pages for obj in page.get("Contents", []) if "/_snaplake/" not in obj["Key"]} == EXPECTED_LAKE_KEYS


@pytest.mark.parametrize(
    ("first", "second"),
    [("public.sales_invoice", "sales.invoice"), ("public.Users", "public.users")],
)
def test_two_source_tables_with_the_same_lake_table_name_are_refused(buckets: Any, first: str, second: str) -> None:
    root = "exports/sl-merge-0123456789/"
    put_export(buckets, {f"world/{first}/1/part-00000-one.gz.parquet": b"one", f"world/{second}/1/part-00000-two.gz.parquet": b"two"}, root)
    request = {**REQUEST, "exportRoot": root, "exportTaskIdentifier": "sl-merge-0123456789"}

    with pytest.raises(KeyCollision):
        plan_copy(buckets, request, lake_settings())


# ---------------------------------------------------------------- refused before anything lands (issue 11, case 13)


@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ({"id": [1], "Foo": [1], "foo": [2]}, "'Foo' and 'foo' are the same column"),
        ({"id": [1], "Snapshot_Time": ["x"]}, "name of a partition key"),
    ],
)
def test_columns_athena_cannot_tell_apart_are_refused_at_plan_time(buckets: Any, columns: dict[str, list[Any]], named: str) -> None:
    put_export(buckets, {"world/public.clash/1/part-00000-z.gz.parquet": parquet(columns)})

    with pytest.raises(ColumnNameConflict, match=named):
        plan_copy(buckets, REQUEST, lake_settings())

    assert lake_keys(buckets) == set() == lake_keys(buckets, claims=True)


def test_column_named_like_a_partition_key_of_another_template_is_refused(buckets: Any) -> None:
    put_export(buckets, {"world/public.clash/1/part-00000-z.gz.parquet": parquet({"id": [1], "partition_datetime": ["x"]})})
    lake = lake_settings(key_template=KeyTemplate.parse("rds/{database}/{table}/partition_datetime={snapshot_time}/{batch}/{file}"))

    with pytest.raises(ColumnNameConflict, match="partition_datetime"):
        plan_copy(buckets, REQUEST, lake)


def test_data_file_that_is_not_parquet_is_refused_at_plan_time(buckets: Any) -> None:
    put_export(buckets, {"world/public.fake/1/part-00000-z.gz.parquet": b"not parquet at all"})

    with pytest.raises(ExportFileUnreadable, match="no PAR1 footer"):
        plan_copy(buckets, REQUEST, lake_settings())

    assert lake_keys(buckets) == set()


def test_non_parquet_file_in_a_table_folder_is_refused_at_plan_time(buckets: Any) -> None:
    put_export(buckets, {"world/public.users/1/part-00002-c.gz.csv": b"id\n1\n"})

    with pytest.raises(UnexpectedExportLayout, match="neither Parquet"):
        plan_copy(buckets, REQUEST, lake_settings())

    assert lake_keys(buckets) == set()


def test_plan_claims_the_snapshot_time_each_table_folder_and_each_partition(buckets: Any) -> None:
    plan_copy(buckets, REQUEST, lake_settings())

    claims = {key: json.loads(buckets.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read()) for key in lake_keys(buckets, claims=True)}
    assert claims["lake/_snaplake/claims/rds/snapshots/world-aurora/20240502T120555Z.json"] == {
        "export": EXPORT_ID,
        "snapshotArn": REQUEST["snapshotArn"],
        "source": "world-aurora",
    }
    assert claims["lake/_snaplake/claims/rds/tables/rds/world/users.json"] == {"source": "world-aurora"}
    assert claims[f"lake/_snaplake/claims/rds/partitions/{USERS.removeprefix('lake/')}.json"] == {"export": EXPORT_ID}
    assert len(claims) == 1 + 3 + 3


def test_rerun_after_a_landed_object_was_deleted_copies_it_again(buckets: Any) -> None:
    lake = lake_settings()
    run_copy(buckets, lake)
    before = lake_etags(buckets)
    victim = LAKE_KEY_OF["world/public.users/1/part-00001-b.gz.parquet"]
    buckets.delete_object(Bucket=LAKE_BUCKET, Key=victim)

    second = run_copy(buckets, lake)

    assert second["plan"]["plan"]["prefix"]
    assert sum(result["copied"] for result in second["results"]) == 1
    assert set(lake_etags(buckets)) == set(before)


def test_finalize_refuses_success_when_a_copied_object_is_gone(buckets: Any) -> None:
    lake = lake_settings()
    plan = plan_copy(buckets, REQUEST, lake)
    for worker in worker_requests(plan):
        copy_worker(buckets, worker, lake)
    buckets.delete_object(Bucket=LAKE_BUCKET, Key=LAKE_KEY_OF["world/public.users/1/part-00000-a.gz.parquet"])

    with pytest.raises(CopyIncomplete, match="not in the lake"):
        finalize_copy(buckets, {"plan": plan["plan"], "batches": plan["batches"]}, lake)

    assert not any(key.endswith("/_SUCCESS") for key in lake_keys(buckets))
