"""FinalizeCopy: every batch of the plan is done and every planned object is in the lake, then the `_SUCCESS` markers, last.

The export's own per-batch markers are copied as written; each table
partition's own marker comes after all of them, so a reader that waits for
`<partition>/_SUCCESS` never sees a partial partition. `landed.json` in the
plan folder lists the completed partitions for RegisterCatalog, each with its
objects, bytes and rows (the rows each batch's `done` marker recorded).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from snaplake.core import metrics
from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import integer
from snaplake.core.names import SUCCESS_MARKER
from snaplake.core.s3 import Bucket
from snaplake.core.times import parse_iso_utc
from snaplake.rds.copy_plan import DONE, MAX_BATCHES, CopyItem, PlanRef, check_share
from snaplake.rds.errors import CopyIncomplete
from snaplake.rds.settings import CopySettings


def finalize_copy(s3: Any, request: dict[str, Any], lake: CopySettings) -> dict[str, Any]:
    """Check every batch is done, then write the `_SUCCESS` markers: the
    export's per-batch markers first, each table partition's own marker last."""
    plan = PlanRef.from_json(request.get("plan"))
    if "batches" not in request:
        raise InvalidEvent("finalize needs the integer 'batches' from PlanCopy")
    batch_count = integer(request["batches"], "batches", 0, MAX_BATCHES)
    export, lake_bucket = lake.export(s3, plan.bucket), lake.lake(s3)
    manifest = export.read_plan(plan.markers_key)
    check_share(manifest, batches=batch_count)
    done = {obj["Key"] for obj in export.objects_under(f"{plan.prefix}progress/")}
    missing = [i for i in range(batch_count) if plan.progress_key(i, DONE) not in done]
    if missing:
        raise CopyIncomplete(f"{len(missing)} of {batch_count} copy batches are not done (first: {missing[0]}); re-run the copy")
    tables = manifest["tables"]
    with ThreadPoolExecutor(max_workers=lake.threads) as pool:
        _check_every_object_landed(export, lake_bucket, plan, batch_count, tables, pool)
        rows = _landed_rows(export, lake_bucket, plan, batch_count, tables, pool)
        list(pool.map(lambda key: lake_bucket.write_bytes(key, b""), manifest["batchMarkers"]))
        list(pool.map(lambda table: lake_bucket.write_bytes(table["partition"] + SUCCESS_MARKER, b""), tables))
    landed = {"lakeBucket": lake.bucket, "tables": [{**table, "rows": rows[table["partition"]]} for table in tables]}
    first_landing = export.metadata(plan.landed_key) is None  # a re-run (redelivery, re-drive, restore) lands nothing new
    export.write_bytes(plan.landed_key, json.dumps(landed).encode())
    if first_landing:
        _publish_metrics(manifest, rows)
    return {
        "lakeBucket": lake.bucket,
        "tables": len(tables),
        "objects": sum(t["objects"] for t in tables),
        "bytes": sum(t["bytes"] for t in tables),
        "rows": sum(rows.values()),
        "landedManifest": {"bucket": plan.bucket, "key": plan.landed_key},
    }


def _check_every_object_landed(
    export: Bucket, lake: Bucket, plan: PlanRef, batch_count: int, tables: list[dict[str, Any]], pool: ThreadPoolExecutor
) -> None:
    """`done` markers are not the lake: one listing per partition must show every planned object, at its size (a
    rewritten one at any size)."""
    planned = {
        item.dest: item
        for batch in pool.map(lambda i: export.read_plan(plan.batch_key(i)), range(batch_count))
        for item in map(CopyItem.from_json, batch)
    }
    in_lake = {
        obj["Key"]: int(obj["Size"]) for listing in pool.map(lambda t: list(lake.objects_under(t["partition"])), tables) for obj in listing
    }
    missing = sorted(key for key, item in planned.items() if not item.landed(in_lake.get(key)))
    if missing:
        raise CopyIncomplete(
            f"{len(missing)} copied objects are not in the lake (first: {lake.uri(missing[0])}), though their batches are done: "
            "deleted during the copy? Re-run the input: PlanCopy finds them missing and the copy restores them"
        )


def _landed_rows(
    export: Bucket, lake: Bucket, plan: PlanRef, batch_count: int, tables: list[dict[str, Any]], pool: ThreadPoolExecutor
) -> dict[str, int]:
    """Rows per table partition: the sum of what each batch's `done` marker recorded (one GET per batch)."""
    partitions = {table["partition"] for table in tables}

    def of_batch(index: int) -> dict[str, int]:
        recorded = export.read_bytes(plan.progress_key(index, DONE))
        if not recorded:
            raise CopyIncomplete(
                f"copy batch {index} was marked done before CopyBatch counted rows (an upgrade during the run); "
                "re-run the input: its copy checks the batch and counts them"
            )
        return {str(partition): int(rows) for partition, rows in json.loads(recorded)["rows"].items()}

    totals = dict.fromkeys(partitions, 0)
    for counted in pool.map(of_batch, range(batch_count)):
        for partition, rows in counted.items():
            totals[partition] += rows
    return totals


def _publish_metrics(manifest: dict[str, Any], rows: dict[str, int]) -> None:
    """Rows, files, bytes and lag per landed table, and one landed snapshot for the source (its freshness alarm)."""
    if "source" not in manifest:  # a plan written before the metrics: nothing to name them by
        return
    landed_at = datetime.now(UTC)
    lag = (landed_at - parse_iso_utc(manifest["snapshotTime"])).total_seconds()
    for table in manifest["tables"]:
        name = f"{table['database']}.{table['table']}"
        landed = {"RowsLanded": rows[table["partition"]], "FilesLanded": table["objects"], "BytesLanded": table["bytes"]}
        metrics.publish(metrics.RDS, manifest["source"], name, **landed, LandingLag=lag)
    metrics.publish(metrics.RDS, manifest["source"], SnapshotsLanded=1)
