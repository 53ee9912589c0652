"""A snapshot whose column types the table cannot read is registered anyway, in a table version (catalog.versions),
and every snapshot stays queryable through the emulated Athena (DuckDB), which refuses a file whose column type
does not fit its table's type as Athena does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.catalog import (
    IncompatibleColumnType,
    Registration,
    expire_change_log,
    expire_snapshots,
    put_landing_events,
    rds_landings,
    register_landed,
    register_partition,
)
from snaplake.catalog import register as register_module
from snaplake.catalog.settings import CatalogOptions, RetentionPolicy
from snaplake.catalog.versions import STARTED_BY
from snaplake.core.s3 import Bucket
from snaplake_local.emulator import enforce_table_version_ids
from snaplake_local.emulator.athena_engine import AthenaEngine
from snaplake_local.emulator.athena_lake import GlueBackendCatalog, MotoLakeStorage
from snaplake_local.emulator.athena_types import AthenaQueryError

from tests.unit.helpers import ACCOUNT, REGION

LAKE = "snaplake-lake"
FIRST, SECOND, THIRD = "20240501T000000Z", "20240502T000000Z", "20240503T000000Z"


@pytest.fixture
def glue(aws: None) -> Iterator[Any]:
    with enforce_table_version_ids():
        yield boto3.client("glue", region_name=REGION)


@pytest.fixture
def lake(s3: Any) -> Any:
    s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3


def prefix(when: str) -> str:
    return f"lake/rds/shop/customers/snapshot_time={when}/"


def land(s3: Any, when: str, table: pa.Table) -> dict[str, Any]:
    """One complete snapshot partition and the landed.json FinalizeCopy writes for it."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    s3.put_object(Bucket=LAKE, Key=prefix(when) + "1/part-00000.parquet", Body=sink.getvalue().to_pybytes())
    s3.put_object(Bucket=LAKE, Key=prefix(when) + "_SUCCESS", Body=b"")
    return {"lakeBucket": LAKE, "tables": [{"database": "shop", "table": "customers", "partition": prefix(when), "snapshotTime": when}]}


INT_ZIP = pa.table({"id": [1, 2], "zip": pa.array([1000, 2000], pa.int32())})
TEXT_ZIP = pa.table({"id": [3], "zip": ["SW1A 1AA"]})


def register(glue: Any, s3: Any, when: str, table: pa.Table) -> Registration:
    return register_landed(glue, s3, land(s3, when, table))[0]


def query(sql: str) -> list[list[str | None]]:
    engine = AthenaEngine(GlueBackendCatalog(ACCOUNT, REGION), MotoLakeStorage(ACCOUNT), lambda: datetime(2024, 5, 4, tzinfo=UTC))
    return engine.run_sql(sql, "shop").text_rows()


def partitions(glue: Any, table: str) -> list[str]:
    return sorted(p["Values"][0] for p in glue.get_partitions(DatabaseName="shop", TableName=table)["Partitions"])


def columns(glue: Any, table: str) -> list[tuple[str, str]]:
    found = glue.get_table(DatabaseName="shop", Name=table)["Table"]["StorageDescriptor"]["Columns"]
    return [(c["Name"], c["Type"]) for c in found]


def test_an_incompatible_snapshot_starts_a_version_and_both_snapshots_stay_queryable(glue: Any, lake: Any) -> None:
    first = register(glue, lake, FIRST, INT_ZIP)
    second = register(glue, lake, SECOND, TEXT_ZIP)

    assert (first.table, first.table_version, first.table_version_started) == ("customers", 1, False)
    assert (second.table, second.base_table, second.table_version, second.table_version_started) == ("customers__v2", "customers", 2, True)
    assert second.as_json()["tableVersion"] == 2 and second.as_json()["baseTable"] == "customers"
    assert partitions(glue, "customers") == [FIRST] and partitions(glue, "customers__v2") == [SECOND]
    assert columns(glue, "customers") == [("id", "bigint"), ("zip", "int")]
    assert columns(glue, "customers__v2") == [("id", "bigint"), ("zip", "string")]
    assert query("SELECT id, zip FROM customers ORDER BY id") == [["1", "1000"], ["2", "2000"]]
    assert query("SELECT id, zip FROM customers__v2") == [["3", "SW1A 1AA"]]
    assert query("SELECT id, zip FROM customers_latest") == [["3", "SW1A 1AA"]], "_latest reads the newest, in its version's types"
    union = "SELECT id, CAST(zip AS varchar) AS zip FROM customers UNION ALL SELECT id, zip FROM customers__v2 ORDER BY id"
    assert query(union) == [["1", "1000"], ["2", "2000"], ["3", "SW1A 1AA"]]


