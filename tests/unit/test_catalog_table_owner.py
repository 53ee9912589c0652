"""One Glue table, one lake folder: a writer whose folder is not the table's is refused, and nothing is overwritten.

Glue table names are derived per writer (`<t>` and `<t>_changes` for DynamoDB exports, `<t>_stream_changes` for the
stream change log, `<source database>.<table>` for RDS), so two writers can derive one name for different folders:
the incremental exports of a table `orders_stream` and the stream change log of `orders` both name
`orders_stream_changes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.catalog import (
    CatalogOptions,
    Column,
    GlueTableCollision,
    LandedPartition,
    register_partition,
    register_projected_table,
    schema_columns,
    upsert_table,
)

from tests.unit.helpers import REGION

LAKE = "snaplake-lake"
STREAM_COLUMNS = schema_columns(pa.schema([("change_type", pa.string()), ("sequence_number", pa.string())]))


@pytest.fixture
def glue(aws: None) -> Any:
    return boto3.client("glue", region_name=REGION)


@pytest.fixture
def lake(s3: Any) -> Any:
    s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3


def land(s3: Any, prefix: str, columns: dict[str, list[Any]], name: str = "e1-00000.parquet") -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    s3.put_object(Bucket=LAKE, Key=prefix + name, Body=sink.getvalue().to_pybytes())


@dataclass(frozen=True)
class Writer:
    """One pipeline's registration of one landed partition, as its handler names the Glue table."""

    label: str
    database: str
    table: str
    partition: str  # the landed partition prefix; its table folder is the writer's folder
    projected: bool = False  # the stream change log: register_projected_table before it writes

    @property
    def folder(self) -> str:
        return LandedPartition.parse(LAKE, self.partition).table_location

    def register(self, glue: Any, s3: Any) -> None:
        if self.projected:
            register_projected_table(
                glue, database=self.database, table=self.table, bucket=LAKE, partition_prefix=self.partition, columns=STREAM_COLUMNS
            )
            return
        land(s3, self.partition, {"change_type": ["INSERT"], "new__pk": ["a"]})
        register_partition(glue, s3, database=self.database, table=self.table, bucket=LAKE, partition_prefix=self.partition)


# DynamoDbCatalogFunction: full exports `<t>` in dynamodb/<t>/, incremental exports `<t>_changes` in dynamodb_changes/<t>/.
def full_export(table: str) -> Writer:
    return Writer(f"full export of {table}", "dynamodb", table, f"lake/dynamodb/{table}/export_time=20260101T000000Z/")


def incremental_export(table: str) -> Writer:
    return Writer(f"incremental export of {table}", "dynamodb", f"{table}_changes", f"lake/dynamodb_changes/{table}/dt=2026-01-01/hour=00/")


# StreamFlattenFunction: `<t>` + STREAM_TABLE_SUFFIX, projected, in dynamodb_stream_changes/<t>/.
def stream_log(table: str) -> Writer:
    partition = f"lake/dynamodb_stream_changes/{table}/dt=2026-01-01/hour=00/"
    return Writer(f"stream change log of {table}", "dynamodb", f"{table}_stream_changes", partition, projected=True)


# RdsCatalogFunction: `<GlueDatabasePrefix><source database>.<table>`, folder from LakeKeyTemplate.
def rds_table(folder: str, database: str, table: str) -> Writer:
    return Writer(f"RDS {folder}", database, table, f"lake/{folder}/snapshot_time=20260101T000000Z/")


COLLISIONS = {
    "incremental exports of orders_stream / stream change log of orders": (incremental_export("orders_stream"), stream_log("orders")),
    "full export of x_changes / incremental exports of x": (full_export("x_changes"), incremental_export("x")),
    "full export of x_stream_changes / stream change log of x": (full_export("x_stream_changes"), stream_log("x")),
    "RDS database dynamodb / DynamoDB full export": (rds_table("rds/dynamodb/orders", "dynamodb", "orders"), full_export("orders")),
    "RDS database dynamodb / DynamoDB incremental export": (
        rds_table("rds/dynamodb/orders_changes", "dynamodb", "orders_changes"),
        incremental_export("orders"),
    ),
    "two RDS sources, {source_id} in the folder": (
        rds_table("rds/cluster-a/app/users", "app", "users"),
        rds_table("rds/cluster-b/app/users", "app", "users"),
    ),
}


