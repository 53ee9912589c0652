"""PlanCopy: list a finished RDS export once and write the copy plan next to it.

Every data file is mapped to its lake key and the work is written as batch
files in the export bucket (never into a state payload): `batches/<n>.json`
lists each batch's objects, `markers.json` the export's own `_SUCCESS` markers
and the table partitions, `progress/` collects the workers' markers and
`landed.json` what FinalizeCopy completed, and `items.json` the CopyToLake
Distributed Map's items: one JSON array of CopyBatch inputs, one per batch
(worker i of n takes batch i only), read by the Map's ItemReader so the state
payload never grows with the export. Everything that decides what a copy
writes is in the plan folder's name, so progress of a plan for another lake
bucket, key or ACL is never reused.

A batch holds at most COPY_BATCH_SIZE objects and, on average, about
BATCH_BYTES: an export of large files is split into more batches (more Map
children copying at once) instead of a few batches each copying for minutes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import bucket as bucket_name
from snaplake.core.handler_input import s3_key, text, timestamp
from snaplake.core.names import join_key
from snaplake.core.pii import RDS, PiiProtector
from snaplake.core.s3 import Bucket
from snaplake.core.times import iso_utc
from snaplake.rds.errors import DestinationMismatch, ExportFilesMissing, KeyCollision
from snaplake.rds.export_task import EXPORT_TASK_IDENTIFIER
from snaplake.rds.lake_guards import Destination, check_columns
from snaplake.rds.layout import SnapshotLayout, parse_export_key
from snaplake.rds.settings import CopySettings
from snaplake.rds.snapshots import SOURCE_IDENTIFIER, parse_snapshot_arn

log = logging.getLogger(__name__)

MAX_BATCHES = 1_000_000  # a plan of more batches would list over a billion objects
# Bytes per batch, on average: at COPY_THREADS (16) copies of ~50 MiB/s each (copy_batch.COPY_BYTES_PER_SECOND) a batch
# copies in about 20 s, so an export of large files spreads over up to CopyMaxConcurrency children at once.
BATCH_BYTES = 16 * 1024**3
SOURCE_ETAG_METADATA = "snaplake-source-etag"
DONE = "done"
_PLAN_FOLDER = re.compile(r"^plan-[0-9a-f]{16}$")


@dataclass(frozen=True)
class CopyItem:
    source: str
    dest: str
    size: int
    etag: str
    rewrite: str = ""  # a data file of a table with a PII rule: the rule's fingerprint (snaplake.rds.rewrite)

    def as_json(self) -> list[Any]:
        return [self.source, self.dest, self.size, self.etag, *([self.rewrite] if self.rewrite else [])]

    @classmethod
    def from_json(cls, raw: list[Any]) -> CopyItem:
        source, dest, size, etag, *rewrite = raw
        return cls(source, dest, int(size), etag, str(rewrite[0]) if rewrite else "")

    def landed(self, size_in_lake: int | None) -> bool:
        """Whether a lake object of this size is this item landed: a copy has the source's size, a rewrite its own."""
        return size_in_lake is not None and (bool(self.rewrite) or size_in_lake == self.size)


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

    @property
    def items_key(self) -> str:
        """The Distributed Map's item file: one CopyBatch input per batch."""
        return f"{self.prefix}items.json"

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


def check_share(planned: Any, **share: int) -> None:
    """The share's figures are the plan's (plans written before they were recorded are taken on trust)."""
    wrong = [name for name, value in share.items() if isinstance(planned, dict) and name in planned and planned[name] != value]
    if wrong:
        given = ", ".join(f"{name}={share[name]}" for name in wrong)
        raise InvalidEvent(f"{given} does not match the plan ({', '.join(f'{name}={planned[name]}' for name in wrong)})")


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


