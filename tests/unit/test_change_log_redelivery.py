"""Issue 11 case 4: every stream record lands exactly once in what Athena reads, whatever slices Lambda redelivers.

Lambda can hand the change log any contiguous run of a shard, again and again: a batch written then bisected
(BisectBatchOnFunctionError), a restart from a reported sequence number (ReportBatchItemFailures), one after the
other (one invocation per shard at a time). Puts may fail before writing, or after (the object is there, the answer
is lost). An operator's replay runs next to the mapping, so it is another writer: tests/unit/test_stream_replay*.py.
The property: after any such history and a final clean delivery of every shard, reading every Parquet object
under the table folder (as Athena does) gives each eventID exactly once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import flatten_batch

from tests.unit.change_log_store import MemoryStore

OPTIONS = ConvertOptions()
STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000"
TABLE_FOLDER = "lake/dynamodb_stream_changes/orders/"
HOUR = 3600
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def _record(shard: int, index: int, sequence: int, created: int) -> dict[str, Any]:
    keys = {"pk": {"S": f"S{shard}#{index}"}}
    image = {**keys, "n": {"N": str(index)}}
    name = ("INSERT", "MODIFY", "REMOVE")[index % 3]
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": created,
        "Keys": keys,
        "SequenceNumber": str(sequence),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if name != "REMOVE":
        dynamodb["NewImage"] = image
    if name != "INSERT":
        dynamodb["OldImage"] = image
    return {"eventID": f"{shard:02d}{index:030x}", "eventName": name, "dynamodb": dynamodb, "eventSourceARN": STREAM_ARN}


@st.composite
def shards(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """One or two shards of one stream: increasing sequence numbers of up to 40 digits (ranges may overlap between
    shards), creation times over up to three hours, not always in order."""
    found = []
    for shard in range(draw(st.integers(1, 2))):
        size = draw(st.integers(1, 14))
        sequence = draw(st.integers(10**20, 10**39))
        records = []
        for index in range(size):
            sequence += draw(st.integers(1, 10**6))
            created = START + draw(st.integers(0, 3 * HOUR - 1))
            records.append(_record(shard, index, sequence, created))
        found.append(records)
    return found


@dataclass(frozen=True)
class Invocation:
    shard: int
    start: int
    length: int
    failing_put: int | None  # which put of the invocation fails (None: none)
    after_writing: bool  # the failing put fails after the object was written


invocations = st.lists(
    st.builds(
        Invocation,
        shard=st.integers(0, 1),
        start=st.integers(0, 13),
        length=st.integers(1, 14),
        failing_put=st.none() | st.integers(0, 3),
        after_writing=st.booleans(),
    ),
    max_size=6,
)


class FlakyStore(MemoryStore):
    """Puts fail as an invocation says: before writing, or after (the object is in the lake, the caller sees an error)."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: Invocation | None = None
        self.put_number = 0

    def write(self, key: str, body: bytes) -> None:
        number, self.put_number = self.put_number, self.put_number + 1
        failing = self.plan is not None and self.plan.failing_put == number
        if failing and self.plan is not None and not self.plan.after_writing:
            raise ConnectionError("put failed")
        super().write(key, body)
        if failing:
            raise ConnectionError("put went through, the answer did not")


def _deliver(store: FlakyStore, records: list[dict[str, Any]], plan: Invocation | None = None) -> None:
    store.plan, store.put_number = plan, 0
    flatten_batch({"Records": records}, "lake", OPTIONS, store)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shards(), invocations)
def test_every_record_lands_exactly_once_whatever_slices_are_redelivered(
    shard_records: list[list[dict[str, Any]]], history: list[Invocation]
) -> None:
    store = FlakyStore()
    for plan in history:
        records = shard_records[plan.shard % len(shard_records)]
        start = plan.start % len(records)
        _deliver(store, records[start : start + plan.length], plan)
    for records in shard_records:  # Lambda delivers every record at last (retries, bisection, or a replay of its failure)
        _deliver(store, records)

    landed = Counter(row["event_id"] for row in store.rows(TABLE_FOLDER))
    expected = {record["eventID"] for records in shard_records for record in records}
    assert set(landed) == expected
    assert [event for event, count in landed.items() if count > 1] == []


def test_a_bisected_batch_redelivered_in_halves_writes_nothing_again() -> None:
    """The example the issue names: a batch written whole, then its halves delivered again (other boundaries)."""
    records = [_record(0, index, 10**30 + index, START + index * 600) for index in range(10)]
    store = FlakyStore()

    _deliver(store, records)
    written = dict(store.objects)
    _deliver(store, records[:5])
    _deliver(store, records[5:])
    _deliver(store, records[3:8])  # a restart from a reported record's sequence number, with other boundaries

    assert store.objects == written
    assert sorted(row["event_id"] for row in store.rows(TABLE_FOLDER)) == sorted(r["eventID"] for r in records)


def test_a_restart_after_a_put_that_failed_after_writing_skips_what_landed() -> None:
    records = [_record(0, index, 10**30 + index, START + index * 900) for index in range(8)]  # hours 00 and 01
    store = FlakyStore()

    _deliver(store, records, Invocation(0, 0, 8, failing_put=0, after_writing=True))
    _deliver(store, records[2:])  # a redelivery from a later sequence number: other first/last, other keys

    events = [row["event_id"] for row in store.rows(TABLE_FOLDER)]
    assert sorted(events) == sorted(r["eventID"] for r in records)
