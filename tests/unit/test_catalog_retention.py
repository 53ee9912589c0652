"""Retention: expired snapshots leave Glue first and S3 after the query grace period; never the newest, never what
`<table>_latest` reads, and every rerun after a crash converges."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.catalog import (
    EXPIRED,
    QUERY_GRACE,
    CatalogOptions,
    RetentionFailed,
    RetentionPolicy,
    apply_retention,
    change_hour_end,
    expire_snapshot_table,
    expire_snapshots,
    register_landed,
    register_partition,
)
from snaplake.core import Bucket
from snaplake_local.emulator import enforce_table_version_ids

from tests.unit.helpers import REGION

LAKE = "snaplake-lake"
DAYS = ["20240501T000000Z", "20240502T000000Z", "20240503T000000Z", "20240504T000000Z"]
NOW = datetime(2024, 5, 4, 12, tzinfo=UTC)
OPTIONS = CatalogOptions()
PROJECTED = CatalogOptions(projection=True)


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


def land(s3: Any, prefix: str) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": [1, 2]}), sink)
    s3.put_object(Bucket=LAKE, Key=prefix + "1/part-00000.parquet", Body=sink.getvalue().to_pybytes())
    s3.put_object(Bucket=LAKE, Key=prefix + "1/_SUCCESS", Body=b"")
    s3.put_object(Bucket=LAKE, Key=prefix + "_SUCCESS", Body=b"")


def land_snapshots(glue: Any, s3: Any, *times: str, options: CatalogOptions = OPTIONS) -> None:
    for when in times:
        land(s3, partition(when))
        entry = {"database": "shop", "table": "customers", "partition": partition(when), "snapshotTime": when}
        register_landed(glue, s3, {"lakeBucket": LAKE, "tables": [entry]}, options=options)


def registered(glue: Any, table: str = "customers", database: str = "shop") -> list[str]:
    return sorted("/".join(p["Values"]) for p in glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"])


def in_s3(s3: Any, prefix: str = "lake/rds/shop/customers/") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=LAKE, Prefix=prefix).get("Contents", []))


def snapshots_in_s3(s3: Any) -> list[str]:
    return sorted({key.split("snapshot_time=")[1].split("/")[0] for key in in_s3(s3)})


def records(glue: Any, table: str = "customers", database: str = "shop") -> list[str]:
    parameters = glue.get_table(DatabaseName=database, Name=table)["Table"]["Parameters"]
    return sorted(key.removeprefix(EXPIRED) for key in parameters if key.startswith(EXPIRED))


def expire(glue: Any, s3: Any, policy: RetentionPolicy, now: datetime = NOW, options: CatalogOptions = OPTIONS) -> Any:
    return expire_snapshot_table(glue, Bucket(s3, LAKE), "shop", "customers", policy, now, options)


def projected(glue: Any) -> list[str]:
    parameters = glue.get_table(DatabaseName="shop", Name="customers")["Table"]["Parameters"]
    assert parameters["projection.snapshot_time.type"] == "enum"
    return parameters["projection.snapshot_time.values"].split(",")


def queried(glue: Any, options: CatalogOptions) -> list[str]:
    """The snapshots a query reads: the registered partitions, or with partition projection the enum's values."""
    if options.projection:
        assert registered(glue) == [], "projection registers no partitions"
        return projected(glue)
    return registered(glue)


@pytest.mark.parametrize("options", [OPTIONS, PROJECTED], ids=["registered-partitions", "projection-enum"])
def test_keeps_the_newest_n_and_removes_the_rest_from_glue_then_from_s3_after_the_grace(
    glue: Any, lake: Any, options: CatalogOptions
) -> None:
    """With registered partitions they leave Glue; with partition projection the snapshot_time enum."""
    land_snapshots(glue, lake, *DAYS, options=options)
    policy = RetentionPolicy(keep_count=2)

    first = expire(glue, lake, policy, options=options)

    assert first.expired == (DAYS[0], DAYS[1]) and first.purged == ()
    assert queried(glue, options) == DAYS[2:], "out of Glue at once: no new query plans them"
    assert snapshots_in_s3(lake) == DAYS, "their objects stay while a query that planned them may still read them"
    assert records(glue) == DAYS[:2]

    early = expire(glue, lake, policy, NOW + QUERY_GRACE - timedelta(seconds=1), options=options)
    assert early.purged == () and snapshots_in_s3(lake) == DAYS

    late = expire(glue, lake, policy, NOW + QUERY_GRACE, options=options)
    assert late.purged == (DAYS[0], DAYS[1]) and late.expired == ()
    assert snapshots_in_s3(lake) == DAYS[2:] and records(glue) == []
    assert queried(glue, options) == DAYS[2:]


