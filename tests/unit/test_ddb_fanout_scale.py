"""No per-export ceiling in the DynamoDB conversion (issue 13): nothing one invocation reads or writes grows with the
export beyond one object per share, and there are at most MAX_SHARES shares.

Exports are written to moto S3 in DynamoDB's layout and run through the library code the handlers call.
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient
from snaplake.core.errors import InvalidEvent
from snaplake.dynamodb import conversion, publish
from snaplake.dynamodb.conversion import convert_files, merge_schemas, plan_conversion, scan_files
from snaplake.dynamodb.errors import ConversionIncomplete
from snaplake.dynamodb.publish import finalize_conversion, publish_share
from snaplake.dynamodb.settings import ConversionSettings

TABLE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders"
EXPORT_ID = "01700000000000-abcdef01"
ROOT = f"AWSDynamoDB/{EXPORT_ID}"
EXPORTS, LAKE = "exports", "lake"
SETTINGS = ConversionSettings(
    bucket=LAKE, prefix="data", bucket_owner=None, kms_key_arn=None, export_bucket_owner=None, workers=2, plan_prefix="plans"
)
REQUEST = {
    "tableArn": TABLE_ARN,
    "exportArn": f"{TABLE_ARN}/export/{EXPORT_ID}",
    "bucket": EXPORTS,
    "manifestSummaryKey": f"{ROOT}/manifest-summary.json",
}
FOREVER = lambda: 10**9  # noqa: E731 - a Lambda with all the time it needs


@pytest.fixture
def buckets(s3: Any) -> Any:
    for name in (EXPORTS, LAKE):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return s3


@contextmanager
def s3_calls() -> Iterator[Counter[str]]:
    """Every S3 call made while the block runs, by operation."""
    counts: Counter[str] = Counter()
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private botocore method

    def counting(self: Any, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "s3":
            counts[operation] += 1
        return original(self, operation, params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", counting)
        yield counts


def manifest(s3: Any, counts: list[int], write_data: bool = True) -> None:
    """manifest-summary.json and manifest-files.json of an export whose data file n holds counts[n] items."""
    lines = []
    for index, count in enumerate(counts):
        key = f"{ROOT}/data/{index:07d}.json.gz"
        if write_data:
            items = "".join(
                json.dumps({"Item": {"pk": {"S": f"{index}-{n}"}, f"a{index % 3}": {"N": str(n)}}}) + "\n" for n in range(count)
            )
            s3.put_object(Bucket=EXPORTS, Key=key, Body=gzip.compress(items.encode()))
        lines.append(json.dumps({"itemCount": count, "md5Checksum": "x", "etag": "y", "dataFileS3Key": key}))
    s3.put_object(Bucket=EXPORTS, Key=f"{ROOT}/manifest-files.json", Body=("\n".join(lines) + "\n").encode())
    summary = {"manifestFilesS3Key": f"{ROOT}/manifest-files.json", "itemCount": sum(counts), "exportTime": "2026-01-14T10:00:00Z"}
    s3.put_object(Bucket=EXPORTS, Key=f"{ROOT}/manifest-summary.json", Body=json.dumps(summary).encode())


def carried(planned: dict[str, Any]) -> dict[str, Any]:
    return {key: planned[key] for key in ("plan", "kind", "table", "exportedTo", "exportId")}


def run_child(step: Any, s3: Any, event: dict[str, Any], remaining: Any = FOREVER, settings: ConversionSettings = SETTINGS) -> int:
    """A Map child: the step again on its cursor until done; how many invocations it took."""
    invocations = 0
    while True:
        invocations += 1
        result = step(s3, event, settings, remaining)
        if result["done"]:
            return invocations
        event = result


def test_a_plan_of_100k_data_files_has_at_most_max_shares_and_a_small_response(buckets: Any) -> None:
    manifest(buckets, [1] * 100_000, write_data=False)

    with s3_calls() as calls:
        planned = plan_conversion(buckets, REQUEST, SETTINGS)

    assert planned["files"] == 100_000 and planned["shares"] == conversion.MAX_SHARES == 1_000
    # The manifest and summary read once; one file list per share, plan.json and items.json written: nothing per file.
    assert calls == Counter(GetObject=2, PutObject=conversion.MAX_SHARES + 2)
    assert len(json.dumps(planned)) < 64 * 1024  # a Lambda task's result counts against 256 KB before ResultSelector
    share = json.loads(buckets.get_object(Bucket=EXPORTS, Key=f"{planned['plan']['prefix']}shares/000999.json")["Body"].read())
    assert [entry[0] for entry in share["entries"]] == list(range(999, 100_000, 1_000))
    assert share["entries"][0][1] == f"{ROOT}/data/0000999.json.gz"
    items = json.loads(buckets.get_object(Bucket=EXPORTS, Key=planned["items"]["key"])["Body"].read())
    assert len(items) == 1_000 and items[-1]["share"] == {"worker": 999, "workers": 1_000, "files": 100_000}


@pytest.mark.parametrize(("files", "shares"), [(1, 1), (2, 2), (9, 2), (17, 3), (8_001, 1_000)])
def test_shares_hold_at_most_8_files_until_there_are_max_shares(buckets: Any, files: int, shares: int) -> None:
    manifest(buckets, [0] * files, write_data=False)

    assert plan_conversion(buckets, REQUEST, SETTINGS)["shares"] == shares


def test_merge_and_finalize_read_one_object_per_share_not_one_per_file(buckets: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversion, "MAX_SHARES", 3)
    counts = [index % 4 for index in range(40)]  # every 4th file empty, like an empty table partition
    manifest(buckets, counts)
    planned = plan_conversion(buckets, REQUEST, SETTINGS)
    assert planned["shares"] == 3  # 40 files: 14, 13 and 13 per share
    for share in planned["workers"]:
        run_child(scan_files, buckets, {**carried(planned), "share": share})

    totals = {"files": planned["files"], "expectedItems": planned["expectedItems"]}
    with s3_calls() as merge_calls:
        merged = merge_schemas(buckets, {"plan": planned["plan"], **totals}, SETTINGS)
    for share in planned["workers"]:
        run_child(convert_files, buckets, {**carried(planned), "share": share})
        assert run_child(publish_share, buckets, {**carried(planned), "share": share}) == 1
    with s3_calls() as finalize_calls:
        landed = finalize_conversion(buckets, {**carried(planned), **totals, "shares": 3}, SETTINGS)

    assert merged["rows"] == landed["rows"] == sum(counts) and landed["files"] == 40
    # plan.json, what each share's (one) ScanFiles invocation found, the column registry; schema.json and the registry.
    assert merge_calls["GetObject"] == 1 + 3 + 1 and merge_calls["PutObject"] <= 2
    # 3 share summaries and plan.json (the table's name for the metrics); one _SUCCESS; one listing of what staging
    # the children left (nothing).
    assert finalize_calls == Counter(GetObject=3 + 1, PutObject=1, ListObjectsV2=1)
    assert buckets.list_objects_v2(Bucket=LAKE, Prefix="data/_snaplake_staging/")["KeyCount"] == 0


def test_a_scan_child_out_of_time_merges_its_share_from_what_earlier_invocations_kept(buckets: Any) -> None:
    manifest(buckets, [3, 0, 2, 5, 1])
    settings_one_share = ConversionSettings(**{**SETTINGS.__dict__, "workers": 1})
    planned = plan_conversion(buckets, REQUEST, settings_one_share)
    [share] = planned["workers"]

    invocations = 0
    event: dict[str, Any] = {**carried(planned), "share": share}
    while True:  # no time left: each invocation scans one file and hands on its cursor
        invocations += 1
        result = scan_files(buckets, event, settings_one_share, lambda: 0)
        if result["done"]:
            break
        assert result["cursor"] == invocations
        event = result

    assert invocations == 5
    prefix = planned["plan"]["prefix"]
    first = json.loads(buckets.get_object(Bucket=EXPORTS, Key=f"{prefix}schemas/share-000000-from-000000.json")["Body"].read())
    assert (first["files"], first["rows"], first["next"]) == (1, 3, 1)
    with s3_calls() as calls:
        merged = merge_schemas(buckets, {"plan": planned["plan"], "files": 5, "expectedItems": 11}, settings_one_share)
    assert merged["rows"] == 11
    assert calls["GetObject"] == 1 + 5 + 1  # plan.json, the share's five invocations (a chain from its first file), the registry
    schema = json.loads(buckets.get_object(Bucket=EXPORTS, Key=merged["schemaKey"])["Body"].read())
    assert set(schema["sections"]["Item"]["children"]) == {"pk", "a0", "a1", "a2"}


def test_a_retried_scan_invocation_overwrites_what_it_found_and_merge_follows_the_latest_chain(buckets: Any) -> None:
    manifest(buckets, [1, 1, 1, 1])
    settings_one_share = ConversionSettings(**{**SETTINGS.__dict__, "workers": 1})
    planned = plan_conversion(buckets, REQUEST, settings_one_share)
    event: dict[str, Any] = {**carried(planned), "share": planned["workers"][0]}
    budget = iter([10**9, 10**9, 0])  # the first attempt scans three files before its time runs out ...
    scan_files(buckets, event, settings_one_share, lambda: next(budget))
    # ... and is retried with the same input (it died before Step Functions had its result): one file this time.
    retried = scan_files(buckets, event, settings_one_share, lambda: 0)
    assert retried["cursor"] == 1
    assert run_child(scan_files, buckets, retried) == 1

    merged = merge_schemas(buckets, {"plan": planned["plan"], "files": 4, "expectedItems": 4}, settings_one_share)

    assert merged["rows"] == 4  # from-0 (next 1), from-1 (done): the first attempt's reach past file 1 is not counted twice


def test_publish_children_drop_their_staged_copies_and_finalize_sweeps_a_leftover(buckets: Any) -> None:
    manifest(buckets, [2, 2, 2])
    planned = plan_conversion(buckets, REQUEST, SETTINGS)
    for stage in (scan_files, convert_files):
        for share in planned["workers"]:
            run_child(stage, buckets, {**carried(planned), "share": share})
        if stage is scan_files:
            merge_schemas(buckets, {"plan": planned["plan"], "files": 3, "expectedItems": 6}, SETTINGS)
    staging = f"data/_snaplake_staging/{EXPORT_ID}/"
    assert buckets.list_objects_v2(Bucket=LAKE, Prefix=staging)["KeyCount"] == 3

    run_child(publish_share, buckets, {**carried(planned), "share": planned["workers"][0]})
    assert buckets.list_objects_v2(Bucket=LAKE, Prefix=staging)["KeyCount"] == 1  # the first share's two are dropped
    # A retry of the same child finds its staged copies gone and the objects in place: nothing to do, no error.
    assert run_child(publish_share, buckets, {**carried(planned), "share": planned["workers"][0]}) == 1
    run_child(publish_share, buckets, {**carried(planned), "share": planned["workers"][1]})
    buckets.put_object(Bucket=LAKE, Key=f"{staging}leftover.parquet", Body=b"x")  # one a child could not drop

    landed = finalize_conversion(buckets, {**carried(planned), "files": 3, "expectedItems": 6, "shares": 2}, SETTINGS)

    assert landed["rows"] == 6 and buckets.list_objects_v2(Bucket=LAKE, Prefix=staging)["KeyCount"] == 0
    parquet = [o["Key"] for o in buckets.list_objects_v2(Bucket=LAKE, Prefix="data/dynamodb/")["Contents"]]
    assert sorted(key.rsplit("/", 1)[1] for key in parquet) == [
        "_SUCCESS",
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]


@pytest.mark.parametrize(
    "share",
    [
        {"worker": 0, "workers": 1, "files": 3},  # not the plan's number of shares
        {"worker": 0, "workers": 2, "files": 4},  # not the plan's number of files
    ],
)
def test_a_share_that_is_not_the_plans_is_refused_before_anything_is_read_or_written(buckets: Any, share: dict[str, int]) -> None:
    manifest(buckets, [1, 1, 1])
    planned = plan_conversion(buckets, REQUEST, SETTINGS)

    with s3_calls() as calls, pytest.raises(InvalidEvent, match="not the plan's"):
        scan_files(buckets, {**carried(planned), "share": share}, SETTINGS, FOREVER)
    assert calls == Counter(GetObject=1)


def test_a_share_list_that_does_not_list_the_shares_files_is_refused(buckets: Any) -> None:
    manifest(buckets, [1, 1, 1])
    planned = plan_conversion(buckets, REQUEST, SETTINGS)
    key = f"{planned['plan']['prefix']}shares/000001.json"
    listed = json.loads(buckets.get_object(Bucket=EXPORTS, Key=key)["Body"].read())
    buckets.put_object(Bucket=EXPORTS, Key=key, Body=json.dumps({**listed, "entries": listed["entries"] + [[3, "x", 1]]}).encode())

    with pytest.raises(InvalidEvent, match="does not list the share's files"):
        convert_files(buckets, {**carried(planned), "share": planned["workers"][1]}, SETTINGS, FOREVER)


def test_finalize_refuses_a_request_that_is_not_the_plans_before_writing_anything(buckets: Any) -> None:
    manifest(buckets, [1, 1, 1])
    planned = plan_conversion(buckets, REQUEST, SETTINGS)
    for stage in (scan_files, convert_files):
        for share in planned["workers"]:
            run_child(stage, buckets, {**carried(planned), "share": share})
        if stage is scan_files:
            merge_schemas(buckets, {"plan": planned["plan"], "files": 3, "expectedItems": 3}, SETTINGS)
    for share in planned["workers"]:
        run_child(publish_share, buckets, {**carried(planned), "share": share})

    with s3_calls() as calls, pytest.raises(InvalidEvent, match="counts 4 data files in 2 shares, the plan 3 in 2"):
        finalize_conversion(buckets, {**carried(planned), "files": 4, "expectedItems": 3, "shares": 2}, SETTINGS)
    assert set(calls) == {"GetObject"}


# ---------------------------------------------------------------------------------------------------- PublishFiles' cursor

ONE_SHARE = ConversionSettings(**{**SETTINGS.__dict__, "workers": 1})
COUNTS = [3, 0, 2, 5, 1, 4, 2]  # one share of 7 files; file 1 is empty and lands nothing
LANDED = ["_SUCCESS", *(f"part-{index:05d}.parquet" for index, items in enumerate(COUNTS) if items)]


def converted_share(buckets: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """One share's PublishFiles event, its files scanned and converted; it publishes in rounds of two files, so its
    cursor can stop at files 2, 4 and 6."""
    monkeypatch.setattr(publish, "PUBLISH_THREADS", 2)
    manifest(buckets, COUNTS)
    planned = plan_conversion(buckets, REQUEST, ONE_SHARE)
    event = {**carried(planned), "share": planned["workers"][0]}
    run_child(scan_files, buckets, event, settings=ONE_SHARE)
    merge_schemas(buckets, {"plan": planned["plan"], "files": len(COUNTS), "expectedItems": sum(COUNTS)}, ONE_SHARE)
    run_child(convert_files, buckets, event, settings=ONE_SHARE)
    return event


def finalize_share(buckets: Any, event: dict[str, Any]) -> dict[str, Any]:
    return finalize_conversion(buckets, {**event, "files": len(COUNTS), "expectedItems": sum(COUNTS), "shares": 1}, ONE_SHARE)


def lake_files(buckets: Any) -> list[str]:
    listed = buckets.list_objects_v2(Bucket=LAKE, Prefix="data/dynamodb/").get("Contents", [])
    return sorted(obj["Key"].rsplit("/", 1)[1] for obj in listed)


def staged(buckets: Any) -> list[str]:
    listed = buckets.list_objects_v2(Bucket=LAKE, Prefix="data/_snaplake_staging/").get("Contents", [])
    return sorted(obj["Key"].rsplit("/", 1)[1] for obj in listed)


def out_of_time_after(rounds: int) -> Callable[[], int]:
    """A budget that runs out at the check after `rounds` rounds (the first round is never checked)."""
    asked = itertools.count(1)
    return lambda: 10**9 if next(asked) < rounds else 0


@pytest.mark.parametrize("rounds", [1, 2, 3, 4])
def test_a_publish_child_stopped_at_each_cursor_point_resumes_and_lands_each_file_once(
    buckets: Any, monkeypatch: pytest.MonkeyPatch, rounds: int
) -> None:
    event = converted_share(buckets, monkeypatch)

    first = publish_share(buckets, event, ONE_SHARE, out_of_time_after(rounds))

    cursor = 2 * rounds if rounds < 4 else None
    assert (first["cursor"], first["done"]) == (cursor, cursor is None)
    assert first["share"] == event["share"] and first["plan"] == event["plan"]  # the Map child's item, handed on
    # What it published is in place and its staged copies are dropped; the rest still waits in staging.
    assert staged(buckets) == [name for name in LANDED[1:] if int(name[5:10]) >= (cursor or len(COUNTS))]
    # The rest with no time left: one round per invocation.
    assert (run_child(publish_share, buckets, first, lambda: 0, ONE_SHARE) if cursor else 0) == 4 - rounds
    landed = finalize_share(buckets, event)

    assert (landed["rows"], landed["files"]) == (sum(COUNTS), len(COUNTS))
    assert lake_files(buckets) == LANDED and staged(buckets) == []


@pytest.mark.parametrize("dies", ["mid-copy", "after dropping its staged copies"])
def test_a_publish_invocation_retried_after_it_died_part_way_lands_each_file_once(
    buckets: Any, monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    event = converted_share(buckets, monkeypatch)
    after_two = publish_share(buckets, event, ONE_SHARE, out_of_time_after(2))  # files 0-3 published, cursor 4
    copies, original_publish, original_drop = itertools.count(), publish.publish, publish.drop_staged

    def publish_dying_on_the_second(lake: Any, staged_key: str, key: str) -> None:
        if next(copies) == 1:
            raise TimeoutError("injected: the invocation dies mid-round")
        original_publish(lake, staged_key, key)

    def drop_then_die(lake: Any, keys: list[str]) -> None:
        original_drop(lake, keys)
        raise TimeoutError("injected: the invocation dies before it records what it published")

    if dies == "mid-copy":
        monkeypatch.setattr(publish, "publish", publish_dying_on_the_second)
    else:
        monkeypatch.setattr(publish, "drop_staged", drop_then_die)
    with pytest.raises(TimeoutError):
        publish_share(buckets, after_two, ONE_SHARE, FOREVER)
    monkeypatch.setattr(publish, "publish", original_publish)
    monkeypatch.setattr(publish, "drop_staged", original_drop)
    # Step Functions retries the invocation with the same input: the same cursor.
    assert run_child(publish_share, buckets, after_two, settings=ONE_SHARE) == 1
    landed = finalize_share(buckets, event)

    assert (landed["rows"], landed["files"]) == (sum(COUNTS), len(COUNTS))
    assert lake_files(buckets) == LANDED and staged(buckets) == []


def test_a_retry_that_stops_elsewhere_rewrites_the_chain_and_finalize_never_reads_the_records_left_off_it(
    buckets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = converted_share(buckets, monkeypatch)
    assert run_child(publish_share, buckets, event, lambda: 0, ONE_SHARE) == 4  # records from files 0, 2, 4 and 6
    # The share again from its first file (a retried invocation whose result was lost, or the next run finishing this
    # export), all of it in one invocation: the record from file 0 now ends the chain; those from 2, 4, 6 stay behind.
    assert run_child(publish_share, buckets, event, settings=ONE_SHARE) == 1
    records = buckets.list_objects_v2(Bucket=EXPORTS, Prefix=f"{event['plan']['prefix']}published/")["KeyCount"]

    with s3_calls() as calls:
        landed = finalize_share(buckets, event)

    assert records == 4 and calls["GetObject"] == 1 + 1  # the share's one record on the chain, and plan.json
    assert (landed["rows"], landed["files"]) == (sum(COUNTS), len(COUNTS))
    assert lake_files(buckets) == LANDED


def test_finalize_refuses_a_share_whose_chain_is_not_finished(buckets: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    event = converted_share(buckets, monkeypatch)
    publish_share(buckets, event, ONE_SHARE, out_of_time_after(1))  # its record says the next invocation starts at 2

    with pytest.raises(ConversionIncomplete, match="1 of 1 shares are not published"):
        finalize_share(buckets, event)
    assert "_SUCCESS" not in lake_files(buckets)
