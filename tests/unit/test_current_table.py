"""`<table>_current` (snaplake.athena.current and current_sql): after any history of puts, updates and deletes over
several windows, the table holds exactly the DynamoDB table's items.

Most histories run the MERGE statements the pipeline builds on DuckDB directly (the SQL translated from Athena's
dialect, as the emulated Athena translates it); fewer run the whole MergeCurrent step against the emulated Athena
(Iceberg tables, ADD COLUMNS, the applied record, retries). The state machine runs it in
tests/integration/test_dynamodb_current.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snaplake.athena import CurrentTableBehind, QueryFailed
from snaplake.athena.current_sql import MergeTarget, snapshot_merge, window_merge

from tests.unit.current_lake import CurrentLake, Item, Key, SourceTable, current_lake

KEYS = [(pk, sk) for pk in ("p1", "p2", "p3") for sk in (1, 2)]
items = st.fixed_dictionaries(
    {"a": st.one_of(st.none(), st.integers(-3, 3)), "b": st.one_of(st.none(), st.sampled_from(["x", "y", ""])), "c": st.none()}
)
later_items = st.fixed_dictionaries(
    {
        "a": st.one_of(st.none(), st.integers(-3, 3)),
        "b": st.one_of(st.none(), st.sampled_from(["x", "y"])),
        "c": st.one_of(st.none(), st.integers(0, 9)),
    }
)
writes = st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), items)), max_size=7)
later_writes = st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), later_items)), max_size=7)
histories = st.tuples(
    st.dictionaries(st.sampled_from(KEYS), items, max_size=5),  # the items at the full export
    st.lists(st.tuples(st.one_of(writes, later_writes), st.booleans(), st.booleans()), min_size=1, max_size=4),  # windows
)


# ---------------------------------------------------------------------------------------------- the SQL on DuckDB
class DuckLake:
    """The DynamoDB database as DuckDB tables: `orders` (full exports), `orders_changes`, `orders_current`."""

    COLUMNS = ("pk", "sk", "a", "b", "c")

    def __init__(self) -> None:
        self.db = duckdb.connect(":memory:")
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute("CREATE SCHEMA dynamodb")
        self.db.execute("CREATE TABLE dynamodb.orders (pk VARCHAR, sk BIGINT, a BIGINT, b VARCHAR, export_time VARCHAR)")
        changes = ", ".join(f"{s}__{c} {t}" for s in ("key", "new", "old") for c, t in zip(self.COLUMNS, self._types(), strict=True))
        self.db.execute(
            f"CREATE TABLE dynamodb.orders_changes ({changes}, change_type VARCHAR, write_time TIMESTAMP, dt VARCHAR, hour VARCHAR)"
        )
        self.db.execute("CREATE TABLE dynamodb.orders_current (pk VARCHAR, sk BIGINT, a BIGINT, b VARCHAR, c BIGINT)")
        self.target = MergeTarget("dynamodb", "orders_current", ("pk", "sk"), self.COLUMNS)
        self.reset()

    def reset(self) -> DuckLake:
        """Empty tables for the next history (one DuckDB for every history: creating one per history is slow)."""
        for table in ("orders", "orders_changes", "orders_current"):
            self.db.execute(f"DELETE FROM dynamodb.{table}")
        self.items: dict[Key, Item] = {}
        self.clock = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
        return self

    @staticmethod
    def _types() -> tuple[str, ...]:
        return ("VARCHAR", "BIGINT", "BIGINT", "VARCHAR", "BIGINT")

    def run(self, athena_sql: str) -> None:
        (translated,) = sqlglot.transpile(athena_sql, read="athena", write="duckdb")
        self.db.execute(translated)

    def full_export(self, items: dict[Key, Item]) -> None:
        self.items = {k: {a: v for a, v in item.items() if v is not None} for k, item in items.items()}
        self.clock += timedelta(minutes=30)
        value = f"{self.clock:%Y%m%dT%H%M%SZ}"
        for (pk, sk), item in self.items.items():
            self.db.execute("INSERT INTO dynamodb.orders VALUES (?, ?, ?, ?, ?)", [pk, sk, item.get("a"), item.get("b"), value])
        self.run(snapshot_merge(self.target, "orders", ["pk", "sk", "a", "b"], value if self.items else None, {}))

    def window(self, history: list[tuple[Key, Item | None]]) -> str:
        """Apply the writes, land the window's compacted changes, return the window's MERGE."""
        start = self.clock
        before = dict(self.items)
        last: dict[Key, datetime] = {}
        for position, (key, item) in enumerate(history):
            if item is None:
                self.items.pop(key, None)
            else:
                self.items[key] = {a: v for a, v in item.items() if v is not None}
            last[key] = start + timedelta(seconds=1 + position)
        end = start + timedelta(hours=1)
        for key, at in last.items():
            old, new = before.get(key), self.items.get(key)
            if old is None and new is None:
                continue
            kind = "REMOVE" if new is None else ("INSERT" if old is None else "MODIFY")
            values: list[Any] = [*key, None, None, None]
            for image in (new, old):
                values += [*key, image.get("a"), image.get("b"), image.get("c")] if image is not None else [None] * 5
            values += [kind, at.replace(tzinfo=None), f"{at:%Y-%m-%d}", f"{at:%H}"]
            self.db.execute(f"INSERT INTO dynamodb.orders_changes VALUES ({', '.join('?' * len(values))})", values)
        # A row of the window before, written a millisecond before this one starts, must not be merged with it.
        early = start - timedelta(milliseconds=1)
        self.db.execute(
            "INSERT INTO dynamodb.orders_changes (key__pk, key__sk, change_type, write_time, dt, hour) VALUES ('p1', 1, 'REMOVE', ?, ?, ?)",
            [early.replace(tzinfo=None), f"{early:%Y-%m-%d}", f"{early:%H}"],
        )
        self.clock = end
        return window_merge(
            self.target, "orders_changes", [f"{s}__{c}" for s in ("key", "new", "old") for c in self.COLUMNS], start, end, {}
        )

    def current(self) -> dict[Key, Item]:
        rows = self.db.execute("SELECT pk, sk, a, b, c FROM dynamodb.orders_current").fetchall()
        found = {(pk, sk): {"a": a, "b": b, "c": c} for pk, sk, a, b, c in rows}
        assert len(found) == len(rows), "a key is in the table twice"
        return {k: {a: v for a, v in item.items() if v is not None} for k, item in found.items()}


DUCK_LAKE = DuckLake()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories)
def test_merged_windows_leave_exactly_the_tables_items(history: tuple[dict[Key, Item], list[Any]]) -> None:
    initial, windows = history
    lake = DUCK_LAKE.reset()
    lake.full_export(initial)
    assert lake.current() == lake.items
    for writes_in_window, repeat, rebuild in windows:
        merge = lake.window(writes_in_window)
        lake.run(merge)
        if repeat:  # the run died after the MERGE and before it recorded it: the next run merges the window again
            lake.run(merge)
        assert lake.current() == lake.items
        if rebuild:  # a requested full export rebuilds the table from the export alone
            lake.db.execute("UPDATE dynamodb.orders_current SET c = NULL")  # full exports here hold no `c`
            lake.items = {k: {a: v for a, v in item.items() if a != "c"} for k, item in lake.items.items()}
            lake.full_export(lake.items)
            assert lake.current() == lake.items


# ---------------------------------------------------------------------------------------------- the step, emulated Athena
def _apply_window(lake: CurrentLake, table: SourceTable, history: list[tuple[Key, Item | None]], retry: bool) -> None:
    before = lake.s3.get_object(Bucket="current-lake", Key=f"_snaplake/current/{table.name}.json")["Body"].read()
    request = table.window(history)
    assert lake.merge(request)["status"] in ("MERGED", "NOTHING_TO_MERGE")
    assert table.current_rows() == table.items
    if retry:
        # A repeated run of the window (CommitCheckpoint failed) merges nothing; one that died before its record was
        # written merges the window again, which changes nothing either.
        assert lake.merge({**request, "execution": request["execution"] + "-again"})["status"] == "ALREADY_APPLIED"
        lake.s3.put_object(Bucket="current-lake", Key=f"_snaplake/current/{table.name}.json", Body=before)
        assert lake.merge({**request, "execution": request["execution"] + "-third"})["status"] in ("MERGED", "NOTHING_TO_MERGE")
        assert table.current_rows() == table.items


@pytest.fixture(scope="module")
def emulated() -> Any:
    with current_lake() as lake:
        yield lake


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(histories)
def test_merge_current_on_the_emulated_athena_leaves_exactly_the_tables_items(emulated: CurrentLake, history: Any) -> None:
    initial, windows = history
    table = emulated.table()
    table.items = {k: {a: v for a, v in item.items() if v is not None} for k, item in initial.items()}
    assert emulated.merge(table.full_export())["status"] in ("MERGED", "NOTHING_TO_MERGE")
    assert table.current_rows() == table.items
    for writes_in_window, retry, _ in windows:
        _apply_window(emulated, table, writes_in_window, retry)


def test_a_new_attribute_adds_a_column_and_time_travel_reads_the_table_before_the_window(emulated: CurrentLake) -> None:
    table = emulated.table()
    table.items = {("p1", 1): {"a": 1, "b": "x"}, ("p2", 1): {"a": 2}}
    emulated.merge(table.full_export())
    before = emulated.clock.now()
    emulated.clock.advance(1)
    _apply_window(emulated, table, [(("p1", 1), {"a": 5, "c": 7}), (("p2", 1), None), (("p3", 2), {"b": "z"})], retry=False)

    columns = emulated.glue.get_table(DatabaseName="dynamodb", Name=f"{table.name}_current")["Table"]["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        ("pk", "string"),
        ("sk", "bigint"),
        ("a", "bigint"),
        ("b", "string"),
        ("c", "bigint"),
    ]
    old = emulated.athena.engine.run_sql(
        f"SELECT pk, a FROM dynamodb.{table.name}_current FOR TIMESTAMP AS OF TIMESTAMP '{before:%Y-%m-%d %H:%M:%S} UTC' ORDER BY pk"
    )
    assert old.table.to_pylist() == [{"pk": "p1", "a": 1}, {"pk": "p2", "a": 2}]
    first = emulated.athena.engine.run_sql(f"SELECT count(*) AS n FROM dynamodb.{table.name}_current FOR VERSION AS OF 1")
    assert first.table.to_pylist() == [{"n": 2}]


def test_a_window_after_a_gap_fails_with_current_table_behind_and_merges_nothing(emulated: CurrentLake) -> None:
    table = emulated.table()
    table.items = {("p1", 1): {"a": 1}}
    emulated.merge(table.full_export())
    table.window([(("p1", 1), {"a": 2})])  # landed, never merged (MergeCurrent was off)
    skipped = table.window([(("p1", 1), {"a": 3})])

    with pytest.raises(CurrentTableBehind, match="windows in between were not applied"):
        emulated.merge(skipped)
    assert table.current_rows() == {("p1", 1): {"a": 1}}

    emulated.merge(table.full_export())  # a full export rebuilds it; later windows apply again
    assert emulated.merge(table.window([(("p2", 2), {"b": "new"})]))["status"] == "MERGED"
    assert table.current_rows() == table.items


def test_a_merge_matching_one_item_twice_fails_as_in_athena_and_commits_nothing(emulated: CurrentLake) -> None:
    table = emulated.table()
    table.items = {("p1", 1): {"a": 1}}
    emulated.merge(table.full_export())
    sql = (
        f"MERGE INTO dynamodb.{table.name}_current AS t USING (SELECT * FROM (VALUES ('p1', 1, 5), ('p1', 1, 6)) AS v(pk, sk, a)) AS s "
        "ON t.pk = s.pk AND t.sk = s.sk WHEN MATCHED THEN UPDATE SET a = s.a"
    )
    started = emulated.clients.athena.start_query_execution(QueryString=sql, WorkGroup="primary")["QueryExecutionId"]
    emulated.clock.advance(10)
    state = emulated.clients.athena.get_query_execution(QueryExecutionId=started)["QueryExecution"]["Status"]
    assert state["State"] == "FAILED" and "MERGE_TARGET_ROW_MULTIPLE_MATCHES" in state["StateChangeReason"]
    assert table.current_rows() == {("p1", 1): {"a": 1}}


def test_a_failed_merge_raises_query_failed_and_records_nothing(emulated: CurrentLake) -> None:
    table = emulated.table()
    table.items = {("p1", 1): {"a": 1}}
    emulated.merge(table.full_export())
    request = table.window([(("p1", 1), {"a": 2})])
    emulated.athena.fail_queries("MERGE INTO", "ICEBERG_COMMIT_ERROR: emulated")
    with pytest.raises(QueryFailed, match="ICEBERG_COMMIT_ERROR"):
        emulated.merge(request)
    assert table.current_rows() == {("p1", 1): {"a": 1}}
    assert emulated.merge({**request, "execution": request["execution"] + "-again"})["status"] == "MERGED"
    assert table.current_rows() == {("p1", 1): {"a": 2}}
