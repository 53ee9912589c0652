"""ConvertToParquet: a finished DynamoDB export planned, scanned, given one schema and converted (PlanConversion,
ScanFiles, MergeSchema, ConvertFiles); FinalizeConversion (snaplake.dynamodb.publish) then publishes it.

Data files are chosen only through the export's `manifest-files.json` (an
incremental export's data sits in a folder shared with other exports). Every
data file is parsed once, streaming: ScanFiles learns its columns and types (so
one export has one schema across all its files) and stages its own conversion
of the file (`staged/<n>.arrows` in the plan folder); ConvertFiles carries that
over to the merged schema and writes Parquet, reading the data file again only
where the stage is missing or does not carry over exactly.
Rows are reconciled against the manifest per file and in total; a mismatch
fails naming the file. Work is fanned out to shares (Map children) that each
take every Nth file; plans, schemas and per-file results live in S3, not in
the state.

No step reads or writes something per data file of the whole export in one
invocation: PlanConversion streams manifest-files.json once and writes one file
list per share (`shares/<n>.json`); each share's child reads only its own list;
each ScanFiles invocation merges the schemas of the files it scanned into one
object, so MergeSchema reads one object per share (one per invocation of a
share that needed more than one); and there are at most MAX_SHARES shares
(beyond MAX_SHARES x FILES_PER_SHARE files, shares grow instead, and a child
loops on its time-budget cursor).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import athena_identifier, bucket, integer, s3_key, text, timestamp
from snaplake.core.names import athena_name, join_key
from snaplake.core.pii import CHANGE_IMAGES, DYNAMODB, PiiProtector
from snaplake.core.s3 import Bucket
from snaplake.core.times import iso_utc, parse_iso_utc, snapshot_time_value
from snaplake.dynamodb.data_files import open_data_file, tables_from_json, tables_from_stage, write_partitions
from snaplake.dynamodb.errors import CountMismatch, ManifestMissing
from snaplake.dynamodb.export import EXPORT_ARN, table_name
from snaplake.dynamodb.settings import ConversionSettings

FULL, INCREMENTAL = "full", "incremental"
LAKE_FOLDERS = {FULL: "dynamodb", INCREMENTAL: "dynamodb_changes"}  # the lake folder of each kind's tables
PARTITION_KEYS = {FULL: ("export_time",), INCREMENTAL: ("dt", "hour")}  # the Hive partition keys of each kind's tables
_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")  # the last segment of an export ARN

# Data files per Map child while there are at most MAX_SHARES x FILES_PER_SHARE files: a few minutes of work.
FILES_PER_SHARE = 8
# Map children per stage at most (5x the default ConvertMaxConcurrency, and Lambda's default account concurrency):
# what MergeSchema and FinalizeConversion read (one object per share), items.json, the plan's response and each Map's
# result array stay bounded whatever the export's size; a bigger export gives each share more files instead.
MAX_SHARES = 1_000
PLAN_THREADS = 16  # S3 requests in flight when a step reads or writes one object per share
SCANNED, PUBLISHED = "schemas", "published"  # the plan folders of ScanFiles' and PublishFiles' records (share_chain)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    bucket: str
    prefix: str

    def file_result(self, stage: str, index: int) -> str:
        return f"{self.prefix}{stage}/{index:06d}.json"

    def share_result(self, stage: str, worker: int, start: int) -> str:
        """What one invocation of a share's child did, starting at the share's file `start` (`schemas/`: ScanFiles'
        merged schema and rows; `published/`: PublishFiles' totals), with where the next invocation started (`next`),
        so MergeSchema and FinalizeConversion follow each share from its first file (`share_chain`)."""
        return f"{self.prefix}{stage}/share-{worker:06d}-from-{start:06d}.json"

    def staged(self, index: int) -> str:
        """ScanFiles' own conversion of data file `index` (snaplake.dynamodb.parquet.staging), for ConvertFiles."""
        return f"{self.prefix}staged/{index:06d}.arrows"

    def share_files_key(self, worker: int) -> str:
        """The share's data files, as PlanConversion listed them."""
        return f"{self.prefix}shares/{worker:06d}.json"

    @property
    def summary_key(self) -> str:
        """What every later step checks its input against: the lake table, the file and share counts."""
        return f"{self.prefix}plan.json"

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> Plan:
        raw = request.get("plan")
        if not isinstance(raw, dict) or not isinstance(raw.get("bucket"), str) or not str(raw.get("prefix", "")).endswith("/"):
            raise InvalidEvent("'plan' must be an object with 'bucket' and a 'prefix' folder")
        return cls(bucket(raw["bucket"], "plan.bucket"), s3_key(raw["prefix"], "plan.prefix", folder=True))


def plan_files(export: Bucket, plan: Plan, worker: int, workers: int, count: int) -> dict[int, tuple[str, int]]:
    """The share's data files (index -> (key, itemCount)), from its own list: never the whole export's. The share
    (worker, workers, files) from the request must be the plan's."""
    listed = export.read_plan(plan.share_files_key(worker))
    if not isinstance(listed, dict) or [listed.get(name) for name in ("worker", "workers", "files")] != [worker, workers, count]:
        shown = [listed.get(name) for name in ("worker", "workers", "files")] if isinstance(listed, dict) else "?"
        raise InvalidEvent(f"share (worker, workers, files) = {[worker, workers, count]} is not the plan's {shown}")
    entries = listed.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(e, list) and len(e) == 3 and isinstance(e[1], str) and isinstance(e[2], int) for e in entries
    ):
        entries = None
    if entries is None or [entry[0] for entry in entries] != list(range(worker, count, workers)):
        raise InvalidEvent(f"{plan.share_files_key(worker)} does not list the share's files")
    return {index: (key, items) for index, key, items in entries}


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
        body = export.open_stream(files_key)
    except Exception as error:  # a missing or unreadable manifest: name it, lose nothing
        raise ManifestMissing(
            f"cannot read the manifests of {export_arn} ({summary_key}): {error}; if its files expired from the export bucket, "
            "start a full export ({'mode': 'full'})"
        ) from None
    files = _manifest_files(body.iter_lines(chunk_size=1024 * 1024), files_key)
    kind = INCREMENTAL if summary.get("exportType") == "INCREMENTAL_EXPORT" else FULL
    export_id = export_arn.rsplit("/", 1)[-1]
    plan = Plan(export_bucket, join_key(settings.plan_prefix, name, export_id) + "/")
    exported_to = str(request.get("exportedTo") or summary.get("exportTime") or summary.get("exportToTime"))
    try:
        parse_iso_utc(exported_to)
    except ValueError:
        raise ManifestMissing(f"{summary_key} has no export time and the request no 'exportedTo'") from None
    # One Map child per share: worker i of n takes every nth file. A share holds at most FILES_PER_SHARE files until
    # there would be more than MAX_SHARES shares; beyond that, shares hold more files (each child loops on its cursor).
    count = len(files)
    workers = min(MAX_SHARES, max(1, min(settings.workers, count), -(-count // FILES_PER_SHARE)))
    expected = int(summary.get("itemCount", sum(items for _, items in files)))

    def write_share(worker: int) -> None:
        entries = [[index, *files[index]] for index in range(worker, count, workers)]
        listed = {"worker": worker, "workers": workers, "files": count, "entries": entries}
        export.write_bytes(plan.share_files_key(worker), json.dumps(listed, separators=(",", ":")).encode())

    with ThreadPoolExecutor(max_workers=PLAN_THREADS, thread_name_prefix="snaplake-plan") as pool:
        list(pool.map(write_share, range(workers)))
    target = {"kind": kind, "table": athena_name(name), "files": count, "shares": workers, "expectedItems": expected, "source": name}
    export.write_bytes(plan.summary_key, json.dumps(target).encode())
    carried = {"plan": {"bucket": plan.bucket, "prefix": plan.prefix}, "kind": kind, "table": athena_name(name),
               "exportedTo": iso_utc(parse_iso_utc(exported_to)), "exportId": export_id}  # fmt: skip
    shares = [{"worker": w, "workers": workers, "files": count} for w in range(workers)]
    export.write_bytes(f"{plan.prefix}items.json", json.dumps([{**carried, "share": share} for share in shares]).encode())
    return {
        "plan": {"bucket": plan.bucket, "prefix": plan.prefix},
        "kind": kind,
        "table": athena_name(name),
        "exportId": export_id,
        "exportedTo": iso_utc(parse_iso_utc(exported_to)),
        "files": count,
        "expectedItems": expected,
        "shares": workers,
        "items": {"bucket": plan.bucket, "key": f"{plan.prefix}items.json"},
        # For running the stages by hand; the state machine reads `items`. At most MAX_SHARES entries (~50 KB).
        "workers": shares,
    }


def _manifest_files(lines: Iterable[bytes], files_key: str) -> list[tuple[str, int]]:
    """(dataFileS3Key, itemCount) of each line of manifest-files.json, read as a stream (one line at a time)."""
    files: list[tuple[str, int]] = []
    number = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        number += 1
        try:
            entry = json.loads(line)
        except ValueError:
            raise ManifestMissing(f"{files_key} line {number} is not JSON") from None
        key, count = (entry.get("dataFileS3Key"), entry.get("itemCount")) if isinstance(entry, dict) else (None, None)
        if not isinstance(key, str) or isinstance(count, bool) or not isinstance(count, int):
            raise ManifestMissing(f"{files_key} line {number} lacks dataFileS3Key/itemCount")
        files.append((key, count))
    return files


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


def scan_files(
    s3: Any, request: dict[str, Any], settings: ConversionSettings, remaining_ms: Callable[[], int], reserve_ms: int = 120_000
) -> dict[str, Any]:
    """Learn each assigned data file's columns and types; reconcile its row count with the manifest.

    The invocation writes one object for all the files it scanned (`Plan.scanned`: their merged schema and rows,
    and where the next invocation starts), so MergeSchema reads one object per invocation, not one per file. A
    retry starts from the same cursor and overwrites it; MergeSchema follows each share's chain from its first file.
    """
    from snaplake.dynamodb.parquet import CappedStage, ConvertOptions, ExportSchema, scan_file

    plan, worker, workers, count, index = share_of(request)
    kind = request.get("kind", FULL)
    if kind not in (FULL, INCREMENTAL):
        raise InvalidEvent(f"'kind' must be {FULL!r} or {INCREMENTAL!r}, got {str(kind)[:50]!r}")
    export = settings.export(s3, plan.bucket)
    files = plan_files(export, plan, worker, workers, count)
    start, merged, scanned, rows_seen = index, ExportSchema(), 0, 0
    while index < count:
        if scanned and remaining_ms() < reserve_ms:
            break
        key, items = files[index]
        with open_data_file(export, key) as stream, tempfile.TemporaryFile() as staged:
            stage = CappedStage(staged, STAGE_LIMIT_BYTES)
            schema, rows = scan_file(stream, kind, ConvertOptions(), stage)
            if rows != items:
                raise CountMismatch(f"{key}: manifest-files.json says {items} items, the file holds {rows}")
            if not stage.overflowed:
                staged.seek(0)
                export.write_bytes(plan.staged(index), staged)
        merged, scanned, rows_seen = merged.merge(schema), scanned + 1, rows_seen + rows
        index += workers
    done = index >= count
    found = {"files": scanned, "rows": rows_seen, "next": None if done else index, "schema": merged.to_json()}
    export.write_bytes(plan.share_result(SCANNED, worker, start), json.dumps(found).encode())
    return {**carry(request), "cursor": None if done else index, "done": done}


# ScanFiles keeps what it converted of a data file in /tmp (512 MB by default) until it uploads it; a file whose staged
# conversion outgrows this is converted from its JSON by ConvertFiles instead.
STAGE_LIMIT_BYTES = 256 * 1024**2


def merge_schemas(s3: Any, request: dict[str, Any], settings: ConversionSettings) -> dict[str, Any]:
    """One schema for the whole export, from every share's scans, with its column names fixed (`name_columns`).

    Each attribute path gets the column its lake table's column registry (`<LakePrefix>/_snaplake/columns/dynamodb/
    <lake folder>/<table>.json`) has on record, so every export of the table names it alike; a path new to the
    table gets a name no path had, never a partition key or system column (`reserved_names`). The names travel in
    `schema.json`, so the parallel converters agree. Reads one object per ScanFiles invocation, so one per share
    (at most MAX_SHARES) unless a share needed more than one invocation, 16 shares at a time.
    """
    from snaplake.core.claims import ColumnRegistry
    from snaplake.dynamodb.parquet import ConvertOptions, ExportSchema

    plan = Plan.from_request(request)
    count, expected = totals(request)
    export = settings.export(s3, plan.bucket)
    target = export.read_plan(plan.summary_key)
    if not isinstance(target, dict) or target.get("files") != count:
        raise InvalidEvent(f"the request counts {count} data files, the plan {target.get('files') if isinstance(target, dict) else '?'}")
    shares = integer(target.get("shares"), "plan.json shares", 1, MAX_SHARES)

    with ThreadPoolExecutor(max_workers=PLAN_THREADS, thread_name_prefix="snaplake-merge") as pool:
        chains = pool.map(lambda worker: share_chain(export, plan, SCANNED, worker, shares), range(shares))
        scans = [scanned for found in chains for scanned in found]
    merged = ExportSchema()
    for scanned in scans:
        merged = merged.merge(ExportSchema.from_json(scanned["schema"]))
    files, total = sum(int(s["files"]) for s in scans), sum(int(s["rows"]) for s in scans)
    if files != count:
        raise CountMismatch(f"the shares scanned {files} data files, the plan lists {count}")
    if total != expected:
        raise CountMismatch(f"the export's data files hold {total} items, manifest-summary.json says {expected}")
    kind, table = target["kind"], athena_identifier(target["table"], "table")
    options = ConvertOptions()
    paths = merged.attribute_paths(kind, options)
    if paths:
        registry = ColumnRegistry(settings.lake(s3), "dynamodb", LAKE_FOLDERS[kind], table, lake_prefix=settings.prefix)
        merged.name_columns(registry.names(paths, options.separator, reserved_names(kind)))
    export.write_bytes(f"{plan.prefix}schema.json", json.dumps(merged.to_json()).encode())
    return {"schemaKey": f"{plan.prefix}schema.json", "rows": total}


def share_chain(export: Bucket, plan: Plan, stage: str, worker: int, shares: int) -> list[dict[str, Any]]:
    """What a share's invocations of a stage recorded, from its first file on (one object each; usually one).

    Follows each record's `next`, so a record an earlier attempt left off the chain (a retry of the same cursor that
    stopped elsewhere overwrote the record that pointed to it) is never read. PlanMissing names a missing record.
    """
    found, start = [], worker
    while True:
        record = export.read_plan(plan.share_result(stage, worker, start))
        found.append(record)
        following = record.get("next")
        if following is None:
            return found
        if not isinstance(following, int) or following <= start or following % shares != worker % shares:
            raise InvalidEvent(f"{plan.share_result(stage, worker, start)}: 'next' {str(following)[:20]} is not a later file of the share")
        start = following


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
    s3: Any,
    request: dict[str, Any],
    settings: ConversionSettings,
    remaining_ms: Callable[[], int],
    reserve_ms: int = 180_000,
    pii: PiiProtector | None = None,
) -> dict[str, Any]:
    """Write each assigned data file as Parquet in the lake under a deterministic key, so a
    re-run overwrites instead of duplicating. Incremental rows are split by write hour.

    The table's PII rule (`pii`, snaplake.core.pii) applies to each block before it is written (see `_split`).

    A data file without rows (DynamoDB writes one per empty table partition) lands nothing:
    its result lists no keys, so an export without rows publishes no data file."""
    from snaplake.dynamodb.parquet import ConvertOptions, ExportSchema, NotCarriedOver

    plan, worker, workers, count, index = share_of(request)
    kind, table, exported_to, export_id = conversion_of(request)
    export, lake = settings.export(s3, plan.bucket), settings.lake(s3)
    files = plan_files(export, plan, worker, workers, count)
    schema = ExportSchema.from_json(export.read_plan(f"{plan.prefix}schema.json"))
    options = ConvertOptions()
    arrow_schema = schema.arrow_schema(kind, options)
    rule, images = (
        pii.rule(DYNAMODB, table, reserved_names(kind)) if pii is not None else None,
        CHANGE_IMAGES if kind == INCREMENTAL else (),
    )
    protect = functools.partial(pii.protect_table, rule=rule, images=images) if pii is not None and rule is not None else None
    if pii is not None and rule is not None:
        arrow_schema = pii.protect_schema(arrow_schema, rule, images)
    split = functools.partial(_split, kind=kind, settings=settings, name=table, exported_to=exported_to, protect=protect)
    done_one = False
    while index < count:
        if done_one and remaining_ms() < reserve_ms:
            return {**carry(request), "cursor": index, "done": False}
        source, items = files[index]
        with tempfile.TemporaryDirectory() as scratch:
            converted_from = "stage"
            try:
                staged = tables_from_stage(export, plan.staged(index), schema, kind)
                rows, writers, partition_rows = write_partitions(staged, scratch, converted_from, arrow_schema, split)
            except NotCarriedOver as reason:
                # The JSON, converted with the merged schema, is always exact: the file starts over from it.
                log.info("converting %s from its JSON (%s)", source, reason)
                converted_from = "json"
                rows, writers, partition_rows = write_partitions(
                    tables_from_json(export, source, schema, kind), scratch, converted_from, arrow_schema, split
                )
            if rows != items:
                raise CountMismatch(f"{source}: wrote {rows} rows, manifest-files.json says {items} items")
            keys, landed, size = [], {}, 0
            for partition, path in sorted(writers.items()):
                name = f"part-{index:05d}.parquet" if kind == FULL else f"{export_id}-{index:05d}.parquet"
                key = f"{partition}/{name}"
                lake.write_file(path, staging_key(settings, export_id, key))
                keys.append(key)
                landed[key] = {"rows": partition_rows[partition], "bytes": os.path.getsize(path)}
                size += landed[key]["bytes"]
        result = {"rows": rows, "keys": keys, "landed": landed, "bytes": size, "from": converted_from}
        export.write_bytes(plan.file_result("converted", index), json.dumps(result).encode())
        index += workers
        done_one = True
    return {**carry(request), "cursor": None, "done": True}


def staging_key(settings: ConversionSettings, export_id: str, key: str) -> str:
    """Where a converted file waits until finalize publishes the whole export."""
    return join_key(settings.prefix, "_snaplake_staging", export_id, key.removeprefix(settings.prefix).lstrip("/"))


def _split(
    table: Any, kind: str, settings: ConversionSettings, name: str, exported_to: str, protect: Callable[[Any], Any] | None
) -> list[tuple[str, Any]]:
    """A converted block, its PII rule applied (`protect`), cut into its lake partitions."""
    if protect is not None:
        table = protect(table)
    if kind == FULL:
        return [(lake_partition(settings, kind, name, exported_to), table)]
    import pyarrow.compute as pc

    from snaplake.dynamodb.parquet import WRITE_TIME_COLUMN

    hours = pc.floor_temporal(table[WRITE_TIME_COLUMN], unit="hour")
    out = []
    for hour in pc.unique(hours).to_pylist():
        rows = table.filter(pc.is_null(hours) if hour is None else pc.equal(hours, hour))
        # a row without a write time goes to the window's last hour (windows end on the hour: its end hour is the next window's)
        when = hour if hour is not None else parse_iso_utc(exported_to) - timedelta(microseconds=1)
        out.append((lake_partition(settings, kind, name, exported_to, when.astimezone(UTC)), rows))
    return out


def carry(request: dict[str, Any]) -> dict[str, Any]:
    """What a looping Map child hands its next invocation besides the cursor: its item, as the Map gave it."""
    return {key: request[key] for key in ("plan", "share", "kind", "table", "exportedTo", "exportId") if key in request}
