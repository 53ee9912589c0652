"""DynamoDB Streams records -> change-log Parquet in the lake, one object per batch and partition.

Each stream record is turned into the line shape of an incremental DynamoDB
export (`{"Keys", "NewImage", "OldImage", "Metadata": {"WriteTime"}}`) and the
batch's lines of one partition go through the export conversion
(`convert_lines`, straight from the decoded event, no JSON round trip), so the
change log has exactly the export's type and naming rules. Stream-only columns are added in front:

- `_change_type`: the record's eventName (INSERT / MODIFY / REMOVE),
- `_write_time`: ApproximateCreationDateTime (timestamp[us, UTC]),
- `_ttl_delete`: True for deletes made by TTL (userIdentity Service / dynamodb.amazonaws.com),
- `_sequence_number`, `_event_id`.

Each object has its own schema (the schema of its records): schema changes
between batches need nothing special.

Keys: `<prefix>/dynamodb_changes/<table>/dt=YYYY-MM-DD/hour=HH/
changes-<stream hash>-<first seq>-<last seq>.parquet`, from the partition's own
first and last sequence numbers, so a retried batch writes the same keys with
the same bytes (it overwrites itself).

Failures follow Lambda's partial batch response: Lambda checkpoints at the
lowest reported sequence number and redelivers everything after it. So that a
redelivery never duplicates a change, records are written only up to the first
record that cannot be processed (malformed, or its partition's put failed); that
record and every later one are reported in `batchItemFailures`. With
BisectBatchOnFunctionError the poison record is isolated in a few retries, goes
to the on-failure destination once its retries are exhausted, and its
neighbours after it are written by the following invocations. What cannot be
answered record by record (an event without a `Records` list, a record without a
sequence number) raises MalformedStreamRecord: the whole invocation fails.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from snaplake.core.errors import SnaplakeError
from snaplake.core.names import athena_name, join_key
from snaplake.core.s3 import Bucket
from snaplake.dynamodb import MAX_NESTING_DEPTH, InvalidAttributeValue, check_attributes, nested_too_deep, valid_unicode
from snaplake.dynamodb.parquet import ConvertOptions, convert_lines
from snaplake.streams.errors import MalformedStreamRecord

CHANGE_LOG_FOLDER = "dynamodb_changes"
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
_STREAM_ARN = re.compile(r"^arn:[a-z0-9-]+:dynamodb:[a-z0-9-]+:\d{12}:table/(?P<table>[A-Za-z0-9_.-]{1,255})/stream/(?P<label>[^/]+)$")
_SEQUENCE = re.compile(r"^[0-9]{1,40}$")
# Largest ApproximateCreationDateTime accepted as seconds (year 5138); larger values are rejected, not guessed.
_MAX_EPOCH_SECONDS = 10**11


@dataclass(frozen=True)
class StreamRecord:
    """One stream record, validated, in the incremental export's line shape."""

    position: int  # index in the batch
    sequence_number: str
    event_id: str
    event_name: str
    ttl_delete: bool
    table: str
    stream_arn: str
    created_micros: int  # ApproximateCreationDateTime in microseconds since the epoch
    partition: tuple[str, str, str]  # table, dt (YYYY-MM-DD), hour (HH)
    line: dict[str, Any]  # {"Keys", "NewImage", "OldImage", "Metadata"}: an incremental export line


@functools.lru_cache(maxsize=64)
def _table_of(stream_arn: str) -> str | None:
    match = _STREAM_ARN.match(stream_arn) if stream_arn.isascii() else None
    return match["table"] if match else None


@functools.lru_cache(maxsize=1024)
def _hour_partition(hours_since_epoch: int) -> tuple[str, str]:
    start = datetime.fromtimestamp(hours_since_epoch * 3600, UTC)
    return start.strftime("%Y-%m-%d"), start.strftime("%H")


@dataclass(frozen=True)
class ChangeObject:
    key: str
    body: bytes
    rows: int
    records: tuple[StreamRecord, ...]


@dataclass(frozen=True)
class BatchOutcome:
    written: list[ChangeObject]
    failed: list[str]  # sequence numbers, in batch order: the first unprocessable record and everything after it
    problems: dict[str, str]  # sequence number -> why (the records that could not be processed themselves)

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in self.failed]}


