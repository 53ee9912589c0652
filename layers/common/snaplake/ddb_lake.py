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
import logging
import os
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from snaplake.aws import error_code, lake_access
from snaplake.config import lake_write_args
from snaplake.ddb_export import EXPORT_ARN, table_name
from snaplake.errors import ConversionIncomplete, CountMismatch, InvalidEvent, ManifestMissing, PlanMissing
from snaplake.handler_input import athena_identifier, bucket, integer, s3_key, text, timestamp
from snaplake.lake_keys import SUCCESS_MARKER, athena_name, iso_utc, join_key, parse_iso_utc, snapshot_time_value

FULL, INCREMENTAL = "full", "incremental"
_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")  # the last segment of an export ARN

# Server-side copies run in parallel at finalize, so exports of thousands of files publish well inside the
# function's timeout (one copy takes about 50-500 ms, mostly waiting on S3).
PUBLISH_THREADS = 16

log = logging.getLogger(__name__)


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

    def read_plan(self, key: str) -> Any:
        """A file of the conversion plan; PlanMissing when it is not there."""
        try:
            return self.read_json(key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "NoSuchBucket", "404"):
                raise PlanMissing(
                    f"s3://{self.export_bucket}/{key} does not exist: the plan was deleted, or the step that writes it did not run"
                ) from None
            raise

    def list_export(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.export_bucket, Prefix=prefix, **self._export_owner())
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def _lake_access(self, action: str) -> Any:
        return lake_access(self.settings.bucket, self.settings.bucket_owner, self.settings.kms_key_arn, action)

    def _lake_owner(self) -> dict[str, str]:
        return {"ExpectedBucketOwner": self.settings.bucket_owner} if self.settings.bucket_owner else {}

    def upload_lake(self, path: str, key: str) -> None:
        args = self._lake_args()
        bucket = args.pop("Bucket")
        args.pop("BucketKeyEnabled", None)  # not an upload_file argument; the bucket's default applies
        with self._lake_access("write"):
            self.s3.upload_file(path, bucket, key, ExtraArgs=args)

    def put_lake(self, key: str, body: bytes) -> None:
        with self._lake_access("write"):
            self.s3.put_object(Key=key, Body=body, **self._lake_args())

    def publish(self, staged: str, key: str) -> None:
        """Copy a staged object to its place in the lake (multipart when large); the staged copy stays (see drop_staged).

        Repeatable: when a retry finds the staged copy gone, the object must already be in its place.
        """
        args = self._lake_args()
        bucket = args.pop("Bucket")
        args.pop("BucketKeyEnabled", None)  # source and target are both in the lake bucket, whose owner is checked
        with self._lake_access("write"):
            try:
                self.s3.copy({"Bucket": bucket, "Key": staged}, bucket, key, ExtraArgs=args)
            except ClientError as error:
                if error.response["Error"]["Code"] not in ("404", "NoSuchKey") or not self._lake_has(key):
                    raise
                # published by an earlier attempt, which also dropped the staged copy

    def _lake_has(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.settings.bucket, Key=key, **self._lake_owner())
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey"):
                return False
            raise
        return True

    def drop_staged(self, keys: list[str]) -> None:
        """Delete staged copies once everything is published; best effort (deleting a missing key is not an error).

        By now the export is in the lake with its `_SUCCESS` markers: failing the run here would make the next
        run export the window again and count its changes twice. Leftovers expire with the lake bucket's
        lifecycle rule for `_snaplake_staging/`.
        """
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                answer = self.s3.delete_objects(Bucket=self.settings.bucket, Delete={"Objects": chunk, "Quiet": True}, **self._lake_owner())
            except ClientError as error:
                answer = {"Errors": [{"Key": chunk[0]["Key"], "Code": error_code(error), "Message": str(error)}]}
            for failed in answer.get("Errors", [])[:5]:
                log.warning(
                    "staged copy not deleted (its lifecycle rule will): %s: %s %s",
                    failed.get("Key"),
                    failed.get("Code"),
                    failed.get("Message"),
                )


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
        return cls(bucket(raw["bucket"], "plan.bucket"), s3_key(raw["prefix"], "plan.prefix", folder=True))


def _plan_files(io: _S3, plan: Plan, count: int) -> list[dict[str, Any]]:
    """The plan's data files; `count` (from the request) must be how many there are."""
    files = io.read_plan(f"{plan.prefix}files.json")
    if not isinstance(files, list) or len(files) != count:
        raise InvalidEvent(f"the request counts {count} data files, the plan {len(files) if isinstance(files, list) else '?'}")
    return files