def test_the_emulated_athena_refuses_a_partition_whose_types_the_table_cannot_read(glue: Any, lake: Any) -> None:
    """What versions avoid: the text partition registered in the int table fails the query, as on Athena."""
    register(glue, lake, FIRST, INT_ZIP)
    land(lake, SECOND, TEXT_ZIP)
    table = glue.get_table(DatabaseName="shop", Name="customers")["Table"]
    descriptor = {**table["StorageDescriptor"], "Location": f"s3://{LAKE}/{prefix(SECOND)}"}
    entry = {"Values": [SECOND], "StorageDescriptor": descriptor}
    glue.batch_create_partition(DatabaseName="shop", TableName="customers", PartitionInputList=[entry])

    with pytest.raises(AthenaQueryError, match="HIVE_BAD_DATA: Field zip's type string"):
        query("SELECT count(*) FROM customers")


def test_registering_the_same_snapshots_again_gives_the_same_versions(glue: Any, lake: Any) -> None:
    register(glue, lake, FIRST, INT_ZIP)
    register(glue, lake, SECOND, TEXT_ZIP)

    again = [register(glue, lake, FIRST, INT_ZIP), register(glue, lake, SECOND, TEXT_ZIP)]

    assert [(r.table, r.table_version, r.partition_registered, r.table_version_started) for r in again] == [
        ("customers", 1, False, False),
        ("customers__v2", 2, False, True),  # still the snapshot that started v2: the same answer on every run
    ]
    assert partitions(glue, "customers") == [FIRST] and partitions(glue, "customers__v2") == [SECOND]
    assert query("SELECT id FROM customers_latest") == [["3"]], "re-registering an older snapshot never moves _latest back"


def test_a_snapshot_returning_to_the_old_type_goes_to_the_newest_version_that_reads_it(glue: Any, lake: Any) -> None:
    register(glue, lake, FIRST, INT_ZIP)
    register(glue, lake, SECOND, TEXT_ZIP)

    third = register(glue, lake, THIRD, pa.table({"id": [4], "zip": pa.array([3000], pa.int16())}))

    assert (third.table, third.table_version, third.table_version_started) == ("customers", 1, False)
    assert partitions(glue, "customers") == [FIRST, THIRD] and partitions(glue, "customers__v2") == [SECOND]
    assert query("SELECT id, zip FROM customers_latest") == [["4", "3000"]]
    assert query("SELECT count(*) FROM customers") == [["3"]]


def test_a_third_incompatible_type_starts_the_next_version(glue: Any, lake: Any) -> None:
    register(glue, lake, FIRST, INT_ZIP)
    register(glue, lake, SECOND, TEXT_ZIP)

    third = register(glue, lake, THIRD, pa.table({"id": [5], "zip": pa.array([1.5], pa.float64())}))

    assert (third.table, third.table_version, third.table_version_started) == ("customers__v3", 3, True)
    assert glue.get_table(DatabaseName="shop", Name="customers__v3")["Table"]["Parameters"]["snaplake_table_version"] == "3"
    assert query("SELECT zip FROM customers_latest") == [["1.5"]]


def test_a_version_another_snapshot_made_unreadable_meanwhile_is_chosen_again(glue: Any, lake: Any, monkeypatch: Any) -> None:
    """Two snapshots choosing at once: the one whose chosen version changed under it re-chooses, never fails."""
    from snaplake.catalog import register as register_module

    register(glue, lake, FIRST, INT_ZIP)
    chosen = register_module.choose_version
    calls = []

    def stale_choice(*args: Any) -> Any:
        calls.append(args)
        version = chosen(*args)
        return register_module.TableVersion("customers", 1, False) if len(calls) == 1 else version

    monkeypatch.setattr(register_module, "choose_version", stale_choice)
    second = register(glue, lake, SECOND, TEXT_ZIP)

    assert second.table == "customers__v2" and len(calls) == 2
    assert columns(glue, "customers") == [("id", "bigint"), ("zip", "int")]


