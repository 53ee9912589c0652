"""A finished DynamoDB export into the lake: plan, scan, merge schema, convert, finalize.

Data files are chosen only through the export's `manifest-files.json` (an
incremental export's data sits in a folder shared with other exports). Every
data file is read twice, streaming: once to learn its columns and types (so
one export has one schema across all its files) and once to write Parquet.
Rows are reconciled against the manifest per file and in total; a mismatch
fails naming the file. Work is fanned out to workers that each take every
Nth file; plans, schemas and per-file results live in S3, not in the state.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from snaplake.config import lake_write_args
from snaplake.ddb_export import table_name
from snaplake.errors import ConversionIncomplete, CountMismatch, InvalidEvent, ManifestMissing
from snaplake.lake_keys import SUCCESS_MARKER, athena_name, iso_utc, join_key, parse_iso_utc, snapshot_time_value

FULL, INCREMENTAL = "full", "incremental"


@dataclass(frozen=True)
class DynamoDbLakeSettings:
    bucket: str
    prefix: str
    bucket_owner: str | None
    kms_key_arn: str | None
    export_bucket_owner: str | None
    workers: int

    @classmethod
    def from_env(cls, env: Any = os.environ) -> DynamoDbLakeSettings:
        from snaplake.config import LakeSettings

        lake = LakeSettings.from_env(env)
        return cls(lake.bucket, lake.prefix, lake.bucket_owner, lake.kms_key_arn, lake.source_bucket_owner, lake.workers)


class _S3:
    """The S3 calls of this pipeline, with owner checks and encryption on every call."""

    def __init__(self, s3: Any, settings: DynamoDbLakeSettings, export_bucket: str):
        self.s3 = s3
        self.settings = settings
        self.export_bucket = export_bucket

    def _export_owner(self) -> dict[str, str]:
        return {"ExpectedBucketOwner": self.settings.export_bucket_owner} if self.settings.export_bucket_owner else {}

    def _lake_args(self) -> dict[str, Any]:
        return lake_write_args(self.settings.bucket, self.settings.bucket_owner, self.settings.kms_key_arn)

    def read_export(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.export_bucket, Key=key, **self._export_owner())["Body"].read())

    def open_export(self, key: str) -> Any:
        return self.s3.get_object(Bucket=self.export_bucket, Key=key, **self._export_owner())["Body"]

    def write_export(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.export_bucket, Key=key, Body=body, **self._export_owner())

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_export(key))

    def list_export(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.export_bucket, Prefix=prefix, **self._export_owner())
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def upload_lake(self, path: str, key: str) -> None:
        args = self._lake_args()
        bucket = args.pop("Bucket")
        args.pop("BucketKeyEnabled", None)  # not an upload_file argument; the bucket's default applies
        self.s3.upload_file(path, bucket, key, ExtraArgs=args)

    def put_lake(self, key: str, body: bytes) -> None:
        self.s3.put_object(Key=key, Body=body, **self._lake_args())

    def publish(self, staged: str, key: str) -> None:
        """Copy a staged object to its place in the lake (multipart when large), then drop the staged copy."""
        args = self._lake_args()
        bucket = args.pop("Bucket")
        args.pop("BucketKeyEnabled", None)  # source and target are both in the lake bucket, whose owner is checked
        self.s3.copy({"Bucket": bucket, "Key": staged}, bucket, key, ExtraArgs=args)
        owner = {"ExpectedBucketOwner": self.settings.bucket_owner} if self.settings.bucket_owner else {}
        self.s3.delete_object(Bucket=bucket, Key=staged, **owner)


@dataclass(frozen=True)
class Plan:
    bucket: str
    prefix: str

    def file_result(self, stage: str, index: int) -> str:
        return f"{self.prefix}{stage}/{index:06d}.json"

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> Plan:
        raw = request.get("plan")
        if not isinstance(raw, dict) or not isinstance(raw.get("bucket"), str) or not str(raw.get("prefix", "")).endswith("/"):
            raise InvalidEvent("'plan' must be an object with 'bucket' and a 'prefix' folder")
        return cls(raw["bucket"], raw["prefix"])


def plan_conversion(s3: Any, request: dict[str, Any], settings: DynamoDbLakeSettings, plan_root: str) -> dict[str, Any]:
    """Read the manifests of a COMPLETED export and write the conversion plan."""
    bucket, summary_key, export_arn = request.get("bucket"), request.get("manifestSummaryKey"), request.get("exportArn")
    if not all(isinstance(v, str) and v for v in (bucket, summary_key, export_arn)):
        raise InvalidEvent("plan conversion needs 'bucket', 'manifestSummaryKey' and 'exportArn' from PollExport")
    assert isinstance(bucket, str) and isinstance(summary_key, str) and isinstance(export_arn, str)
    io = _S3(s3, settings, bucket)
    try:
        summary = io.read_json(summary_key)
        files_key = summary["manifestFilesS3Key"]
        lines = io.read_export(files_key).decode().splitlines()
    except Exception as error:  # a missing or unreadable manifest: name it, lose nothing
        raise ManifestMissing(f"cannot read the manifests of {export_arn} ({summary_key}): {error}") from None
    files: list[dict[str, Any]] = []
    for number, line in enumerate(filter(None, (raw.strip() for raw in lines))):
        entry = json.loads(line)
        key, count = entry.get("dataFileS3Key"), entry.get("itemCount")
        if not isinstance(key, str) or not isinstance(count, int):
            raise ManifestMissing(f"{files_key} line {number + 1} lacks dataFileS3Key/itemCount")
        files.append({"key": key, "items": count})
    kind = INCREMENTAL if summary.get("exportType") == "INCREMENTAL_EXPORT" else FULL
    export_id = export_arn.rsplit("/", 1)[-1]
    plan = Plan(bucket, join_key(plan_root, table_name(str(request.get("tableArn"))), export_id) + "/")
    exported_to = str(request.get("exportedTo") or summary.get("exportTime") or summary.get("exportToTime"))
    io.write_export(f"{plan.prefix}files.json", json.dumps(files).encode())
    workers = max(1, min(settings.workers, len(files)))
    return {
        "plan": {"bucket": plan.bucket, "prefix": plan.prefix},
        "kind": kind,
        "table": athena_name(table_name(str(request.get("tableArn")))),
        "exportId": export_id,
        "exportedTo": iso_utc(parse_iso_utc(exported_to)),
        "files": len(files),
        "expectedItems": int(summary.get("itemCount", sum(f["items"] for f in files))),
        "workers": [{"worker": w, "workers": workers, "files": len(files)} for w in range(workers)],
    }


def _share(request: dict[str, Any]) -> tuple[Plan, int, int, int, int]:
    plan = Plan.from_request(request)
    share, cursor = request.get("share"), request.get("cursor") or 0
    try:
        if not isinstance(share, dict):
            raise TypeError
        worker, workers, count = int(share["worker"]), int(share["workers"]), int(share["files"])
        start = int(cursor) if cursor else worker
    except (KeyError, TypeError, ValueError):
        raise InvalidEvent("needs 'plan' and 'share' with integer 'worker', 'workers', 'files'") from None
    if not (0 <= worker < workers and start % workers == worker):
        raise InvalidEvent(f"worker {worker} of {workers} (cursor {start}) is out of range")
    return plan, worker, workers, count, start


def _stream(io: _S3, key: str) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=io.open_export(key), mode="rb")


def scan_files(
    s3: Any, request: dict[str, Any], settings: DynamoDbLakeSettings, remaining_ms: Callable[[], int], reserve_ms: int = 120_000
) -> dict[str, Any]:
    """Learn each assigned data file's columns and types; reconcile its row count with the manifest."""
    from snaplake.ddb_parquet import ConvertOptions, scan_file

    plan, _, workers, count, index = _share(request)
    io = _S3(s3, settings, plan.bucket)
    files = io.read_json(f"{plan.prefix}files.json")
    kind = request.get("kind", FULL)
    done_one = False
    while index < count:
        if done_one and remaining_ms() < reserve_ms:
            return {**_carry(request), "cursor": index, "done": False}
        entry = files[index]
        with _stream(io, entry["key"]) as stream:
            schema, rows = scan_file(stream, kind, ConvertOptions())
        if rows != entry["items"]:
            raise CountMismatch(f"{entry['key']}: manifest-files.json says {entry['items']} items, the file holds {rows}")
        io.write_export(plan.file_result("schemas", index), json.dumps({"rows": rows, "schema": schema.to_json()}).encode())
        index += workers
        done_one = True
    return {**_carry(request), "cursor": None, "done": True}


