"""An in-memory ChangeLogStore for the change-log unit tests: a dict of objects read in S3's listing order,
claims and column registries with core.claims' semantics, a fixed stream view type. For the replay tests: replay
leases with S3's conditional writes, a clock, a DynamoDB stream answering as GetRecords does, Lambda's failure record."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError
from snaplake.core.names import assign_column_names


class MemoryStore:
    def __init__(self, view_type: str = "NEW_AND_OLD_IMAGES") -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0
        self.reads = 0
        self.fail_when: str | None = None  # a put of a key containing this fails before writing
        self.fail_after_write_when: str | None = None  # ...or after writing (the object is there, the caller sees an error)
        self.claims: dict[str, dict[str, Any]] = {}
        self.registries: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}
        self.views = view_type
        self.described: list[str] = []

    def keys_from(self, prefix: str) -> Iterator[str]:
        yield from sorted(key for key in self.objects if key.startswith(prefix))

    def read(self, key: str) -> bytes:
        self.reads += 1
        return self.objects[key]

    def write(self, key: str, body: bytes) -> None:
        if self.fail_when is not None and self.fail_when in key:
            raise ConnectionError("S3 is having a bad day")
        self.puts += 1
        self.objects[key] = body
        if self.fail_after_write_when is not None and self.fail_after_write_when in key:
            raise ConnectionError("the put went through, its answer did not")

    def claim(self, key: str, owner: Mapping[str, Any]) -> dict[str, Any]:
        return self.claims.setdefault(key, dict(owner))

    def registered_columns(self, registry: tuple[str, ...], paths: Iterable[tuple[str, ...]], separator: str) -> dict[tuple[str, ...], str]:
        recorded = self.registries.setdefault(registry, {})
        wanted = set(paths)
        new = sorted(wanted - set(recorded))
        recorded.update(assign_column_names(new, separator, frozenset(recorded.values())))
        return {path: recorded[path] for path in wanted}

    def view_type(self, stream_arn: str) -> str:
        self.described.append(stream_arn)
        return self.views

    # ---- reading the lake as Athena would: every Parquet object under a folder
    def rows(self, folder: str = "") -> list[dict[str, Any]]:
        found = []
        for key in sorted(self.objects):
            if key.startswith(folder) and key.endswith(".parquet"):
                found.extend(pq.read_table(pa.BufferReader(self.objects[key])).to_pylist())
        return found

    def data_keys(self) -> list[str]:
        return sorted(key for key in self.objects if key.endswith(".parquet"))

    def table(self, key: str) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.objects[key]))


class MemoryLeases:
    """ReplayLeases with S3's conditional-write semantics: a new ETag per write, If-None-Match / If-Match.

    `before_write(key)`, when set, runs just before each conditional write is checked: a test can let another
    replay write in between a read and a write (the race the conditions settle)."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[dict[str, Any], str]] = {}
        self.versions = 0
        self.before_write: Callable[[str], None] | None = None

    def read_lease(self, key: str) -> tuple[dict[str, Any], str] | None:
        found = self.documents.get(key)
        return None if found is None else (json.loads(json.dumps(found[0])), found[1])

    def write_lease(self, key: str, document: Mapping[str, Any], etag: str | None) -> bool:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook(key)
        current = self.documents.get(key)
        if (current is None) != (etag is None) or (current is not None and current[1] != etag):
            return False
        self.versions += 1
        self.documents[key] = (json.loads(json.dumps(dict(document))), f'"{self.versions}"')
        return True


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = 1_767_254_400.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeStream:
    """A dynamodbstreams client over shards of Lambda-shaped records, answering as GetRecords does: no
    eventSourceARN, ApproximateCreationDateTime as a datetime, binary values as bytes, pages of `Limit` records.
    Shards are open (an iterator past the last record answers empty pages) unless listed in `closed`."""

    def __init__(self, shards: Mapping[str, list[dict[str, Any]]], page: int = 1000) -> None:
        self.shards = {shard: [_as_get_records(record) for record in records] for shard, records in shards.items()}
        self.page = page
        self.closed: set[str] = set()
        self.calls: list[str] = []
        self.trimmed = False

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str) -> dict[str, Any]:
        self.calls.append("GetShardIterator")
        if self.trimmed:
            raise ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}}, "GetShardIterator")
        assert ShardIteratorType == "AT_SEQUENCE_NUMBER"
        records = self.shards[ShardId]
        start = next((i for i, r in enumerate(records) if int(r["dynamodb"]["SequenceNumber"]) >= int(SequenceNumber)), len(records))
        return {"ShardIterator": f"{ShardId}|{start}"}

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        self.calls.append("GetRecords")
        shard, start = ShardIterator.rsplit("|", 1)
        records = self.shards[shard]
        end = int(start) + min(Limit, self.page)
        page: dict[str, Any] = {"Records": copy.deepcopy(records[int(start) : end])}
        if end < len(records) or shard not in self.closed:
            page["NextShardIterator"] = f"{shard}|{min(end, len(records))}"
        return page


def _bytes_of(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    shaped: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B":
            shaped[kind] = base64.b64decode(inner)
        elif kind == "BS":
            shaped[kind] = [base64.b64decode(v) for v in inner]
        elif kind == "M":
            shaped[kind] = {name: _bytes_of(member) for name, member in inner.items()}
        elif kind == "L":
            shaped[kind] = [_bytes_of(member) for member in inner]
        else:
            shaped[kind] = inner
    return shaped


def _as_get_records(record: dict[str, Any]) -> dict[str, Any]:
    shaped = {key: value for key, value in copy.deepcopy(record).items() if key != "eventSourceARN"}
    dynamodb = shaped["dynamodb"]
    dynamodb["ApproximateCreationDateTime"] = datetime.fromtimestamp(dynamodb["ApproximateCreationDateTime"], UTC)
    for name in ("Keys", "NewImage", "OldImage"):
        if name in dynamodb:
            dynamodb[name] = {attribute: _bytes_of(value) for attribute, value in dynamodb[name].items()}
    return shaped


def failure_body(stream_arn: str, shard_id: str, records: list[dict[str, Any]], function_arn: str) -> dict[str, Any]:
    """The on-failure record Lambda sends to StreamFailureQueue when it gives up on `records` (one shard)."""
    return {
        "requestContext": {
            "requestId": "5a3b2c1d-0000-4000-8000-000000000000",
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 11,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-01-01T06:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z",
            "approximateArrivalOfLastRecord": "2026-01-01T00:10:00Z",
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
