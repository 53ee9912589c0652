"""The emulated Athena's engine (snaplake_local.emulator.athena_engine) on a lake folder: Athena SQL run on DuckDB over
Parquet files as a Glue catalog describes them, answering as Athena would or failing with Athena's error name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake_local.emulator.athena_catalog import CATALOG_FILE, CATALOG_FORMAT, LakeFolder
from snaplake_local.emulator.athena_engine import AthenaEngine
from snaplake_local.emulator.athena_lake import FolderStorage
from snaplake_local.emulator.athena_types import AthenaQueryError, java_double, java_float
from snaplake_local.emulator.athena_writes import write_result

BUCKET = "lake-bucket"
SERDE = {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}
NOW = datetime(2024, 5, 3, 12, 0, 0, tzinfo=UTC)


def write(root: Path, key: str, table: pa.Table) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def table_entry(
    location: str, columns: list[tuple[str, str]], keys: list[str], partitions: list[tuple[list[str], str]], **parameters: str
) -> Any:
    return {
        "table": {
            "Name": location.rstrip("/").rsplit("/", 1)[-1],
            "Parameters": parameters,
            "PartitionKeys": [{"Name": key, "Type": "string"} for key in keys],
            "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in columns], "Location": location, "SerdeInfo": SERDE},
        },
        "partitions": [{"Values": values, "Location": where} for values, where in partitions],
    }


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """rds/shop/orders: two registered snapshots (the second file has a column more, mixed-case names, a batch
    folder, a _SUCCESS marker and a hidden file) and one unregistered; dynamodb_stream_changes/carts, projected."""
    orders = "rds/shop/orders/"
    write(
        tmp_path,
        f"{orders}snapshot_time=20240501T000000Z/b1/part-0.parquet",
        pa.table({"Id": pa.array([1, 2], pa.int32()), "Customer": ["acme", "zen"]}),
    )
    (tmp_path / f"{orders}snapshot_time=20240501T000000Z/_SUCCESS").write_text("done")
    (tmp_path / f"{orders}snapshot_time=20240501T000000Z/b1/.part-1.parquet.crc").write_text("not data")
    second = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "customer": ["acme", "zen", "acme"],
            "amount": pa.array([Decimal("1.50"), Decimal("2.25"), None], pa.decimal128(12, 2)),
        }
    )
    write(tmp_path, f"{orders}snapshot_time=20240502T000000Z/part-0.parquet", second)
    write(tmp_path, f"{orders}snapshot_time=20240503T000000Z/part-0.parquet", second)  # landed, never registered
    carts = "dynamodb_stream_changes/carts/"
    for folder in (
        "dt=2024-04-30/hour=07",
        "dt=2024-05-02/hour=07",
        "dt=2024-05-02/hour=7",
        "dt=2024-05-03/hour=11",
        "dt=2024-05-04/hour=01",
    ):
        write(tmp_path, f"{carts}{folder}/changes-1.parquet", pa.table({"cart": [folder]}))
    projection = {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2024-05-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "storage.location.template": f"s3://{BUCKET}/{carts}dt=${{dt}}/hour=${{hour}}/",
    }
    events = "firehose/events/"
    for folder in ("partition_key=DE/dt=2024-05-02", "partition_key=FR/dt=2024-05-02", "partition_key=IT/dt=2024-05-03"):
        write(tmp_path, f"{events}{folder}/events-1.parquet", pa.table({"event_id": [folder]}))
    injected = {
        **{k: v for k, v in projection.items() if k.startswith("projection.dt.") or k == "projection.enabled"},
        "projection.partition_key.type": "injected",
        "storage.location.template": f"s3://{BUCKET}/{events}partition_key=${{partition_key}}/dt=${{dt}}/",
    }
    location = f"s3://{BUCKET}/{orders}"
    catalog = {
        "format": CATALOG_FORMAT,
        "lakeBucket": BUCKET,
        "databases": {
            "shop": {
                "orders": table_entry(
                    location,
                    [("id", "bigint"), ("customer", "string"), ("amount", "decimal(12,2)")],
                    ["snapshot_time"],
                    [([s], f"{location}snapshot_time={s}/") for s in ("20240501T000000Z", "20240502T000000Z")],
                )
            },
            "dynamodb": {
                "carts_stream_changes": table_entry(f"s3://{BUCKET}/{carts}", [("cart", "string")], ["dt", "hour"], [], **projection)
            },
            "firehose": {
                "events": table_entry(f"s3://{BUCKET}/{events}", [("event_id", "string")], ["partition_key", "dt"], [], **injected)
            },
        },
    }
    (tmp_path / CATALOG_FILE).write_text(json.dumps(catalog))
    return tmp_path


def engine(root: Path) -> AthenaEngine:
    folder = LakeFolder(root)
    return AthenaEngine(folder.catalog, folder.storage, lambda: NOW)


def rows(root: Path, sql: str, database: str | None = "shop") -> list[list[str | None]]:
    return engine(root).run_sql(sql, database).text_rows()


def test_a_table_reads_its_registered_partitions_by_lower_cased_column_name(lake: Path) -> None:
    found = rows(lake, "SELECT snapshot_time, id, customer, amount FROM orders ORDER BY 1, 2")

    assert found == [
        ["20240501T000000Z", "1", "acme", None],  # the first snapshot has no amount column: NULL
        ["20240501T000000Z", "2", "zen", None],
        ["20240502T000000Z", "1", "acme", "1.50"],
        ["20240502T000000Z", "2", "zen", "2.25"],
        ["20240502T000000Z", "3", "acme", None],
    ]


def test_projected_partitions_are_the_folders_whose_values_lie_in_the_ranges(lake: Path) -> None:
    found = rows(lake, "SELECT dt, hour, cart FROM carts_stream_changes ORDER BY 1, 2", "dynamodb")

    # 2024-04-30 is before the range, 2024-05-04 after NOW, hour=7 not two digits: Athena never reads them.
    assert found == [["2024-05-02", "07", "dt=2024-05-02/hour=07"], ["2024-05-03", "11", "dt=2024-05-03/hour=11"]]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("partition_key = 'DE'", ["partition_key=DE/dt=2024-05-02"]),
        ("'FR' = partition_key AND dt >= '2024-05-01'", ["partition_key=FR/dt=2024-05-02"]),
        ("partition_key IN ('DE', 'IT', 'XX')", ["partition_key=DE/dt=2024-05-02", "partition_key=IT/dt=2024-05-03"]),
    ],
)
def test_an_injected_key_reads_the_partitions_of_the_values_the_query_names(lake: Path, where: str, expected: list[str]) -> None:
    """Athena takes an injected key's values from the query's static equality conditions (partition-projection docs)."""
    assert rows(lake, f"SELECT event_id FROM events WHERE {where} ORDER BY 1", "firehose") == [[e] for e in expected]


@pytest.mark.parametrize("where", ["", "WHERE dt = '2024-05-02'", "WHERE partition_key LIKE 'D%'"])
def test_an_injected_key_the_query_does_not_name_fails_with_athenas_constraint_violation(lake: Path, where: str) -> None:
    with pytest.raises(AthenaQueryError, match="CONSTRAINT_VIOLATION: For the injected projected partition column partition_key"):
        rows(lake, f"SELECT count(*) FROM events {where}", "firehose")


def test_result_columns_have_athenas_names_types_and_text(lake: Path) -> None:
    sql = (
        "SELECT customer, count(*), sum(amount) AS total, 5 / 2 AS halves, CAST(2.5e0 AS integer) AS rounded, 0.1e0 AS d, "
        "CAST(0.1 AS real) AS r, TIMESTAMP '2024-05-02 01:02:03.456789' AS t, DATE '2024-05-02' + INTERVAL '1' DAY AS tomorrow, "
        "true AS yes, ARRAY[1, 2] AS a, MAP(ARRAY['k'], ARRAY[1]) AS m, current_timestamp AS now "
        "FROM shop.orders WHERE snapshot_time = '20240502T000000Z' GROUP BY customer ORDER BY customer"
    )
    result = engine(lake).run_sql(sql)

    info = [column.column_info() for column in result.columns]
    assert [(c["Name"], c["Type"]) for c in info] == [
        ("customer", "varchar"),
        ("_col1", "bigint"),
        ("total", "decimal"),
        ("halves", "integer"),
        ("rounded", "integer"),
        ("d", "double"),
        ("r", "real"),
        ("t", "timestamp"),
        ("tomorrow", "date"),
        ("yes", "boolean"),
        ("a", "array"),
        ("m", "map"),
        ("now", "timestamp with time zone"),
    ]
    assert (info[2]["Precision"], info[2]["Scale"]) == (38, 2)
    constants = ["2", "3", "0.1", "0.1", "2024-05-02 01:02:03.456", "2024-05-03", "true", "[1, 2]", "{k=1}", "2024-05-03 12:00:00.000 UTC"]
    assert result.text_rows() == [["acme", "2", "1.50", *constants], ["zen", "1", "2.25", *constants]]


def test_casts_to_varchar_write_the_text_athena_writes(lake: Path) -> None:
    sql = (
        "SELECT CAST(TIMESTAMP '2024-05-02 01:02:03' AS varchar), CAST(DATE '2024-05-02' AS varchar), "
        "CAST(1.50 AS varchar), CAST(7 AS varchar)"
    )
    assert rows(lake, sql) == [["2024-05-02 01:02:03.000", "2024-05-02", "1.50", "7"]]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        pytest.param("SELECT nmae FROM orders", "COLUMN_NOT_FOUND: line 1:1: Column 'nmae' cannot be resolved", id="unknown-column"),
        pytest.param("SELECT o.nmae FROM orders o", "COLUMN_NOT_FOUND", id="unknown-qualified-column"),
        pytest.param("SELECT * FROM orderz", "TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.shop.orderz' does not exist", id="table"),
        pytest.param("SELECT * FROM nowhere.orders", "SCHEMA_NOT_FOUND", id="schema"),
        pytest.param(
            "SELECT * FROM orders WHERE id = '1'", "TYPE_MISMATCH: line 1:1: Cannot apply operator: bigint = varchar", id="text-vs-number"
        ),
        pytest.param("SELECT * FROM orders WHERE customer IN (1, 2)", "TYPE_MISMATCH", id="in-list"),
        pytest.param("SELECT customer, count(*) FROM orders", "EXPRESSION_NOT_AGGREGATE", id="not-grouped"),
        pytest.param("SELECT amount / 2 FROM orders", "NOT_SUPPORTED: decimal division", id="decimal-division"),
        pytest.param("SELECT id / 2.5 FROM orders", "NOT_SUPPORTED: decimal division", id="decimal-literal-division"),
        pytest.param("SELECT avg(amount) FROM orders", "NOT_SUPPORTED: AVG", id="avg-of-decimal"),
        pytest.param(
            "SELECT format_datetime(current_timestamp, 'yyyy')", "NOT_SUPPORTED: function format_datetime", id="untranslated-function"
        ),
        pytest.param("SELECT list_sum(ARRAY[1])", "NOT_SUPPORTED: function list_sum", id="duckdb-only-function"),
        pytest.param("SELECT typeof(1)", "NOT_SUPPORTED: typeof()", id="typeof"),
        pytest.param("SELECT CAST(0.5e0 AS varchar)", "NOT_SUPPORTED: CAST(0.5e0 AS VARCHAR)", id="double-as-text"),
        pytest.param("SELECT 1 / 0", "DIVISION_BY_ZERO", id="division-by-zero"),
        pytest.param("SELECT CAST('x' AS integer)", "INVALID_CAST_ARGUMENT", id="bad-cast"),
        pytest.param("SELECT 9223372036854775807 + 1", "NUMERIC_VALUE_OUT_OF_RANGE", id="overflow"),
        pytest.param("SELEC 1", "SYNTAX_ERROR", id="syntax"),
        pytest.param("INSERT INTO orders SELECT * FROM orders", "NOT_SUPPORTED: this runs queries", id="not-a-query"),
    ],
)
def test_what_athena_refuses_fails_with_athenas_error_name(lake: Path, sql: str, error: str) -> None:
    with pytest.raises(AthenaQueryError) as failure:
        rows(lake, sql)
    assert str(failure.value).startswith(error), str(failure.value)


def test_a_table_without_database_needs_the_query_database(lake: Path) -> None:
    with pytest.raises(AthenaQueryError, match="Schema must be specified"):
        rows(lake, "SELECT * FROM orders", database=None)


def test_a_parquet_column_athena_cannot_read_as_its_glue_type_fails_with_hive_bad_data(lake: Path) -> None:
    write(lake, "rds/shop/orders/snapshot_time=20240502T000000Z/part-1.parquet", pa.table({"id": ["seven"]}))

    with pytest.raises(AthenaQueryError, match=r"HIVE_BAD_DATA: Field id's type string in parquet file s3://lake-bucket/rds/shop/orders/"):
        rows(lake, "SELECT count(*) FROM orders")


def test_a_data_file_that_is_not_parquet_fails_the_query_naming_it(lake: Path) -> None:
    (lake / "rds/shop/orders/snapshot_time=20240502T000000Z/part-2.parquet").write_bytes(b"PAR1 not really")

    with pytest.raises(AthenaQueryError, match=r"HIVE_CANNOT_OPEN_SPLIT: .*snapshot_time=20240502T000000Z/part-2.parquet"):
        rows(lake, "SELECT count(*) FROM orders")


def test_a_lake_folder_without_its_catalog_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(AthenaQueryError, match=r"holds no _snaplake_catalog.json: write the lake with `snaplake local rds\|dynamodb --out"):
        LakeFolder(tmp_path)


def test_writes_make_one_folder_per_partition_as_athena_names_it(tmp_path: Path) -> None:
    storage = FolderStorage(tmp_path, BUCKET)
    table = pa.table({"n": [1, 2, 3, 4], "dt": ["2024#05", "2024#05", None, "São Paulo"]})

    written = write_result(storage, table, f"s3://{BUCKET}/athena/t/", ["dt"], "q1_00000", "snappy")

    assert sorted(written) == [
        (("2024#05",), f"s3://{BUCKET}/athena/t/dt=2024%2305/"),
        (("São Paulo",), f"s3://{BUCKET}/athena/t/dt=São Paulo/"),
        (("__HIVE_DEFAULT_PARTITION__",), f"s3://{BUCKET}/athena/t/dt=__HIVE_DEFAULT_PARTITION__/"),
    ]
    assert pq.read_table(tmp_path / "athena/t/dt=2024%2305/q1_00000").to_pydict() == {"n": [1, 2]}
    too_many = pa.table({"n": list(range(101)), "dt": [str(n) for n in range(101)]})
    with pytest.raises(AthenaQueryError, match="HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers"):
        write_result(storage, too_many, f"s3://{BUCKET}/athena/u/", ["dt"], "q2_00000", "snappy")
    assert not (tmp_path / "athena/u").exists(), "nothing is written when the query writes too many partitions"


@pytest.mark.parametrize(
    ("value", "double", "real"),
    [
        (2.5, "2.5", "2.5"),
        (3.0, "3.0", "3.0"),
        (0.1, "0.1", "0.1"),
        (1e7, "1.0E7", "1.0E7"),
        (1.5e-4, "1.5E-4", "1.5E-4"),
        (-0.0, "-0.0", "-0.0"),
    ],
)
def test_numbers_print_as_the_jvm_prints_them(value: float, double: str, real: str) -> None:
    assert java_double(value) == double
    assert java_float(value) == real
