"""Glue registration of landed Parquet partitions, against moto's Glue and S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from snaplake.catalog import (
    MAX_ENUM_CHARACTERS,
    PARQUET_INPUT_FORMAT,
    PARQUET_OUTPUT_FORMAT,
    PARQUET_SERDE,
    SNAPSHOT_TIME_FORMAT,
    CatalogOptions,
    Column,
    IncompatibleColumnType,
    LandedPartition,
    NoDataFiles,
    ParquetFooterUnreadable,
    PartitionKeysChanged,
    PartitionRegistrationFailed,
    ProjectionRule,
    UnsupportedColumnType,
    UnsupportedPartitionLayout,
    glue_type,
    landed_columns,
    merge_columns,
    projection_parameters,
    read_parquet_schema,
    register_landed,
    register_partition,
)
from snaplake.core.errors import ConfigError, LakeAccessDenied
from snaplake_local.emulator import enforce_table_version_ids

from tests.unit.helpers import REGION

LAKE = "snaplake-lake"
USERS_1 = "lake/rds/world/users/snapshot_time=20240502T120555Z/"
USERS_2 = "lake/rds/world/users/snapshot_time=20240503T120555Z/"
ORDERS_CHANGES = "lake/dynamodb_changes/orders/dt=2024-05-02/hour=07/"


@pytest.fixture
def glue(aws: None) -> Any:
    return boto3.client("glue", region_name=REGION)


@pytest.fixture
def lake(s3: Any) -> Any:
    s3.create_bucket(Bucket=LAKE, CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def land(s3: Any, prefix: str, table: pa.Table, name: str = "1/part-00000.parquet") -> None:
    s3.put_object(Bucket=LAKE, Key=prefix + name, Body=parquet_bytes(table))
    s3.put_object(Bucket=LAKE, Key=prefix + "_SUCCESS", Body=b"")


USERS = pa.table({"id": pa.array([1, 2], pa.int32()), "Name": ["ada", "bob"]})


def table_columns(glue: Any, database: str = "world", table: str = "users") -> list[tuple[str, str]]:
    found = glue.get_table(DatabaseName=database, Name=table)["Table"]
    return [(c["Name"], c["Type"]) for c in found["StorageDescriptor"]["Columns"]]


def partitions(glue: Any, database: str = "world", table: str = "users") -> list[tuple[list[str], str]]:
    found = glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"]
    return sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in found)


def test_new_table_is_created_from_the_parquet_footer_with_the_partition_registered(glue: Any, lake: Any) -> None:
    land(lake, USERS_1, USERS)
    result = register_partition(glue, lake, database="World", table="users", bucket=LAKE, partition_prefix=USERS_1)
    assert result.table_created and result.partition_registered
    table = glue.get_table(DatabaseName="world", Name="users")["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"]["classification"] == "parquet"
    assert table["PartitionKeys"] == [{"Name": "snapshot_time", "Type": "string"}]
    descriptor = table["StorageDescriptor"]
    assert descriptor["Location"] == f"s3://{LAKE}/lake/rds/world/users/"
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert (descriptor["InputFormat"], descriptor["OutputFormat"]) == (PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT)
    assert table_columns(glue) == [("id", "int"), ("name", "string")]
    assert partitions(glue) == [(["20240502T120555Z"], f"s3://{LAKE}/{USERS_1}")]


def test_the_same_snapshot_registered_twice_registers_nothing_the_second_time(glue: Any, lake: Any) -> None:
    land(lake, USERS_1, USERS)
    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)
    again = register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)
    assert not again.table_created and not again.table_updated and not again.partition_registered
    assert len(partitions(glue)) == 1
    assert len(glue.get_table_versions(DatabaseName="world", TableName="users")["TableVersions"]) == 1


def test_a_column_added_in_a_later_snapshot_is_appended_and_old_columns_kept(glue: Any, lake: Any) -> None:
    land(lake, USERS_1, USERS)
    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)
    later = pa.table({"email": ["a@x"], "id": pa.array([3], pa.int64())})  # 'name' dropped, 'id' widened, 'email' new
    land(lake, USERS_2, later)
    result = register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_2)
    assert result.table_updated and result.added_columns == ("email",) and result.widened_columns == ("id",)
    assert table_columns(glue) == [("id", "bigint"), ("name", "string"), ("email", "string")]
    assert [values for values, _ in partitions(glue)] == [["20240502T120555Z"], ["20240503T120555Z"]]


def test_an_incompatible_type_change_registers_the_snapshot_in_a_table_version_and_leaves_the_table_untouched(glue: Any, lake: Any) -> None:
    land(lake, USERS_1, USERS)
    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)
    land(lake, USERS_2, pa.table({"id": ["not a number"], "Name": ["c"]}))
    result = register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_2)
    assert (result.table, result.table_version, result.table_version_started) == ("users__v2", 2, True)
    assert table_columns(glue) == [("id", "int"), ("name", "string")]
    assert [values for values, _ in partitions(glue)] == [["20240502T120555Z"]]
    assert [values for values, _ in partitions(glue, table="users__v2")] == [["20240503T120555Z"]]


def test_projection_mode_lists_the_landed_snapshot_times_as_an_enum_and_registers_no_partition(glue: Any, lake: Any) -> None:
    land(lake, USERS_2, USERS)
    options = CatalogOptions(projection=True)
    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_2, options=options)
    land(lake, USERS_1, USERS)  # an older snapshot (a backfill) joins the list in its place
    result = register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1, options=options)
    assert not result.partition_registered
    parameters = glue.get_table(DatabaseName="world", Name="users")["Table"]["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.snapshot_time.type"] == "enum"
    assert parameters["projection.snapshot_time.values"] == "20240502T120555Z,20240503T120555Z"
    assert not {name for name in parameters if name.startswith("projection.snapshot_time.")} - {
        "projection.snapshot_time.type",
        "projection.snapshot_time.values",
    }
    assert parameters["storage.location.template"] == f"s3://{LAKE}/lake/rds/world/users/snapshot_time=${{snapshot_time}}/"
    assert partitions(glue) == []
    version = glue.get_table(DatabaseName="world", Name="users")["Table"]["VersionId"]
    again = register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1, options=options)
    assert not again.table_updated and glue.get_table(DatabaseName="world", Name="users")["Table"]["VersionId"] == version


def test_a_table_projected_by_date_before_enums_keeps_its_range(glue: Any, lake: Any) -> None:
    date_rules = {"snapshot_time": ProjectionRule("date", SNAPSHOT_TIME_FORMAT, "1", "SECONDS")}
    land(lake, USERS_1, USERS)
    old = CatalogOptions(projection=True, projection_rules=date_rules)
    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1, options=old)
    land(lake, USERS_2, USERS)
    register_partition(
        glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_2, options=CatalogOptions(projection=True)
    )
    parameters = glue.get_table(DatabaseName="world", Name="users")["Table"]["Parameters"]
    # An enum of the new snapshot alone would hide every snapshot the range showed: the table stays as it was.
    assert parameters["projection.snapshot_time.type"] == "date"
    assert parameters["projection.snapshot_time.range"] == "20240502T120555Z,NOW"
    assert "projection.snapshot_time.values" not in parameters


def test_an_enum_past_glues_parameter_limit_is_refused_by_name() -> None:
    partition = LandedPartition.parse(LAKE, USERS_2)
    hourly = (datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=n) for n in range(MAX_ENUM_CHARACTERS // 17 + 1))
    many = ",".join(f"{when:%Y%m%dT%H%M%SZ}" for when in hourly)  # about 3.4 years of hourly snapshots
    existing = {"projection.snapshot_time.type": "enum", "projection.snapshot_time.values": many}
    with pytest.raises(UnsupportedPartitionLayout, match="CatalogMode=partitions"):
        projection_parameters(partition, existing)


def test_two_landings_registering_at_once_both_stay_in_the_enum(aws: None, lake: Any) -> None:
    """The second registration reads the table, then the first one updates it: Glue refuses the second's update (it
    names the version it read), and it merges again, so neither value is lost."""
    land(lake, USERS_1, USERS)
    land(lake, USERS_2, USERS)
    options = CatalogOptions(projection=True)
    with enforce_table_version_ids():
        glue = boto3.client("glue", region_name=REGION)
        register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1, options=options)
        later = "lake/rds/world/users/snapshot_time=20240504T120555Z/"
        land(lake, later, USERS)

        class FirstUpdatesInBetween:
            def __init__(self) -> None:
                self.interleaved = False

            def __getattr__(self, name: str) -> Any:
                return getattr(glue, name)

            def get_table(self, **kwargs: Any) -> Any:
                found = glue.get_table(**kwargs)
                if not self.interleaved:
                    self.interleaved = True
                    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=later, options=options)
                return found

        register_partition(
            FirstUpdatesInBetween(), lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_2, options=options
        )
    values = glue.get_table(DatabaseName="world", Name="users")["Table"]["Parameters"]["projection.snapshot_time.values"]
    assert values == "20240502T120555Z,20240503T120555Z,20240504T120555Z"


def test_projection_of_hourly_change_partitions_names_every_key_in_the_template(glue: Any, lake: Any) -> None:
    land(lake, ORDERS_CHANGES, pa.table({"pk": ["a"], "_write_time": pa.array([0], pa.timestamp("us", tz="UTC"))}), "x.parquet")
    options = CatalogOptions(projection=True)
    register_partition(glue, lake, database="dynamodb", table="orders", bucket=LAKE, partition_prefix=ORDERS_CHANGES, options=options)
    table = glue.get_table(DatabaseName="dynamodb", Name="orders")["Table"]
    parameters = table["Parameters"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt", "hour"]
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert parameters["projection.hour.type"] == "integer" and parameters["projection.hour.range"] == "0,23"
    template = parameters["storage.location.template"]
    assert template.endswith("/") and "dt=${dt}/hour=${hour}/" in template


def test_hourly_change_partitions_are_registered_with_both_keys(glue: Any, lake: Any) -> None:
    land(lake, ORDERS_CHANGES, pa.table({"pk": ["a"]}), "x.parquet")
    register_partition(glue, lake, database="dynamodb", table="orders", bucket=LAKE, partition_prefix=ORDERS_CHANGES)
    assert partitions(glue, "dynamodb", "orders") == [(["2024-05-02", "07"], f"s3://{LAKE}/{ORDERS_CHANGES}")]


def test_a_landed_manifest_registers_every_table(glue: Any, lake: Any) -> None:
    land(lake, USERS_1, USERS)
    invoices = "lake/rds/world/sales_invoice_lines/snapshot_time=20240502T120555Z/"
    land(lake, invoices, pa.table({"amount": pa.array([Decimal("1.50")], pa.decimal128(12, 2))}))
    landed = {
        "lakeBucket": LAKE,
        "tables": [
            {"database": "world", "table": "users", "partition": USERS_1},
            {"database": "world", "table": "sales_invoice_lines", "partition": invoices},
        ],
    }
    results = register_landed(glue, lake, landed, database="lake_world")
    assert [r.table for r in results] == ["users", "sales_invoice_lines"]
    assert table_columns(glue, "lake_world", "sales_invoice_lines") == [("amount", "decimal(12,2)")]


def test_a_partition_keyed_differently_from_the_table_is_refused(glue: Any, lake: Any) -> None:
    land(lake, USERS_1, USERS)
    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)
    other = "lake/rds/world/users/snapshot_date=2024-05-03/"
    land(lake, other, USERS)
    with pytest.raises(PartitionKeysChanged):
        register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=other)


def test_a_partition_without_data_files_fails_loudly(glue: Any, lake: Any) -> None:
    lake.put_object(Bucket=LAKE, Key=USERS_1 + "_SUCCESS", Body=b"")
    with pytest.raises(NoDataFiles):
        register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)


def test_footer_is_read_with_ranged_gets_only(lake: Any) -> None:
    wide = pa.table({f"c{i}": pa.array([i], pa.int64()) for i in range(400)})  # a footer larger than the first read
    body = parquet_bytes(wide)
    lake.put_object(Bucket=LAKE, Key="big.parquet", Body=body)
    ranges: list[str] = []
    lake.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: ranges.append(params["Range"]))
    schema = read_parquet_schema(lake, LAKE, "big.parquet", tail_bytes=1024)
    assert schema.names == wide.column_names
    assert len(ranges) == 2 and all(r.startswith("bytes=-") for r in ranges)
    assert int(ranges[1].removeprefix("bytes=-")) < len(body)


def test_an_object_that_is_not_parquet_is_reported(lake: Any) -> None:
    lake.put_object(Bucket=LAKE, Key="x.parquet", Body=b"not parquet at all")
    with pytest.raises(ParquetFooterUnreadable, match=r"x\.parquet"):
        read_parquet_schema(lake, LAKE, "x.parquet")


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.int8(), "tinyint"),
        (pa.int16(), "smallint"),
        (pa.int32(), "int"),
        (pa.int64(), "bigint"),
        (pa.uint32(), "bigint"),
        (pa.float32(), "float"),
        (pa.float64(), "double"),
        (pa.decimal128(38, 9), "decimal(38,9)"),
        (pa.string(), "string"),
        (pa.large_string(), "string"),
        (pa.binary(), "binary"),
        (pa.bool_(), "boolean"),
        (pa.timestamp("us"), "timestamp"),
        (pa.timestamp("ms", tz="UTC"), "timestamp"),
        (pa.date32(), "date"),
        (pa.list_(pa.int64()), "array<bigint>"),
        (pa.map_(pa.string(), pa.float64()), "map<string,double>"),
        (pa.struct([("City", pa.string()), ("geo", pa.struct([("lat", pa.float64())]))]), "struct<city:string,geo:struct<lat:double>>"),
        (pa.dictionary(pa.int32(), pa.string()), "string"),
        (pa.list_(pa.null()), "array<string>"),
    ],
)
def test_arrow_types_map_to_athena_types(arrow_type: pa.DataType, expected: str) -> None:
    assert glue_type(arrow_type) == expected


@pytest.mark.parametrize("arrow_type", [pa.time64("us"), pa.uint64(), pa.decimal256(40, 2)])
def test_types_athena_cannot_declare_are_refused(arrow_type: pa.DataType) -> None:
    with pytest.raises(UnsupportedColumnType):
        glue_type(arrow_type, "c")


@pytest.mark.parametrize(
    ("old", "new", "merged"),
    [
        ("int", "bigint", "bigint"),
        ("bigint", "smallint", "bigint"),
        ("float", "double", "double"),
        ("decimal(10,2)", "decimal(18,2)", "decimal(18,2)"),
        ("array<int>", "array<bigint>", "array<bigint>"),
        ("struct<a:int>", "struct<b:string,a:bigint>", "struct<a:bigint,b:string>"),
        ("string", "void", "string"),
    ],
)
def test_safe_widenings_merge(old: str, new: str, merged: str) -> None:
    assert merge_columns("t", [Column("c", old)], [Column("c", new)]) == [Column("c", merged)]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int", "string"),
        ("uniontype<int,string>", "int"),
        ("decimal(10,2)", "decimal(10,3)"),
        ("timestamp", "string"),
        ("bigint", "double"),
        ("struct<a:int>", "array<int>"),
    ],
)
def test_narrowing_or_unrelated_type_changes_are_incompatible(old: str, new: str) -> None:
    with pytest.raises(IncompatibleColumnType, match="'t' column 'c'"):
        merge_columns("t", [Column("c", old)], [Column("c", new)])


@pytest.mark.parametrize("prefix", ["lake/rds/world/users/20240502/", "snapshot_time=x/", "lake/t/a=1/b/"])
def test_prefixes_without_trailing_hive_segments_are_refused(prefix: str) -> None:
    with pytest.raises(UnsupportedPartitionLayout):
        LandedPartition.parse(LAKE, prefix)


def test_the_seed_layout_is_partitioned_by_partition_datetime() -> None:
    parsed = LandedPartition.parse(LAKE, "world/users/partition_datetime=20240502T120555Z")
    assert (parsed.table_prefix, parsed.keys, parsed.values) == ("world/users/", ("partition_datetime",), ("20240502T120555Z",))


def test_a_partition_already_registered_elsewhere_is_an_error_naming_it(glue: Any, lake: Any) -> None:
    land(lake, USERS_1, USERS)
    register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)
    glue.update_partition(
        DatabaseName="world",
        TableName="users",
        PartitionValueList=["20240502T120555Z"],
        PartitionInput={"Values": ["20240502T120555Z"], "StorageDescriptor": {"Location": f"s3://{LAKE}/elsewhere/"}},
    )
    with pytest.raises(PartitionRegistrationFailed, match=r"already registered at .*elsewhere"):
        register_partition(glue, lake, database="world", table="users", bucket=LAKE, partition_prefix=USERS_1)


def test_catalog_options_come_from_the_environment() -> None:
    role = "arn:aws:iam::111122223333:role/snaplake-lake-LakeCatalogRole-1"
    options = CatalogOptions.from_env({"CATALOG_MODE": "Projection", "LAKE_CATALOG_ROLE": role, "STACK_ACCOUNT_ID": "444455556666"})
    assert options.projection and options.catalog_id == "111122223333"
    assert (options.catalog_role, options.source_account) == (role, "444455556666")
    assert CatalogOptions.from_env({}).catalog_id is None
    with pytest.raises(ConfigError, match="STACK_ACCOUNT_ID"):
        CatalogOptions.from_env({"LAKE_CATALOG_ROLE": role})
    with pytest.raises(ConfigError, match="LAKE_CATALOG_ROLE"):
        CatalogOptions.from_env({"LAKE_CATALOG_ROLE": "111122223333", "STACK_ACCOUNT_ID": "444455556666"})
    assert not CatalogOptions.from_env({}).projection
    with pytest.raises(ConfigError, match="CATALOG_MODE"):
        CatalogOptions.from_env({"CATALOG_MODE": "crawler"})


def test_table_created_concurrently_by_another_run_is_merged_into_instead_of_failing(glue: Any) -> None:
    from snaplake.catalog import upsert_table

    class LosesTheRace:
        """A Glue client whose first GetTable misses a table another run creates right after."""

        def __init__(self, real: Any) -> None:
            self.real = real
            self.first = True

        def get_table(self, **kwargs: Any) -> Any:
            if self.first:
                self.first = False
                self.real.create_table(
                    DatabaseName=kwargs["DatabaseName"],
                    TableInput={
                        "Name": kwargs["Name"],
                        "TableType": "EXTERNAL_TABLE",
                        "PartitionKeys": [{"Name": "snapshot_time", "Type": "string"}],
                        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint"}], "Location": "s3://lake/rds/db/t/"},
                    },
                )
                raise self.real.exceptions.EntityNotFoundException(
                    {"Error": {"Code": "EntityNotFoundException", "Message": "missing"}}, "GetTable"
                )
            return self.real.get_table(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    glue.create_database(DatabaseInput={"Name": "db"})
    partition = LandedPartition.parse("lake", "rds/db/t/snapshot_time=20240502T000000Z/")

    change = upsert_table(LosesTheRace(glue), "db", "t", partition, [Column("id", "bigint"), Column("name", "string")], CatalogOptions())

    assert change.created is False
    assert [c["Name"] for c in glue.get_table(DatabaseName="db", Name="t")["Table"]["StorageDescriptor"]["Columns"]] == ["id", "name"]


def test_lake_refusing_the_footer_reads_is_named_with_what_to_check() -> None:
    class RefusingS3:
        def get_paginator(self, operation: str) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2")

    partition = LandedPartition("lake-bucket", "lake/rds/world/city/", ("snapshot_time",), ("20240502T024019Z",))

    with pytest.raises(LakeAccessDenied, match=r"ListObjectsV2 in lake bucket lake-bucket.*owned by account 111122223333"):
        landed_columns(RefusingS3(), "city", partition, expected_bucket_owner="111122223333")