def test_with_partition_projection_an_incompatible_type_still_stops_registration(glue: Any, lake: Any) -> None:
    options = CatalogOptions(projection=True)
    for when in (FIRST, SECOND):
        land(lake, when, INT_ZIP if when == FIRST else TEXT_ZIP)
    register_partition(glue, lake, database="shop", table="customers", bucket=LAKE, partition_prefix=prefix(FIRST), options=options)

    with pytest.raises(IncompatibleColumnType, match="'customers' column 'zip'"):
        register_partition(glue, lake, database="shop", table="customers", bucket=LAKE, partition_prefix=prefix(SECOND), options=options)
    assert glue.get_tables(DatabaseName="shop")["TableList"][0]["Name"] == "customers"


def test_the_landing_event_names_the_version(glue: Any, lake: Any) -> None:
    events = boto3.client("events", region_name=REGION)
    register(glue, lake, FIRST, INT_ZIP)
    landed = land(lake, SECOND, TEXT_ZIP)
    landed["tables"][0].update(rows=1, objects=1, bytes=10)
    registered = [r.as_json() for r in register_landed(glue, lake, landed)]
    request = {"exportTaskIdentifier": "export-1", "snapshotTime": "2024-05-02T00:00:00Z"}

    landing = rds_landings(request, landed, registered)[0]
    put_landing_events(events, "default", [landing])

    detail = landing.detail("2024-05-02T01:00:00Z")
    assert detail["table"] == "customers__v2" and detail["qualifiedTable"] == "shop.customers__v2"
    assert (detail["baseTable"], detail["tableVersion"], detail["tableVersionStarted"]) == ("customers", 2, True)


def test_retention_expires_snapshots_of_every_version_and_keeps_what_latest_reads(glue: Any, lake: Any) -> None:
    registrations = [register(glue, lake, FIRST, INT_ZIP), register(glue, lake, SECOND, TEXT_ZIP)]
    registrations.append(register(glue, lake, THIRD, pa.table({"id": [9], "zip": ["E1"]})))
    policy = RetentionPolicy(keep_count=1)

    passes = expire_snapshots(glue, Bucket(lake, LAKE), registrations[-1:], policy, datetime(2024, 5, 4, tzinfo=UTC), CatalogOptions())

    assert [(p.table, p.expired) for p in passes] == [("customers", ()), ("customers__v2", (SECOND,))]
    assert partitions(glue, "customers") == [FIRST], "each version keeps its newest snapshot"
    assert partitions(glue, "customers__v2") == [THIRD]


def test_a_dynamodb_change_hour_whose_attribute_changed_type_goes_to_a_version_and_both_expire(glue: Any, lake: Any) -> None:
    """Mixed types within one export become text, but an attribute all numbers in one window and all text in the next
    lands as bigint then string."""
    hours = {"2024-05-01/hour=07": pa.table({"new__price": [5]}), "2024-05-01/hour=08": pa.table({"new__price": ["five"]})}
    names = []
    for hour, data in hours.items():
        where = f"lake/dynamodb_changes/orders_changes/dt={hour}/"
        sink = pa.BufferOutputStream()
        pq.write_table(data, sink)
        lake.put_object(Bucket=LAKE, Key=where + "part-00000.parquet", Body=sink.getvalue().to_pybytes())
        names.append(register_partition(glue, lake, database="dynamodb", table="orders_changes", bucket=LAKE, partition_prefix=where).table)
    policy = RetentionPolicy(keep_days=1)

    passes = expire_change_log(
        glue, Bucket(lake, LAKE), "dynamodb", "orders_changes", policy, datetime(2024, 5, 4, tzinfo=UTC), CatalogOptions()
    )

    assert names == ["orders_changes", "orders_changes__v2"]
    assert [p.table for p in passes] == names, "retention looks at every version"


# ---------------------------------------------------------------- which partition started a version
# `tableVersionStarted` (what the docs tell people to put an EventBridge rule on) says whether this partition is the
# one that started its table version, read from Glue (the version table's `snaplake_started_by`), never from whether
# this invocation happened to create the table: a retried step (after LandingEventsNotPut, or a crash between
# CreateTable and registering the partition) or a redelivered input puts the same event again, and of two snapshots
# that start the same version at once only the one that created it says so. Formerly defect D3 of issue 16 item 8.