def merge_schemas(s3: Any, request: dict[str, Any], settings: DynamoDbLakeSettings) -> dict[str, Any]:
    """One schema for the whole export, from every file's scan."""
    from snaplake.ddb_parquet import ExportSchema

    plan = Plan.from_request(request)
    io = _S3(s3, settings, plan.bucket)
    count = int(request["files"])
    merged = ExportSchema()
    total = 0
    for index in range(count):
        scanned = io.read_json(plan.file_result("schemas", index))
        merged = merged.merge(ExportSchema.from_json(scanned["schema"]))
        total += int(scanned["rows"])
    if total != int(request["expectedItems"]):
        raise CountMismatch(f"the export's data files hold {total} items, manifest-summary.json says {request['expectedItems']}")
    io.write_export(f"{plan.prefix}schema.json", json.dumps(merged.to_json()).encode())
    return {"schemaKey": f"{plan.prefix}schema.json", "rows": total}


def lake_partition(settings: DynamoDbLakeSettings, kind: str, table: str, exported_to: str, hour: datetime | None = None) -> str:
    if kind == FULL:
        return join_key(settings.prefix, "dynamodb", table, f"export_time={snapshot_time_value(parse_iso_utc(exported_to))}")
    assert hour is not None
    return join_key(settings.prefix, "dynamodb_changes", table, f"dt={hour:%Y-%m-%d}", f"hour={hour:%H}")


