"""The metrics each pipeline emits (CloudWatch EMF on stdout, captured) equal what landed in the lake.

The stacks run the real state machines with the handlers in-process, so the EMF documents Powertools prints
are on this process's stdout (namespace snaplake-local, set by the emulated stack)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.athena.cursor import Cursor
from snaplake.athena.jobs import parse_job
from snaplake.athena.queries import JobQueries
from snaplake.athena.settings import AthenaSettings
from snaplake_local.emulator import Emitted, capture_metrics, parse_metrics, total
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN, WORLD_CLUSTER, create_orders_table, sample_event
from snaplake_local.stack import EmulatedStack
from snaplake_local.streams import STREAM_TABLE, create_stream_table, stream_events

WORLD_PARTITION = "snapshot_time=20240502T024019Z"


def emitted(capsys: pytest.CaptureFixture[str]) -> list[Emitted]:
    return parse_metrics(capsys.readouterr().out.splitlines())


def parquet_rows(stack: EmulatedStack, keys: list[str]) -> int:
    s3 = stack.client("s3")
    return sum(
        pq.ParquetFile(pa.BufferReader(s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read())).metadata.num_rows for key in keys
    )


def test_rds_landing_emits_files_bytes_and_lag_per_table_and_one_snapshot_for_the_source_once(
    stack: EmulatedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    execution = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))
    assert execution.status == "SUCCEEDED", execution.cause

    found = emitted(capsys)
    assert {e.namespace for e in found} == {"snaplake-local"}
    landed = [e for e in found if "FilesLanded" in e.values]
    assert {e.dimensions["table"] for e in landed} == {"world.city", "world.country", "world.countrylanguage", "world.sales_invoice_lines"}
    objects = stack.lake_objects()
    for e in landed:
        assert set(e.dimensions) == {"pipeline", "source", "table"}
        assert e.dimensions["pipeline"] == "rds" and e.dimensions["source"] == WORLD_CLUSTER
        partition = f"rds/world/{e.dimensions['table'].split('.')[1]}/{WORLD_PARTITION}/"
        data = {key: size for key, size in objects.items() if key.startswith(partition) and key.endswith(".parquet")}
        assert e.values["FilesLanded"] == len(data) > 0
        assert e.values["BytesLanded"] == sum(data.values())
        assert e.units["BytesLanded"] == "Bytes" and e.units["LandingLag"] == "Seconds"
        snapshot = datetime(2024, 5, 2, 2, 40, 19, tzinfo=UTC)
        assert e.values["LandingLag"] == pytest.approx((datetime.now(UTC) - snapshot).total_seconds(), abs=600)
    [snapshot_landed] = [e for e in found if "SnapshotsLanded" in e.values]
    assert snapshot_landed.dimensions == {"pipeline": "rds", "source": WORLD_CLUSTER}
    assert snapshot_landed.values == {"SnapshotsLanded": 1}

    again = stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))
    assert again.status == "SUCCEEDED", again.cause
    assert emitted(capsys) == [], "a redelivered event lands nothing new: no second landing in the metrics"


def test_dynamodb_full_export_emits_the_parquet_row_count_files_duration_and_the_commit(
    stack: EmulatedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    create_orders_table(stack)
    stack.clock.advance(20 * 60)
    capsys.readouterr()
    execution = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})
    assert execution.status == "SUCCEEDED", execution.cause

    found = emitted(capsys)
    data = {k: size for k, size in stack.lake_objects("dynamodb/shop_orders/").items() if k.endswith(".parquet")}
    [landed] = [e for e in found if "RowsLanded" in e.values]
    assert landed.dimensions == {"pipeline": "dynamodb", "source": ORDERS_TABLE, "table": "shop_orders"}
    assert landed.values["RowsLanded"] == parquet_rows(stack, list(data)) == execution.output["landed"]["rows"] > 0
    assert landed.values["FilesLanded"] == len(data)
    assert landed.values["BytesLanded"] == sum(data.values())
    assert total(found, "CheckpointsCommitted", pipeline="dynamodb", source=ORDERS_TABLE) == 1
    [duration] = [e for e in found if "ExportDuration" in e.values]
    assert duration.dimensions == {"pipeline": "dynamodb", "source": ORDERS_TABLE} and duration.values["ExportDuration"] > 0


def test_a_failed_dynamodb_run_commits_nothing_and_emits_no_commit(stack: EmulatedStack, capsys: pytest.CaptureFixture[str]) -> None:
    """The table's freshness alarm watches CheckpointsCommitted: a run that fails must not feed it."""
    create_orders_table(stack, pitr=False)
    capsys.readouterr()
    execution = stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})
    assert execution.status == "FAILED"

    found = emitted(capsys)
    assert total(found, "CheckpointsCommitted") == 0 and total(found, "RowsLanded") == 0


def test_stream_batches_emit_records_written_and_a_redelivery_adds_none(stack: EmulatedStack, capsys: pytest.CaptureFixture[str]) -> None:
    stream_arn = create_stream_table(stack)
    ddb = stack.client("dynamodb")
    for total_value in ("10", "12.5", "14"):
        ddb.put_item(TableName=STREAM_TABLE, Item={"cart": {"S": "C1"}, "total": {"N": total_value}})
    function = stack.function("StreamFlattenFunction")
    events = list(stream_events(stack, stream_arn))
    capsys.readouterr()
    for event in events:
        function.invoke(event)
    first = emitted(capsys)
    for event in events:
        function.invoke(event)  # delivered again: everything is already in the lake
    again = emitted(capsys)

    keys = sorted(k for k in stack.lake_objects("dynamodb_stream_changes/shop_carts/") if k.endswith(".parquet"))
    dimensions = {"pipeline": "dynamodb_stream", "source": STREAM_TABLE, "table": "shop_carts_stream_changes"}
    assert total(first, "StreamRecordsWritten", **dimensions) == parquet_rows(stack, keys) == 3
    assert total(first, "RowsLanded", **dimensions) == 3 and total(first, "FilesLanded", **dimensions) == len(keys)
    assert total(first, "StreamRecordsFailed", **dimensions) == 0
    assert total(again, "StreamRecordsWritten", **dimensions) == 0 and total(again, "FilesLanded") == 0


class _FinishedQuery:
    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        return {
            "QueryExecution": {
                "Status": {"State": "SUCCEEDED"},
                "Statistics": {"TotalExecutionTimeInMillis": 1234, "DataScannedInBytes": 5678},
            }
        }


def test_a_finished_athena_query_emits_its_run_time_and_bytes_scanned_for_the_job_and_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = parse_job({"name": "daily", "mode": "ctas", "database": "marts", "table": "daily", "query": "SELECT 1 AS a"}, 0)
    settings = AthenaSettings.from_env({"LAKE_BUCKET": "lake-bucket"})
    cursor = Cursor("run", query_execution_id="q-1")
    with capture_metrics() as captured:  # what the demo uses: EMF lines are kept, other output passes through
        print("not a metric")
        assert JobQueries(_FinishedQuery(), settings, job, 0).finished(cursor, lambda: "the CTAS")

    assert capsys.readouterr().out == "not a metric\n"
    [query] = captured
    assert query.dimensions == {"pipeline": "athena", "source": "daily", "table": "marts.daily"}
    assert query.values == {"AthenaQueryTime": 1234, "AthenaBytesScanned": 5678}
    assert query.units == {"AthenaQueryTime": "Milliseconds", "AthenaBytesScanned": "Bytes"}
