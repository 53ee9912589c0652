"""Replaying one failure of the change log: the range of one on-failure record, read again from the stream.

When the event source mapping gives up on a batch (MaximumRetryAttempts or MaximumRecordAgeInSeconds), it sends an
on-failure record to StreamFailureQueue and moves past that range: the mapping never delivers those records again.
The record names the range, not the records (`DDBStreamBatchInfo`: shardId, startSequenceNumber,
endSequenceNumber, batchSize, streamArn); the records stay in the stream for 24 hours. StreamFlattenFunction
invoked with `{"replayFailure": <the message body>}` replays exactly that range (`FailureReplay.run`):

1. `replay_request`: the body must be one DynamoDB stream on-failure record of this function (its
   `requestContext.functionArn`); anything else is refused (InvalidReplayRequest) before anything is read.
2. `take_lease` (snaplake.streams.replay_lease): the shard's replay lease in the lake, so two replays (two operators,
   or one invoking twice) never write at once (ReplayInProgress). A crashed replay's lease expires after its
   invocation's timeout.
3. `read_failure_range`: GetShardIterator AT_SEQUENCE_NUMBER startSequenceNumber, then GetRecords until a record at
   or past endSequenceNumber. Only records in [start, end] are kept: the records after the range are the mapping's,
   and the replay never writes them. ReplayRangeIncomplete when the stream cannot give the whole range (nothing is
   written).
4. The records, shaped as the mapping's Lambda event (`lambda_record`), go through the change log's own
   `plan_batch` / `write_batch`: records already in the lake (part of a failed batch often landed) are skipped.
   Every write goes through `FencedStore`: none after the invocation's deadline.
5. The lease is marked finished (or failed), so the next replay may start at once.

Why no record lands twice: the change log's check (what landed, then write the rest; snaplake.streams.landed) holds
when no two writers write the same record at once. The mapping is one writer per shard (ParallelizationFactor 1)
and never writes a range it gave up on again; a replay writes only such a range; the lease keeps a second replay of
the shard out while one may still write. A replay with records outside one failure range (the old runbook's "from
any sequence number") is not possible: the range comes from the failure record, and what the stream gives outside
it is dropped.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from snaplake.core.aws import client_error_of, error_code
from snaplake.core.pii import PiiProtector
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import BatchOutcome, BatchPlan, ChangeObject, plan_batch, write_batch
from snaplake.streams.errors import InvalidReplayRequest, MalformedStreamRecord, ReplayRangeIncomplete
from snaplake.streams.landed import ChangeLogStore
from snaplake.streams.records import sequence_number_of, stream_arn_parts
from snaplake.streams.replay_lease import FAILED, FINISHED, FencedStore, ReplayLease, ReplayLeases, end_lease, lease_key, take_lease

REPLAY_FAILURE = "replayFailure"  # {"replayFailure": <StreamFailureQueue message body>}
PAGE_LIMIT = 1000  # GetRecords' largest page
MAX_PAGES = 200  # GetRecords calls one replay makes before giving up on reaching endSequenceNumber
_SHARD_ID = re.compile(r"^[A-Za-z0-9_.-]{1,65}$")
_SEQUENCE = re.compile(r"^[0-9]{1,40}$")
# The stream no longer has the records (trimmed after 24 hours) or the stream / shard is gone.
_GONE = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException"})


@dataclass(frozen=True)
class StreamFailure:
    """One on-failure record of the mapping: a range of one shard that the mapping gave up on."""

    stream_arn: str
    shard_id: str
    start: str  # startSequenceNumber
    end: str  # endSequenceNumber (inclusive)
    batch_size: int
    function_arn: str  # requestContext.functionArn: the function whose mapping gave up

    def covers(self, sequence: str) -> bool:
        return int(self.start) <= int(sequence) <= int(self.end)

    def as_json(self) -> dict[str, Any]:
        return {
            "streamArn": self.stream_arn,
            "shardId": self.shard_id,
            "startSequenceNumber": self.start,
            "endSequenceNumber": self.end,
            "batchSize": self.batch_size,
        }


def _unqualified(function_arn: str) -> str:
    """arn:aws:lambda:<region>:<account>:function:<name>, without a version or alias."""
    return ":".join(function_arn.split(":")[:7])


def stream_failure(body: Any) -> StreamFailure:
    """The failure record of a StreamFailureQueue message body (JSON text or the object); InvalidReplayRequest if it is not one."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise InvalidReplayRequest("replayFailure is text but not JSON: pass the StreamFailureQueue message body unchanged") from None
    info = body.get("DDBStreamBatchInfo") if isinstance(body, dict) else None
    if not isinstance(info, dict):
        raise InvalidReplayRequest("replayFailure is not a DynamoDB stream on-failure record (no DDBStreamBatchInfo object)")
    context = body.get("requestContext")
    function_arn = context.get("functionArn") if isinstance(context, dict) else None
    stream_arn, shard_id = info.get("streamArn"), info.get("shardId")
    start, end, size = info.get("startSequenceNumber"), info.get("endSequenceNumber"), info.get("batchSize")
    if not isinstance(function_arn, str) or not function_arn.startswith("arn:"):
        raise InvalidReplayRequest("the failure record has no requestContext.functionArn")
    if not isinstance(stream_arn, str) or stream_arn_parts(stream_arn) is None:
        raise InvalidReplayRequest(f"DDBStreamBatchInfo.streamArn {stream_arn!r} is not a DynamoDB stream ARN")
    if not isinstance(shard_id, str) or not _SHARD_ID.match(shard_id):
        raise InvalidReplayRequest(f"DDBStreamBatchInfo.shardId {shard_id!r} is not a shard id")
    for name, value in (("startSequenceNumber", start), ("endSequenceNumber", end)):
        if not isinstance(value, str) or not _SEQUENCE.match(value):
            raise InvalidReplayRequest(f"DDBStreamBatchInfo.{name} {value!r} is not a sequence number")
    assert isinstance(start, str) and isinstance(end, str)
    if int(start) > int(end):
        raise InvalidReplayRequest(f"DDBStreamBatchInfo's range {start}..{end} ends before it starts")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidReplayRequest(f"DDBStreamBatchInfo.batchSize {size!r} is not a positive integer")
    return StreamFailure(stream_arn, shard_id, start, end, size, function_arn)


