"""An operator's replay of a StreamFailureQueue message (the StreamFailureAlarm runbook) never lands a record twice.

The hostile review's case: the old runbook let the operator re-read any range of the stream and invoke the function
with it "from any sequence number", while the event source mapping kept running. The replay was a second writer on
the shard: the mapping and the replay both planned (neither saw the other's records landed) and both wrote. The
replay is now one named operation, `{"replayFailure": <message body>}`: it writes exactly the range of that failure
record, which the mapping has already given up on, under a lease that keeps a second replay of the shard out.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import flatten_batch, plan_batch, write_batch
from snaplake.streams.errors import InvalidReplayRequest, ReplayInProgress, ReplayRangeIncomplete
from snaplake.streams.replay import FailureReplay, lambda_record, replay_request
from snaplake.streams.replay_lease import FAILED, FINISHED, LEASE_FORMAT, LEASE_MARGIN_SECONDS, RUNNING, lease_key

from tests.unit.change_log_store import Clock, FakeStream, MemoryLeases, MemoryStore, failure_body
from tests.unit.test_change_log_redelivery import START, STREAM_ARN, TABLE_FOLDER, FlakyStore, Invocation, _record

OPTIONS = ConvertOptions()
SHARD = "shardId-00000001767225600000-0a1b2c3d"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:snaplake-StreamFlattenFunction-AbC123"
TIMEOUT = 120.0  # StreamFlattenFunction's Timeout

# Ten records of one shard: 0-5 in hour 00, 6-9 in hour 01.
RECORDS = [_record(0, index, 10**30 + 7 * index, START + index * 600) for index in range(10)]


def _replay(store: Any, leases: MemoryLeases, stream: Any, records: list[dict[str, Any]], clock: Clock, holder: str) -> FailureReplay:
    """A replay of the failure record Lambda sent for `records`, as StreamFlattenFunction starts it."""
    failure = replay_request({"replayFailure": failure_body(STREAM_ARN, SHARD, records, FUNCTION_ARN)}, FUNCTION_ARN)
    return FailureReplay(failure, "lake", OPTIONS, store, leases, stream, holder, clock() + TIMEOUT, clock)


def _landed(store: MemoryStore) -> Counter[str]:
    return Counter(row["event_id"] for row in store.rows(TABLE_FOLDER))


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["eventID"] for record in records]


def test_a_replay_of_the_failure_range_while_the_mapping_writes_later_records_lands_each_record_once() -> None:
    """The review's reproduction, as the new runbook runs it: the mapping gave up on 0-4 (their puts kept failing)
    and moved on; the operator replays that failure while the mapping writes 5-9, interleaved as in the review."""
    store, leases, clock, stream = FlakyStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    store.plan = Invocation(0, 0, 5, failing_put=0, after_writing=False)
    failed = flatten_batch({"Records": RECORDS[:5]}, "lake", OPTIONS, store)
    assert failed.failed == [r["dynamodb"]["SequenceNumber"] for r in RECORDS[:5]]  # retried, then the failure record
    store.plan = None

    replay = _replay(store, leases, stream, RECORDS[:5], clock, "operator")
    mapping_plan = plan_batch({"Records": RECORDS[5:]}, "lake", OPTIONS, store)  # the mapping reads what landed
    replay.take_lease()
    replay.read_range()
    replay_plan = replay.plan()  # the replay reads what landed: none of 0-9
    write_batch(mapping_plan, store)
    outcome = replay.write()
    assert replay.end()

    assert _landed(store) == Counter(_ids(RECORDS))  # each record once
    assert sorted(r.event_id for o in replay_plan.objects for r in o.records) == sorted(_ids(RECORDS[:5]))
    assert outcome.complete and outcome.response()["written"] == 5
    assert outcome.read.outside == 5  # the stream gave 5-9 too (the mapping's): dropped, never written by the replay


def test_a_replay_request_is_the_failure_record_alone_never_records_or_a_range_of_the_operators_choosing() -> None:
    body = failure_body(STREAM_ARN, SHARD, RECORDS[:5], FUNCTION_ARN)

    with pytest.raises(InvalidReplayRequest, match="nothing else"):
        replay_request({"replayFailure": body, "Records": RECORDS[3:]}, FUNCTION_ARN)
    with pytest.raises(InvalidReplayRequest, match="nothing else"):
        replay_request({"replayFailure": body, "fromSequenceNumber": "1"}, FUNCTION_ARN)
    failure = replay_request({"replayFailure": body}, FUNCTION_ARN)
    sequences = (RECORDS[0]["dynamodb"]["SequenceNumber"], RECORDS[4]["dynamodb"]["SequenceNumber"])
    assert (failure.start, failure.end, failure.shard_id) == (*sequences, SHARD)


def _body_with(**info: Any) -> dict[str, Any]:
    body = failure_body(STREAM_ARN, SHARD, RECORDS[:5], FUNCTION_ARN)
    body["DDBStreamBatchInfo"].update(info)
    return body


@pytest.mark.parametrize(
    ("replay_failure", "why"),
    [
        ("not json", "not JSON"),
        ([], "DDBStreamBatchInfo"),
        ({"Body": "{}"}, "DDBStreamBatchInfo"),  # the whole SQS message instead of its body
        ({"KinesisBatchInfo": {}}, "DDBStreamBatchInfo"),
        ({**_body_with(), "requestContext": {}}, "functionArn"),
        (_body_with(streamArn="arn:aws:kinesis:eu-west-1:123456789012:stream/orders"), "streamArn"),
        (_body_with(shardId="../../dynamodb/orders"), "shardId"),
        (_body_with(shardId=""), "shardId"),
        (_body_with(startSequenceNumber="12e3"), "startSequenceNumber"),
        (_body_with(endSequenceNumber=10**30), "endSequenceNumber"),
        (_body_with(startSequenceNumber="2", endSequenceNumber="1"), "ends before it starts"),
        (_body_with(batchSize=0), "batchSize"),
        (_body_with(batchSize=True), "batchSize"),
        ({**_body_with(), "requestContext": {"functionArn": FUNCTION_ARN.replace("AbC123", "Other")}}, "not of this function"),
    ],
)
def test_anything_but_one_failure_record_of_this_function_is_refused_by_name(replay_failure: Any, why: str) -> None:
    with pytest.raises(InvalidReplayRequest, match=why):
        replay_request({"replayFailure": replay_failure}, FUNCTION_ARN)


def test_the_message_body_as_text_and_a_qualified_function_arn_are_accepted() -> None:
    import json

    body = json.dumps(failure_body(STREAM_ARN, SHARD, RECORDS[:5], FUNCTION_ARN + ":3"))

    assert replay_request({"replayFailure": body}, FUNCTION_ARN).batch_size == 5
    assert replay_request({"replayFailure": body}, FUNCTION_ARN + ":live").shard_id == SHARD


def test_a_second_replay_of_the_shard_is_refused_while_the_first_may_write_and_writes_nothing_after_it() -> None:
    store, leases, clock, stream = MemoryStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    first = _replay(store, leases, stream, RECORDS[:5], clock, "operator-1")
    second = _replay(store, leases, stream, RECORDS[:5], clock, "operator-2")

    first.take_lease()
    first.read_range()
    first.plan()
    clock.advance(TIMEOUT - 1)
    with pytest.raises(ReplayInProgress, match="operator-1"):
        second.take_lease()
    assert first.write().complete
    first.end()
    outcome = second.run()

    assert outcome.complete and outcome.batch.written == [] and outcome.batch.skipped == 5
    assert _landed(store) == Counter(_ids(RECORDS[:5]))


def test_two_replays_racing_for_the_lease_cannot_both_take_it() -> None:
    store, leases, clock, stream = MemoryStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    first = _replay(store, leases, stream, RECORDS[:5], clock, "operator-1")
    second = _replay(store, leases, stream, RECORDS[:5], clock, "operator-2")
    # Both find no lease; the first writes its lease between the second's read and conditional write.

    def first_takes_it(key: str) -> None:
        first.take_lease()

    leases.before_write = first_takes_it

    with pytest.raises(ReplayInProgress, match="operator-1"):
        second.take_lease()
    (document, _), *_ = leases.documents.values()
    assert document["holder"] == "operator-1" and document["state"] == RUNNING


STEPS = ("take_lease", "read_range", "plan", "write", "end")
INTERLEAVINGS = sorted(set(itertools.permutations((0,) * len(STEPS) + (1,) * len(STEPS))))


@pytest.mark.parametrize("second", ["the same body", "a body edited to a part of the range"])
@pytest.mark.parametrize("order", INTERLEAVINGS, ids=lambda o: "".join(map(str, o)))
def test_two_replays_of_one_failure_interleaved_step_by_step_one_refuses_or_both_end_with_each_record_once(
    order: tuple[int, ...], second: str
) -> None:
    """Every interleaving of the five steps of two replays of one failure (252 orders). Two replays of the same body
    plan the same records per partition, so the same object keys; a body edited to a part of the range plans other
    objects, and only the shard's lease keeps the two from both writing a record."""
    store, leases, clock, stream = MemoryStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    ranges = [RECORDS, RECORDS if second == "the same body" else RECORDS[2:8]]
    replays = [_replay(store, leases, stream, ranges[n], clock, f"operator-{n}") for n in (0, 1)]
    refused = [False, False]
    done = [0, 0]

    for who in order:
        if refused[who]:
            continue
        step = STEPS[done[who]]
        done[who] += 1
        try:
            getattr(replays[who], step)()
        except ReplayInProgress:
            refused[who] = True

    landed = _landed(store)
    assert max(landed.values()) == 1  # nothing twice
    assert not all(refused)
    assert all(set(_ids(ranges[n])) <= set(landed) for n in (0, 1) if not refused[n])  # each replay that ran: all of it
    if not any(refused):  # the second took the lease only after the first had ended: it wrote only what was missing
        first, last = replays[order[0]].outcome, replays[order[-1]].outcome
        assert first is not None and last is not None and last.complete
        wrote = {r.event_id for change in last.batch.written for r in change.records}
        assert not wrote & set(_ids(ranges[order[0]]))