def test_retention_zero_deletes_nothing(glue: Any, lake: Any) -> None:
    land_snapshots(glue, lake, *DAYS)
    objects = in_s3(lake)

    registrations = register_landed(glue, lake, {"lakeBucket": LAKE, "tables": []})
    assert expire_snapshots(glue, Bucket(lake, LAKE), registrations, RetentionPolicy(), NOW + timedelta(days=999), OPTIONS) == []
    assert expire(glue, lake, RetentionPolicy(), NOW + timedelta(days=999)).expired == ()
    assert (
        apply_retention(
            glue,
            Bucket(lake, LAKE),
            database="shop",
            table="customers",
            policy=RetentionPolicy(),
            partition_time=change_hour_end,
            now=NOW,
            options=OPTIONS,
        ).expired
        == ()
    )
    assert registered(glue) == DAYS and in_s3(lake) == objects


def test_days_keep_the_younger_snapshots_and_always_the_newest(glue: Any, lake: Any) -> None:
    land_snapshots(glue, lake, *DAYS)

    result = expire(glue, lake, RetentionPolicy(keep_days=3))
    assert result.expired == (DAYS[0],) and registered(glue) == DAYS[1:]

    long_after = NOW + timedelta(days=400)
    expire(glue, lake, RetentionPolicy(keep_days=3), long_after)
    expire(glue, lake, RetentionPolicy(keep_days=3), long_after + QUERY_GRACE)
    assert registered(glue) == DAYS[3:] and snapshots_in_s3(lake) == DAYS[3:], "every snapshot is old: the newest stays"


def test_count_and_days_together_keep_what_either_keeps(glue: Any, lake: Any) -> None:
    land_snapshots(glue, lake, *DAYS)

    result = expire(glue, lake, RetentionPolicy(keep_count=1, keep_days=3))

    assert result.expired == (DAYS[0],), "the days rule still wants DAYS[1] and DAYS[2] (younger than 3 days at NOW)"


def test_a_backfill_of_an_older_snapshot_never_removes_the_newest(glue: Any, lake: Any) -> None:
    land_snapshots(glue, lake, DAYS[3])
    land_snapshots(glue, lake, DAYS[0])  # an old snapshot exported now

    expire(glue, lake, RetentionPolicy(keep_count=1))
    expire(glue, lake, RetentionPolicy(keep_count=1), NOW + QUERY_GRACE)

    assert registered(glue) == [DAYS[3]] and snapshots_in_s3(lake) == [DAYS[3]]
    latest = glue.get_table(DatabaseName="shop", Name="customers_latest")["Table"]
    assert latest["StorageDescriptor"]["Location"] == f"s3://{LAKE}/{partition(DAYS[3])}"


def test_the_snapshot_latest_reads_is_never_removed(glue: Any, lake: Any) -> None:
    """Whatever the times say (a newer partition registered by hand, not complete): `_latest` keeps its snapshot."""
    land_snapshots(glue, lake, DAYS[0], DAYS[1])
    land(lake, partition(DAYS[3]))
    register_partition(glue, lake, database="shop", table="customers", bucket=LAKE, partition_prefix=partition(DAYS[3]))

    result = expire(glue, lake, RetentionPolicy(keep_count=1))

    assert result.expired == (DAYS[0],) and registered(glue) == [DAYS[1], DAYS[3]]


class CrashAfter:
    """A client that fails the first call of `operation` after letting it through (`after=True`) or before it."""

    def __init__(self, client: Any, operation: str, after: bool) -> None:
        self.client, self.operation, self.after, self.crashed = client, operation, after, False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name != self.operation or self.crashed:
            return method

        def crash(**request: Any) -> Any:
            self.crashed = True
            if self.after:
                method(**request)
            raise RuntimeError(f"crash around {name}")

        return crash


