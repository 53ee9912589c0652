"""D1: an incremental window whose attribute changed type publishes into a change hour that an earlier window already
filled and registered (windows start at the checkpoint, not on an hour boundary, and files are named
`<export id>-<n>.parquet`, so two exports share dt=/hour= partitions). The docs promise that `<table>_changes`
registers such a partition in a table version; instead registration fails for good and the base table becomes
unqueryable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.catalog import register_partition
from snaplake_local.emulator import enforce_table_version_ids
from snaplake_local.emulator.athena_engine import AthenaEngine
from snaplake_local.emulator.athena_lake import GlueBackendCatalog, MotoLakeStorage

from tests.unit.helpers import ACCOUNT, REGION

# Fails until the defect is fixed; then it passes and strict xfail fails the suite: remove this mark.
pytestmark = pytest.mark.xfail(
    strict=True,
    reason="open defect D1 of issue 16 item 8, docs/dynamodb.md#known-defects",
)

LAKE = "snaplake-lake"
HOUR7 = "lake/dynamodb_changes/orders/dt=2024-05-01/hour=07/"
HOUR8 = "lake/dynamodb_changes/orders/dt=2024-05-01/hour=08/"


def put(s3: Any, key: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    s3.put_object(Bucket=LAKE, Key=key, Body=sink.getvalue().to_pybytes())


def register(glue: Any, s3: Any, prefix: str) -> Any:
    return register_partition(glue, s3, database="dynamodb", table="orders_changes", bucket=LAKE, partition_prefix=prefix)


def query(sql: str) -> Any:
    engine = AthenaEngine(GlueBackendCatalog(ACCOUNT, REGION), MotoLakeStorage(ACCOUNT), lambda: datetime(2024, 5, 4, tzinfo=UTC))
    return engine.run_sql(sql, "dynamodb").text_rows()


def test_a_second_window_with_a_new_type_in_an_already_registered_hour(s3: Any) -> None:
    with enforce_table_version_ids():
        glue = boto3.client("glue", region_name=REGION)
        s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
        # window 1 (07:00-07:40): price is a number
        put(s3, HOUR7 + "export-a-0.parquet", pa.table({"new__price": [5]}))
        assert register(glue, s3, HOUR7).table == "orders_changes"
        assert query("SELECT count(*) FROM orders_changes") == [["1"]]
        # window 2 (07:40-08:40): the attribute is text now; it publishes into 07 and 08
        put(s3, HOUR7 + "export-b-0.parquet", pa.table({"new__price": ["five"]}))
        put(s3, HOUR8 + "export-b-0.parquet", pa.table({"new__price": ["six"]}))

        # RegisterCatalog of window 2 (functions/catalog/app.py dynamodb_handler registers each published prefix)
        failures = []
        for prefix in (HOUR7, HOUR8):
            try:
                register(glue, s3, prefix)
            except Exception as error:
                failures.append(f"{prefix}: {type(error).__name__}: {error}")
        assert not failures, f"window 2 cannot be registered (and never will be, the checkpoint stays): {failures}"
        # and every change stays queryable somewhere
        assert query("SELECT count(*) FROM orders_changes") == [["2"]]


def test_publishing_window_two_makes_the_registered_base_table_unqueryable(s3: Any) -> None:
    """Even before RegisterCatalog runs, window 2's text file sits in hour 07, a partition registered in the bigint
    table: every query of the base table over that hour fails (HIVE_BAD_DATA), and no version can fix that."""
    with enforce_table_version_ids():
        glue = boto3.client("glue", region_name=REGION)
        s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
        put(s3, HOUR7 + "export-a-0.parquet", pa.table({"new__price": [5]}))
        register(glue, s3, HOUR7)
        put(s3, HOUR7 + "export-b-0.parquet", pa.table({"new__price": ["five"]}))
        assert query("SELECT new__price FROM orders_changes WHERE dt = '2024-05-01' ORDER BY 1") is not None


def test_same_hour_integral_then_fractional_numbers_an_ordinary_n_attribute(s3: Any) -> None:
    """No source type change at all: an N attribute is int64 in a window where every value is integral and
    decimal(38,s) in the next (docs/dynamodb.md type table); sharing hour 07, the second window never registers."""
    import decimal

    with enforce_table_version_ids():
        glue = boto3.client("glue", region_name=REGION)
        s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
        put(s3, HOUR7 + "export-a-0.parquet", pa.table({"new__price": pa.array([5], pa.int64())}))
        register(glue, s3, HOUR7)
        put(s3, HOUR7 + "export-b-0.parquet", pa.table({"new__price": pa.array([decimal.Decimal("5.5")], pa.decimal128(38, 1))}))
        register(glue, s3, HOUR7)
