"""ConvertToParquet: a finished DynamoDB export planned, scanned, given one schema and converted (PlanConversion,
ScanFiles, MergeSchema, ConvertFiles); FinalizeConversion (snaplake.dynamodb.publish) then publishes it.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import athena_identifier, bucket, integer, s3_key, text, timestamp
from snaplake.core.names import athena_name, join_key
from snaplake.core.s3 import Bucket
from snaplake.core.times import iso_utc, parse_iso_utc, snapshot_time_value
from snaplake.dynamodb.errors import CountMismatch, ManifestMissing
from snaplake.dynamodb.export import EXPORT_ARN, table_name
from snaplake.dynamodb.settings import ConversionSettings

FULL, INCREMENTAL = "full", "incremental"
LAKE_FOLDERS = {FULL: "dynamodb", INCREMENTAL: "dynamodb_changes"}  # the lake folder of each kind's tables
PARTITION_KEYS = {FULL: ("export_time",), INCREMENTAL: ("dt", "hour")}  # the Hive partition keys of each kind's tables
_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")  # the last segment of an export ARN

FILES_PER_SHARE = 8  # data files per Map child: a few minutes of work, well inside a 900 s invocation
log = logging.getLogger(__name__)


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


def plan_files(export: Bucket, plan: Plan, count: int) -> list[dict[str, Any]]:
    """The plan's data files; `count` (from the request) must be how many there are."""
    files = export.read_plan(f"{plan.prefix}files.json")
    if not isinstance(files, list) or len(files) != count:
        raise InvalidEvent(f"the request counts {count} data files, the plan {len(files) if isinstance(files, list) else '?'}")
    return files


def conversion_of(request: dict[str, Any]) -> tuple[Literal["full", "incremental"], str, str, str]:
    """(kind, table, exportedTo, exportId) as PlanConversion returned them: they name lake keys, so each is checked."""
    for name in ("kind", "table", "exportedTo", "exportId"):
        if request.get(name) is None:
            raise InvalidEvent(f"needs {name!r} from PlanConversion")
    if request["kind"] not in (FULL, INCREMENTAL):
        raise InvalidEvent(f"'kind' must be {FULL!r} or {INCREMENTAL!r}, got {str(request['kind'])[:50]!r}")
    kind: Literal["full", "incremental"] = "full" if request["kind"] == FULL else "incremental"
    timestamp(request["exportedTo"], "exportedTo")
    return kind, athena_identifier(request["table"], "table"), request["exportedTo"], text(request["exportId"], "exportId", _EXPORT_ID)