@pytest.mark.parametrize(
    ("client", "operation", "after"),
    [
        ("glue", "update_table", True),  # the record written, the partitions still in Glue
        ("glue", "batch_delete_partition", True),  # out of Glue, the pass never finished
        ("s3", "delete_objects", True),  # _SUCCESS deleted, the data still there
        ("s3", "delete_objects", False),  # nothing deleted yet
    ],
)
def test_a_rerun_after_a_crash_anywhere_converges(glue: Any, lake: Any, client: str, operation: str, after: bool) -> None:
    land_snapshots(glue, lake, *DAYS)
    policy = RetentionPolicy(keep_count=2)
    if client == "s3":
        expire(glue, lake, policy)
        crashing_s3 = CrashAfter(lake, operation, after)
        with pytest.raises(RuntimeError):
            expire_snapshot_table(glue, Bucket(crashing_s3, LAKE), "shop", "customers", policy, NOW + QUERY_GRACE, OPTIONS)
        if after:
            assert f"{partition(DAYS[0])}_SUCCESS" not in in_s3(lake), "_SUCCESS goes first"
            assert f"{partition(DAYS[0])}1/part-00000.parquet" in in_s3(lake)
    else:
        crashing_glue = CrashAfter(glue, operation, after)
        with pytest.raises(RuntimeError):
            expire_snapshot_table(crashing_glue, Bucket(lake, LAKE), "shop", "customers", policy, NOW, OPTIONS)
        assert snapshots_in_s3(lake) == DAYS, "nothing leaves S3 before it left Glue"

    if client == "s3":
        expire(glue, lake, policy, NOW + QUERY_GRACE + timedelta(minutes=1))  # the rerun deletes what is left
    else:
        rerun_at = NOW + timedelta(hours=1)
        expire(glue, lake, policy, rerun_at)
        assert snapshots_in_s3(lake) == DAYS, "the grace counts from the last removal from Glue"
        if operation == "update_table":  # the crashed pass recorded them at NOW but never took them out of Glue
            expire(glue, lake, policy, NOW + QUERY_GRACE)
            assert snapshots_in_s3(lake) == DAYS, "the record was renewed when the rerun took them out of Glue"
        expire(glue, lake, policy, rerun_at + QUERY_GRACE)

    assert registered(glue) == DAYS[2:] and snapshots_in_s3(lake) == DAYS[2:] and records(glue) == []


def test_a_record_naming_another_folder_deletes_nothing(glue: Any, lake: Any) -> None:
    land_snapshots(glue, lake, *DAYS)
    land(lake, "lake/rds/shop/orders/snapshot_time=20240501T000000Z/")
    table = glue.get_table(DatabaseName="shop", Name="customers")["Table"]
    forged = {k: table[k] for k in ("Name", "TableType", "Parameters", "PartitionKeys", "StorageDescriptor")}
    forged["Parameters"] = {
        **table["Parameters"],
        f"{EXPIRED}x": '{"location": "s3://snaplake-lake/lake/rds/shop/orders/", "expiredAt": "2024-01-01T00:00:00Z"}',
    }
    glue.update_table(DatabaseName="shop", TableInput=forged)

    from snaplake.catalog import RetentionFailed

    with pytest.raises(RetentionFailed, match="not a partition of"):
        expire(glue, lake, RetentionPolicy(keep_count=4))
    assert in_s3(lake, "lake/rds/shop/orders/")


def test_change_log_hours_older_than_the_days_leave_glue_then_s3(glue: Any, lake: Any) -> None:
    hours = [("2024-04-30", "23"), ("2024-05-01", "00"), ("2024-05-03", "11")]
    for day, hour in hours:
        prefix = f"lake/dynamodb_changes/orders/dt={day}/hour={hour}/"
        land(lake, prefix)
        register_partition(glue, lake, database="dynamodb", table="orders_changes", bucket=LAKE, partition_prefix=prefix)
    policy = RetentionPolicy(keep_days=3)
    now = datetime(2024, 5, 4, 0, 30, tzinfo=UTC)  # 2024-04-30 23:00-24:00 ended more than 3 days ago, 05-01 00:00 did not

    def run(at: datetime) -> Any:
        return apply_retention(
            glue,
            Bucket(lake, LAKE),
            database="dynamodb",
            table="orders_changes",
            policy=policy,
            partition_time=change_hour_end,
            now=at,
            options=OPTIONS,
        )

    assert run(now).expired == ("2024-04-30/23",)
    assert registered(glue, "orders_changes", "dynamodb") == ["2024-05-01/00", "2024-05-03/11"]
    later = run(now + QUERY_GRACE)
    assert later.purged == ("2024-04-30/23",) and later.expired == ("2024-05-01/00",), "05-01 00:00-01:00 is 3 days old by then"
    assert not in_s3(lake, "lake/dynamodb_changes/orders/dt=2024-04-30/")


