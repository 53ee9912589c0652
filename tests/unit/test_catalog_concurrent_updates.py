"""Two writers merging columns into one Glue table at once both keep their columns.

UpdateTable names the version it merged into (Glue's optimistic locking); the emulated Glue
(snaplake_local.emulator.glue) refuses a stale VersionId with ConcurrentModificationException as AWS
does, where plain moto would let the second writer overwrite the first one's columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from snaplake.catalog import CatalogOptions, Column, LandedPartition, upsert_table
from snaplake_local.emulator import enforce_table_version_ids

from tests.unit.helpers import REGION

PARTITION = LandedPartition("snaplake-lake", "dynamodb_stream_changes/orders/", ("dt", "hour"), ("2026-12-04", "10"))
OPTIONS = CatalogOptions()
BASE = [Column("change_type", "string")]


@pytest.fixture
def glue(aws: None) -> Iterator[Any]:
    client = boto3.client("glue", region_name=REGION)
    client.create_database(DatabaseInput={"Name": "dynamodb"})
    with enforce_table_version_ids():
        yield client


class InterleavedGlue:
    """A Glue client whose first UpdateTable lets another writer's whole upsert run just before it."""

    def __init__(self, glue: Any, other_writer: Any) -> None:
        self.glue = glue
        self.other_writer = other_writer
        self.updates = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.glue, name)

    def update_table(self, **request: Any) -> Any:
        self.updates += 1
        if self.updates == 1:
            self.other_writer()
        return self.glue.update_table(**request)


def columns(glue: Any) -> list[str]:
    table = glue.get_table(DatabaseName="dynamodb", Name="orders_stream_changes")["Table"]
    return [c["Name"] for c in table["StorageDescriptor"]["Columns"]]


def test_two_writers_adding_other_columns_at_once_keep_both(glue: Any) -> None:
    upsert_table(glue, "dynamodb", "orders_stream_changes", PARTITION, BASE, OPTIONS)

    def shard_b() -> None:
        upsert_table(glue, "dynamodb", "orders_stream_changes", PARTITION, [*BASE, Column("new__coupon", "string")], OPTIONS)

    shard_a = InterleavedGlue(glue, shard_b)
    change = upsert_table(shard_a, "dynamodb", "orders_stream_changes", PARTITION, [*BASE, Column("new__gift", "boolean")], OPTIONS)

    assert shard_a.updates == 2  # the stale update was refused and the merge done again on B's version
    assert sorted(columns(glue)) == ["change_type", "new__coupon", "new__gift"]
    assert [c.name for c in change.added] == ["new__gift"]


def test_a_stale_version_id_is_refused_by_the_emulated_glue_and_changes_nothing(glue: Any) -> None:
    upsert_table(glue, "dynamodb", "orders_stream_changes", PARTITION, BASE, OPTIONS)
    table = glue.get_table(DatabaseName="dynamodb", Name="orders_stream_changes")["Table"]
    upsert_table(glue, "dynamodb", "orders_stream_changes", PARTITION, [*BASE, Column("new__coupon", "string")], OPTIONS)
    stale = {k: table[k] for k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")}
    with pytest.raises(ClientError, match="ConcurrentModificationException"):
        glue.update_table(DatabaseName="dynamodb", TableInput=stale, VersionId=table["VersionId"])
    assert "new__coupon" in columns(glue)


def test_a_writer_that_keeps_losing_the_race_gives_up_with_glues_error(glue: Any) -> None:
    upsert_table(glue, "dynamodb", "orders_stream_changes", PARTITION, BASE, OPTIONS)

    class AlwaysRaced(InterleavedGlue):
        def update_table(self, **request: Any) -> Any:
            self.updates += 1
            upsert_table(glue, "dynamodb", "orders_stream_changes", PARTITION, [*BASE, Column(f"new__c{self.updates}", "string")], OPTIONS)
            return self.glue.update_table(**request)

    raced = AlwaysRaced(glue, None)
    with pytest.raises(ClientError, match="ConcurrentModificationException"):
        upsert_table(raced, "dynamodb", "orders_stream_changes", PARTITION, [*BASE, Column("new__gift", "boolean")], OPTIONS)
    assert raced.updates == 5
    assert "new__gift" not in columns(glue)