def convert_files(
    s3: Any, request: dict[str, Any], settings: DynamoDbLakeSettings, remaining_ms: Callable[[], int], reserve_ms: int = 180_000
) -> dict[str, Any]:
    """Write each assigned data file as Parquet in the lake under a deterministic key, so a
    re-run overwrites instead of duplicating. Incremental rows are split by write hour."""
    import pyarrow.parquet as pq

    from snaplake.ddb_parquet import ConvertOptions, ExportSchema, convert_block, iter_blocks

    plan, _, workers, count, index = _share(request)
    io = _S3(s3, settings, plan.bucket)
    files = io.read_json(f"{plan.prefix}files.json")
    schema = ExportSchema.from_json(io.read_json(f"{plan.prefix}schema.json"))
    kind, table, exported_to, export_id = request["kind"], request["table"], request["exportedTo"], request["exportId"]
    options = ConvertOptions()
    arrow_schema = schema.arrow_schema(kind, options)
    done_one = False
    while index < count:
        if done_one and remaining_ms() < reserve_ms:
            return {**_carry(request), "cursor": index, "done": False}
        entry = files[index]
        with tempfile.TemporaryDirectory() as scratch:
            writers: dict[str, Any] = {}
            rows = 0
            try:
                with _stream(io, entry["key"]) as stream:
                    for block in iter_blocks(stream, options.block_bytes):
                        converted = convert_block(block, schema, kind, options)
                        rows += converted.num_rows
                        for partition, part in _split(converted, kind, settings, table, exported_to):
                            if partition not in writers:
                                path = os.path.join(scratch, f"{len(writers)}.parquet")
                                writers[partition] = (pq.ParquetWriter(path, arrow_schema, compression="zstd"), path)
                            writers[partition][0].write_table(part)
                if not writers and kind == FULL:
                    path = os.path.join(scratch, "empty.parquet")
                    writers[lake_partition(settings, kind, table, exported_to)] = (pq.ParquetWriter(path, arrow_schema), path)
            finally:
                for writer, _ in writers.values():
                    writer.close()
            if rows != entry["items"]:
                raise CountMismatch(f"{entry['key']}: wrote {rows} rows, manifest-files.json says {entry['items']} items")
            keys = []
            for partition, (_, path) in sorted(writers.items()):
                name = f"part-{index:05d}.parquet" if kind == FULL else f"{export_id}-{index:05d}.parquet"
                key = f"{partition}/{name}"
                io.upload_lake(path, staging_key(settings, export_id, key))
                keys.append(key)
        io.write_export(plan.file_result("converted", index), json.dumps({"rows": rows, "keys": keys}).encode())
        index += workers
        done_one = True
    return {**_carry(request), "cursor": None, "done": True}


