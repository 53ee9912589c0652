"""`<table>_latest` reads the newest complete snapshot, moves only forward, and never takes over another table.

The emulated Glue (snaplake_local.emulator.glue) refuses a stale UpdateTable VersionId as AWS does, so two
RegisterCatalog runs interleaved step by step meet the same conflict they would meet on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.catalog import (
    LATEST_OF,
    LATEST_SNAPSHOT_TIME,
    GlueTableCollision,
    LandedManifestInvalid,
    parse_landed_manifest,
    register_landed,
)
from snaplake_local.emulator import enforce_table_version_ids

from tests.unit.helpers import REGION

LAKE = "snaplake-lake"
OLDER, NEWER = "20240501T000000Z", "20240502T000000Z"


def partition(when: str) -> str:
    return f"lake/rds/shop/customers/snapshot_time={when}/"


@pytest.fixture
def glue(aws: None) -> Iterator[Any]:
    with enforce_table_version_ids():
        yield boto3.client("glue", region_name=REGION)


@pytest.fixture
def lake(s3: Any) -> Any:
    s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3


def land(s3: Any, when: str, rows: int, extra: str | None = None) -> dict[str, Any]:
    """One complete snapshot partition (data, then _SUCCESS) and the landed.json FinalizeCopy writes for it."""
    columns: dict[str, Any] = {"id": list(range(rows))}
    if extra:
        columns[extra] = ["x"] * rows
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    s3.put_object(Bucket=LAKE, Key=partition(when) + "1/part-00000.parquet", Body=sink.getvalue().to_pybytes())
    s3.put_object(Bucket=LAKE, Key=partition(when) + "_SUCCESS", Body=b"")
    entry = {"database": "shop", "table": "customers", "partition": partition(when), "snapshotTime": when}
    return {"lakeBucket": LAKE, "tables": [entry]}


def latest(glue: Any) -> dict[str, Any]:
    return dict(glue.get_table(DatabaseName="shop", Name="customers_latest")["Table"])


def reads(glue: Any) -> str:
    return str(latest(glue)["StorageDescriptor"]["Location"])


@pytest.mark.parametrize("order", [(OLDER, NEWER), (NEWER, OLDER)], ids=["in order", "older completes after newer"])
def test_latest_reads_the_newest_snapshot_whatever_order_they_complete_in(glue: Any, lake: Any, order: tuple[str, str]) -> None:
    manifests = {OLDER: land(lake, OLDER, 3), NEWER: land(lake, NEWER, 4, extra="email")}

    moves = [register_landed(glue, lake, manifests[when])[0].latest for when in order]

    assert reads(glue) == f"s3://{LAKE}/{partition(NEWER)}"
    table = latest(glue)
    assert table["Parameters"][LATEST_SNAPSHOT_TIME] == NEWER and table["Parameters"][LATEST_OF] == "customers"
    assert table["PartitionKeys"] == [] and [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "email"]
    assert [m.moved for m in moves if m] == ([True, True] if order[0] == OLDER else [True, False])
    base = glue.get_partitions(DatabaseName="shop", TableName="customers")["Partitions"]
    assert sorted(p["Parameters"][LATEST_SNAPSHOT_TIME] for p in base) == [OLDER, NEWER], "both snapshots stay in the base table"


def test_registering_the_newest_snapshot_again_changes_nothing(glue: Any, lake: Any) -> None:
    manifest = land(lake, NEWER, 4)
    register_landed(glue, lake, manifest)
    versions = len(glue.get_table_versions(DatabaseName="shop", TableName="customers_latest")["TableVersions"])

    again = register_landed(glue, lake, manifest)[0]

    assert again.latest is not None and not again.latest.moved
    assert len(glue.get_table_versions(DatabaseName="shop", TableName="customers_latest")["TableVersions"]) == versions


class StepByStep:
    """A Glue client that runs `other` (another RegisterCatalog) right before this one's first write of `_latest`."""

    def __init__(self, glue: Any, other: Callable[[], Any]) -> None:
        self.glue, self.other, self.latest_writes = glue, other, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.glue, name)

    def _before_latest_write(self, request: dict[str, Any]) -> None:
        if request["TableInput"]["Name"] == "customers_latest":
            self.latest_writes += 1
            if self.latest_writes == 1:
                self.other()

    def update_table(self, **request: Any) -> Any:
        self._before_latest_write(request)
        return self.glue.update_table(**request)

    def create_table(self, **request: Any) -> Any:
        self._before_latest_write(request)
        return self.glue.create_table(**request)