def plan_conversion(s3: Any, request: dict[str, Any], settings: ConversionSettings) -> dict[str, Any]:
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
    export = settings.export(s3, export_bucket)
    try:
        summary = export.read_json(summary_key)
        files_key = summary["manifestFilesS3Key"]
        lines = export.read_bytes(files_key).decode().splitlines()
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
    plan = Plan(export_bucket, join_key(settings.plan_prefix, name, export_id) + "/")
    exported_to = str(request.get("exportedTo") or summary.get("exportTime") or summary.get("exportToTime"))
    try:
        parse_iso_utc(exported_to)
    except ValueError:
        raise ManifestMissing(f"{summary_key} has no export time and the request no 'exportedTo'") from None
    export.write_bytes(f"{plan.prefix}files.json", json.dumps(files).encode())
    export.write_bytes(f"{plan.prefix}lake-table.json", json.dumps({"kind": kind, "table": athena_name(name)}).encode())
    # One Map child per share; a share holds at most FILES_PER_SHARE files (worker i of n takes every nth file).
    workers = max(1, min(settings.workers, len(files)), -(-len(files) // FILES_PER_SHARE))
    carried = {"plan": {"bucket": plan.bucket, "prefix": plan.prefix}, "kind": kind, "table": athena_name(name),
               "exportedTo": iso_utc(parse_iso_utc(exported_to)), "exportId": export_id}  # fmt: skip
    shares = [{"worker": w, "workers": workers, "files": len(files)} for w in range(workers)]
    export.write_bytes(f"{plan.prefix}items.json", json.dumps([{**carried, "share": share} for share in shares]).encode())
    return {
        "plan": {"bucket": plan.bucket, "prefix": plan.prefix},
        "kind": kind,
        "table": athena_name(name),
        "exportId": export_id,
        "exportedTo": iso_utc(parse_iso_utc(exported_to)),
        "files": len(files),
        "expectedItems": int(summary.get("itemCount", sum(f["items"] for f in files))),
        "shares": workers,
        "items": {"bucket": plan.bucket, "key": f"{plan.prefix}items.json"},
        "workers": shares,  # for running the stages by hand; the state machine reads `items`
    }


def share_of(request: dict[str, Any]) -> tuple[Plan, int, int, int, int]:
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


def _stream(export: Bucket, key: str) -> gzip.GzipFile:
    return gzip.GzipFile(fileobj=export.open_stream(key), mode="rb")


def scan_files(
    s3: Any, request: dict[str, Any], settings: ConversionSettings, remaining_ms: Callable[[], int], reserve_ms: int = 120_000
) -> dict[str, Any]:
    """Learn each assigned data file's columns and types; reconcile its row count with the manifest."""
    from snaplake.dynamodb.parquet import ConvertOptions, scan_file

    plan, _, workers, count, index = share_of(request)
    kind = request.get("kind", FULL)
    if kind not in (FULL, INCREMENTAL):
        raise InvalidEvent(f"'kind' must be {FULL!r} or {INCREMENTAL!r}, got {str(kind)[:50]!r}")
    export = settings.export(s3, plan.bucket)
    files = plan_files(export, plan, count)
    done_one = False
    while index < count:
        if done_one and remaining_ms() < reserve_ms:
            return {**_carry(request), "cursor": index, "done": False}
        entry = files[index]
        with _stream(export, entry["key"]) as stream:
            schema, rows = scan_file(stream, kind, ConvertOptions())
        if rows != entry["items"]:
            raise CountMismatch(f"{entry['key']}: manifest-files.json says {entry['items']} items, the file holds {rows}")
        export.write_bytes(plan.file_result("schemas", index), json.dumps({"rows": rows, "schema": schema.to_json()}).encode())
        index += workers
        done_one = True
    return {**_carry(request), "cursor": None, "done": True}


def merge_schemas(s3: Any, request: dict[str, Any], settings: ConversionSettings) -> dict[str, Any]:
    """One schema for the whole export, from every file's scan, with its column names fixed (`name_columns`).

    Each attribute path gets the column its lake table's column registry (`<LakePrefix>/_snaplake/columns/dynamodb/
    <lake folder>/<table>.json`) has on record, so every export of the table names it alike; a path new to the
    table gets a name no path had, never a partition key or system column (`reserved_names`). The names travel in
    `schema.json`, so the parallel converters agree.
    """
    from snaplake.core.claims import ColumnRegistry
    from snaplake.dynamodb.parquet import ConvertOptions, ExportSchema

    plan = Plan.from_request(request)
    count, expected = totals(request)
    export = settings.export(s3, plan.bucket)
    plan_files(export, plan, count)
    merged = ExportSchema()
    total = 0
    for index in range(count):
        scanned = export.read_plan(plan.file_result("schemas", index))
        merged = merged.merge(ExportSchema.from_json(scanned["schema"]))
        total += int(scanned["rows"])
    if total != expected:
        raise CountMismatch(f"the export's data files hold {total} items, manifest-summary.json says {expected}")
    target = export.read_plan(f"{plan.prefix}lake-table.json")
    kind, table = target["kind"], athena_identifier(target["table"], "table")
    options = ConvertOptions()
    paths = merged.attribute_paths(kind, options)
    if paths:
        registry = ColumnRegistry(settings.lake(s3), "dynamodb", LAKE_FOLDERS[kind], table, lake_prefix=settings.prefix)
        merged.name_columns(registry.names(paths, options.separator, reserved_names(kind)))
    export.write_bytes(f"{plan.prefix}schema.json", json.dumps(merged.to_json()).encode())
    return {"schemaKey": f"{plan.prefix}schema.json", "rows": total}


def totals(request: dict[str, Any]) -> tuple[int, int]:
    """The plan's ("files", "expectedItems") as PlanConversion returned them."""
    for name in ("files", "expectedItems"):
        if name not in request:
            raise InvalidEvent(f"needs {name!r} from PlanConversion")
    return integer(request["files"], "files"), integer(request["expectedItems"], "expectedItems")


def reserved_names(kind: str) -> frozenset[str]:
    """Names no attribute column of a `kind` export may take: its lake table's partition keys and system columns."""
    from snaplake.dynamodb.parquet import CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN

    system = (CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN) if kind == INCREMENTAL else ()
    return frozenset((*PARTITION_KEYS[kind], *system))


def lake_partition(settings: ConversionSettings, kind: str, table: str, exported_to: str, hour: datetime | None = None) -> str:
    if kind == FULL:
        (key,) = PARTITION_KEYS[FULL]
        return join_key(settings.prefix, LAKE_FOLDERS[FULL], table, f"{key}={snapshot_time_value(parse_iso_utc(exported_to))}")
    assert hour is not None
    day, hour_key = PARTITION_KEYS[INCREMENTAL]
    return join_key(settings.prefix, LAKE_FOLDERS[INCREMENTAL], table, f"{day}={hour:%Y-%m-%d}", f"{hour_key}={hour:%H}")


def convert_files(
    s3: Any, request: dict[str, Any], settings: ConversionSettings, remaining_ms: Callable[[], int], reserve_ms: int = 180_000
) -> dict[str, Any]:
    """Write each assigned data file as Parquet in the lake under a deterministic key, so a
    re-run overwrites instead of duplicating. Incremental rows are split by write hour.

    A data file without rows (DynamoDB writes one per empty table partition) lands nothing:
    its result lists no keys, so an export without rows publishes no data file."""
    import pyarrow.parquet as pq

    from snaplake.dynamodb.parquet import ConvertOptions, ExportSchema, convert_block, iter_blocks

    plan, _, workers, count, index = share_of(request)
    kind, table, exported_to, export_id = conversion_of(request)
    export, lake = settings.export(s3, plan.bucket), settings.lake(s3)
    files = plan_files(export, plan, count)
    schema = ExportSchema.from_json(export.read_plan(f"{plan.prefix}schema.json"))
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
                with _stream(export, entry["key"]) as stream:
                    for block in iter_blocks(stream, options.block_bytes):
                        converted = convert_block(block, schema, kind, options)
                        rows += converted.num_rows
                        for partition, part in _split(converted, kind, settings, table, exported_to):
                            if not part.num_rows:
                                continue
                            if partition not in writers:
                                path = os.path.join(scratch, f"{len(writers)}.parquet")
                                writers[partition] = (pq.ParquetWriter(path, arrow_schema, compression="zstd"), path)
                            writers[partition][0].write_table(part)
            finally:
                for writer, _ in writers.values():
                    writer.close()
            if rows != entry["items"]:
                raise CountMismatch(f"{entry['key']}: wrote {rows} rows, manifest-files.json says {entry['items']} items")
            keys = []
            for partition, (_, path) in sorted(writers.items()):
                name = f"part-{index:05d}.parquet" if kind == FULL else f"{export_id}-{index:05d}.parquet"
                key = f"{partition}/{name}"
                lake.write_file(path, staging_key(settings, export_id, key))
                keys.append(key)
        export.write_bytes(plan.file_result("converted", index), json.dumps({"rows": rows, "keys": keys}).encode())
        index += workers
        done_one = True
    return {**_carry(request), "cursor": None, "done": True}


def staging_key(settings: ConversionSettings, export_id: str, key: str) -> str:
    """Where a converted file waits until finalize publishes the whole export."""
    return join_key(settings.prefix, "_snaplake_staging", export_id, key.removeprefix(settings.prefix).lstrip("/"))


def _split(table: Any, kind: str, settings: ConversionSettings, name: str, exported_to: str) -> list[tuple[str, Any]]:
    if kind == FULL:
        return [(lake_partition(settings, kind, name, exported_to), table)]
    import pyarrow.compute as pc

    from snaplake.dynamodb.parquet import WRITE_TIME_COLUMN

    hours = pc.floor_temporal(table[WRITE_TIME_COLUMN], unit="hour")
    out = []
    for hour in pc.unique(hours).to_pylist():
        rows = table.filter(pc.is_null(hours) if hour is None else pc.equal(hours, hour))
        when = hour if hour is not None else parse_iso_utc(exported_to)
        out.append((lake_partition(settings, kind, name, exported_to, when.astimezone(UTC)), rows))
    return out


def _carry(request: dict[str, Any]) -> dict[str, Any]:
    return {key: request[key] for key in ("plan", "share", "kind", "table", "exportedTo", "exportId") if key in request}
