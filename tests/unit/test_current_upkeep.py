"""After each `<table>_current` MERGE (snaplake.athena.current_upkeep): its landing event, then the table's VACUUM
properties, OPTIMIZE and VACUUM, run against the emulated Athena (athena_iceberg_upkeep)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from snaplake.athena.current_upkeep import next_upkeep, vacuum_properties
from snaplake.core.times import iso_utc
from snaplake_local.emulator import athena_iceberg_upkeep
from snaplake_local.emulator.athena_types import AthenaQueryError

from tests.unit.current_lake import BUCKET, CurrentLake, current_lake

DAY = 86_400


class RecordingEvents:
    """The events client, keeping every entry put."""

    def __init__(self, client: Any):
        self.client, self.entries = client, []  # type: ignore[var-annotated]

    def put_events(self, **kwargs: Any) -> Any:
        self.entries += kwargs["Entries"]
        return self.client.put_events(**kwargs)

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for e in self.entries]


@pytest.fixture
def lake() -> Iterator[CurrentLake]:
    with current_lake() as found:
        found.clients = found.clients.__class__(**{**found.clients.__dict__, "events": RecordingEvents(found.events)})
        yield found


def _events(lake: CurrentLake) -> RecordingEvents:
    events: RecordingEvents = lake.clients.events
    return events


def _files(lake: CurrentLake, table: str, folder: str) -> set[str]:
    listed = lake.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"dynamodb_current/{table}/{folder}/").get("Contents", [])
    return {o["Key"] for o in listed}


def test_the_upkeep_sets_the_vacuum_properties_once_then_optimizes_and_vacuums() -> None:
    assert vacuum_properties(0) is None
    assert vacuum_properties(3) == {"vacuum_max_snapshot_age_seconds": str(3 * DAY), "vacuum_min_snapshots_to_keep": "1"}
    labels = []
    done = "merge"
    while (step := next_upkeep(done, "dynamodb", "t_current", {}, 3)) is not None:
        labels.append(step[0])
        done = step[0]
    assert labels == ["set-properties", "optimize", "vacuum"]
    assert next_upkeep("merge", "dynamodb", "t_current", vacuum_properties(3) or {}, 3) == (
        "optimize",
        "OPTIMIZE dynamodb.t_current REWRITE DATA USING BIN_PACK",
    )
    assert next_upkeep("optimize", "dynamodb", "t_current", {}, 0) is None  # retention 0 keeps every snapshot: no VACUUM
    assert next_upkeep("optimize", "dynamodb", "t_current", {}, 3) == ("vacuum", "VACUUM dynamodb.`t_current`")


def test_vacuum_expires_snapshots_older_than_the_retention_keeps_time_travel_to_the_kept_and_deletes_their_files(
    lake: CurrentLake,
) -> None:
    table = lake.table()
    current = f"{table.name}_current"
    table.items = {("p1", 1): {"a": 1}}
    lake.merge(table.full_export())  # snapshot 1
    lake.merge(table.window([(("p1", 1), {"a": 2})]))  # snapshot 2
    parameters = lake.glue.get_table(DatabaseName="dynamodb", Name=current)["Table"]["Parameters"]
    assert parameters["vacuum_max_snapshot_age_seconds"] == str(DAY)
    old_files = _files(lake, table.name, "data")
    assert len(old_files) == 2
    orphan = f"dynamodb_current/{table.name}/data/orphan-of-a-failed-write.parquet"
    lake.s3.put_object(Bucket=BUCKET, Key=orphan, Body=b"PAR1")

    lake.clock.advance(2 * DAY)
    lake.merge(table.window([(("p1", 1), {"a": 3})]))  # snapshot 3: VACUUM expires 1 and 2 (older than a day)
    kept_at = lake.clock.now()
    lake.clock.advance(60)
    lake.merge(table.window([(("p2", 2), {"b": "x"})]))  # snapshot 4: 3 is younger than a day, kept

    assert not (old_files | {orphan}) & _files(lake, table.name, "data")
    assert len(_files(lake, table.name, "data")) == 2
    travelled = lake.athena.engine.run_sql(
        f"SELECT pk, a FROM dynamodb.{current} FOR TIMESTAMP AS OF TIMESTAMP '{kept_at:%Y-%m-%d %H:%M:%S} UTC'"
    )
    assert travelled.table.to_pylist() == [{"pk": "p1", "a": 3}]
    assert lake.athena.engine.run_sql(f"SELECT count(*) AS n FROM dynamodb.{current} FOR VERSION AS OF 3").table.to_pylist() == [{"n": 1}]
    with pytest.raises(AthenaQueryError, match="snapshot ID does not exists: 1"):
        lake.athena.engine.run_sql(f"SELECT count(*) FROM dynamodb.{current} FOR VERSION AS OF 1")
    with pytest.raises(AthenaQueryError, match="No version history"):
        lake.athena.engine.run_sql(f"SELECT count(*) FROM dynamodb.{current} FOR TIMESTAMP AS OF current_timestamp - interval '2' day")
    assert table.current_rows() == table.items


def test_a_failed_vacuum_is_reported_and_does_not_fail_the_merge(lake: CurrentLake, monkeypatch: pytest.MonkeyPatch) -> None:
    table = lake.table()
    table.items = {("p1", 1): {"a": 1}}
    lake.merge(table.full_export())

    def refuse(*args: Any) -> None:
        raise AthenaQueryError("GENERIC_INTERNAL_ERROR: vacuum refused")

    monkeypatch.setattr(athena_iceberg_upkeep, "vacuum", refuse)
    request = table.window([(("p1", 1), {"a": 2})])
    finished = lake.merge(request)
    assert finished["status"] == "MERGED" and "vacuum failed" in finished["upkeep"] and "vacuum refused" in finished["upkeep"]
    assert table.current_rows() == table.items
    assert lake.merge({**request, "execution": request["execution"] + "-again"})["status"] == "ALREADY_APPLIED"


def test_each_merge_puts_one_current_landing_event_and_a_repeated_window_puts_none(lake: CurrentLake) -> None:
    table = lake.table()
    table.items = {("p1", 1): {"a": 1}, ("p2", 1): {"a": 2}}
    lake.merge(table.full_export())
    request = table.window([(("p1", 1), {"a": 5}), (("p2", 1), None), (("p3", 1), {"b": "new"})])
    lake.merge(request)

    full, window = _events(lake).details()
    assert _events(lake).entries[1]["DetailType"] == "Lake Partition Landed" and _events(lake).entries[1]["Source"] == "snaplake"
    assert full["pipeline"] == window["pipeline"] == "dynamodb_current"
    assert window["qualifiedTable"] == f"dynamodb.{table.name}_current" and window["tableFormat"] == "ICEBERG"
    assert window["partition"] == {} and window["location"] == f"s3://{BUCKET}/dynamodb_current/{table.name}/"
    assert window["rows"] == 3 and full["rows"] == 2  # the rows each MERGE inserted, updated or deleted
    assert window["exportIds"] == [request["exportArn"]] and window["exportType"] == "INCREMENTAL_EXPORT"
    bounds = [iso_utc(datetime.fromisoformat(request[name])) for name in ("windowFrom", "exportedTo")]
    assert window["window"] == {"from": bounds[0], "to": bounds[1]} and window["snapshotTime"] == bounds[1]

    # The same window again (the run failed after its merge): already applied, no second event.
    assert lake.merge({**request, "execution": request["execution"] + "-again"})["status"] == "ALREADY_APPLIED"
    assert len(_events(lake).entries) == 2


def test_a_retried_call_after_the_merge_puts_the_same_landing_id(lake: CurrentLake, monkeypatch: pytest.MonkeyPatch) -> None:
    table = lake.table()
    table.items = {("p1", 1): {"a": 1}}
    lake.merge(table.full_export())
    request = table.window([(("p1", 1), {"a": 2})])
    cursor: dict[str, Any] = {}
    while cursor.get("label") != "merge":
        cursor = lake.merge_call(request, cursor)
    lake.clock.advance(cursor["waitSeconds"])
    from snaplake.athena.current import CurrentStep

    def crash(self: Any) -> None:
        raise RuntimeError("the Lambda died after the event and before the record")

    with monkeypatch.context() as patched:
        patched.setattr(CurrentStep, "record_applied", crash)
        with pytest.raises(RuntimeError):
            lake.merge_call(request, cursor)
    retried = lake.merge_call(request, cursor)  # the state machine retries the call with the same cursor
    assert retried["label"] in ("optimize", "vacuum", "set-properties")
    first, again = _events(lake).details()[1:]
    assert first["landingId"] == again["landingId"]
    assert len(_events(lake).entries) == 3


def _run(lake: CurrentLake, sql: str) -> dict[str, Any]:
    started = lake.clients.athena.start_query_execution(QueryString=sql, WorkGroup="primary")["QueryExecutionId"]
    lake.clock.advance(10)
    status: dict[str, Any] = lake.clients.athena.get_query_execution(QueryExecutionId=started)["QueryExecution"]["Status"]
    return status


def test_emulated_vacuum_keeps_the_minimum_snapshots_and_refuses_tables_that_are_not_iceberg(lake: CurrentLake) -> None:
    table = lake.table()
    current = f"{table.name}_current"
    table.items = {("p1", 1): {"a": 1}}
    lake.merge(table.full_export())
    for value in (2, 3, 4):
        lake.merge(table.window([(("p1", 1), {"a": value})]))
    alter = f"ALTER TABLE dynamodb.{current} SET TBLPROPERTIES ('vacuum_min_snapshots_to_keep'='3')"
    assert _run(lake, alter)["State"] == "SUCCEEDED"
    lake.clock.advance(10 * DAY)

    assert _run(lake, f"VACUUM dynamodb.`{current}`")["State"] == "SUCCEEDED"
    kept = [lake.athena.engine.run_sql(f"SELECT a FROM dynamodb.{current} FOR VERSION AS OF {n}").table.to_pylist() for n in (2, 3, 4)]
    assert kept == [[{"a": 2}], [{"a": 3}], [{"a": 4}]]
    with pytest.raises(AthenaQueryError, match="does not exists: 1"):
        lake.athena.engine.run_sql(f"SELECT a FROM dynamodb.{current} FOR VERSION AS OF 1")
    assert len(_files(lake, table.name, "data")) == 3

    refused = _run(lake, f"VACUUM dynamodb.{table.name}")
    assert refused["State"] == "FAILED" and "NOT_SUPPORTED" in refused["StateChangeReason"]
    quoted = _run(lake, f'VACUUM dynamodb."{current}"')  # VACUUM takes backticks, not double quotes
    assert quoted["State"] == "FAILED" and "SYNTAX_ERROR" in quoted["StateChangeReason"]
    assert _run(lake, f"OPTIMIZE dynamodb.{current} REWRITE DATA USING BIN_PACK")["State"] == "SUCCEEDED"
