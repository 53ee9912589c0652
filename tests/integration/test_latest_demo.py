"""The demo's `_latest` and retention section on the emulated stack: the emulated Athena (DuckDB over moto's S3)
counts both snapshots in shop.customers and only the newest in shop.customers_latest; a retention pass keeping one
snapshot takes the oldest out of Glue at once and out of S3 after the grace, and `_latest` still answers."""

from __future__ import annotations

from typing import Any

from snaplake_local.latest_demo import run_latest_demo
from snaplake_local.sources import default_parameters, sample_event, seed_sample_sources
from snaplake_local.stack import EmulatedStack


def test_latest_counts_the_newest_snapshot_and_retention_removes_the_oldest() -> None:
    printed: list[str] = []
    with EmulatedStack(default_parameters(), function_log_level="WARNING") as stack:
        seed_sample_sources(stack)
        for name in ("rds_manual_instance_snapshot.json", "rds_latest_snapshot_request.json"):
            assert stack.run("RdsExportStateMachine", sample_event(name)).status == "SUCCEEDED"
        glue: Any = stack.client("glue")
        snapshots = sorted(p["Values"][0] for p in glue.get_partitions(DatabaseName="shop", TableName="customers")["Partitions"])
        assert len(snapshots) == 2, snapshots

        assert run_latest_demo(stack, printed.append), "\n".join(printed)

        left = [p["Values"][0] for p in glue.get_partitions(DatabaseName="shop", TableName="customers")["Partitions"]]
        assert left == [snapshots[1]]
        keys = [o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=stack.lake_bucket, Prefix="rds/shop/customers/")["Contents"]]
        assert keys and all(f"snapshot_time={snapshots[1]}/" in key for key in keys)
    counts = [line for line in printed if "->" in line]
    assert "shop.customers holds 8 rows, shop.customers_latest 4" in counts[0]
    assert "shop.customers holds 4 rows, shop.customers_latest 4" in counts[1]
