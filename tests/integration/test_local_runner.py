"""The `snaplake` command: replaying a downloaded export tree, and the demo."""

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from snaplake_local.cli import main
from snaplake_local.emulator import CATALOG_FILE, TablesSource
from snaplake_local.sample_data import shop_mysql_tables, world_postgres_tables
from snaplake_local.sources import sample_event


def write_export_tree(root: Path, source: TablesSource, export_id: str) -> Path:
    """An export as `aws s3 sync s3://bucket/prefix/<export-id>/ DIR` leaves it."""
    details = {
        "source_arn": "arn:aws:rds:eu-west-1:111122223333:cluster-snapshot:prod-db-snap",
        "snapshot_time": "2024-06-01T01:02:03Z",
        "start": "2024-06-01T02:00:00Z",
        "end": "2024-06-01T02:30:00Z",
        "bucket": "their-export-bucket",
        "prefix": "exports",
        "role": "arn:aws:iam::111122223333:role/export",
        "kms": "arn:aws:kms:eu-west-1:111122223333:key/k",
    }
    export = root / export_id
    for relative, body in source.files(export_id, details).items():
        path = export / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return export


def test_replaying_a_downloaded_postgres_export_writes_the_lake_under_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = write_export_tree(tmp_path / "download", TablesSource("aurora-postgresql", "world", world_postgres_tables()), "prod-export-1")
    out = tmp_path / "lake"

    code = main(["local", "rds", "--export-dir", str(export), "--out", str(out), "--snapshot-time", "2024-06-01T01:02:03Z"])

    assert code == 0
    assert (out / CATALOG_FILE).is_file(), "the replay keeps its Glue catalog next to the lake (snaplake local query reads it)"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != CATALOG_FILE)
    tables = {"city", "country", "countrylanguage", "sales_invoice_lines"}
    assert {w.split("/")[2] for w in written} == tables
    for table in tables:
        assert f"rds/world/{table}/snapshot_time=20240601T010203Z/_SUCCESS" in written
    assert not any("export_info" in w or "export_tables_info" in w for w in written)
    assert "4 table partitions" in capsys.readouterr().out


def test_replaying_the_parent_folder_with_an_event_uses_the_events_snapshot(tmp_path: Path) -> None:
    download = tmp_path / "download"
    write_export_tree(download, TablesSource("mysql", "shop", shop_mysql_tables()), "shop-export-7")
    event_file = tmp_path / "event.json"
    event_file.write_text(Path("events/rds_manual_instance_snapshot.json").read_text())
    assert sample_event("rds_manual_instance_snapshot.json")["detail"]["EventID"] == "RDS-EVENT-0042"
    out = tmp_path / "lake"

    code = main(["local", "rds", "--export-dir", str(download), "--out", str(out), "--event", str(event_file)])

    assert code == 0
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.parquet")}
    assert {w.split("/")[2] for w in written} == {"customers", "orders"}
    assert all(w.startswith("rds/shop/") for w in written)


def test_export_dir_without_an_export_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="holds no RDS export"):
        main(["local", "rds", "--export-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])


def test_demo_runs_every_pipeline_step_and_reports_the_lake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "demo"]) == 0

    printed = capsys.readouterr().out
    for step in ("SnapshotFilter", "StartExport", "PollExport", "PlanCopy", "CopyBatch", "FinalizeCopy"):
        assert step in printed
    assert "10 table partitions, 18 Parquet files, 122 rows" in printed
    for step in ("DynamoDbStartExport", "ConvertPlan", "ConvertMerge", "ConvertFinalize", "DynamoDbCommit"):
        assert step in printed
    assert "INCREMENTAL_EXPORT window" in printed
    # The demo ends with answers the emulated Athena computed from the lake (rows per table, the CTAS summary, the APAS partition).
    answers = printed[printed.index("Answers from the emulated Athena") :]
    for row in (
        r"world\s+city\s+34",
        r"shop\s+orders\s+20",
        r"dynamodb\s+shop_orders\s+12",
        r"Europe\s+6\s+313999500",
        r"2024-05-02\s+34\s+86481595",
    ):
        assert re.search(row, answers), row
    # ... then the landing events the pipelines put, one line each: pipeline, table, partition, rows.
    events = printed[printed.index("landing events put on EventBridge") :]
    assert re.search(r"rds\s+world\.city\s+snapshot_time=20240502T024019Z\s+rows=34 ", events)
    assert re.search(r"dynamodb\s+dynamodb\.shop_orders\s+export_time=\d{8}T\d{6}Z\s+rows=12 ", events)
    assert re.search(r"dynamodb_changes\s+dynamodb\.shop_orders_changes\s+dt=[-\d]+,hour=\d\d\s+rows=\d+ ", events)
    assert "all executions succeeded" in printed


