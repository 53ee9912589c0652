"""DynamoDB Streams records -> change-log Parquet in the lake, every record exactly once.

Each stream record (snaplake.streams.records) is turned into the line shape of an incremental DynamoDB
export and the lines of one partition go through the export conversion (`convert_lines`, straight from
the decoded event), so the change log has the export's type rules. Stream-only columns come first:

- `change_type` (CHANGE_TYPE_COLUMN): the eventName (INSERT / MODIFY / REMOVE),
- `write_time` (WRITE_TIME_COLUMN): ApproximateCreationDateTime (timestamp[us, UTC]),
- `is_ttl_delete`: True for deletes made by TTL (userIdentity Service / dynamodb.amazonaws.com),
- `sequence_number`, `event_id`.

The attribute columns (`key__*`, `new__*`, `old__*`) are named by the table's column registry
(core.claims.ColumnRegistry): an attribute path keeps the name it first got in every later object, so
`Foo` and `foo` arriving in different batches stay two columns. Each object has the types of its own records.

Exactly once (snaplake.streams.landed): records whose event id is already in the lake are not written
again, whatever slice of the shard Lambda redelivers. Keys and layout are described there.

Failures follow Lambda's partial batch response: Lambda checkpoints at the lowest reported sequence
number and redelivers everything after it. Every record that can be processed is written; the first one
that cannot (malformed, refused, or its partition's put failed) and every later one are reported in
`batchItemFailures`, and on redelivery the ones already written are skipped. What cannot be answered
record by record raises: an event without a `Records` list or a record without a sequence number
(MalformedStreamRecord), a stream that is not NEW_AND_OLD_IMAGES (UnsupportedStreamViewType, checked once
per container with DescribeStream), a table folder claimed by another table (StreamTableFolderTaken).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from snaplake.core import metrics
from snaplake.core.errors import SnaplakeError
from snaplake.core.names import athena_name
from snaplake.core.pii import CHANGE_IMAGES, DYNAMODB, PiiProtector
from snaplake.dynamodb import InvalidAttributeValue, check_attributes
from snaplake.dynamodb.parquet import CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN, WRITE_TIME_TYPE, ConvertOptions, ExportSchema, convert_lines
from snaplake.streams.errors import MalformedStreamRecord
from snaplake.streams.landed import (
    EVENT_ID_COLUMN,
    STREAM_TABLE_SUFFIX,
    ChangeLogStore,
    check_view_type,
    claim_table_folder,
    landed_event_ids,
    object_key,
    table_folder,
)
from snaplake.streams.records import StreamRecord, parse_record, sequence_number_of, stream_table
from snaplake.streams.settings import CHANGE_LOG_FOLDER

TTL_DELETE_COLUMN = "is_ttl_delete"
SEQUENCE_NUMBER_COLUMN = "sequence_number"
SYSTEM_COLUMNS = (CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN, TTL_DELETE_COLUMN, SEQUENCE_NUMBER_COLUMN, EVENT_ID_COLUMN)


@dataclass(frozen=True)
class ChangeObject:
    key: str
    body: bytes
    rows: int
    records: tuple[StreamRecord, ...]


@dataclass(frozen=True)
class BatchOutcome:
    written: list[ChangeObject]
    skipped: int  # records already in the lake (a redelivery)
    failed: list[str]  # sequence numbers, in batch order: the first unprocessable record and everything after it
    problems: dict[str, str]  # sequence number -> why (the records that could not be processed themselves)

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in self.failed]}


@dataclass(frozen=True)
class _Converted:
    records: list[StreamRecord]
    table: pa.Table  # attribute columns only, named by the conversion
    paths: dict[str, tuple[str, ...]]  # conversion's column name -> attribute path (`("new", "customer", "id")`)


def _convert(records: list[StreamRecord], options: ConvertOptions) -> _Converted:
    # The conversion refuses maps and lists nested deeper than DynamoDB allows before pyarrow sees them (pyarrow's
    # time grows with the square of the depth: 5,000 levels take over a minute).
    schema = ExportSchema()
    converted = convert_lines([record.line for record in records], "incremental", options, schema)
    attributes = converted.drop_columns([name for name in (CHANGE_TYPE_COLUMN, WRITE_TIME_COLUMN) if name in converted.column_names])
    return _Converted(records, attributes, schema.column_paths("incremental", options))


def change_table(converted: _Converted, names: dict[tuple[str, ...], str]) -> pa.Table:
    """The change rows of one partition: the stream columns, then the attribute columns under their registered names."""
    records = converted.records
    front = {
        CHANGE_TYPE_COLUMN: pa.array([r.event_name for r in records], pa.string()),
        WRITE_TIME_COLUMN: pa.array([r.created_micros for r in records], pa.int64()).cast(WRITE_TIME_TYPE),
        TTL_DELETE_COLUMN: pa.array([r.ttl_delete for r in records], pa.bool_()),
        SEQUENCE_NUMBER_COLUMN: pa.array([r.sequence_number for r in records], pa.string()),
        EVENT_ID_COLUMN: pa.array([r.event_id for r in records], pa.string()),
    }
    columns = sorted((names[converted.paths[name]], converted.table.column(name)) for name in converted.table.column_names)
    return pa.table({**front, **dict(columns)})


def parquet_bytes(table: pa.Table) -> bytes:
    # Dictionary encoding only for change_type: the other columns are mostly distinct per object (ids, sequence
    # numbers, images), where dictionaries cost time and, under zstd, make the object bigger (benchmarks/README.md).
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=[CHANGE_TYPE_COLUMN])
    return sink.getvalue().to_pybytes()


def _bad_records(records: list[StreamRecord], raw: list[Any]) -> dict[int, str]:
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


def _partitions(records: list[StreamRecord]) -> list[list[StreamRecord]]:
    groups: dict[tuple[str, str, str], list[StreamRecord]] = {}
    for record in records:
        groups.setdefault((record.stream_arn, *record.hour), []).append(record)
    return list(groups.values())


def build_objects(
    records: list[StreamRecord],
    raw: list[Any],
    prefix: str,
    options: ConvertOptions,
    store: ChangeLogStore,
    pii: PiiProtector | None = None,
) -> tuple[list[ChangeObject], dict[int, str]]:
    """Parquet objects for the records, one per partition, without the records of partitions that cannot be
    converted; also the positions of the records that cannot be converted, and why. The table's PII rule
    (snaplake.core.pii, the DynamoDB table's) is applied before an object is encoded."""
    problems: dict[int, str] = {}
    converted: list[_Converted] = []
    for members in _partitions(records):
        while members:
            try:
                converted.append(_convert(members, options))
                break
            except _CONVERSION_ERRORS as error:
                found = _bad_records(members, raw)
                if not found:
                    # Nothing malformed record by record: the partition as a whole cannot be converted; report it from its first record.
                    problems[members[0].position] = f"converting the partition failed: {error}"
                    break
                problems.update(found)
                members = [m for m in members if m.position not in found]
    objects = []
    folders = {id(part): table_folder(prefix, part.records[0]) for part in converted}
    for table in dict.fromkeys(folders.values()):
        parts = [part for part in converted if folders[id(part)] == table]
        wanted = {path for part in parts for path in part.paths.values()}
        name = table.rsplit("/", 1)[-1]
        names = store.registered_columns((CHANGE_LOG_FOLDER, name), wanted, options.separator)
        rule = pii.rule(DYNAMODB, name, frozenset(SYSTEM_COLUMNS)) if pii is not None else None
        for part in parts:
            rows = change_table(part, names)
            if pii is not None and rule is not None:
                rows = pii.protect_table(rows, rule, CHANGE_IMAGES)
            objects.append(ChangeObject(object_key(prefix, part.records), parquet_bytes(rows), rows.num_rows, tuple(part.records)))
    return objects, problems


def _parse(raw_records: list[Any], sequences: list[str]) -> tuple[list[StreamRecord], dict[int, str]]:
    parsed, problems = [], {}
    for position, (raw, sequence) in enumerate(zip(raw_records, sequences, strict=True)):
        try:
            parsed.append(parse_record(raw, position, sequence))
        except MalformedStreamRecord as error:
            problems[position] = f"{type(error).__name__}: {error}"
    return parsed, problems


@dataclass(frozen=True)
class BatchPlan:
    """What a batch will write (`objects`, one per partition, not yet landed) and what it already knows."""

    objects: list[ChangeObject]
    skipped: int  # records already in the lake (a redelivery)
    sequences: list[str]  # every record's sequence number, in batch order
    problems: dict[int, str]  # position -> why, for the records that cannot be processed


def plan_batch(event: Any, prefix: str, options: ConvertOptions, store: ChangeLogStore, pii: PiiProtector | None = None) -> BatchPlan:
    """Check a Lambda DynamoDB stream event and build the objects of its records not yet in the lake (PII rules applied)."""
    if not isinstance(event, dict) or "Records" not in event:
        # Not a stream event at all (a wrong trigger or a test payload): fail the invocation rather than answer "all done".
        raise MalformedStreamRecord("a DynamoDB stream event is an object with a Records list")
    raw_records = event["Records"]
    if not isinstance(raw_records, list):
        raise MalformedStreamRecord("the event's Records must be a list")
    found: list[str | None] = [sequence_number_of(raw) for raw in raw_records]
    sequences = [sequence for sequence in found if sequence is not None]
    if len(sequences) != len(found):
        # Without a sequence number a record cannot be reported: Lambda must retry the whole batch.
        raise MalformedStreamRecord(
            f"records without a valid dynamodb.SequenceNumber at positions {[i for i, s in enumerate(found) if s is None]}"
        )
    parsed, problems = _parse(raw_records, sequences)
    for stream_arn in dict.fromkeys(record.stream_arn for record in parsed):
        check_view_type(store, stream_arn)
    # The last record of each folder, found through the last record of each table (a folder follows from the table).
    last_of_tables = sorted({r.table_arn: r for r in parsed}.values(), key=lambda r: r.position)
    for record in {table_folder(prefix, r): r for r in last_of_tables}.values():
        claim_table_folder(store, prefix, record)
    pending: list[StreamRecord] = []
    skipped = 0
    for members in _partitions(parsed):
        landed = landed_event_ids(store, prefix, members)
        skipped += sum(1 for record in members if record.event_id in landed)
        pending.extend(record for record in members if record.event_id not in landed)
    objects, bad = build_objects(pending, raw_records, prefix, options, store, pii)
    problems.update(bad)
    return BatchPlan(objects, skipped, sequences, problems)


def write_batch(plan: BatchPlan, store: ChangeLogStore) -> BatchOutcome:
    """Write the planned objects; returns what was written and what to report (see module docstring)."""
    problems = dict(plan.problems)
    written: list[ChangeObject] = []
    for change in plan.objects:
        try:
            store.write(change.key, change.body)
        except Exception as error:  # reported back to Lambda through batchItemFailures, not swallowed
            problems[change.records[0].position] = f"writing {change.key} failed: {error}"
            continue
        written.append(change)
    cutoff = min(problems, default=len(plan.sequences))
    failed = [sequence for position, sequence in enumerate(plan.sequences) if position >= cutoff]
    return BatchOutcome(written, plan.skipped, failed, {plan.sequences[p]: why for p, why in sorted(problems.items())})


def flatten_batch(event: Any, prefix: str, options: ConvertOptions, store: ChangeLogStore, pii: PiiProtector | None = None) -> BatchOutcome:
    """Write a Lambda DynamoDB stream event's records to the change log, each record at most once in the lake
    (at least once across Lambda's retries): `plan_batch`, then `write_batch`."""
    return write_batch(plan_batch(event, prefix, options, store, pii), store)


def publish_metrics(event: dict[str, Any], outcome: BatchOutcome) -> None:
    """The batch's records written (rows, files, bytes, lag of its oldest record) and reported failed, for its table.

    A mapping reads one stream, so a batch is one table's; records already in the lake (a redelivery) count in neither."""
    table = next((found for raw in event["Records"] if (found := stream_table(raw)) is not None), None)
    if table is None:
        return
    values: dict[str, float] = {"StreamRecordsWritten": sum(o.rows for o in outcome.written), "StreamRecordsFailed": len(outcome.failed)}
    if outcome.written:
        oldest = min(record.created_micros for o in outcome.written for record in o.records) / 1_000_000
        values.update(
            RowsLanded=values["StreamRecordsWritten"],
            FilesLanded=len(outcome.written),
            BytesLanded=sum(len(o.body) for o in outcome.written),
            LandingLag=max(0.0, time.time() - oldest),
        )
    metrics.publish(metrics.DYNAMODB_STREAM, table, athena_name(table) + STREAM_TABLE_SUFFIX, **values)