def test_a_replay_after_a_crashed_replay_waits_for_its_lease_to_expire_then_writes_what_is_missing() -> None:
    store, leases, clock, stream = FlakyStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    crashed = _replay(store, leases, stream, RECORDS, clock, "crashed")
    crashed.take_lease()
    crashed.read_range()
    crashed.plan()
    store.plan = Invocation(0, 0, 10, failing_put=1, after_writing=False)  # hour 00 lands, then the invocation dies
    crashed.write()
    store.plan = None
    assert _landed(store) == Counter(_ids(RECORDS[:6]))

    clock.advance(TIMEOUT + LEASE_MARGIN_SECONDS - 1)
    with pytest.raises(ReplayInProgress, match="crashed"):
        _replay(store, leases, stream, RECORDS, clock, "too-early").take_lease()
    clock.advance(2)
    outcome = _replay(store, leases, stream, RECORDS, clock, "after-expiry").run()

    assert outcome.complete and outcome.batch.skipped == 6 and outcome.response()["written"] == 4
    assert _landed(store) == Counter(_ids(RECORDS))
    # Had the crashed replay lived on past its deadline, it could write nothing more.
    late = crashed.write()
    assert late.batch.written == [] and all("reached its deadline" in why for why in late.not_landed.values())
    assert _landed(store) == Counter(_ids(RECORDS))