def _conversion(request: dict[str, Any]) -> tuple[Literal["full", "incremental"], str, str, str]:
    """(kind, table, exportedTo, exportId) as PlanConversion returned them: they name lake keys, so each is checked."""
    for name in ("kind", "table", "exportedTo", "exportId"):
        if request.get(name) is None:
            raise InvalidEvent(f"needs {name!r} from PlanConversion")
    if request["kind"] not in (FULL, INCREMENTAL):
        raise InvalidEvent(f"'kind' must be {FULL!r} or {INCREMENTAL!r}, got {str(request['kind'])[:50]!r}")
    kind: Literal["full", "incremental"] = "full" if request["kind"] == FULL else "incremental"
    timestamp(request["exportedTo"], "exportedTo")
    return kind, athena_identifier(request["table"], "table"), request["exportedTo"], text(request["exportId"], "exportId", _EXPORT_ID)


def plan_conversion(s3: Any, request: dict[str, Any], settings: DynamoDbLakeSettings, plan_root: str) -> dict[str, Any]:
    """Read the manifests of a COMPLETED export and write the conversion plan."""
    export_bucket, summary_key, export_arn = request.get("bucket"), request.get("manifestSummaryKey"), request.get("exportArn")
    if not all(isinstance(v, str) and v for v in (export_bucket, summary_key, export_arn)):
        raise InvalidEvent("plan conversion needs 'bucket', 'manifestSummaryKey' and 'exportArn' from PollExport")
    export_bucket = bucket(export_bucket, "bucket")
    summary_key = s3_key(summary_key, "manifestSummaryKey")
    export_arn = text(export_arn, "exportArn", EXPORT_ARN)
    table_arn = request.get("tableArn")
    name = table_name(table_arn)
    if not export_arn.startswith(f"{table_arn}/export/"):
        raise InvalidEvent(f"export {export_arn} is not an export of {table_arn}")
    if request.get("exportedTo") is not None:
        timestamp(request["exportedTo"], "exportedTo")
    io = _S3(s3, settings, export_bucket)
    try:
        summary = io.read_json(summary_key)
        files_key = summary["manifestFilesS3Key"]
        lines = io.read_export(files_key).decode().splitlines()
    except Exception as error:  # a missing or unreadable manifest: name it, lose nothing
        raise ManifestMissing(
            f"cannot read the manifests of {export_arn} ({summary_key}): {error}; if its files expired from the export bucket, "
            "start a full export ({'mode': 'full'})"
        ) from None
    files: list[dict[str, Any]] = []
    for number, line in enumerate(filter(None, (raw.strip() for raw in lines))):
        try:
            entry = json.loads(line)
        except ValueError:
            raise ManifestMissing(f"{files_key} line {number + 1} is not JSON") from None
        key, count = (entry.get("dataFileS3Key"), entry.get("itemCount")) if isinstance(entry, dict) else (None, None)
        if not isinstance(key, str) or not isinstance(count, int):
            raise ManifestMissing(f"{files_key} line {number + 1} lacks dataFileS3Key/itemCount")
        files.append({"key": key, "items": count})
    kind = INCREMENTAL if summary.get("exportType") == "INCREMENTAL_EXPORT" else FULL
    export_id = export_arn.rsplit("/", 1)[-1]
    plan = Plan(export_bucket, join_key(plan_root, name, export_id) + "/")
    exported_to = str(request.get("exportedTo") or summary.get("exportTime") or summary.get("exportToTime"))
    try:
        parse_iso_utc(exported_to)
    except ValueError:
        raise ManifestMissing(f"{summary_key} has no export time and the request no 'exportedTo'") from None
    io.write_export(f"{plan.prefix}files.json", json.dumps(files).encode())
    workers = max(1, min(settings.workers, len(files)))
    return {
        "plan": {"bucket": plan.bucket, "prefix": plan.prefix},
        "kind": kind,
        "table": athena_name(name),
        "exportId": export_id,
        "exportedTo": iso_utc(parse_iso_utc(exported_to)),
        "files": len(files),
        "expectedItems": int(summary.get("itemCount", sum(f["items"] for f in files))),
        "workers": [{"worker": w, "workers": workers, "files": len(files)} for w in range(workers)],
    }