def snapshot(glue: Any, database: str, table: str) -> tuple[dict[str, Any], list[Any], int]:
    """The table, its partitions and its version count: what a refused writer must leave as it was."""
    found = dict(glue.get_table(DatabaseName=database, Name=table)["Table"])
    partitions = sorted(
        (p["Values"], p["StorageDescriptor"]["Location"]) for p in glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"]
    )
    versions = len(glue.get_table_versions(DatabaseName=database, TableName=table)["TableVersions"])
    return found, partitions, versions


@pytest.mark.parametrize("reverse", [False, True], ids=["in order", "reversed"])
@pytest.mark.parametrize("pair", COLLISIONS.values(), ids=COLLISIONS.keys())
def test_a_second_writer_deriving_the_same_glue_table_name_for_another_folder_is_refused_and_changes_nothing(
    glue: Any, lake: Any, pair: tuple[Writer, Writer], reverse: bool
) -> None:
    first, second = reversed(pair) if reverse else pair
    assert (first.database, first.table) == (second.database, second.table) and first.folder != second.folder
    first.register(glue, lake)
    before = snapshot(glue, first.database, first.table)

    with pytest.raises(GlueTableCollision) as refused:
        second.register(glue, lake)

    assert f"{first.database}.{first.table}" in str(refused.value)
    assert first.folder in str(refused.value) and second.folder in str(refused.value)
    assert snapshot(glue, first.database, first.table) == before
    assert before[0]["StorageDescriptor"]["Location"] == first.folder