def test_a_replay_that_outlives_its_deadline_writes_nothing_after_it_even_over_another_replays_records() -> None:
    """A stale plan is the danger: the stalled replay planned 0-9; after its lease expired another replay (a body edited
    to 2-7) wrote part of them. Without the deadline check the stalled one would land 2-7 a second time."""
    store, leases, clock, stream = MemoryStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    stalled = _replay(store, leases, stream, RECORDS, clock, "stalled")
    stalled.take_lease()
    stalled.read_range()
    stalled.plan()
    clock.advance(TIMEOUT + LEASE_MARGIN_SECONDS + 1)
    assert _replay(store, leases, stream, RECORDS[2:8], clock, "edited").run().complete

    late = stalled.write()

    assert late.batch.written == [] and not late.complete
    assert _landed(store) == Counter(_ids(RECORDS[2:8]))
    assert _replay(store, leases, stream, RECORDS, clock, "again").run().complete
    assert _landed(store) == Counter(_ids(RECORDS))


def test_a_finished_replay_can_be_run_again_at_once_and_writes_nothing() -> None:
    store, leases, clock, stream = MemoryStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    first = _replay(store, leases, stream, RECORDS[2:7], clock, "first").run()
    objects = dict(store.objects)

    again = _replay(store, leases, stream, RECORDS[2:7], clock, "again").run()

    assert first.complete and again.complete and again.batch.skipped == 5 and store.objects == objects
    key = lease_key("lake", STREAM_ARN, SHARD)
    assert key.startswith("lake/_snaplake/claims/dynamodb_stream_changes/orders/replays/") and key.endswith(f"/{SHARD}.json")
    document = leases.documents[key][0]
    assert document["format"] == LEASE_FORMAT and document["state"] == FINISHED and document["holder"] == "again"
    assert document["outcome"] == {"complete": True, "notLanded": 0}