@pytest.mark.parametrize("first_lands", [OLDER, NEWER])
@pytest.mark.parametrize("mine", [OLDER, NEWER])
def test_two_runs_interleaved_step_by_step_never_regress(glue: Any, lake: Any, first_lands: str, mine: str) -> None:
    """A run reads `_latest`, another run moves it in between, the first run's write meets the conflict
    (VersionId, or AlreadyExists on the first creation), reads again and moves only forward."""
    theirs = NEWER if mine == OLDER else OLDER
    manifests = {OLDER: land(lake, OLDER, 3), NEWER: land(lake, NEWER, 4)}
    if first_lands != mine:  # `_latest` exists before the race: the race is an UpdateTable against an UpdateTable
        register_landed(glue, lake, land(lake, "20240101T000000Z", 1))
    interleaved = StepByStep(glue, lambda: register_landed(glue, lake, manifests[theirs]))

    move = register_landed(interleaved, lake, manifests[mine])[0].latest

    assert interleaved.latest_writes >= 1
    assert reads(glue) == f"s3://{LAKE}/{partition(NEWER)}"
    assert latest(glue)["Parameters"][LATEST_SNAPSHOT_TIME] == NEWER
    assert move is not None and move.snapshot_time == NEWER and move.moved == (mine == NEWER)


def test_a_users_table_named_like_the_latest_view_is_never_taken_over(glue: Any, lake: Any) -> None:
    glue.create_database(DatabaseInput={"Name": "shop"})
    mine = {
        "Name": "customers_latest",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint"}], "Location": f"s3://{LAKE}/analyst/customers/"},
    }
    glue.create_table(DatabaseName="shop", TableInput=mine)

    with pytest.raises(GlueTableCollision, match=r"shop\.customers_latest is not snaplake's latest-view of shop\.customers"):
        register_landed(glue, lake, land(lake, NEWER, 4))

    assert reads(glue) == f"s3://{LAKE}/analyst/customers/" and LATEST_OF not in latest(glue)["Parameters"]
    assert len(glue.get_partitions(DatabaseName="shop", TableName="customers")["Partitions"]) == 1, "the snapshot itself is registered"


def test_a_source_table_named_x_latest_and_the_latest_view_of_x_are_refused_either_way(glue: Any, lake: Any) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": [1]}), sink)
    own = "lake/rds/shop/customers_latest/snapshot_time=20240101T000000Z/"
    lake.put_object(Bucket=LAKE, Key=own + "1/part-00000.parquet", Body=sink.getvalue().to_pybytes())
    source_table = {"lakeBucket": LAKE, "tables": [{"database": "shop", "table": "customers_latest", "partition": own}]}
    register_landed(glue, lake, source_table)

    with pytest.raises(GlueTableCollision):
        register_landed(glue, lake, land(lake, NEWER, 4))
    assert reads(glue) == f"s3://{LAKE}/lake/rds/shop/customers_latest/", "the source table keeps its folder"


def test_a_manifest_without_snapshot_times_takes_them_from_the_partition(glue: Any, lake: Any) -> None:
    manifest = land(lake, NEWER, 4)
    del manifest["tables"][0]["snapshotTime"]  # a plan made before snapshotTime was recorded

    register_landed(glue, lake, manifest)

    assert latest(glue)["Parameters"][LATEST_SNAPSHOT_TIME] == NEWER


def test_a_malformed_snapshot_time_in_the_manifest_is_refused() -> None:
    entry = {"database": "shop", "table": "t", "partition": "rds/shop/t/k=1/", "snapshotTime": "2024-05-02"}
    body = json.dumps({"lakeBucket": LAKE, "tables": [entry]}).encode()
    with pytest.raises(LandedManifestInvalid, match="snapshotTime"):
        parse_landed_manifest(body, "s3://plans/landed.json", lake_bucket=LAKE)