def plan_copy(s3: Any, request: dict[str, Any], lake: CopySettings, pii: PiiProtector | None = None) -> dict[str, Any]:
    """List the finished export, check and claim its place in the lake, and write the copy plan; returns a small summary.

    Everything that would be refused later (RegisterCatalog, the next snapshot) is refused here, before
    anything lands: see snaplake.rds.lake_guards. Batches a re-run finds `done` but whose objects are no
    longer all in the lake are listed under `recheck`, so CopyBatch restores them.
    """
    layout = _layout(request)
    snapshot_arn = request.get("snapshotArn")
    if snapshot_arn is not None:
        snapshot_arn = parse_snapshot_arn(snapshot_arn).arn
    if request.get("exportBucket") is None or request.get("exportRoot") is None:
        raise InvalidEvent("plan copy needs 'exportBucket' and 'exportRoot' from PollExport")
    bucket = bucket_name(request["exportBucket"], "exportBucket")
    export_root = s3_key(request["exportRoot"], "exportRoot", folder=True)
    if export_root != f"{layout.export_id}/" and not export_root.endswith(f"/{layout.export_id}/"):
        raise InvalidEvent(f"exportRoot {export_root[:200]!r} is not the folder of export {layout.export_id}")
    export, lake_bucket = lake.export(s3, bucket), lake.lake(s3)
    items: list[CopyItem] = []
    batch_markers: list[str] = []  # lake keys of the export's per-batch _SUCCESS markers
    tables: dict[str, dict[str, Any]] = {}
    folders: dict[str, str] = {}  # lake partition -> (table folder, partition) relative to the lake prefix
    relative: dict[str, str] = {}
    samples: dict[str, str] = {}  # lake table -> one of its data files in the export, for its columns
    ignored = listed = 0
    for obj in export.objects_under(export_root):
        listed += 1
        located = parse_export_key(obj["Key"][len(export_root) :])
        if located is None:
            ignored += 1
            continue
        values = layout.partition_values(located.database, located.table_folder)
        partition = join_key(lake.prefix, lake.key_template.partition_prefix(values))
        folders.setdefault(partition, lake.key_template.table_folder(values))
        relative.setdefault(partition, lake.key_template.partition_prefix(values))
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
                # What RegisterCatalog orders snapshots by (<table>_latest, retention), whatever the key template names.
                "snapshotTime": values["snapshot_time"],
                "objects": 0,
                "bytes": 0,
            },
        )
        if located.is_marker:
            batch_markers.append(dest)
            continue
        rule = pii.rule(RDS, f"{table['database']}.{table['table']}") if pii is not None else None
        rewrite = pii.fingerprint(rule) if pii is not None and rule is not None and int(obj["Size"]) > 0 else ""
        items.append(CopyItem(obj["Key"], dest, int(obj["Size"]), obj["ETag"], rewrite))
        if int(obj["Size"]) > 0:
            samples.setdefault(f"{table['database']}.{table['table']}", obj["Key"])
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
    check_columns(export, samples, lake.key_template.partition_keys, lake.threads)
    in_lake = _check_partitions_hold_only_this_export(lake_bucket, items, tables, lake.threads)
    Destination(lake_bucket, lake.prefix, layout.source_id, layout.export_id, snapshot_arn, layout.snapshot_time).claim(
        folders.values(), relative.values(), lake.threads
    )  # Everything that decides what a copy writes is in the plan's name, so progress
    # markers of a plan for another lake bucket, key or ACL are never reused.
    batch_size = batch_size_for(items, lake.batch_size)
    destination = [lake.bucket, lake.bucket_owner, lake.kms_key_arn, lake.object_acl, batch_size]
    digest = hashlib.sha256(json.dumps([destination, [i.as_json() for i in items]]).encode()).hexdigest()[:16]
    plan = PlanRef(bucket, join_key(lake.plan_prefix, layout.export_id, f"plan-{digest}") + "/")
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    recheck = _done_batches_missing_objects(export, plan, batches, in_lake)

    def write_batch(index: int) -> None:
        export.write_bytes(plan.batch_key(index), json.dumps([i.as_json() for i in batches[index]]).encode())

    with ThreadPoolExecutor(max_workers=lake.threads, thread_name_prefix="snaplake-plan") as pool:
        list(pool.map(write_batch, range(len(batches))))
    export.write_bytes(
        plan.markers_key,
        json.dumps(
            {
                "batchMarkers": batch_markers,
                "tables": sorted(tables.values(), key=lambda t: t["partition"]),
                # For FinalizeCopy's metrics (per source; lag from the snapshot time).
                "source": layout.source_id,
                "snapshotTime": iso_utc(layout.snapshot_time),
                # What the workers' shares and FinalizeCopy's input must agree with.
                "batches": len(batches),
                "batchSize": batch_size,
                "objects": len(items),
                # Done batches whose objects are no longer all in the lake (deleted after landing): copied again.
                "recheck": recheck,
            }
        ).encode(),
    )
    shape = {"batches": len(batches), "batchSize": batch_size, "objects": len(items)}
    # One Map child per batch: worker i of len(batches) copies batch i (and loops on its own cursor if out of time).
    export.write_bytes(
        plan.items_key,
        json.dumps(
            [{"plan": plan.as_json(), "share": {"worker": i, "workers": len(batches), **shape}} for i in range(len(batches))]
        ).encode(),
    )
    workers = min(lake.workers, len(batches))
    if recheck:
        log.warning("landed objects are missing from the lake; their batches are copied again", extra={"batches": recheck[:20]})
    log.info("planned copy", extra={"objects": len(items), "batches": len(batches), "tables": len(tables), "ignored": ignored})
    return {
        "plan": plan.as_json(),
        "objects": len(items),
        "bytes": sum(i.size for i in items),
        "tables": len(tables),
        "ignored": ignored,
        "batches": len(batches),
        "items": {"bucket": plan.bucket, "key": plan.items_key},
        # For running CopyBatch by hand (sample events, tools): COPY_WORKERS shares; the state machine uses `items`.
        "workers": [
            {"worker": w, "workers": workers, "batches": len(batches), "batchSize": batch_size, "objects": len(items)}
            for w in range(workers)
        ],
    }


