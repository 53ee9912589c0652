"""`snaplake local query --lake DIR "SQL"` over the folder `snaplake local rds|dynamodb --out DIR` wrote: the replays keep
the Glue catalog they built next to the lake, and the query answers from the lake's Parquet with those tables."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from snaplake_local.cli import main
from snaplake_local.emulator import CATALOG_FILE, TablesSource
from snaplake_local.sample_data import world_postgres_tables
from snaplake_local.sources import ORDERS_TABLE_ARN, create_orders_table, default_parameters
from snaplake_local.stack import EmulatedStack

from tests.integration.test_local_runner import write_export_tree

TABLES = ("city", "country", "countrylanguage", "sales_invoice_lines")


def download_dynamodb_export(target: Path) -> None:
    """A DynamoDB export of the sample orders table, as `aws s3 sync` leaves it."""
    with EmulatedStack(default_parameters(), function_log_level="WARNING") as stack:
        create_orders_table(stack)
        stack.clock.advance(20 * 60)
        assert stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"
        s3 = stack.client("s3")
        prefix = "dynamodb-exports/shop-orders/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.export_bucket, Prefix=f"{prefix}AWSDynamoDB/"):
            for obj in page.get("Contents", []):
                path = target / obj["Key"].removeprefix(prefix)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=stack.export_bucket, Key=obj["Key"])["Body"].read())


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two snapshots of the world export and a DynamoDB export, all replayed into one --out folder."""
    root = tmp_path_factory.mktemp("replays")
    export = write_export_tree(root / "download", TablesSource("aurora-postgresql", "world", world_postgres_tables()), "prod-export-1")
    out = root / "lake"
    for when in ("2024-06-01T01:02:03Z", "2024-06-02T01:02:03Z"):
        assert main(["local", "rds", "--export-dir", str(export), "--out", str(out), "--snapshot-time", when]) == 0
    download_dynamodb_export(root / "ddb")
    assert main(["local", "dynamodb", "--export-dir", str(root / "ddb"), "--out", str(out)]) == 0
    yield out


def query(capsys: pytest.CaptureFixture[str], lake: Path, sql: str, *options: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["local", "query", "--lake", str(lake), *options, sql])
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def parquet_rows(folder: Path) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in folder.rglob("*.parquet"))


def test_the_replays_keep_their_catalog_next_to_the_lake(lake: Path) -> None:
    saved = json.loads((lake / CATALOG_FILE).read_text())
    assert {database: sorted(tables) for database, tables in saved["databases"].items()} == {
        "world": sorted([*TABLES, *(f"{table}_latest" for table in TABLES)]),
        "dynamodb": ["shop_orders"],
    }
    city = saved["databases"]["world"]["city"]
    assert sorted(p["Values"][0] for p in city["partitions"]) == ["20240601T010203Z", "20240602T010203Z"], "both replays' partitions"


@pytest.mark.parametrize("table", TABLES)
def test_a_count_over_a_replayed_rds_export_is_the_exported_row_count(capsys: pytest.CaptureFixture[str], lake: Path, table: str) -> None:
    snapshot = lake / f"rds/world/{table}/snapshot_time=20240601T010203Z"

    code, out, err = query(capsys, lake, f"SELECT count(*) AS n FROM world.{table} WHERE snapshot_time = '20240601T010203Z'")

    assert code == 0, err
    assert [line.strip() for line in out.splitlines()] == [
        "n",
        "-" * len(str(parquet_rows(snapshot))),
        str(parquet_rows(snapshot)),
        "(1 row)",
    ]
    code, out, _ = query(capsys, lake, f"SELECT count(*) FROM world.{table}", "--format", "csv")
    assert out.splitlines() == ["_col0", str(2 * parquet_rows(snapshot))], "both snapshots"


