"""CopyBatch: one copy worker's share of the plan, copied server-side into the lake until done or out of time.

Workers each take every Nth batch of the plan (PlanCopy) and return a cursor
when their time budget runs low, so the state machine loops instead of timing
out. Each batch has progress markers in the plan folder: a batch marked done is
skipped on a re-run, and a batch that was started but not finished is
re-checked object by object (size and source ETag, kept in the object's
metadata) before anything is copied again. A done batch that PlanCopy lists
under `recheck` (its objects are not all in the lake any more) is re-checked
the same way, so a re-run restores what was deleted after landing.

A finished batch's `done` marker records the rows of its objects per table partition, read from their
Parquet footers in the export (one ranged GET each; the lake holds the same bytes): FinalizeCopy adds them up for the landing events, so
no step reads a footer per object of the whole export.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from snaplake.core.errors import InvalidEvent, InvalidPiiRules
from snaplake.core.handler_input import integer
from snaplake.core.limits import S3_COPY_OBJECT_MAX_BYTES
from snaplake.core.pii import PiiProtector
from snaplake.core.s3 import MULTIPART_COPY_THREADS, Bucket
from snaplake.rds.copy_plan import DONE, MAX_BATCHES, SOURCE_ETAG_METADATA, CopyItem, PlanRef, check_share
from snaplake.rds.lake_guards import parquet_footer
from snaplake.rds.rewrite import already_rewritten, rewrite_item, table_rule
from snaplake.rds.settings import CopySettings

MAX_SINGLE_COPY_BYTES = S3_COPY_OBJECT_MAX_BYTES
# Planning figure for the time budget: server-side copy throughput of one CopyObject / UploadPartCopy stream.
COPY_BYTES_PER_SECOND = 50 * 1024**2
# ... and of a rewrite with PII rules (download, decode, hash, encode, upload, in this function): measured about 2.7 MB/s
# of source for a file of one hashed string column in three (docs/governance.md#cost), so a file of up to ~1.5 GB fits one
# invocation.
REWRITE_BYTES_PER_SECOND = 2 * 1024**2


def already_copied(lake: Bucket, item: CopyItem) -> bool:
    """The object is in the lake, copied from this very source object (size and ETag)."""
    head = lake.metadata(item.dest)
    return head is not None and head.get("ContentLength") == item.size and head.get("Metadata", {}).get(SOURCE_ETAG_METADATA) == item.etag


def copy_item(lake: Bucket, export: Bucket, item: CopyItem, multipart_threshold: int = MAX_SINGLE_COPY_BYTES) -> None:
    lake.copy_in(
        export,
        item.source,
        item.dest,
        size=item.size,
        etag=item.etag,
        metadata={SOURCE_ETAG_METADATA: item.etag},
        multipart_above=multipart_threshold,
    )


def batch_rows(
    export: Bucket, items: list[CopyItem], partitions: Collection[str], mapper: Callable[..., Iterable[int]] = map
) -> dict[str, int]:
    """Rows per table partition (`partition` of the plan's tables) of a batch's objects, from their footers."""
    rows = dict.fromkeys({_partition_of(item.dest, partitions) for item in items}, 0)
    data = [item for item in items if item.size > 0 and item.dest.endswith(".parquet")]
    for item, count in zip(data, mapper(lambda item: int(parquet_footer(export, item.source).num_rows), data), strict=True):
        rows[_partition_of(item.dest, partitions)] += count
    return rows


def _partition_of(key: str, partitions: Collection[str]) -> str:
    end = len(key)
    while (end := key.rfind("/", 0, end)) > 0:
        if key[: end + 1] in partitions:
            return key[: end + 1]
    raise InvalidEvent(f"{key[:200]!r} is in none of the plan's table partitions")


def batch_progress(export: Bucket, plan: PlanRef, index: int) -> set[str]:
    """The batch's progress markers (`done`, `from-<offset>`), from one listing. An empty `done` marker (written
    before CopyBatch counted rows) is not done: the batch is checked again, object by object, and counted."""
    states = set()
    for obj in export.first_objects_under(plan.progress_key(index, "")):
        state = obj["Key"].rsplit(".", 1)[-1]
        if state != DONE or obj.get("Size"):
            states.add(state)
    return states


def copy_batches(
    s3: Any,
    request: dict[str, Any],
    lake: CopySettings,
    remaining_ms: Callable[[], int],
    reserve_ms: int = 60_000,
    multipart_threshold: int = MAX_SINGLE_COPY_BYTES,
    pii: PiiProtector | None = None,
) -> dict[str, Any]:
    """Copy this worker's batches (worker, worker+workers, ...) until done or out of time.

    An object is only started when its estimated copy time fits in what is left
    of the invocation (less `reserve_ms`), so in-flight copies finish before the
    Lambda timeout and the returned cursor is exact. Every invocation copies at
    least one object, so the loop always moves forward. Objects PlanCopy marked
    for rewriting are landed with their table's PII rule (`pii`, snaplake.rds.rewrite).
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
    export, lake_bucket = lake.export(s3, plan.bucket), lake.lake(s3)
    markers = export.read_plan(plan.markers_key)
    check_share(markers, batches=batch_count, batchSize=batch_size, objects=object_count)
    # Done batches PlanCopy found incomplete in the lake (objects deleted after landing): checked and restored.
    recheck = set(markers.get("recheck", [])) if isinstance(markers, dict) else set()
    partitions = {table["partition"] for table in markers["tables"]}
    table_names = {table["partition"]: f"{table['database']}.{table['table']}" for table in markers["tables"]}
    tally = {"copied": 0, "skipped": 0, "bytes": 0}
    tally_lock = threading.Lock()
    started_any = False

    def copy_one(item: CopyItem, verify: bool) -> None:
        if verify and (already_rewritten(lake_bucket, item) if item.rewrite else already_copied(lake_bucket, item)):
            with tally_lock:
                tally["skipped"] += 1
            return
        if item.rewrite:
            if pii is None:
                raise InvalidPiiRules(f"PlanCopy planned {item.dest!r} with PII rules, but this function has none: re-run the input")
            rule = table_rule(pii, item, table_names[_partition_of(item.dest, partitions)])
            rewrite_item(lake_bucket, export, item, pii, rule)
        else:
            copy_item(lake_bucket, export, item, multipart_threshold)
        with tally_lock:
            tally["copied"] += 1
            tally["bytes"] += item.size

    with ThreadPoolExecutor(max_workers=lake.threads) as pool:
        while batch < batch_count:
            states = batch_progress(export, plan, batch)
            if DONE in states and batch not in recheck:
                tally["skipped"] += min(batch_size, object_count - batch * batch_size)
                batch, offset = batch + workers, 0
                continue
            items = [CopyItem.from_json(raw) for raw in export.read_plan(plan.batch_key(batch))]
            if offset >= len(items):  # a returned cursor always points at an object still to copy
                raise InvalidEvent(f"cursor offset {offset} is past the end of batch {batch} ({len(items)} objects)")
            # Each invocation claims the offset it starts from. Finding the claim
            # already there means an earlier invocation started here and died
            # (a crash or timeout, retried with the same input): it may have
            # copied some of what follows, so each object is checked first.
            claim = _claim(offset)
            verify = claim in states or batch in recheck
            if not verify:
                export.write_bytes(plan.progress_key(batch, claim), b"")
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
            rows = batch_rows(export, items, partitions, pool.map)
            export.write_bytes(plan.progress_key(batch, DONE), json.dumps({"rows": rows}).encode())
            batch, offset = batch + workers, 0
    return _progress(request, batch, 0, tally, done=True)


def _claim(offset: int) -> str:
    return f"from-{offset}"


def _estimated_copy_ms(item: CopyItem, multipart_threshold: int) -> float:
    """A conservative guess of how long S3 takes to copy an object server-side (or this function to rewrite it)."""
    if item.rewrite:
        return item.size / REWRITE_BYTES_PER_SECOND * 1000
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