def test_replaying_a_range_that_partly_landed_writes_only_the_rest() -> None:
    """The mapping's batch 0-9 wrote hour 00 (0-5); hour 01's put kept failing and Lambda gave up on the batch."""
    store, leases, clock, stream = FlakyStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    store.plan = Invocation(0, 0, 10, failing_put=1, after_writing=False)
    flatten_batch({"Records": RECORDS}, "lake", OPTIONS, store)
    store.plan = None
    before = dict(store.objects)

    outcome = _replay(store, leases, stream, RECORDS, clock, "operator").run()

    assert outcome.complete and outcome.batch.skipped == 6
    assert [sorted(r.event_id for r in o.records) for o in outcome.batch.written] == [sorted(_ids(RECORDS[6:]))]
    assert {k: v for k, v in store.objects.items() if k in before} == before
    assert _landed(store) == Counter(_ids(RECORDS))


class EverythingStream(FakeStream):
    """A stream that (wrongly) starts every iterator at the shard's first record."""

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str) -> dict[str, Any]:
        return {"ShardIterator": f"{ShardId}|0"}


def test_records_outside_the_failure_range_are_never_written_by_the_replay() -> None:
    store, leases, clock = MemoryStore(), MemoryLeases(), Clock()

    outcome = _replay(store, leases, EverythingStream({SHARD: RECORDS}, page=4), RECORDS[3:6], clock, "operator").run()

    assert outcome.complete and outcome.read.outside == 5  # 0-2 before it, 6-7 on the page that reached its end
    assert _landed(store) == Counter(_ids(RECORDS[3:6]))


def test_a_range_the_stream_no_longer_holds_writes_nothing_and_frees_the_lease() -> None:
    store, leases, clock, stream = MemoryStore(), MemoryLeases(), Clock(), FakeStream({SHARD: RECORDS})
    stream.trimmed = True

    with pytest.raises(ReplayRangeIncomplete, match="TrimmedDataAccessException"):
        _replay(store, leases, stream, RECORDS[:5], clock, "first").run()
    assert next(iter(leases.documents.values()))[0]["state"] == FAILED
    with pytest.raises(ReplayRangeIncomplete):  # not ReplayInProgress: a failed replay does not hold the shard
        _replay(store, leases, stream, RECORDS[:5], clock, "second").run()
    assert store.objects == {}


@pytest.mark.parametrize("closed", [True, False], ids=["shard closed", "shard open"])
def test_a_range_whose_end_the_stream_does_not_reach_writes_nothing(closed: bool) -> None:
    store, leases, clock = MemoryStore(), MemoryLeases(), Clock()
    stream = FakeStream({SHARD: RECORDS[:4]}, page=2)  # the records up to 4 only
    if closed:
        stream.closed.add(SHARD)

    with pytest.raises(ReplayRangeIncomplete, match="without reaching endSequenceNumber"):
        _replay(store, leases, stream, RECORDS[:5], clock, "operator").run()
    assert store.objects == {}


def test_a_get_records_record_is_shaped_as_the_mappings_lambda_record() -> None:
    record = _record(0, 1, 10**30, START + 5)
    record["dynamodb"]["NewImage"] |= {
        "blob": {"B": "AAEC/w=="},
        "blobs": {"BS": ["AA==", "/w=="]},
        "deep": {"M": {"list": {"L": [{"B": "AQ=="}, {"M": {"b": {"B": "Ag=="}}}]}}},
    }
    as_read = FakeStream({SHARD: [record]}).shards[SHARD][0]
    assert isinstance(as_read["dynamodb"]["NewImage"]["blob"]["B"], bytes) and "eventSourceARN" not in as_read

    assert lambda_record(as_read, STREAM_ARN) == record
    # ... so the replay writes what the mapping would have written, byte for byte.
    mapping, replayed = MemoryStore(), MemoryStore()
    flatten_batch({"Records": [record]}, "lake", OPTIONS, mapping)
    outcome = _replay(replayed, MemoryLeases(), FakeStream({SHARD: [record]}), [record], Clock(), "operator").run()
    assert outcome.complete and replayed.objects.keys() == mapping.objects.keys()
    assert {k: v for k, v in replayed.objects.items() if k.endswith(".parquet")} == {
        k: v for k, v in mapping.objects.items() if k.endswith(".parquet")
    }
