"""A retention record lives in the table version that expired the snapshot, but a re-registration of that snapshot
(its execution re-run, documented in docs/catalog.md#retention) may go to another version (rule 3: the newest version
whose columns it fits; rule 2 only looks at partitions still registered). The base table's pass must then drop its
record instead of purging the objects of a partition that __v2 registers and keeps (found by a hostile review: before
the fix the files were deleted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyarrow as pa
from snaplake.catalog import expire_snapshots, register_landed
from snaplake.catalog.settings import CatalogOptions, RetentionPolicy
from snaplake.core.s3 import Bucket
from snaplake_local.emulator import enforce_table_version_ids

from tests.unit.helpers import REGION
from tests.unit.test_catalog_versions import LAKE, land, prefix

S0, S1, S2, S3, S4 = "20240501T000000Z", "20240502T000000Z", "20240503T000000Z", "20240504T000000Z", "20240505T000000Z"
INT_ZIP = pa.table({"id": [1], "zip": pa.array([1000], pa.int32())})
NO_ZIP = pa.table({"id": [2]})  # the column was dropped in this snapshot
TEXT_ZIP = pa.table({"id": [3], "zip": ["SW1A 1AA"]})


def partitions(glue: Any, table: str) -> list[str]:
    return sorted(p["Values"][0] for p in glue.get_partitions(DatabaseName="shop", TableName=table)["Partitions"])


def test_a_re_registered_expired_snapshot_in_another_version_keeps_its_files(s3: Any) -> None:
    with enforce_table_version_ids():
        glue = boto3.client("glue", region_name=REGION)
        s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
        lake, options, policy = Bucket(s3, LAKE), CatalogOptions(), RetentionPolicy(keep_count=2)
        manifests = {}
        for when, data in ((S0, INT_ZIP), (S1, NO_ZIP), (S2, TEXT_ZIP), (S3, INT_ZIP), (S4, INT_ZIP)):
            manifests[when] = land(s3, when, data)
            registrations = register_landed(glue, s3, manifests[when])
        assert partitions(glue, "customers") == [S0, S1, S3, S4] and partitions(glue, "customers__v2") == [S2]

        day6 = datetime(2024, 5, 6, tzinfo=UTC)
        expire_snapshots(glue, lake, registrations, policy, day6, options)
        assert partitions(glue, "customers") == [S3, S4]  # S0 and S1 left Glue, recorded in customers

        # S1's execution is re-run (its files are still there, inside the grace): it registers again...
        again = register_landed(glue, s3, manifests[S1])
        assert again[0].table == "customers__v2", again[0]  # ...in another version than the one holding its record
        expire_snapshots(glue, lake, again, policy, day6 + timedelta(hours=1), options)
        assert S1 in partitions(glue, "customers__v2"), "kept by the policy in __v2 (2 newest)"

        # the next RegisterCatalog, after the 5 h grace
        expire_snapshots(glue, lake, again, policy, day6 + timedelta(hours=7), options)
        assert S1 in partitions(glue, "customers__v2"), "still registered and kept"
        left = s3.list_objects_v2(Bucket=LAKE, Prefix=prefix(S1)).get("KeyCount", 0)
        assert left > 0, f"{S1} is registered in customers__v2 but the base table's retention record purged its files"