def batch_size_for(items: list[CopyItem], most: int) -> int:
    """Objects per batch: at most `most` (COPY_BATCH_SIZE), fewer when the objects are large, so a batch holds about
    BATCH_BYTES on average. Every batch but the last holds the same number (CopyBatch counts on it)."""
    total = sum(item.size for item in items)
    if not items or total <= 0:
        return most
    return max(1, min(most, BATCH_BYTES * len(items) // total))


def _check_collisions(items: list[CopyItem]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        if item.dest in seen:
            raise KeyCollision(
                f"{seen[item.dest]!r} and {item.source!r} both map to lake key {item.dest!r}; add {{batch}} to LAKE_KEY_TEMPLATE"
            )
        seen[item.dest] = item.source


def _check_partitions_hold_only_this_export(
    lake: Bucket, items: list[CopyItem], tables: dict[str, dict[str, Any]], threads: int = 1
) -> dict[str, int]:
    """Refuse to mix two exports in one partition (Athena would count their rows twice); return what is there (key -> size).

    One listing per table partition, `threads` at a time; on a first run the partitions are empty.
    """
    planned = {item.dest for item in items}
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="snaplake-plan") as pool:
        listings = list(pool.map(lambda partition: (partition, list(lake.objects_under(partition + "/"))), tables))
    found: dict[str, int] = {}
    for partition, listing in listings:
        for obj in listing:
            if obj["Key"].endswith(".parquet") and obj["Key"] not in planned:
                raise DestinationMismatch(
                    f"lake partition {lake.uri(partition)}/ already holds {obj['Key']!r}, which this export "
                    "did not write (an earlier export of the same snapshot time?); delete that partition and re-run"
                )
            found[obj["Key"]] = int(obj["Size"])
    return found


def _done_batches_missing_objects(export: Bucket, plan: PlanRef, batches: list[list[CopyItem]], in_lake: dict[str, int]) -> list[int]:
    """Batches marked done whose objects are not all in the lake any more (one listing of the plan's progress)."""
    missing = [index for index, batch in enumerate(batches) if not all(item.landed(in_lake.get(item.dest)) for item in batch)]
    if not missing:
        return []
    done = {obj["Key"] for obj in export.objects_under(f"{plan.prefix}progress/")}
    return [index for index in missing if plan.progress_key(index, DONE) in done]