def is_replay_request(event: Any) -> bool:
    return isinstance(event, dict) and REPLAY_FAILURE in event


def replay_request(event: Any, function_arn: str) -> StreamFailure:
    """The failure a `{"replayFailure": <body>}` request names, if it is one of this function's (`function_arn`)."""
    if not isinstance(event, dict) or set(event) != {REPLAY_FAILURE}:
        keys = sorted(map(str, event)) if isinstance(event, dict) else type(event).__name__
        shape = f'{{"{REPLAY_FAILURE}": <StreamFailureQueue message body>}}'
        raise InvalidReplayRequest(f"a replay request is {shape} and nothing else, not {keys}")
    failure = stream_failure(event[REPLAY_FAILURE])
    if _unqualified(failure.function_arn) != _unqualified(function_arn):
        raise InvalidReplayRequest(
            f"the failure record is of {failure.function_arn}, not of this function ({_unqualified(function_arn)}): "
            "only this function's own mapping has moved past its range"
        )
    return failure


def _lambda_value(value: Any) -> Any:
    """An AttributeValue as GetRecords gives it (boto3: binary as bytes) in a Lambda event's shape (base64 text)."""
    if not isinstance(value, dict):
        return value
    shaped: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B" and isinstance(inner, bytes | bytearray):
            shaped[kind] = base64.b64encode(inner).decode()
        elif kind == "BS" and isinstance(inner, list):
            shaped[kind] = [base64.b64encode(v).decode() if isinstance(v, bytes | bytearray) else v for v in inner]
        elif kind == "M" and isinstance(inner, dict):
            shaped[kind] = {name: _lambda_value(member) for name, member in inner.items()}
        elif kind == "L" and isinstance(inner, list):
            shaped[kind] = [_lambda_value(member) for member in inner]
        else:
            shaped[kind] = inner
    return shaped


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as the mapping's Lambda event carries it: eventSourceARN, ApproximateCreationDateTime in
    epoch seconds, binary values as base64 text."""
    dynamodb = dict(record.get("dynamodb") or {})
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        seconds = created.timestamp()
        dynamodb["ApproximateCreationDateTime"] = int(seconds) if seconds.is_integer() else seconds
    for name in ("Keys", "NewImage", "OldImage"):
        if isinstance(dynamodb.get(name), dict):
            dynamodb[name] = {attribute: _lambda_value(value) for attribute, value in dynamodb[name].items()}
    return {**record, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


@dataclass(frozen=True)
class RangeRead:
    records: list[dict[str, Any]]  # the range's records, in shard order, as Lambda event records
    outside: int  # records the stream gave outside [start, end], dropped


def read_failure_range(streams: Any, failure: StreamFailure, max_pages: int = MAX_PAGES) -> RangeRead:
    """Every record of the failure's range, read from the stream; ReplayRangeIncomplete when it cannot give them all."""
    records: list[dict[str, Any]] = []
    outside = 0
    reached = False
    try:
        position: str | None = streams.get_shard_iterator(
            StreamArn=failure.stream_arn, ShardId=failure.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=failure.start
        )["ShardIterator"]
        for _ in range(max_pages):
            if not position or reached:
                break
            page = streams.get_records(ShardIterator=position, Limit=PAGE_LIMIT)
            for record in page.get("Records", []):
                sequence = sequence_number_of(record)
                if sequence is None:
                    raise MalformedStreamRecord(f"GetRecords gave a record without a sequence number in shard {failure.shard_id}")
                if reached or not failure.covers(sequence):
                    outside += 1
                    reached = reached or int(sequence) > int(failure.end)
                    continue
                records.append(lambda_record(record, failure.stream_arn))
                reached = int(sequence) == int(failure.end)
            position = page.get("NextShardIterator")
    except Exception as error:
        cause = client_error_of(error)
        if cause is None or error_code(cause) not in _GONE:
            raise
        raise ReplayRangeIncomplete(
            f"the stream cannot give {_describe(failure)} any more ({error_code(cause)}): past its 24-hour retention, "
            "or the stream was disabled; these records cannot be replayed"
        ) from error
    if not reached:
        raise ReplayRangeIncomplete(
            f"read {len(records)} records of {_describe(failure)} without reaching endSequenceNumber "
            f"({'the shard ended' if not position else f'{max_pages} pages read'}); nothing was written"
        )
    return RangeRead(records, outside)