def staging_key(settings: DynamoDbLakeSettings, export_id: str, key: str) -> str:
    """Where a converted file waits until finalize publishes the whole export."""
    return join_key(settings.prefix, "_snaplake_staging", export_id, key.removeprefix(settings.prefix).lstrip("/"))


def _split(table: Any, kind: str, settings: DynamoDbLakeSettings, name: str, exported_to: str) -> list[tuple[str, Any]]:
    if kind == FULL:
        return [(lake_partition(settings, kind, name, exported_to), table)]
    import pyarrow.compute as pc

    hours = pc.floor_temporal(table["_write_time"], unit="hour")
    out = []
    for hour in pc.unique(hours).to_pylist():
        rows = table.filter(pc.is_null(hours) if hour is None else pc.equal(hours, hour))
        when = hour if hour is not None else parse_iso_utc(exported_to)
        out.append((lake_partition(settings, kind, name, exported_to, when.astimezone(UTC)), rows))
    return out


def _carry(request: dict[str, Any]) -> dict[str, Any]:
    return {key: request[key] for key in ("plan", "share", "kind", "table", "exportedTo", "exportId") if key in request}


def finalize_conversion(s3: Any, request: dict[str, Any], settings: DynamoDbLakeSettings) -> dict[str, Any]:
    """Every file converted and the rows add up to the manifest: then `_SUCCESS` in each partition, last."""
    plan = Plan.from_request(request)
    io = _S3(s3, settings, plan.bucket)
    count, expected = int(request["files"]), int(request["expectedItems"])
    converted = set(io.list_export(f"{plan.prefix}converted/"))
    missing = [i for i in range(count) if plan.file_result("converted", i) not in converted]
    if missing:
        raise ConversionIncomplete(f"{len(missing)} of {count} data files are not converted (first: {missing[0]})")
    results = [io.read_json(plan.file_result("converted", i)) for i in range(count)]
    rows = sum(int(r["rows"]) for r in results)
    if rows != expected:
        raise CountMismatch(f"wrote {rows} rows in all, manifest-summary.json says {expected} items")
    # Nothing of this export is visible in the lake until every file converted and the counts add up.
    for result in results:
        for key in result["keys"]:
            io.publish(staging_key(settings, str(request["exportId"]), key), key)
    partitions = sorted({key.rsplit("/", 1)[0] for r in results for key in r["keys"]})
    if not partitions and request.get("kind") == FULL:
        partitions = [lake_partition(settings, FULL, request["table"], request["exportedTo"])]
    for partition in partitions:
        io.put_lake(f"{partition}/{SUCCESS_MARKER}", b"")
    return {
        "rows": rows,
        "files": count,
        "partitions": len(partitions),
        "partitionPrefixes": [p + "/" for p in partitions],
        "lakeBucket": settings.bucket,
        "finishedAt": iso_utc(datetime.now(UTC)),
    }