def _share(request: dict[str, Any]) -> tuple[Plan, int, int, int, int]:
    plan = Plan.from_request(request)
    share, cursor = request.get("share"), request.get("cursor")
    if not isinstance(share, dict):
        raise InvalidEvent("needs 'plan' and 'share' with integer 'worker', 'workers', 'files'")
    worker, workers = integer(share.get("worker"), "share.worker"), integer(share.get("workers"), "share.workers", 1)
    count = integer(share.get("files"), "share.files")
    start = worker if cursor is None else integer(cursor, "cursor")
    if not (worker < workers and start % workers == worker) or (cursor is not None and start >= count):
        raise InvalidEvent(f"worker {worker} of {workers} (cursor {start}, {count} files) is out of range")
    return plan, worker, workers, count, start


def _stream(io: _S3, key: str) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=io.open_export(key), mode="rb")


def scan_files(
    s3: Any, request: dict[str, Any], settings: DynamoDbLakeSettings, remaining_ms: Callable[[], int], reserve_ms: int = 120_000
) -> dict[str, Any]:
    """Learn each assigned data file's columns and types; reconcile its row count with the manifest."""
    from snaplake.ddb_parquet import ConvertOptions, scan_file

    plan, _, workers, count, index = _share(request)
    kind = request.get("kind", FULL)
    if kind not in (FULL, INCREMENTAL):
        raise InvalidEvent(f"'kind' must be {FULL!r} or {INCREMENTAL!r}, got {str(kind)[:50]!r}")
    io = _S3(s3, settings, plan.bucket)
    files = _plan_files(io, plan, count)
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
    count, expected = _totals(request)
    io = _S3(s3, settings, plan.bucket)
    _plan_files(io, plan, count)
    merged = ExportSchema()
    total = 0
    for index in range(count):
        scanned = io.read_plan(plan.file_result("schemas", index))
        merged = merged.merge(ExportSchema.from_json(scanned["schema"]))
        total += int(scanned["rows"])
    if total != expected:
        raise CountMismatch(f"the export's data files hold {total} items, manifest-summary.json says {expected}")
    io.write_export(f"{plan.prefix}schema.json", json.dumps(merged.to_json()).encode())
    return {"schemaKey": f"{plan.prefix}schema.json", "rows": total}


def _totals(request: dict[str, Any]) -> tuple[int, int]:
    """The plan's ("files", "expectedItems") as PlanConversion returned them."""
    for name in ("files", "expectedItems"):
        if name not in request:
            raise InvalidEvent(f"needs {name!r} from PlanConversion")
    return integer(request["files"], "files"), integer(request["expectedItems"], "expectedItems")


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
    kind, table, exported_to, export_id = _conversion(request)
    io = _S3(s3, settings, plan.bucket)
    files = _plan_files(io, plan, count)
    schema = ExportSchema.from_json(io.read_plan(f"{plan.prefix}schema.json"))
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
    count, expected = _totals(request)
    kind, table, exported_to, export_id = _conversion(request)
    io = _S3(s3, settings, plan.bucket)
    _plan_files(io, plan, count)
    converted = set(io.list_export(f"{plan.prefix}converted/"))
    missing = [i for i in range(count) if plan.file_result("converted", i) not in converted]
    if missing:
        raise ConversionIncomplete(f"{len(missing)} of {count} data files are not converted (first: {missing[0]})")
    with ThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="snaplake-publish") as pool:
        results = list(pool.map(lambda i: io.read_plan(plan.file_result("converted", i)), range(count)))
        rows = sum(int(r["rows"]) for r in results)
        if rows != expected:
            raise CountMismatch(f"wrote {rows} rows in all, manifest-summary.json says {expected} items")
        # Nothing of this export is visible in the lake until every file converted and the counts add up.
        # Publishing copies every file, then marks the partitions, and only then drops the staged copies,
        # so a retry after a failure anywhere in between finds everything it needs.
        keys = [key for result in results for key in result["keys"]]
        list(pool.map(lambda key: io.publish(staging_key(settings, export_id, key), key), keys))
    partitions = sorted({key.rsplit("/", 1)[0] for key in keys})
    if not partitions and kind == FULL:
        partitions = [lake_partition(settings, FULL, table, exported_to)]
    for partition in partitions:
        io.put_lake(f"{partition}/{SUCCESS_MARKER}", b"")
    io.drop_staged([staging_key(settings, export_id, key) for key in keys])
    return {
        "rows": rows,
        "files": count,
        "partitions": len(partitions),
        "partitionPrefixes": [p + "/" for p in partitions],
        "lakeBucket": settings.bucket,
        "finishedAt": iso_utc(datetime.now(UTC)),
    }