def _describe(failure: StreamFailure) -> str:
    return f"shard {failure.shard_id} {failure.start}..{failure.end} of {failure.stream_arn}"


@dataclass(frozen=True)
class ReplayOutcome:
    failure: StreamFailure
    read: RangeRead
    batch: BatchOutcome
    not_landed: dict[str, str]  # sequence number -> why, for the range's records that are not in the lake

    @property
    def complete(self) -> bool:
        """Every record of the range is in the lake (written now or before): the failure message can be deleted."""
        return not self.not_landed

    def response(self) -> dict[str, Any]:
        return {
            "replayed": self.failure.as_json(),
            "complete": self.complete,
            "records": len(self.read.records),
            "written": sum(change.rows for change in self.batch.written),
            "alreadyLanded": self.batch.skipped,
            "outsideRange": self.read.outside,
            "objects": [change.key for change in self.batch.written],
            "notLanded": [{"sequenceNumber": sequence, "reason": why} for sequence, why in self.not_landed.items()],
        }


def _not_landed(plan: BatchPlan, outcome: BatchOutcome) -> dict[str, str]:
    """The records of the plan that are not in the lake now: refused ones, and those of objects whose put failed."""
    missing = {plan.sequences[position]: why for position, why in plan.problems.items()}
    written = {change.key for change in outcome.written}
    for change in plan.objects:
        if change.key not in written:
            why = outcome.problems.get(change.records[0].sequence_number, "its object was not written")
            missing.update((record.sequence_number, why) for record in change.records)
    return dict(sorted(missing.items(), key=lambda item: int(item[0])))


@dataclass
class FailureReplay:
    """One replay of one failure, in steps (`take_lease`, `read_range`, `plan`, `write`, `end`); `run` does them all."""

    failure: StreamFailure
    prefix: str
    options: ConvertOptions
    store: ChangeLogStore
    leases: ReplayLeases
    streams: Any  # a dynamodbstreams client
    holder: str  # who replays (the invocation's request id)
    deadline: float  # epoch seconds: the invocation's end (Lambda's timeout); nothing is written after it
    clock: Callable[[], float] = time.time
    lease: ReplayLease | None = None
    range_read: RangeRead | None = None
    batch_plan: BatchPlan | None = None
    outcome: ReplayOutcome | None = field(default=None, repr=False)
    pii: PiiProtector | None = None  # the PII rules, applied as in the mapping's batches

    def take_lease(self) -> ReplayLease:
        key = lease_key(self.prefix, self.failure.stream_arn, self.failure.shard_id)
        self.lease = take_lease(self.leases, key, self.holder, self.clock(), self.deadline, {"failure": self.failure.as_json()})
        return self.lease

    def read_range(self) -> RangeRead:
        self.range_read = read_failure_range(self.streams, self.failure)
        return self.range_read

    def plan(self) -> BatchPlan:
        assert self.range_read is not None, "read the range first"
        self.batch_plan = plan_batch({"Records": self.range_read.records}, self.prefix, self.options, self.store, self.pii)
        return self.batch_plan

    def write(self) -> ReplayOutcome:
        assert self.lease is not None and self.range_read is not None and self.batch_plan is not None, "take the lease and plan first"
        batch = write_batch(self.batch_plan, FencedStore(self.store, self.lease, self.clock))
        self.outcome = ReplayOutcome(self.failure, self.range_read, batch, _not_landed(self.batch_plan, batch))
        return self.outcome

    def end(self, state: str = FINISHED) -> bool:
        """Give the lease up (finished, or failed before writing) so that the next replay may start at once."""
        if self.lease is None:
            return False
        summary = {"complete": self.outcome.complete, "notLanded": len(self.outcome.not_landed)} if self.outcome else {}
        return end_lease(self.leases, self.lease, self.clock(), state, summary)

    def run(self, register: Callable[[list[ChangeObject]], None] | None = None) -> ReplayOutcome:
        """The whole replay; `register` sees the planned objects before any is written (the Glue table), and may replace
        them in the list (made to fit the table)."""
        self.take_lease()
        try:
            self.read_range()
            plan = self.plan()
            if register is not None:
                register(plan.objects)
            outcome = self.write()
        except BaseException:
            # Nothing more of this replay is written: the next one need not wait for the lease to expire.
            with contextlib.suppress(Exception):
                self.end(FAILED)
            raise
        self.end(FINISHED)
        return outcome
