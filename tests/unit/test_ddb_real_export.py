"""A real DynamoDB export (one full export, two INCREMENTAL_EXPORT windows, NEW_AND_OLD_IMAGES) replayed in place
through the conversion the pipeline runs: PlanConversion, ScanFiles, MergeSchema, ConvertFiles, FinalizeConversion.

The export lives outside the repository (`<repo>/../shared/real-data/ddb-pitr-export`, see its SOURCE.txt); its
files are uploaded to a moto bucket as DynamoDB wrote them (s3Prefix null: keys start at `AWSDynamoDB/`).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.core.names import SUCCESS_MARKER
from snaplake.dynamodb.conversion import convert_files, merge_schemas, plan_conversion, scan_files
from snaplake.dynamodb.parquet import CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN
from snaplake.dynamodb.publish import finalize_conversion, publish_share
from snaplake.dynamodb.settings import ConversionSettings
from snaplake_local.emulator import DynamoDbExportEmulator, VirtualClock

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = (REPO.parent / "shared" / "real-data" / "ddb-pitr-export", Path("/work/shared/real-data/ddb-pitr-export"))
REAL_EXPORT = next((path for path in CANDIDATES if (path / "AWSDynamoDB").is_dir()), None)
pytestmark = pytest.mark.skipif(
    REAL_EXPORT is None, reason=f"the real DynamoDB export is not here (looked in {', '.join(map(str, CANDIDATES))})"
)

TABLE_ARN = "arn:aws:dynamodb:eu-north-1:123456789123:table/test"
FULL_ID, FIRST_WINDOW_ID, SECOND_WINDOW_ID = "01768385930622-efd1a093", "01768386924000-d339e52d", "01768388186000-4a2fc3ff"
EXPORT_BUCKET, LAKE_BUCKET = "real-export", "real-lake"
SETTINGS = ConversionSettings(
    bucket=LAKE_BUCKET, prefix="lake", bucket_owner=None, kms_key_arn=None, export_bucket_owner=None, workers=2, plan_prefix="plans"
)


def never_late() -> int:
    return 10**9


@pytest.fixture
def export_s3(s3: Any) -> Any:
    """A moto S3 with the real export uploaded unchanged, and an empty lake bucket."""
    assert REAL_EXPORT is not None
    for name in (EXPORT_BUCKET, LAKE_BUCKET):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for path in sorted(REAL_EXPORT.rglob("*")):
        if path.is_file() and path.relative_to(REAL_EXPORT).parts[0] == "AWSDynamoDB":
            s3.put_object(Bucket=EXPORT_BUCKET, Key=path.relative_to(REAL_EXPORT).as_posix(), Body=path.read_bytes())
    return s3


def real_lines(export_id: str) -> list[dict[str, Any]]:
    """The data lines of one export, read from the real files through its manifest-files.json."""
    assert REAL_EXPORT is not None
    manifest = (REAL_EXPORT / "AWSDynamoDB" / export_id / "manifest-files.json").read_text().splitlines()
    out: list[dict[str, Any]] = []
    for entry in map(json.loads, filter(None, manifest)):
        text = gzip.decompress((REAL_EXPORT / entry["dataFileS3Key"]).read_bytes()).decode()
        out.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return out


def convert_export(s3: Any, export_id: str) -> dict[str, Any]:
    """The conversion steps as the state machine runs them; returns PlanConversion's and FinalizeConversion's outputs."""
    planned = plan_conversion(
        s3,
        {
            "tableArn": TABLE_ARN,
            "exportArn": f"{TABLE_ARN}/export/{export_id}",
            "bucket": EXPORT_BUCKET,
            "manifestSummaryKey": f"AWSDynamoDB/{export_id}/manifest-summary.json",
        },
        SETTINGS,
    )
    carried = {key: planned[key] for key in ("plan", "kind", "table", "exportedTo", "exportId")}
    for share in planned["workers"]:
        assert scan_files(s3, {**carried, "share": share}, SETTINGS, never_late)["done"] is True
    merge_schemas(s3, {"plan": planned["plan"], "files": planned["files"], "expectedItems": planned["expectedItems"]}, SETTINGS)
    for share in planned["workers"]:
        assert convert_files(s3, {**carried, "share": share}, SETTINGS, never_late)["done"] is True
    for share in planned["workers"]:
        assert publish_share(s3, {**carried, "share": share}, SETTINGS, never_late)["done"]
    landed = finalize_conversion(
        s3, {**carried, "files": planned["files"], "expectedItems": planned["expectedItems"], "shares": planned["shares"]}, SETTINGS
    )
    return {"planned": planned, "landed": landed}


@pytest.mark.parametrize("export_id", [FULL_ID, FIRST_WINDOW_ID, SECOND_WINDOW_ID])
def test_real_files_convert_from_the_scans_stage_to_the_same_parquet_bytes_as_from_their_json(export_s3: Any, export_id: str) -> None:
    """ConvertFiles carries ScanFiles' staged conversion over (no second JSON parse); without the stage it converts
    the JSON: the lake objects are byte for byte the same."""
    planned = plan_conversion(
        export_s3,
        {
            "tableArn": TABLE_ARN,
            "exportArn": f"{TABLE_ARN}/export/{export_id}",
            "bucket": EXPORT_BUCKET,
            "manifestSummaryKey": f"AWSDynamoDB/{export_id}/manifest-summary.json",
        },
        SETTINGS,
    )
    carried = {key: planned[key] for key in ("plan", "kind", "table", "exportedTo", "exportId")}
    for share in planned["workers"]:
        scan_files(export_s3, {**carried, "share": share}, SETTINGS, never_late)
    merge_schemas(export_s3, {"plan": planned["plan"], "files": planned["files"], "expectedItems": planned["expectedItems"]}, SETTINGS)
    prefix = planned["plan"]["prefix"]

    def converted() -> tuple[dict[str, bytes], list[str]]:
        for share in planned["workers"]:
            assert convert_files(export_s3, {**carried, "share": share}, SETTINGS, never_late)["done"] is True
        staged = [key for key in lake_keys(export_s3) if key.endswith(".parquet")]
        objects = {key: export_s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read() for key in staged}
        results = [json.loads(export_s3.get_object(Bucket=EXPORT_BUCKET, Key=f"{prefix}converted/{index:06d}.json")["Body"].read())
                   for index in range(planned["files"])]  # fmt: skip
        return objects, [result["from"] for result in results]

    from_stage, sources = converted()
    assert sources == ["stage"] * planned["files"]
    assert from_stage
    for index in range(planned["files"]):
        export_s3.delete_object(Bucket=EXPORT_BUCKET, Key=f"{prefix}staged/{index:06d}.arrows")
    for key in from_stage:
        export_s3.delete_object(Bucket=LAKE_BUCKET, Key=key)
    from_json, sources = converted()
    assert sources == ["json"] * planned["files"]
    assert from_json == from_stage


def test_a_stage_over_its_limit_is_not_uploaded_and_the_file_converts_from_its_json(export_s3: Any, monkeypatch: Any) -> None:
    from snaplake.dynamodb import conversion

    monkeypatch.setattr(conversion, "STAGE_LIMIT_BYTES", 1)
    converted = convert_export(export_s3, FULL_ID)
    prefix = converted["planned"]["plan"]["prefix"]
    staged = export_s3.list_objects_v2(Bucket=EXPORT_BUCKET, Prefix=f"{prefix}staged/").get("Contents", [])
    assert {entry["Size"] for entry in staged} == {0}  # only the empty data files' (nothing to stage, nothing over)
    results = [json.loads(export_s3.get_object(Bucket=EXPORT_BUCKET, Key=f"{prefix}converted/{index:06d}.json")["Body"].read())
               for index in range(converted["planned"]["files"])]  # fmt: skip
    assert {result["from"] for result in results if result["rows"]} == {"json"}
    assert converted["landed"]["rows"] == converted["planned"]["expectedItems"]


def lake_keys(s3: Any) -> list[str]:
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=LAKE_BUCKET).get("Contents", []))


def lake_rows(s3: Any) -> list[tuple[str, dict[str, Any]]]:
    """(partition, row) of every Parquet row in the lake."""
    out: list[tuple[str, dict[str, Any]]] = []
    for key in lake_keys(s3):
        if key.endswith(".parquet"):
            body = s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read()
            out.extend((key.rsplit("/", 1)[0], row) for row in pq.read_table(pa.BufferReader(body)).to_pylist())
    return out


def micros(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.mark.parametrize("export_id", [FIRST_WINDOW_ID, SECOND_WINDOW_ID])
def test_each_real_change_row_has_its_lines_write_time_and_lands_in_that_hour(export_s3: Any, export_id: str) -> None:
    lines = real_lines(export_id)
    expected = {(line["Keys"]["pk"]["S"], line["Keys"]["sk"]["S"]): int(line["Metadata"]["WriteTimestampMicros"]["N"]) for line in lines}

    out = convert_export(export_s3, export_id)

    assert out["planned"]["kind"] == "incremental"
    rows = lake_rows(export_s3)
    assert len(rows) == len(lines) == out["landed"]["rows"]
    written = {(row["key__pk"], row["key__sk"]): micros(row[WRITE_TIME_COLUMN]) for _, row in rows}
    assert written == expected
    for partition, row in rows:
        when: datetime = row[WRITE_TIME_COLUMN]
        assert partition == f"lake/dynamodb_changes/test/dt={when:%Y-%m-%d}/hour={when:%H}"
    assert {f"{p}/" for p, _ in rows} == set(out["landed"]["partitionPrefixes"])


def test_real_change_types_follow_which_images_a_line_carries(export_s3: Any) -> None:
    convert_export(export_s3, SECOND_WINDOW_ID)

    change_types = {(row["key__pk"], row["key__sk"]): row[CHANGE_TYPE_COLUMN] for _, row in lake_rows(export_s3)}

    assert change_types == {("2", "3"): "REMOVE", ("1", "1"): "REMOVE", ("1", "3"): "MODIFY", ("4", "2"): "INSERT", ("3", "2"): "MODIFY"}


def test_real_full_export_lands_its_items_and_no_parquet_object_for_an_empty_data_file(export_s3: Any) -> None:
    out = convert_export(export_s3, FULL_ID)

    assert out["planned"]["kind"] == "full" and out["planned"]["files"] == 4  # three of them empty 20-byte gz files
    partition = "lake/dynamodb/test/export_time=20260114T101850Z"
    parquet = [key for key in lake_keys(export_s3) if key.endswith(".parquet")]
    assert len(parquet) == 1 and parquet[0].startswith(f"{partition}/")
    assert f"{partition}/{SUCCESS_MARKER}" in lake_keys(export_s3)
    rows = sorted((row for _, row in lake_rows(export_s3)), key=lambda row: row["sk"])
    assert rows == [
        {"pk": "1", "sk": "1", "test": "test", "test1": None, "test2": None},
        {"pk": "1", "sk": "2", "test": "test2", "test1": None, "test2": None},
        {"pk": "1", "sk": "3", "test": None, "test1": "1", "test2": "2"},
    ]
    assert out["landed"]["partitionPrefixes"] == [f"{partition}/"]


# --------------------------------------------------------------------------- the emulator writes what AWS writes

EMULATED_BUCKET = "emulated-exports"
MILLISECOND_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EPOCH = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)


def real_summary(export_id: str) -> dict[str, Any]:
    assert REAL_EXPORT is not None
    summary: dict[str, Any] = json.loads((REAL_EXPORT / "AWSDynamoDB" / export_id / "manifest-summary.json").read_text())
    return summary


def real_manifest(export_id: str) -> list[dict[str, Any]]:
    assert REAL_EXPORT is not None
    text = (REAL_EXPORT / "AWSDynamoDB" / export_id / "manifest-files.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def emulated(s3: Any) -> Iterator[tuple[Any, DynamoDbExportEmulator, VirtualClock]]:
    """(s3, emulator, clock): table `test` (pk, sk; PITR on) holding the real full export's three items."""
    clock = VirtualClock(EPOCH)
    emulator = DynamoDbExportEmulator(clock, region="eu-west-1")
    emulator.files_per_export = 4  # more files than items: some empty, as in the real export
    with emulator.patched():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        ddb.create_table(
            TableName="test",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.update_continuous_backups(TableName="test", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        s3.create_bucket(Bucket=EMULATED_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for line in real_lines(FULL_ID):
            ddb.put_item(TableName="test", Item=line["Item"])
        yield s3, emulator, clock


def emulated_export(s3: Any, clock: VirtualClock, emulator: DynamoDbExportEmulator, **request: Any) -> tuple[dict[str, Any], list[Any]]:
    """(manifest-summary.json, [(manifest entry, data file bytes)]) of a completed emulated export."""
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    table_arn = ddb.describe_table(TableName="test")["Table"]["TableArn"]
    arn = ddb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket=EMULATED_BUCKET, **request)["ExportDescription"]["ExportArn"]
    clock.advance(emulator.export_seconds)
    described = ddb.describe_export(ExportArn=arn)["ExportDescription"]
    assert described["ExportStatus"] == "COMPLETED"
    summary = json.loads(s3.get_object(Bucket=EMULATED_BUCKET, Key=described["ExportManifest"])["Body"].read())
    manifest = s3.get_object(Bucket=EMULATED_BUCKET, Key=summary["manifestFilesS3Key"])["Body"].read().decode().splitlines()
    files = []
    for entry in map(json.loads, manifest):
        files.append((entry, s3.get_object(Bucket=EMULATED_BUCKET, Key=entry["dataFileS3Key"])["Body"].read()))
    return summary, files


def assert_like_the_real_files(summary: dict[str, Any], real: dict[str, Any], files: list[Any], real_files: list[dict[str, Any]]) -> None:
    assert list(summary) == list(real)  # the same fields, in AWS's order
    assert summary["version"] == real["version"]
    assert {key: summary[key] for key in ("exportType", "outputView") if key in summary} == {
        key: real[key] for key in ("exportType", "outputView") if key in real
    }
    for key in ("startTime", "endTime", "exportTime", "exportFromTime", "exportToTime"):
        if key in real:
            assert MILLISECOND_TIME.match(summary[key]), (key, summary[key])
    assert all(list(entry) == list(real_files[0]) for entry, _ in files)
    for entry, body in files:
        # the ETag of a one-part multipart upload: the MD5 of the part's MD5, then "-1"
        assert entry["etag"] == hashlib.md5(hashlib.md5(body).digest()).hexdigest() + "-1"
        assert entry["md5Checksum"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    real_empty = next(entry for entry in real_manifest(FIRST_WINDOW_ID) if entry["itemCount"] == 0)
    assert any(entry["itemCount"] == 0 for entry, _ in files)
    for entry, body in files:
        if entry["itemCount"] == 0:  # byte for byte the empty data file DynamoDB writes (20 bytes)
            assert (entry["md5Checksum"], entry["etag"], len(body)) == (real_empty["md5Checksum"], real_empty["etag"], 20)


def test_an_emulated_full_export_is_shaped_like_the_real_one(emulated: tuple[Any, DynamoDbExportEmulator, VirtualClock]) -> None:
    s3, emulator, clock = emulated
    clock.advance(20 * 60)

    summary, files = emulated_export(s3, clock, emulator, ExportTime=clock.now() - timedelta(minutes=10))

    assert_like_the_real_files(summary, real_summary(FULL_ID), files, real_manifest(FULL_ID))
    assert "exportType" not in summary
    lines = [json.loads(line) for _, body in files for line in gzip.decompress(body).decode().splitlines()]
    assert sorted(lines, key=json.dumps) == sorted(real_lines(FULL_ID), key=json.dumps)


def test_an_emulated_incremental_export_is_shaped_like_the_real_one(emulated: tuple[Any, DynamoDbExportEmulator, VirtualClock]) -> None:
    s3, emulator, clock = emulated
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    window_start = clock.now() + timedelta(minutes=1)
    clock.advance(2 * 60)
    ddb.put_item(TableName="test", Item={"pk": {"S": "4"}, "sk": {"S": "2"}, "string": {"S": "test"}})  # INSERT
    before = clock.now()
    clock.advance(1)
    ddb.update_item(
        TableName="test",
        Key={"pk": {"S": "1"}, "sk": {"S": "3"}},
        UpdateExpression="SET test1 = :v",
        ExpressionAttributeValues={":v": {"S": "one"}},
    )
    ddb.delete_item(TableName="test", Key={"pk": {"S": "1"}, "sk": {"S": "1"}})  # REMOVE
    clock.advance(30 * 60)

    summary, files = emulated_export(
        s3,
        clock,
        emulator,
        ExportType="INCREMENTAL_EXPORT",
        IncrementalExportSpecification={"ExportFromTime": window_start, "ExportToTime": window_start + timedelta(minutes=15)},
    )

    assert_like_the_real_files(summary, real_summary(SECOND_WINDOW_ID), files, real_manifest(SECOND_WINDOW_ID))
    lines = {
        line["Keys"]["sk"]["S"] + line["Keys"]["pk"]["S"]: line
        for _, body in files
        for line in map(json.loads, gzip.decompress(body).decode().splitlines())
    }
    assert {key: sorted(line) for key, line in lines.items()} == {
        "24": ["Keys", "Metadata", "NewImage"],
        "31": ["Keys", "Metadata", "NewImage", "OldImage"],
        "11": ["Keys", "Metadata", "OldImage"],
    }
    assert int(lines["24"]["Metadata"]["WriteTimestampMicros"]["N"]) == micros(before)
    assert all(list(line["Metadata"]) == ["WriteTimestampMicros"] for line in lines.values())