def test_turning_retention_off_still_finishes_what_an_earlier_pass_began(glue: Any, lake: Any) -> None:
    land_snapshots(glue, lake, *DAYS)
    expire(glue, lake, RetentionPolicy(keep_count=2))
    land_snapshots(glue, lake, DAYS[0])  # its execution re-run: registered again, and with retention off it stays

    off = expire(glue, lake, RetentionPolicy(), NOW + QUERY_GRACE)

    assert off.expired == () and off.purged == (DAYS[1],)
    assert registered(glue) == [DAYS[0], *DAYS[2:]] and snapshots_in_s3(lake) == [DAYS[0], *DAYS[2:]]
    assert records(glue) == [], "the re-registered snapshot's record is dropped, not purged later"


def test_a_snapshot_registered_again_while_the_pass_runs_keeps_its_objects(glue: Any, lake: Any, monkeypatch: Any) -> None:
    """A re-run registers an expired snapshot again after the pass listed the partitions and before it purges: the
    pass asks Glue again right before the purge and only drops the record."""
    from snaplake.catalog import retention

    land_snapshots(glue, lake, *DAYS)
    expire(glue, lake, RetentionPolicy(keep_count=2))
    listed = retention._registered_partitions

    def rerun_after_listing(*args: Any) -> Any:
        found = listed(*args)
        land_snapshots(glue, lake, DAYS[0])  # its execution re-run, interleaved
        return found

    monkeypatch.setattr(retention, "_registered_partitions", rerun_after_listing)
    later = expire(glue, lake, RetentionPolicy(keep_count=4), NOW + QUERY_GRACE)

    assert later.purged == (DAYS[1],)
    assert registered(glue) == [DAYS[0], *DAYS[2:]]
    assert snapshots_in_s3(lake) == [DAYS[0], *DAYS[2:]], "a registered snapshot's objects were purged"
    assert records(glue) == []


# ---------------------------------------------------------------------------- partition projection (snapshot_time enum)
def land_projected(glue: Any, s3: Any, *times: str) -> None:
    land_snapshots(glue, s3, *times, options=PROJECTED)


def expire_projected(glue: Any, s3: Any, policy: RetentionPolicy, now: datetime = NOW) -> Any:
    return expire(glue, s3, policy, now, options=PROJECTED)


def test_with_projection_a_snapshot_registered_again_before_its_purge_keeps_its_objects(glue: Any, lake: Any) -> None:
    land_projected(glue, lake, *DAYS)
    expire_projected(glue, lake, RetentionPolicy(keep_count=2))
    land_projected(glue, lake, DAYS[0])  # its execution re-run: the snapshot is back in the enum

    later = expire_projected(glue, lake, RetentionPolicy(keep_count=4), NOW + QUERY_GRACE)

    assert later.purged == (DAYS[1],)
    assert projected(glue) == [DAYS[0], *DAYS[2:]]
    assert snapshots_in_s3(lake) == [DAYS[0], *DAYS[2:]] and records(glue) == []


def test_with_projection_a_snapshot_landing_during_the_pass_stays_in_the_enum(glue: Any, lake: Any) -> None:
    """The enum is rewritten on the table version read: a registration in between makes the write fail, and the
    retry keeps the value it added."""
    land_projected(glue, lake, *DAYS[:3])
    update_table = glue.update_table
    interleaved: list[bool] = []

    def registration_first(**request: Any) -> Any:
        if not interleaved:
            interleaved.append(True)
            land_projected(glue, lake, DAYS[3])
        return update_table(**request)

    glue.update_table = registration_first
    try:
        result = expire_projected(glue, lake, RetentionPolicy(keep_count=1))
    finally:
        glue.update_table = update_table

    assert interleaved and result.expired == (DAYS[0], DAYS[1])
    assert projected(glue) == DAYS[2:] and records(glue) == DAYS[:2]


def test_with_projection_a_table_projected_by_date_ranges_refuses_retention_by_name(glue: Any, lake: Any) -> None:
    land_projected(glue, lake, *DAYS[:2])
    table = glue.get_table(DatabaseName="shop", Name="customers")["Table"]
    parameters = {k: v for k, v in table["Parameters"].items() if not k.startswith("projection.snapshot_time.")}
    parameters.update({"projection.snapshot_time.type": "date", "projection.snapshot_time.range": f"{DAYS[0]},NOW"})
    fields = ("Name", "TableType", "PartitionKeys", "StorageDescriptor")
    glue.update_table(DatabaseName="shop", TableInput={**{k: table[k] for k in fields}, "Parameters": parameters})

    with pytest.raises(RetentionFailed, match="enum-projected"):
        expire_projected(glue, lake, RetentionPolicy(keep_count=1))
    assert snapshots_in_s3(lake) == DAYS[:2]