def attempt(glue: Any, s3: Any, landed: dict[str, Any]) -> dict[str, Any]:
    """What rds_handler does up to PutEvents: register, then build the landing event."""
    registered = [r.as_json() for r in register_landed(glue, s3, landed)]
    request = {"exportTaskIdentifier": "export-2", "snapshotTime": "2024-05-02T00:00:00Z"}
    return rds_landings(request, landed, registered)[0].detail("2024-05-02T01:00:00Z")


def landed_text_zip(s3: Any, when: str = SECOND) -> dict[str, Any]:
    landed = land(s3, when, TEXT_ZIP)
    landed["tables"][0].update(rows=1, objects=1, bytes=10)
    return landed


def test_the_retry_after_landing_events_not_put_still_announces_the_new_version(glue: Any, lake: Any) -> None:
    register_landed(glue, lake, land(lake, FIRST, INT_ZIP))
    landed = landed_text_zip(lake)

    first = attempt(glue, lake, landed)  # PutEvents then fails: LandingEventsNotPut, the step is retried
    retried = attempt(glue, lake, landed)  # the retry: the only landing event that reaches EventBridge

    assert first["tableVersionStarted"] is True
    assert retried == first
    version = glue.get_table(DatabaseName="shop", Name="customers__v2")["Table"]
    assert version["Parameters"][STARTED_BY] == f"s3://{LAKE}/{prefix(SECOND)}"


def test_a_crash_after_creating_the_version_table_announces_it_on_the_retry(glue: Any, lake: Any, monkeypatch: Any) -> None:
    register_landed(glue, lake, land(lake, FIRST, INT_ZIP))
    landed = landed_text_zip(lake)
    register_partitions = register_module.register_partitions

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the Lambda timed out")

    monkeypatch.setattr(register_module, "register_partitions", crash)
    with pytest.raises(RuntimeError):
        attempt(glue, lake, landed)
    assert partitions(glue, "customers__v2") == []  # the version table exists, the partition is not in it
    monkeypatch.setattr(register_module, "register_partitions", register_partitions)

    retried = attempt(glue, lake, landed)

    assert (retried["table"], retried["tableVersionStarted"]) == ("customers__v2", True)


def test_of_two_snapshots_starting_one_version_at_once_only_the_creator_announces_it(glue: Any, lake: Any, monkeypatch: Any) -> None:
    """Both chose `customers__v2` as a version to start; the second one's CreateTable loses and merges into the first's."""
    register_landed(glue, lake, land(lake, FIRST, INT_ZIP))
    chosen = register_module.choose_version
    stale: dict[str, Any] = {}

    def chose_before_the_other_created_it(*args: Any) -> Any:
        version = chosen(*args)
        return stale.setdefault("version", version)  # the second snapshot sees the world as it was for the first

    monkeypatch.setattr(register_module, "choose_version", chose_before_the_other_created_it)
    first = attempt(glue, lake, landed_text_zip(lake, SECOND))
    second = attempt(glue, lake, landed_text_zip(lake, THIRD))

    assert stale["version"].started and stale["version"].table == "customers__v2"
    assert (first["table"], first["tableVersionStarted"]) == ("customers__v2", True)
    assert (second["table"], second["tableVersionStarted"]) == ("customers__v2", False)
    version = glue.get_table(DatabaseName="shop", Name="customers__v2")["Table"]
    assert version["Parameters"][STARTED_BY] == f"s3://{LAKE}/{prefix(SECOND)}"


def test_a_redelivery_racing_the_original_announces_the_version_as_the_original_does(glue: Any, lake: Any, monkeypatch: Any) -> None:
    """The same snapshot registered twice at once: both choose to start v2; the one whose CreateTable loses reads who
    started it, and it was this partition: the same event, `true` in both."""
    register_landed(glue, lake, land(lake, FIRST, INT_ZIP))
    chosen = register_module.choose_version
    stale: dict[str, Any] = {}
    monkeypatch.setattr(register_module, "choose_version", lambda *args: stale.setdefault("version", chosen(*args)))

    original = attempt(glue, lake, landed_text_zip(lake, SECOND))
    redelivered = attempt(glue, lake, landed_text_zip(lake, SECOND))

    assert stale["version"].started
    assert redelivered == original and original["tableVersionStarted"] is True