def sequence_number_of(record: Any) -> str | None:
    dynamodb = record.get("dynamodb") if isinstance(record, dict) else None
    sequence = dynamodb.get("SequenceNumber") if isinstance(dynamodb, dict) else None
    return sequence if isinstance(sequence, str) and _SEQUENCE.match(sequence) else None


def parse_record(record: Any, position: int) -> StreamRecord:
    """Validate one Lambda DynamoDB stream record's envelope; MalformedStreamRecord says what is wrong.

    The attribute values are validated by the conversion, for a whole partition at once (see build_objects).
    """
    if not isinstance(record, dict):
        raise MalformedStreamRecord("a stream record must be an object")
    sequence = sequence_number_of(record)
    if sequence is None:
        raise MalformedStreamRecord("dynamodb.SequenceNumber is missing or not a string of digits")
    dynamodb = record["dynamodb"]
    event_name = record.get("eventName")
    if event_name not in EVENT_NAMES:
        raise MalformedStreamRecord(f"eventName {event_name!r} is not INSERT, MODIFY or REMOVE")
    arn = record.get("eventSourceARN")
    table = _table_of(arn) if isinstance(arn, str) else None
    if table is None or not isinstance(arn, str):
        raise MalformedStreamRecord(f"eventSourceARN {arn!r} is not a DynamoDB stream ARN")
    created = dynamodb.get("ApproximateCreationDateTime")
    if (
        isinstance(created, bool)
        or not isinstance(created, int | float)
        or not math.isfinite(created)
        or not 0 <= created < _MAX_EPOCH_SECONDS
    ):
        raise MalformedStreamRecord(f"dynamodb.ApproximateCreationDateTime {created!r} is not epoch seconds")
    micros = round(created * 1_000_000)
    sections: dict[str, Any] = {}
    for name in ("Keys", "NewImage", "OldImage"):
        if name in dynamodb and dynamodb[name] is not None:
            if not isinstance(dynamodb[name], dict):
                raise MalformedStreamRecord(f"dynamodb.{name} is not an object of attributes")
            sections[name] = dynamodb[name]
    if "Keys" not in sections:
        raise MalformedStreamRecord("dynamodb.Keys is missing")
    sections["Metadata"] = {"WriteTime": {"N": str(micros)}}
    identity = record.get("userIdentity")
    ttl_delete = (
        event_name == "REMOVE"
        and isinstance(identity, dict)
        and identity.get("type") == "Service"
        and identity.get("principalId") == TTL_PRINCIPAL
    )
    event_id = record.get("eventID")
    if not isinstance(event_id, str):
        event_id = ""
    elif not valid_unicode(event_id):
        raise MalformedStreamRecord("eventID is not valid Unicode (a lone surrogate)")
    return StreamRecord(
        position=position,
        sequence_number=sequence,
        event_id=event_id,
        event_name=event_name,
        ttl_delete=ttl_delete,
        table=table,
        stream_arn=arn,
        created_micros=micros,
        partition=(table, *_hour_partition(micros // 3_600_000_000)),
        line=sections,
    )


def change_table(records: list[StreamRecord], options: ConvertOptions) -> pa.Table:
    """The change rows of some records (one partition), typed by the export's rules, stream columns first."""
    if nested_too_deep(*(section for record in records for section in record.line.values())):
        # Refused before pyarrow, whose time grows with the square of the depth (5,000 levels: over a minute).
        raise MalformedStreamRecord(f"an image nests maps and lists more than {MAX_NESTING_DEPTH} levels deep")
    converted = convert_lines([record.line for record in records], "incremental", options)
    front = {
        "_change_type": pa.array([r.event_name for r in records], pa.string()),
        "_write_time": converted.column("_write_time"),
        "_ttl_delete": pa.array([r.ttl_delete for r in records], pa.bool_()),
        "_sequence_number": pa.array([r.sequence_number for r in records], pa.string()),
        "_event_id": pa.array([r.event_id for r in records], pa.string()),
    }
    rest = [name for name in converted.column_names if name not in front]
    return pa.table({**front, **{name: converted.column(name) for name in rest}})


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def object_key(prefix: str, records: list[StreamRecord]) -> str:
    table, day, hour = records[0].partition
    stream = hashlib.sha256(records[0].stream_arn.encode()).hexdigest()[:16]
    name = f"changes-{stream}-{records[0].sequence_number}-{records[-1].sequence_number}.parquet"
    return join_key(prefix, CHANGE_LOG_FOLDER, athena_name(table), f"dt={day}", f"hour={hour}", name)


def _bad_records(records: list[StreamRecord], raw: dict[int, Any]) -> dict[int, str]:
    """The records of a partition whose images are not well-formed DynamoDB JSON (run only after the partition failed).

    The conversion validates every value of a whole block at once (fast); this per-record check is the slow,
    precise one that names the culprits.
    """
    bad = {}
    for record in records:
        dynamodb = raw[record.position]["dynamodb"]
        try:
            for name in ("Keys", "NewImage", "OldImage"):
                if dynamodb.get(name) is not None:
                    check_attributes(dynamodb[name], name)
        except InvalidAttributeValue as error:
            bad[record.position] = str(error)
    return bad


# What the conversion raises for values that are not DynamoDB JSON.
_CONVERSION_ERRORS = (SnaplakeError, pa.ArrowException)


def build_objects(
    records: list[StreamRecord], raw: dict[int, Any], prefix: str, options: ConvertOptions
) -> tuple[list[ChangeObject], dict[int, str]]:
    """Parquet objects for the records, one per partition; also the positions of records that cannot be converted."""
    problems: dict[int, str] = {}
    groups: dict[tuple[str, str, str], list[StreamRecord]] = {}
    for record in records:
        groups.setdefault(record.partition, []).append(record)
    objects = []
    for members in groups.values():
        try:
            table = change_table(members, options)
        except _CONVERSION_ERRORS as error:
            found = _bad_records(members, raw)
            # Nothing malformed record by record: the partition as a whole cannot be converted; report it from its first record.
            problems.update(found or {members[0].position: f"converting the partition failed: {error}"})
            continue
        objects.append(ChangeObject(object_key(prefix, members), parquet_bytes(table), table.num_rows, tuple(members)))
    return objects, problems


Writer = Callable[[str, bytes], None]


def flatten_batch(event: Any, prefix: str, options: ConvertOptions, write: Writer) -> BatchOutcome:
    """Write a Lambda DynamoDB stream event's records to the change log; returns what was written and what to report.

    `write(key, body)` puts one object; an exception from it fails that partition's records (and later ones).
    """
    if not isinstance(event, dict) or "Records" not in event:
        # Not a stream event at all (a wrong trigger or a test payload): fail the invocation rather than answer "all done".
        raise MalformedStreamRecord("a DynamoDB stream event is an object with a Records list")
    raw_records = event["Records"]
    if not isinstance(raw_records, list):
        raise MalformedStreamRecord("the event's Records must be a list")
    sequences: list[str | None] = [sequence_number_of(raw) for raw in raw_records]
    if any(sequence is None for sequence in sequences):
        # Without a sequence number a record cannot be reported: Lambda must retry the whole batch.
        raise MalformedStreamRecord(
            f"records without a valid dynamodb.SequenceNumber at positions {[i for i, s in enumerate(sequences) if s is None]}"
        )
    cutoff = len(raw_records)
    problems: dict[int, str] = {}
    parsed: list[StreamRecord] = []
    for position, raw in enumerate(raw_records):
        try:
            parsed.append(parse_record(raw, position))
        except MalformedStreamRecord as error:
            problems[position] = str(error)
            cutoff = min(cutoff, position)
    while True:
        objects, bad = build_objects([r for r in parsed if r.position < cutoff], dict(enumerate(raw_records)), prefix, options)
        if not bad:
            break
        problems.update(bad)
        cutoff = min(cutoff, *bad)
    written: list[ChangeObject] = []
    for change in sorted(objects, key=lambda o: o.records[0].position):
        if change.records[0].position >= cutoff:
            break
        try:
            write(change.key, change.body)
        except Exception as error:  # reported back to Lambda through batchItemFailures, not swallowed
            problems[change.records[0].position] = f"writing {change.key} failed: {error}"
            cutoff = min(cutoff, change.records[0].position)
            break
        written.append(change)
    failed = [sequence for position, sequence in enumerate(sequences) if position >= cutoff and sequence is not None]
    return BatchOutcome(written, failed, {str(sequences[p]): why for p, why in sorted(problems.items())})


def lake_writer(lake: Bucket) -> Writer:
    """put_object into the lake (owner check, the lake's KMS key), like the export conversion."""

    def write(key: str, body: bytes) -> None:
        lake.write_bytes(key, body, content_type="application/vnd.apache.parquet")

    return write
