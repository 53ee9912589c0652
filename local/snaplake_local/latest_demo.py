"""The demo's `<table>_latest` and retention section: the emulated Athena counts shop.customers (every snapshot) and
shop.customers_latest (the newest), then a retention pass (what RdsCatalogFunction runs after each snapshot with
SnapshotRetentionCount=1) takes the oldest snapshot out of Glue at once and out of S3 after the query grace."""

from __future__ import annotations

from collections.abc import Callable

from snaplake.athena import AthenaSettings
from snaplake.catalog import QUERY_GRACE, CatalogOptions, RetentionPolicy, expire_snapshot_table, get_table
from snaplake.core import Bucket

from snaplake_local.report import athena_answer
from snaplake_local.stack import EmulatedStack

Printer = Callable[[str], None]
DATABASE, TABLE = "shop", "customers"


def run_latest_demo(stack: EmulatedStack, echo: Printer) -> bool:
    """True when `_latest` counts the newest snapshot's rows before and after the retention pass removed the oldest."""
    echo(f"\n{DATABASE}.{TABLE}_latest: the newest complete snapshot of {DATABASE}.{TABLE} (see docs/catalog.md)")
    before = _counts(stack, echo)
    if len(before) < 2:
        echo(f"  needs two snapshots of {DATABASE}.{TABLE}; found {len(before)}")
        return False
    ok = before["_latest"] == before[max(k for k in before if k != "_latest")]
    glue, lake = stack.client("glue"), Bucket(stack.client("s3"), stack.lake_bucket)
    policy = RetentionPolicy(keep_count=1)
    echo("\nretention pass with SnapshotRetentionCount=1 (RdsCatalogFunction runs it after registering a snapshot):")
    now = stack.clock.now()
    for label, at in (("now", now), (f"{QUERY_GRACE} later", now + QUERY_GRACE)):
        passed = expire_snapshot_table(glue, lake, DATABASE, TABLE, policy, at, CatalogOptions())
        partitions = glue.get_partitions(DatabaseName=DATABASE, TableName=TABLE)["Partitions"]
        in_s3 = sorted({key.split("snapshot_time=")[1].split("/")[0] for key in _keys(stack)})
        echo(
            f"  {label}: out of Glue {list(passed.expired)}, objects deleted {list(passed.purged)}; Glue holds "
            f"{sorted(p['Values'][0] for p in partitions)}, S3 holds {in_s3}"
        )
    after = _counts(stack, echo)
    latest = get_table(glue, DATABASE, f"{TABLE}_latest", CatalogOptions()) or {}
    echo(f"  {TABLE}_latest still reads {latest.get('StorageDescriptor', {}).get('Location')}")
    return ok and len(after) == 2 and after["_latest"] == before["_latest"]


def _keys(stack: EmulatedStack) -> list[str]:
    pages = stack.client("s3").get_paginator("list_objects_v2").paginate(Bucket=stack.lake_bucket, Prefix=f"rds/{DATABASE}/{TABLE}/")
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _counts(stack: EmulatedStack, echo: Printer) -> dict[str, int]:
    """Rows per snapshot of the base table, and of `_latest`, as the emulated Athena answers them."""
    settings = AthenaSettings.from_env(stack.environment("AthenaQueryFunction"))
    sql = (
        f"SELECT snapshot_time, count(*) FROM {DATABASE}.{TABLE} GROUP BY 1 "
        f"UNION ALL SELECT '_latest', count(*) FROM {DATABASE}.{TABLE}_latest ORDER BY 1"
    )
    _, rows = athena_answer(
        stack.client("athena"), stack.clock.advance, sql, work_group=settings.work_group, output_location=settings.output_location
    )
    counts = {str(snapshot): int(str(count)) for snapshot, count in rows}
    base = sum(count for snapshot, count in counts.items() if snapshot != "_latest")
    echo(f"  {sql}")
    echo(f"    -> {counts}: {DATABASE}.{TABLE} holds {base} rows, {DATABASE}.{TABLE}_latest {counts.get('_latest')}")
    return counts
