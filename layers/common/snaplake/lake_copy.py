"""Copy an RDS export into the lake: plan, copy in batches, finalize.

Plan lists the export once, maps every data file to its lake key and writes
the work as batch files next to the export (never into a state payload).
Copy workers each take every Nth batch and return a cursor when their time
budget runs low, so the state machine loops instead of timing out. Each batch
has a progress marker: a batch marked done is skipped on a re-run, and a batch
that was started but not finished is re-checked object by object. Finalize
writes the `_SUCCESS` markers, last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from snaplake.aws import lake_access
from snaplake.config import LakeSettings, lake_write_args
from snaplake.errors import CopyIncomplete, DestinationMismatch, ExportFilesMissing, InvalidEvent, KeyCollision, PlanMissing
from snaplake.handler_input import bucket as bucket_name
from snaplake.handler_input import integer, s3_key, text, timestamp
from snaplake.lake_keys import SUCCESS_MARKER, SnapshotLayout, join_key, parse_export_key
from snaplake.rds_export import EXPORT_TASK_IDENTIFIER
from snaplake.snapshots import SOURCE_IDENTIFIER

log = logging.getLogger(__name__)

MAX_SINGLE_COPY_BYTES = 5 * 1024**3  # CopyObject limit
MAX_PARTS = 10_000
MAX_BATCHES = 1_000_000  # a plan of more batches would list over a billion objects
MIN_PART_BYTES = 512 * 1024**2
SOURCE_ETAG_METADATA = "snaplake-source-etag"
CONTENT_TYPE = "application/octet-stream"

_DONE = "done"
_PLAN_FOLDER = re.compile(r"^plan-[0-9a-f]{16}$")
_MISSING = ("NoSuchKey", "NoSuchBucket", "404")
# Planning figure for the time budget: server-side copy throughput of one CopyObject / UploadPartCopy stream.
COPY_BYTES_PER_SECOND = 50 * 1024**2
MULTIPART_COPY_THREADS = 8


@dataclass(frozen=True)
class CopyItem:
    source: str
    dest: str
    size: int
    etag: str

    def as_json(self) -> list[Any]:
        return [self.source, self.dest, self.size, self.etag]

    @classmethod
    def from_json(cls, raw: list[Any]) -> CopyItem:
        source, dest, size, etag = raw
        return cls(source, dest, int(size), etag)


@dataclass(frozen=True)
class PlanRef:
    """Where a copy plan lives: a folder in the export bucket."""

    bucket: str
    prefix: str

    def batch_key(self, index: int) -> str:
        return f"{self.prefix}batches/{index:06d}.json"

    def progress_key(self, index: int, state: str) -> str:
        return f"{self.prefix}progress/{index:06d}.{state}"

    @property
    def markers_key(self) -> str:
        return f"{self.prefix}markers.json"

    @property
    def landed_key(self) -> str:
        return f"{self.prefix}landed.json"

    def as_json(self) -> dict[str, str]:
        return {"bucket": self.bucket, "prefix": self.prefix}

    @classmethod
    def from_json(cls, raw: Any) -> PlanRef:
        if not isinstance(raw, dict) or not isinstance(raw.get("bucket"), str) or not isinstance(raw.get("prefix"), str):
            raise InvalidEvent("'plan' must be an object with 'bucket' and 'prefix'")
        prefix = s3_key(raw["prefix"], "plan.prefix", folder=True)
        if not _PLAN_FOLDER.fullmatch(prefix[:-1].rsplit("/", 1)[-1]):
            raise InvalidEvent(f"plan prefix {prefix[:200]!r} is not a plan folder (.../plan-<digest>/)")
        return cls(bucket_name(raw["bucket"], "plan.bucket"), prefix)


class LakeWriter:
    """S3 calls against the export (source) and lake (destination) buckets,
    with the ownership, encryption and ACL settings on every call."""

    def __init__(self, s3: Any, lake: LakeSettings, source_bucket: str):
        self.s3 = s3
        self.lake = lake
        self.source_bucket = source_bucket

    def _source_owner(self) -> dict[str, str]:
        return {"ExpectedBucketOwner": self.lake.source_bucket_owner} if self.lake.source_bucket_owner else {}

    def _dest_args(self) -> dict[str, Any]:
        args = lake_write_args(self.lake.bucket, self.lake.bucket_owner, self.lake.kms_key_arn)
        if self.lake.object_acl:
            args["ACL"] = self.lake.object_acl
        return args

    def _copy_args(self) -> dict[str, Any]:
        args = self._dest_args()
        if self.lake.source_bucket_owner:
            args["ExpectedSourceBucketOwner"] = self.lake.source_bucket_owner
        return args

    def _lake_access(self, action: str, source: bool = False) -> Any:
        return lake_access(self.lake.bucket, self.lake.bucket_owner, self.lake.kms_key_arn, action, self.source_bucket if source else None)

    def list_lake(self, prefix: str) -> Iterator[dict[str, Any]]:
        owner = {"ExpectedBucketOwner": self.lake.bucket_owner} if self.lake.bucket_owner else {}
        with self._lake_access("list"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.lake.bucket, Prefix=prefix, **owner):
                yield from page.get("Contents", [])

    def list_source(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.source_bucket, Prefix=prefix, **self._source_owner())
        for page in pages:
            yield from page.get("Contents", [])

    def get_source_json(self, key: str) -> Any:
        body = self.s3.get_object(Bucket=self.source_bucket, Key=key, **self._source_owner())["Body"].read()
        return json.loads(body)

    def get_plan_json(self, key: str) -> Any:
        """A file of the copy plan; PlanMissing when it is not there."""
        try:
            return self.get_source_json(key)
        except ClientError as error:
            if error.response["Error"]["Code"] in _MISSING:
                raise PlanMissing(f"s3://{self.source_bucket}/{key} does not exist: the plan was deleted or never written") from None
            raise

    def put_source(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.source_bucket, Key=key, Body=body, **self._source_owner())

    def batch_progress(self, plan: PlanRef, index: int) -> set[str]:
        """The batch's progress markers (`done`, `from-<offset>`), from one listing."""
        page = self.s3.list_objects_v2(Bucket=self.source_bucket, Prefix=plan.progress_key(index, ""), **self._source_owner())
        return {obj["Key"].rsplit(".", 1)[-1] for obj in page.get("Contents", [])}

    def already_copied(self, item: CopyItem) -> bool:
        with self._lake_access("read"):
            return self._same_object_in_lake(item)

    def _same_object_in_lake(self, item: CopyItem) -> bool:
        try:
            head = self.s3.head_object(
                Bucket=self.lake.bucket,
                Key=item.dest,
                **({"ExpectedBucketOwner": self.lake.bucket_owner} if self.lake.bucket_owner else {}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return head.get("ContentLength") == item.size and head.get("Metadata", {}).get(SOURCE_ETAG_METADATA) == item.etag

    def copy(self, item: CopyItem, multipart_threshold: int = MAX_SINGLE_COPY_BYTES) -> None:
        with self._lake_access("write", source=True):
            self._copy(item, multipart_threshold)

    def _copy(self, item: CopyItem, multipart_threshold: int) -> None:
        source = {"Bucket": self.source_bucket, "Key": item.source}
        metadata = {SOURCE_ETAG_METADATA: item.etag}
        if item.size <= multipart_threshold:
            self.s3.copy_object(
                CopySource=source,
                CopySourceIfMatch=item.etag,
                Key=item.dest,
                MetadataDirective="REPLACE",
                Metadata=metadata,
                ContentType=CONTENT_TYPE,
                **self._copy_args(),
            )
            return
        self._multipart_copy(item, source, metadata, multipart_threshold)

    def _multipart_copy(self, item: CopyItem, source: dict[str, str], metadata: dict[str, str], threshold: int) -> None:
        part_size = max(min(MIN_PART_BYTES, threshold), -(-item.size // MAX_PARTS))
        upload = self.s3.create_multipart_upload(Key=item.dest, Metadata=metadata, ContentType=CONTENT_TYPE, **self._dest_args())
        upload_id = upload["UploadId"]
        owner = {"ExpectedBucketOwner": self.lake.bucket_owner} if self.lake.bucket_owner else {}
        source_owner = {"ExpectedSourceBucketOwner": self.lake.source_bucket_owner} if self.lake.source_bucket_owner else {}

        def copy_part(number: int) -> dict[str, Any]:
            first = (number - 1) * part_size
            last = min(first + part_size, item.size) - 1
            result = self.s3.upload_part_copy(
                Bucket=self.lake.bucket,
                Key=item.dest,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceIfMatch=item.etag,
                CopySourceRange=f"bytes={first}-{last}",
                **owner,
                **source_owner,
            )
            return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

        part_count = -(-item.size // part_size)
        try:
            with ThreadPoolExecutor(max_workers=min(MULTIPART_COPY_THREADS, part_count)) as pool:
                parts = list(pool.map(copy_part, range(1, part_count + 1)))
            self.s3.complete_multipart_upload(
                Bucket=self.lake.bucket, Key=item.dest, UploadId=upload_id, MultipartUpload={"Parts": parts}, **owner
            )
        except BaseException:
            self.s3.abort_multipart_upload(Bucket=self.lake.bucket, Key=item.dest, UploadId=upload_id, **owner)
            raise

    def put_marker(self, key: str) -> None:
        with self._lake_access("write"):
            self.s3.put_object(Key=key, Body=b"", **self._dest_args())


def _layout(request: dict[str, Any]) -> SnapshotLayout:
    for name in ("sourceIdentifier", "exportTaskIdentifier", "snapshotTime"):
        if request.get(name) is None:
            raise InvalidEvent(f"plan copy needs {name!r} from the earlier steps")
    engine = request.get("engine", "")
    if not isinstance(engine, str):
        raise InvalidEvent(f"'engine' must be a string, got {type(engine).__name__}")
    return SnapshotLayout(
        engine=engine,
        source_id=text(request["sourceIdentifier"], "sourceIdentifier", SOURCE_IDENTIFIER),
        export_id=text(request["exportTaskIdentifier"], "exportTaskIdentifier", EXPORT_TASK_IDENTIFIER),
        snapshot_time=timestamp(request["snapshotTime"], "snapshotTime"),
    )


def plan_copy(s3: Any, request: dict[str, Any], lake: LakeSettings, plan_root: str) -> dict[str, Any]:
    """List the finished export and write the copy plan; returns a small summary."""
    layout = _layout(request)
    if request.get("exportBucket") is None or request.get("exportRoot") is None:
        raise InvalidEvent("plan copy needs 'exportBucket' and 'exportRoot' from PollExport")
    bucket = bucket_name(request["exportBucket"], "exportBucket")
    export_root = s3_key(request["exportRoot"], "exportRoot", folder=True)
    if export_root != f"{layout.export_id}/" and not export_root.endswith(f"/{layout.export_id}/"):
        raise InvalidEvent(f"exportRoot {export_root[:200]!r} is not the folder of export {layout.export_id}")
    writer = LakeWriter(s3, lake, bucket)
    items: list[CopyItem] = []
    batch_markers: list[str] = []  # lake keys of the export's per-batch _SUCCESS markers
    tables: dict[str, dict[str, Any]] = {}
    ignored = listed = 0
    for obj in writer.list_source(export_root):
        listed += 1
        located = parse_export_key(obj["Key"][len(export_root) :])
        if located is None:
            ignored += 1
            continue
        values = layout.partition_values(located.database, located.table_folder)
        partition = join_key(lake.prefix, lake.key_template.partition_prefix(values))
        dest = join_key(partition, lake.key_template.object_path({**values, "batch": located.batch, "file": located.file}))
        if partition in tables and tables[partition]["sourceTable"] != located.table_folder:
            raise KeyCollision(
                f"export tables {tables[partition]['sourceTable']!r} and {located.table_folder!r} both map to lake partition "
                f"{partition!r}; put {{source_table}} in LAKE_KEY_TEMPLATE or export them separately"
            )
        table = tables.setdefault(
            partition,
            {
                "database": values["database"],
                "table": values["table"],
                "sourceTable": located.table_folder,
                "partition": partition + "/",
                "objects": 0,
                "bytes": 0,
            },
        )
        if located.is_marker:
            batch_markers.append(dest)
            continue
        items.append(CopyItem(obj["Key"], dest, int(obj["Size"]), obj["ETag"]))
        table["objects"] += 1
        table["bytes"] += int(obj["Size"])
    if listed == 0:
        raise ExportFilesMissing(
            f"export {layout.export_id} is COMPLETE but s3://{bucket}/{export_root} is empty: its files were deleted or expired "
            "(ExportRetentionDays); start a new export with exportAttempt"
        )
    if not items:
        log.warning("export has no data files", extra={"export": layout.export_id, "objects": listed})
    _check_collisions(items)
    _check_partitions_hold_only_this_export(writer, items, tables)
    # Everything that decides what a copy writes is in the plan's name, so progress
    # markers of a plan for another lake bucket, key or ACL are never reused.
    destination = [lake.bucket, lake.bucket_owner, lake.kms_key_arn, lake.object_acl, lake.batch_size]
    digest = hashlib.sha256(json.dumps([destination, [i.as_json() for i in items]]).encode()).hexdigest()[:16]
    plan = PlanRef(bucket, join_key(plan_root, layout.export_id, f"plan-{digest}") + "/")
    batches = [items[i : i + lake.batch_size] for i in range(0, len(items), lake.batch_size)]
    for index, batch in enumerate(batches):
        writer.put_source(plan.batch_key(index), json.dumps([i.as_json() for i in batch]).encode())
    writer.put_source(
        plan.markers_key,
        json.dumps(
            {
                "batchMarkers": batch_markers,
                "tables": sorted(tables.values(), key=lambda t: t["partition"]),
                # What the workers' shares and FinalizeCopy's input must agree with.
                "batches": len(batches),
                "batchSize": lake.batch_size,
                "objects": len(items),
            }
        ).encode(),
    )
    workers = min(lake.workers, len(batches))
    log.info("planned copy", extra={"objects": len(items), "batches": len(batches), "tables": len(tables), "ignored": ignored})
    return {
        "plan": plan.as_json(),
        "objects": len(items),
        "bytes": sum(i.size for i in items),
        "tables": len(tables),
        "ignored": ignored,
        "batches": len(batches),
        "workers": [
            {"worker": w, "workers": workers, "batches": len(batches), "batchSize": lake.batch_size, "objects": len(items)}
            for w in range(workers)
        ],
    }


def _check_collisions(items: list[CopyItem]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        if item.dest in seen:
            raise KeyCollision(
                f"{seen[item.dest]!r} and {item.source!r} both map to lake key {item.dest!r}; add {{batch}} to LAKE_KEY_TEMPLATE"
            )
        seen[item.dest] = item.source


def _check_partitions_hold_only_this_export(writer: LakeWriter, items: list[CopyItem], tables: dict[str, dict[str, Any]]) -> None:
    """Refuse to mix two exports in one partition (Athena would count their rows twice).

    One listing per table partition; on a first run the partitions are empty.
    """
    planned = {item.dest for item in items}
    for partition in tables:
        for obj in writer.list_lake(partition + "/"):
            if obj["Key"].endswith(".parquet") and obj["Key"] not in planned:
                raise DestinationMismatch(
                    f"lake partition s3://{writer.lake.bucket}/{partition}/ already holds {obj['Key']!r}, which this export "
                    "did not write (an earlier export of the same snapshot time?); delete that partition and re-run"
                )


def copy_batches(
    s3: Any,
    request: dict[str, Any],
    lake: LakeSettings,
    remaining_ms: Callable[[], int],
    reserve_ms: int = 60_000,
    multipart_threshold: int = MAX_SINGLE_COPY_BYTES,
) -> dict[str, Any]:
    """Copy this worker's batches (worker, worker+workers, ...) until done or out of time.

    An object is only started when its estimated copy time fits in what is left
    of the invocation (less `reserve_ms`), so in-flight copies finish before the
    Lambda timeout and the returned cursor is exact. Every invocation copies at
    least one object, so the loop always moves forward.
    """
    plan = PlanRef.from_json(request.get("plan"))
    share = request.get("share")
    cursor = request.get("cursor") or {}
    if not isinstance(share, dict) or not isinstance(cursor, dict):
        raise InvalidEvent(
            "copy batch needs 'share' with integer 'worker', 'workers', 'batches', 'batchSize', 'objects' (and an optional 'cursor')"
        )
    worker, workers = integer(share.get("worker"), "share.worker"), integer(share.get("workers"), "share.workers", 1)
    batch_count = integer(share.get("batches"), "share.batches", 0, MAX_BATCHES)
    batch_size, object_count = integer(share.get("batchSize"), "share.batchSize", 1), integer(share.get("objects"), "share.objects")
    batch, offset = integer(cursor.get("batch", worker), "cursor.batch"), integer(cursor.get("offset", 0), "cursor.offset")
    for tally_name in ("copied", "skipped", "copiedBytes"):  # carried over from the previous invocation
        integer(request.get(tally_name, 0), tally_name)
    if not (worker < workers and batch % workers == worker) or (cursor and batch >= batch_count):
        raise InvalidEvent(f"worker {worker} of {workers} (cursor batch {batch}, offset {offset}) is out of range")
    writer = LakeWriter(s3, lake, plan.bucket)
    _check_share(writer.get_plan_json(plan.markers_key), batches=batch_count, batchSize=batch_size, objects=object_count)
    tally = {"copied": 0, "skipped": 0, "bytes": 0}
    tally_lock = threading.Lock()
    started_any = False

    def copy_one(item: CopyItem, verify: bool) -> None:
        if verify and writer.already_copied(item):
            with tally_lock:
                tally["skipped"] += 1
            return
        writer.copy(item, multipart_threshold)
        with tally_lock:
            tally["copied"] += 1
            tally["bytes"] += item.size

    with ThreadPoolExecutor(max_workers=lake.threads) as pool:
        while batch < batch_count:
            states = writer.batch_progress(plan, batch)
            if _DONE in states:
                tally["skipped"] += min(batch_size, object_count - batch * batch_size)
                batch, offset = batch + workers, 0
                continue
            items = [CopyItem.from_json(raw) for raw in writer.get_plan_json(plan.batch_key(batch))]
            if offset >= len(items):  # a returned cursor always points at an object still to copy
                raise InvalidEvent(f"cursor offset {offset} is past the end of batch {batch} ({len(items)} objects)")
            # Each invocation claims the offset it starts from. Finding the claim
            # already there means an earlier invocation started here and died
            # (a crash or timeout, retried with the same input): it may have
            # copied some of what follows, so each object is checked first.
            claim = _claim(offset)
            verify = claim in states
            if not verify:
                writer.put_source(plan.progress_key(batch, claim), b"")
            in_flight: set[Future[None]] = set()
            while offset < len(items):
                item = items[offset]
                if started_any and remaining_ms() - reserve_ms < _estimated_copy_ms(item, multipart_threshold):
                    break
                if len(in_flight) >= lake.threads:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
                in_flight.add(pool.submit(copy_one, item, verify))
                started_any = True
                offset += 1
            for future in in_flight:
                future.result()
            if offset < len(items):
                return _progress(request, batch, offset, tally, done=False)
            writer.put_source(plan.progress_key(batch, _DONE), b"")
            batch, offset = batch + workers, 0
    return _progress(request, batch, 0, tally, done=True)


def _check_share(planned: Any, **share: int) -> None:
    """The share's figures are the plan's (plans written before they were recorded are taken on trust)."""
    wrong = [name for name, value in share.items() if isinstance(planned, dict) and name in planned and planned[name] != value]
    if wrong:
        given = ", ".join(f"{name}={share[name]}" for name in wrong)
        raise InvalidEvent(f"{given} does not match the plan ({', '.join(f'{name}={planned[name]}' for name in wrong)})")


def _claim(offset: int) -> str:
    return f"from-{offset}"


def _estimated_copy_ms(item: CopyItem, multipart_threshold: int) -> float:
    """A conservative guess of how long S3 takes to copy an object server-side."""
    parallel = MULTIPART_COPY_THREADS if item.size > multipart_threshold else 1
    return item.size / (COPY_BYTES_PER_SECOND * parallel) * 1000


def _progress(request: dict[str, Any], batch: int, offset: int, tally: dict[str, int], done: bool) -> dict[str, Any]:
    return {
        "plan": request["plan"],
        "share": request["share"],
        "cursor": None if done else {"batch": batch, "offset": offset},
        "done": done,
        "copied": int(request.get("copied", 0)) + tally["copied"],
        "skipped": int(request.get("skipped", 0)) + tally["skipped"],
        "copiedBytes": int(request.get("copiedBytes", 0)) + tally["bytes"],
    }


def finalize_copy(s3: Any, request: dict[str, Any], lake: LakeSettings) -> dict[str, Any]:
    """Check every batch is done, then write the `_SUCCESS` markers: the
    export's per-batch markers first, each table partition's own marker last."""
    plan = PlanRef.from_json(request.get("plan"))
    if "batches" not in request:
        raise InvalidEvent("finalize needs the integer 'batches' from PlanCopy")
    batch_count = integer(request["batches"], "batches", 0, MAX_BATCHES)
    writer = LakeWriter(s3, lake, plan.bucket)
    manifest = writer.get_plan_json(plan.markers_key)
    _check_share(manifest, batches=batch_count)
    done = {obj["Key"] for obj in writer.list_source(f"{plan.prefix}progress/")}
    missing = [i for i in range(batch_count) if plan.progress_key(i, _DONE) not in done]
    if missing:
        raise CopyIncomplete(f"{len(missing)} of {batch_count} copy batches are not done (first: {missing[0]}); re-run the copy")
    tables = manifest["tables"]
    with ThreadPoolExecutor(max_workers=lake.threads) as pool:
        list(pool.map(writer.put_marker, manifest["batchMarkers"]))
        list(pool.map(lambda table: writer.put_marker(table["partition"] + SUCCESS_MARKER), tables))
    landed = {"lakeBucket": lake.bucket, "tables": tables}
    writer.put_source(plan.landed_key, json.dumps(landed).encode())
    return {
        "lakeBucket": lake.bucket,
        "tables": len(tables),
        "objects": sum(t["objects"] for t in tables),
        "bytes": sum(t["bytes"] for t in tables),
        "landedManifest": {"bucket": plan.bucket, "key": plan.landed_key},
    }
