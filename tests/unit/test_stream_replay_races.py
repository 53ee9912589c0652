"""The runbook's replay under every interleaving: the mapping keeps writing, operators replay failures (twice at once,
crashing, outliving their deadline), puts fail; every stream record still lands exactly once.

The model, per shard: the event source mapping takes consecutive batches, one at a time (ParallelizationFactor 1),
each in two steps (plan: read what landed; write). A batch whose puts fail (before or after writing) is given up on:
Lambda sends a failure record for the batch, or for the part from the first reported record, and moves on. For each
failure record, one to three operators replay it (`{"replayFailure": ...}`, some with the body edited to a part of
its range), each in five steps (take the lease, read the range from the stream, plan, write, end), possibly
crashing after any step, possibly with failing puts.
Hypothesis interleaves every step of every actor and moves the clock between steps (a replay paused past its
deadline is one that Lambda would have stopped: its writes are refused). At the end, after every lease has
expired, each failure is replayed once more. Reading every Parquet object as Athena does gives each eventID once,
and no replay ever wrote a record outside its failure's range.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import plan_batch, write_batch
from snaplake.streams.errors import ReplayInProgress
from snaplake.streams.replay import FailureReplay, replay_request
from snaplake.streams.replay_lease import LEASE_MARGIN_SECONDS

from tests.unit.change_log_store import Clock, FakeStream, MemoryLeases, failure_body
from tests.unit.test_change_log_redelivery import STREAM_ARN, TABLE_FOLDER, FlakyStore, Invocation, shards

OPTIONS = ConvertOptions()
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:snaplake-StreamFlattenFunction-AbC123"
TIMEOUT = 120.0
STEPS = ("take_lease", "read_range", "plan", "write", "end")


def shard_id(shard: int) -> str:
    return f"shardId-0000000176722560000{shard}-0a1b2c3d"


@dataclass(frozen=True)
class Batch:
    length: int
    failing_put: int | None  # which put of the mapping's write fails (None: the batch lands whole)
    after_writing: bool
    whole: bool  # Lambda gives up on the whole batch (True) or on the part from the first reported record


@dataclass(frozen=True)
class Operator:
    crash_after: int | None  # the step after which this replay's invocation dies (None: it runs to the end)
    stall_after: int | None  # the step after which it stalls past its lease before going on (its writes are then refused)
    failing_put: int | None
    after_writing: bool
    # A body edited by hand to a part of the failure's range (start, length), or None: the body as Lambda sent it.
    # Only such a part can make two replays plan different objects for one partition: replays of one range plan
    # the same records per partition, hence the same object key (content-addressed), so their puts coincide.
    part: tuple[int, int] | None


# Skewed towards what makes races: batches that fail, operators that live long enough to overlap.
failing_puts = st.sampled_from([None, 0, 0, 1])
batches = st.builds(Batch, st.integers(2, 8), failing_puts, st.booleans(), st.booleans())
crashes = st.sampled_from([None, None, None, None, None, None, 0, 1, 2, 3])
stalls = st.sampled_from([None, None, None, None, 2])  # after planning: the moment a stale plan is dangerous
parts = st.sampled_from([None, None, (0, 1), (0, 2), (1, 1), (1, 3), (2, 2)])
operators = st.lists(
    st.builds(Operator, crashes, stalls, st.sampled_from([None, None, None, 0]), st.booleans(), parts), min_size=2, max_size=3
)


class World:
    def __init__(self, shard_records: list[list[dict[str, Any]]]) -> None:
        self.store = FlakyStore()
        self.leases = MemoryLeases()
        self.clock = Clock()
        self.stream = FakeStream({shard_id(n): records for n, records in enumerate(shard_records)})
        self.failures: list[tuple[int, list[dict[str, Any]]]] = []  # (shard, the records Lambda gave up on)
        self.spawned: list[Iterator[None]] = []
        self.replays = 0

    def replay(self, shard: int, records: list[dict[str, Any]]) -> FailureReplay:
        body = failure_body(STREAM_ARN, shard_id(shard), records, FUNCTION_ARN)
        failure = replay_request({"replayFailure": body}, FUNCTION_ARN)
        self.replays += 1
        holder = f"replay-{self.replays}"
        return FailureReplay(failure, "lake", OPTIONS, self.store, self.leases, self.stream, holder, self.clock() + TIMEOUT, self.clock)

    def write_with(self, failing_put: int | None, after_writing: bool) -> None:
        self.store.plan = None if failing_put is None else Invocation(0, 0, 1, failing_put, after_writing)
        self.store.put_number = 0

    def mapping(self, shard: int, records: list[dict[str, Any]], plan: list[Batch], crews: list[list[Operator]]) -> Iterator[None]:
        start = 0
        for number, batch in enumerate(plan):
            part = records[start : start + batch.length]
            start += batch.length
            if not part:
                return
            planned = plan_batch({"Records": part}, "lake", OPTIONS, self.store)
            yield
            self.write_with(batch.failing_put, batch.after_writing)
            outcome = write_batch(planned, self.store)
            self.write_with(None, False)
            if outcome.failed:
                first = 0 if batch.whole else [r["dynamodb"]["SequenceNumber"] for r in part].index(outcome.failed[0])
                self.failures.append((shard, part[first:]))
                for operator in crews[number % len(crews)]:
                    self.spawned.append(self.operator(shard, part[first:], operator))
            yield
        if start < len(records):  # the rest of the shard, as the mapping's next batch
            self.write_with(None, False)
            write_batch(plan_batch({"Records": records[start:]}, "lake", OPTIONS, self.store), self.store)

    def operator(self, shard: int, records: list[dict[str, Any]], operator: Operator) -> Iterator[None]:
        if operator.part is not None:
            start = operator.part[0] % len(records)
            records = records[start : start + operator.part[1]]
        replay: FailureReplay | None = None
        for index, step in enumerate(STEPS):
            replay = replay or self.replay(shard, records)  # its invocation starts at its first step
            self.write_with(operator.failing_put if step == "write" else None, operator.after_writing)
            try:
                getattr(replay, step)()
            except ReplayInProgress:
                return  # refused: another replay of the shard holds the lease
            finally:
                self.write_with(None, False)
            if step == "write":
                assert replay.outcome is not None
                in_range = {r["eventID"] for r in records}
                assert {r.event_id for change in replay.outcome.batch.written for r in change.records} <= in_range
            if operator.crash_after == index:
                return  # the invocation died: its lease stays until it expires
            yield
            if operator.stall_after == index:
                self.clock.advance(TIMEOUT + LEASE_MARGIN_SECONDS + 1)  # Lambda would have stopped it by now


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    shards(),
    st.lists(st.lists(batches, min_size=1, max_size=6), min_size=2, max_size=2),
    st.lists(operators, min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_every_record_lands_once_whatever_the_mapping_and_the_replays_interleave(
    shard_records: list[list[dict[str, Any]]], plans: list[list[Batch]], crews: list[list[Operator]], seed: int
) -> None:
    # The schedule: which actor takes the next step and how far the clock moves first, uniformly from the seed (Hypothesis'
    # own draws lean towards the first actor, which mostly runs the actors one after the other).
    schedule = random.Random(seed)
    jumps = schedule.choice([(0,), (0, 0, 0, 1, 30, 200)])  # half the histories run within every invocation's deadline
    world = World(shard_records)
    actors = [world.mapping(n, records, plans[n], crews) for n, records in enumerate(shard_records)]
    while actors or world.spawned:
        actors += world.spawned
        world.spawned = []
        if not actors:
            continue
        actor = schedule.choice(actors)
        world.clock.advance(schedule.choice(jumps))
        if next(actor, StopIteration) is StopIteration:
            actors.remove(actor)

    world.clock.advance(10 * TIMEOUT)  # every lease has expired; the operator replays each failure once more
    for shard, records in world.failures:
        assert world.replay(shard, records).run().complete

    landed = Counter(row["event_id"] for row in world.store.rows(TABLE_FOLDER))
    assert set(landed) == {record["eventID"] for records in shard_records for record in records}
    assert [event for event, count in landed.items() if count > 1] == []