@pytest.fixture(scope="module")
def two_snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """Two different snapshots of world replayed into one --out, the newer first (an older one completing late)."""
    root = tmp_path_factory.mktemp("two-snapshots")
    tables = world_postgres_tables()
    newer_tables = {**tables, "public.city": tables["public.city"].slice(0, 5)}
    newer = write_export_tree(root / "newer", TablesSource("aurora-postgresql", "world", newer_tables), "export-newer")
    older = write_export_tree(root / "older", TablesSource("aurora-postgresql", "world", tables), "export-older")
    out = root / "lake"
    assert main(["local", "rds", "--export-dir", str(newer), "--out", str(out), "--snapshot-time", "2024-06-02T01:02:03Z"]) == 0
    assert main(["local", "rds", "--export-dir", str(older), "--out", str(out), "--snapshot-time", "2024-06-01T01:02:03Z"]) == 0
    return out, tables["public.city"].num_rows, 5


def test_two_replays_accumulate_and_latest_answers_the_newest_snapshot(
    capsys: pytest.CaptureFixture[str], two_snapshots: tuple[Path, int, int]
) -> None:
    out, older_rows, newer_rows = two_snapshots
    saved = json.loads((out / CATALOG_FILE).read_text())["databases"]["world"]
    assert sorted(p["Values"][0] for p in saved["city"]["partitions"]) == ["20240601T010203Z", "20240602T010203Z"]

    code, both, err = query(capsys, out, "SELECT count(*) FROM world.city", "--format", "csv")
    assert code == 0, err
    assert both.splitlines() == ["_col0", str(older_rows + newer_rows)], "the base table holds both snapshots"

    code, latest, err = query(capsys, out, "SELECT count(*) FROM world.city_latest", "--format", "csv")
    assert code == 0, err
    assert latest.splitlines() == ["_col0", str(newer_rows)], "the older snapshot, replayed last, did not move _latest back"
    assert saved["city_latest"]["table"]["Parameters"]["snaplake_snapshot_time"] == "20240602T010203Z"


def test_a_count_over_a_replayed_dynamodb_export_is_the_exported_item_count(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    code, out, err = query(capsys, lake, "SELECT count(*) AS items FROM dynamodb.shop_orders", "--format", "json")

    assert code == 0, err
    assert json.loads(out) == [{"items": 12}]


def test_answers_print_as_csv_and_json(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    sql = "SELECT countrycode, count(*) AS cities, sum(population) AS people FROM city WHERE snapshot_time = '20240601T010203Z' GROUP BY 1"
    city = pq.read_table(lake / "rds/world/city/snapshot_time=20240601T010203Z", partitioning=None)
    expected = {
        row["countrycode"]: (row["id_count"], row["population_sum"])
        for row in city.group_by("countrycode").aggregate([("id", "count"), ("population", "sum")]).to_pylist()
    }

    _, as_csv, _ = query(capsys, lake, sql + " ORDER BY 1", "--database", "world", "--format", "csv")
    _, as_json, _ = query(capsys, lake, sql + " ORDER BY 1", "--database", "world", "--format", "json")

    parsed = list(csv.DictReader(io.StringIO(as_csv)))
    assert {r["countrycode"]: (int(r["cities"]), int(r["people"])) for r in parsed} == expected
    assert {r["countrycode"]: (r["cities"], r["people"]) for r in json.loads(as_json)} == expected
    assert [r["countrycode"] for r in parsed] == sorted(expected)


def test_a_query_naming_a_wrong_column_fails_clearly(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    code, out, err = query(capsys, lake, "SELECT nmae FROM world.city")

    assert code == 1 and out == ""
    assert "query failed: COLUMN_NOT_FOUND: line 1:1: Column 'nmae' cannot be resolved" in err


def test_a_query_naming_a_missing_table_lists_the_lakes_tables(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    code, _, err = query(capsys, lake, "SELECT * FROM world.citty")

    assert code == 1
    assert "TABLE_NOT_FOUND" in err and "the lake's tables: dynamodb.shop_orders, world.city, world.city_latest, world.country" in err


def test_a_folder_no_replay_wrote_is_refused_clearly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = query(capsys, tmp_path, "SELECT 1")

    assert code == 1 and f"holds no {CATALOG_FILE}" in err


def test_the_query_command_exits_0_when_run_as_a_process(lake: Path) -> None:
    """DuckDB and Arrow leave no thread behind that would abort the interpreter at exit."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "snaplake_local.cli", "local", "query", "--lake", str(lake), "SELECT count(*) AS n FROM world.country"]

    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["24", "(1", "row)"]
    assert "terminate called" not in done.stderr