def test_replaying_a_downloaded_dynamodb_export_writes_typed_parquet_under_out(tmp_path: Path) -> None:
    from snaplake_local.sources import ORDERS_TABLE_ARN, create_orders_table, default_parameters
    from snaplake_local.stack import EmulatedStack

    download = tmp_path / "download"
    with EmulatedStack(default_parameters(), function_log_level="WARNING") as stack:
        create_orders_table(stack)
        stack.clock.advance(20 * 60)
        assert stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN}).status == "SUCCEEDED"
        s3 = stack.client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=stack.export_bucket, Prefix="dynamodb-exports/shop-orders/AWSDynamoDB/"
        ):
            for obj in page.get("Contents", []):
                target = download / obj["Key"].removeprefix("dynamodb-exports/shop-orders/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=stack.export_bucket, Key=obj["Key"])["Body"].read())
    out = tmp_path / "lake"

    code = main(["local", "dynamodb", "--export-dir", str(download), "--out", str(out)])

    assert code == 0
    files = sorted(out.rglob("*.parquet"))
    assert files and all(f.relative_to(out).as_posix().startswith("dynamodb/shop_orders/export_time=") for f in files)
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert len(rows) == 12
    assert {row["customer__address__city"] for row in rows} == {"Amsterdam", "Nairobi", "Osaka", "Lyon"}


def test_dynamodb_export_dir_without_a_manifest_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"manifest-summary\.json"):
        main(["local", "dynamodb", "--export-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])


def test_the_rds_command_exits_0_when_run_as_a_process(tmp_path: Path) -> None:
    """The process ends cleanly (exit 0, not 134 "terminate called without an active exception"):
    nothing the run started is still working when the interpreter shuts down."""
    import subprocess
    import sys

    export = write_export_tree(tmp_path / "download", TablesSource("aurora-postgresql", "world", world_postgres_tables()), "prod-export-1")
    command = [sys.executable, "-m", "snaplake_local.cli", "local", "rds", "--export-dir", str(export), "--out", str(tmp_path / "lake")]
    command += ["--snapshot-time", "2024-06-01T01:02:03Z"]

    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "lake objects under" in done.stdout
    assert "terminate called" not in done.stderr


def test_the_lake_report_reads_parquet_without_arrows_background_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    """pq.read_table on an in-memory buffer leaves Arrow pool threads releasing the Python buffer
    after it returns (apache/arrow#33975); one still doing so at interpreter exit aborts the process."""
    import io

    import pyarrow as pa
    from snaplake_local.report import Partition, sample_rows

    body = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3, 4]}), body)

    class OneObject:
        def get_object(self, Bucket: str, Key: str) -> dict[str, io.BytesIO]:
            return {"Body": io.BytesIO(body.getvalue())}

    def no_dataset_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("pq.read_table scans in Arrow's background threads")

    monkeypatch.setattr(pq, "read_table", no_dataset_scan)

    assert sample_rows(OneObject(), "lake", Partition("t/", keys=["t/a.parquet"]), limit=2) == [{"id": 1}, {"id": 2}]


def test_no_thread_the_stack_started_outlives_it() -> None:
    """An execution still running when the stack exits is stopped and its threads joined."""
    import threading

    from snaplake_local.sources import default_parameters, seed_sample_sources
    from snaplake_local.stack import EmulatedStack

    before = set(threading.enumerate())
    with EmulatedStack(default_parameters(), function_log_level="WARNING") as stack:
        seed_sample_sources(stack)
        stack.start("RdsExportStateMachine", sample_event("rds_manual_instance_snapshot.json"))

    assert [t.name for t in threading.enumerate() if t not in before] == []