def test_the_reproduction_stream_after_incremental_export_keeps_the_exports_location(glue: Any, lake: Any) -> None:
    """The review's case: the stream log of `orders` used to move `orders_stream_changes` onto its own folder."""
    exports, stream = incremental_export("orders_stream"), stream_log("orders")
    exports.register(glue, lake)

    with pytest.raises(
        GlueTableCollision, match=r"dynamodb\.orders_stream_changes belongs to lake folder .*/dynamodb_changes/orders_stream/"
    ):
        stream.register(glue, lake)

    table = glue.get_table(DatabaseName="dynamodb", Name="orders_stream_changes")["Table"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{LAKE}/lake/dynamodb_changes/orders_stream/"
    assert not any(key.startswith("projection.") or key == "storage.location.template" for key in table["Parameters"])


def test_same_folder_registrations_keep_working_new_columns_new_partitions_and_reruns(glue: Any, lake: Any) -> None:
    first = "lake/dynamodb_changes/orders/dt=2026-01-01/hour=00/"
    later = "lake/dynamodb_changes/orders/dt=2026-01-01/hour=01/"
    land(lake, first, {"change_type": ["INSERT"], "new__pk": ["a"]})
    land(lake, later, {"change_type": ["MODIFY"], "new__pk": ["a"], "new__total": [1]})

    def register(prefix: str) -> Any:
        return register_partition(glue, lake, database="dynamodb", table="orders_changes", bucket=LAKE, partition_prefix=prefix)

    assert register(first).table_created
    added = register(later)
    rerun = register(later)
    again = register(first)

    assert added.table_updated and added.added_columns == ("new__total",) and added.partition_registered
    assert not rerun.table_updated and not rerun.partition_registered
    assert not again.table_updated and not again.partition_registered
    _, partitions, versions = snapshot(glue, "dynamodb", "orders_changes")
    assert [values for values, _ in partitions] == [["2026-01-01", "00"], ["2026-01-01", "01"]]
    assert versions == 2


def test_the_stream_change_log_keeps_registering_its_own_projected_table(glue: Any) -> None:
    stream = stream_log("orders")
    wider = [*STREAM_COLUMNS, Column("new__total", "bigint")]

    def register(columns: list[Column], hour: str = "00") -> Any:
        partition = stream.partition.replace("hour=00", f"hour={hour}")
        return register_projected_table(
            glue, database="dynamodb", table=stream.table, bucket=LAKE, partition_prefix=partition, columns=columns
        )

    assert register(STREAM_COLUMNS).created
    assert register(wider, "05").added == (Column("new__total", "bigint"),)
    assert not register(wider, "07").updated  # a retried batch, another hour: nothing to change
    parameters = glue.get_table(DatabaseName="dynamodb", Name=stream.table)["Table"]["Parameters"]
    assert parameters["storage.location.template"] == f"{stream.folder}dt=${{dt}}/hour=${{hour}}/"


def test_switching_to_partition_projection_on_the_same_folder_is_an_update(glue: Any, lake: Any) -> None:
    users = rds_table("rds/world/users", "world", "users")
    users.register(glue, lake)

    change = register_partition(
        glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=users.partition, options=CatalogOptions(projection=True)
    )

    assert change.table_updated
    parameters = glue.get_table(DatabaseName="world", Name="users")["Table"]["Parameters"]
    assert parameters["storage.location.template"] == f"{users.folder}snapshot_time=${{snapshot_time}}/"


def _create(
    glue: Any, name: str, location: str | None, parameters: dict[str, str] | None = None, table_type: str = "EXTERNAL_TABLE"
) -> None:
    descriptor: dict[str, Any] = {"Columns": [{"Name": "change_type", "Type": "string"}]}
    if location is not None:
        descriptor["Location"] = location
    glue.create_table(
        DatabaseName="dynamodb",
        TableInput={
            "Name": name,
            "TableType": table_type,
            "Parameters": parameters or {},
            "PartitionKeys": [{"Name": "dt", "Type": "string"}, {"Name": "hour", "Type": "string"}],
            "StorageDescriptor": descriptor,
        },
    )


def test_a_location_written_without_its_trailing_slash_is_the_same_folder(glue: Any) -> None:
    stream = stream_log("orders")
    glue.create_database(DatabaseInput={"Name": "dynamodb"})
    _create(glue, stream.table, stream.folder.rstrip("/"))

    register_projected_table(
        glue, database="dynamodb", table=stream.table, bucket=LAKE, partition_prefix=stream.partition, columns=STREAM_COLUMNS
    )

    assert glue.get_table(DatabaseName="dynamodb", Name=stream.table)["Table"]["StorageDescriptor"]["Location"] == stream.folder


@pytest.mark.parametrize(
    ("location", "template", "named"),
    [
        (f"s3://{LAKE}/lake/dynamodb_stream_changes/orders/", f"s3://{LAKE}/lake/elsewhere/dt=${{dt}}/hour=${{hour}}/", "elsewhere"),
        (None, None, "(none"),
        ("s3://other-bucket/lake/dynamodb_stream_changes/orders/", None, "other-bucket"),
    ],
    ids=["projection template of another folder", "no location (a view)", "same keys in another bucket"],
)
def test_a_table_naming_any_other_folder_is_refused(glue: Any, location: str | None, template: str | None, named: str) -> None:
    stream = stream_log("orders")
    glue.create_database(DatabaseInput={"Name": "dynamodb"})
    _create(glue, stream.table, location, {"storage.location.template": template} if template else None)
    before = glue.get_table(DatabaseName="dynamodb", Name=stream.table)["Table"]

    with pytest.raises(GlueTableCollision, match=re.escape(named)):
        register_projected_table(
            glue, database="dynamodb", table=stream.table, bucket=LAKE, partition_prefix=stream.partition, columns=STREAM_COLUMNS
        )

    assert glue.get_table(DatabaseName="dynamodb", Name=stream.table)["Table"] == before


class CreatedInBetween:
    """A Glue client whose first GetTable misses the table `create` makes right after (another writer won the race)."""

    def __init__(self, real: Any, create: Callable[[], None]) -> None:
        self.real, self.create, self.first = real, create, True

    def get_table(self, **kwargs: Any) -> Any:
        if self.first:
            self.first = False
            self.create()
            raise self.real.exceptions.EntityNotFoundException(
                {"Error": {"Code": "EntityNotFoundException", "Message": "missing"}}, "GetTable"
            )
        return self.real.get_table(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_two_writers_creating_the_table_at_once_the_one_glue_lets_create_it_keeps_it(glue: Any) -> None:
    exports, stream = incremental_export("orders_stream"), stream_log("orders")
    glue.create_database(DatabaseInput={"Name": "dynamodb"})
    racing = CreatedInBetween(glue, lambda: _create(glue, exports.table, exports.folder))
    partition = LandedPartition.parse(LAKE, stream.partition)

    with pytest.raises(GlueTableCollision):
        upsert_table(racing, "dynamodb", stream.table, partition, STREAM_COLUMNS, CatalogOptions(projection=True))

    table = glue.get_table(DatabaseName="dynamodb", Name=stream.table)["Table"]
    assert table["StorageDescriptor"]["Location"] == exports.folder and "storage.location.template" not in table["Parameters"]
