"""One Lambda DynamoDB stream record, validated and put in the line shape of an incremental export.

`parse_record` checks the envelope of a record (sequence number, event id and name, source ARN, creation
time, view type, the images its event needs) and raises MalformedStreamRecord, or one of its subclasses
MissingStreamImage / UnsupportedStreamViewType, naming what is wrong. The attribute values themselves are
checked by the export conversion (see snaplake.streams.change_log).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from snaplake.dynamodb import valid_unicode
from snaplake.streams.errors import MalformedStreamRecord, MissingStreamImage, UnsupportedStreamViewType

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
# The only view type that keeps every change whole: both images of a MODIFY, the old image of a REMOVE.
REQUIRED_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
# The images each event needs under NEW_AND_OLD_IMAGES; a record without them is refused, never half-written.
REQUIRED_IMAGES = {"INSERT": ("NewImage",), "MODIFY": ("NewImage", "OldImage"), "REMOVE": ("OldImage",)}
_REQUIRED_IMAGE_SETS = {event: frozenset(images) for event, images in REQUIRED_IMAGES.items()}
_STREAM_ARN = re.compile(
    r"^(?P<table_arn>arn:[a-z0-9-]+:dynamodb:[a-z0-9-]+:\d{12}:table/(?P<table>[A-Za-z0-9_.-]{1,255}))/stream/(?P<label>[^/]+)$"
)
_SEQUENCE = re.compile(r"^[0-9]{1,40}$")
# Largest ApproximateCreationDateTime accepted as seconds (year 5138); larger values are rejected, not guessed.
_MAX_EPOCH_SECONDS = 10**11


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ took a third of the parsing time (benchmarks/README.md)
class StreamRecord:
    """One stream record, validated, in the incremental export's line shape (not changed once made)."""

    position: int  # index in the batch
    sequence_number: str
    event_id: str
    event_name: str
    ttl_delete: bool
    table: str  # the table name in the stream ARN, as DynamoDB spells it
    table_arn: str
    stream_arn: str
    created_micros: int  # ApproximateCreationDateTime in microseconds since the epoch
    hour: tuple[str, str]  # dt (YYYY-MM-DD), hour (HH) of created_micros, UTC
    # {"Keys", "NewImage", "OldImage"}: an incremental export line without its Metadata (the change log takes
    # write_time from created_micros, not from the conversion)
    line: dict[str, Any]

    @property
    def sequence(self) -> int:
        """The sequence number as an integer (they are decimal strings of up to 40 digits: compare these)."""
        return int(self.sequence_number)


def stream_arn_parts(stream_arn: str) -> tuple[str, str] | None:
    """(table ARN, table name) of a DynamoDB stream ARN, or None when it is not one."""
    return _arn_parts(stream_arn) if stream_arn.isascii() else None


@functools.lru_cache(maxsize=64)
def _arn_parts(stream_arn: str) -> tuple[str, str] | None:
    match = _STREAM_ARN.match(stream_arn)
    return (match["table_arn"], match["table"]) if match else None


def stream_table(raw: Any) -> str | None:
    """The table name in a raw record's eventSourceARN, or None when it has none."""
    arn = raw.get("eventSourceARN") if isinstance(raw, dict) else None
    parts = _arn_parts(arn) if isinstance(arn, str) and arn.isascii() else None
    return parts[1] if parts else None


@functools.lru_cache(maxsize=1024)
def _hour_partition(hours_since_epoch: int) -> tuple[str, str]:
    start = datetime.fromtimestamp(hours_since_epoch * 3600, UTC)
    return start.strftime("%Y-%m-%d"), start.strftime("%H")


def sequence_number_of(record: Any) -> str | None:
    dynamodb = record.get("dynamodb") if isinstance(record, dict) else None
    sequence = dynamodb.get("SequenceNumber") if isinstance(dynamodb, dict) else None
    return sequence if isinstance(sequence, str) and _SEQUENCE.match(sequence) else None


def _created_micros(dynamodb: dict[str, Any]) -> int:
    created = dynamodb.get("ApproximateCreationDateTime")
    # type() rather than isinstance(): True is not a time; NaN and infinity fail the range check.
    if (type(created) is not int and type(created) is not float) or not 0 <= created < _MAX_EPOCH_SECONDS:
        raise MalformedStreamRecord(f"dynamodb.ApproximateCreationDateTime {created!r} is not epoch seconds")
    return round(created * 1_000_000)


def _sections(dynamodb: dict[str, Any], event_name: str) -> dict[str, Any]:
    view_type = dynamodb.get("StreamViewType", REQUIRED_VIEW_TYPE)
    if view_type != REQUIRED_VIEW_TYPE:
        raise UnsupportedStreamViewType(f"dynamodb.StreamViewType is {view_type!r}, not {REQUIRED_VIEW_TYPE}: the images are incomplete")
    sections: dict[str, Any] = {}
    for name in ("Keys", "NewImage", "OldImage"):
        section = dynamodb.get(name)
        if section is not None:
            if type(section) is not dict:
                raise MalformedStreamRecord(f"dynamodb.{name} is not an object of attributes")
            sections[name] = section
    if "Keys" not in sections:
        raise MalformedStreamRecord("dynamodb.Keys is missing")
    if not sections.keys() >= _REQUIRED_IMAGE_SETS[event_name]:
        missing = [name for name in REQUIRED_IMAGES[event_name] if name not in sections]
        raise MissingStreamImage(f"a {event_name} record needs {' and '.join(missing)} (is the stream {REQUIRED_VIEW_TYPE}?)")
    return sections


def parse_record(record: Any, position: int, sequence: str | None = None) -> StreamRecord:
    """Validate one Lambda DynamoDB stream record's envelope; MalformedStreamRecord (or a subclass) says what is wrong.

    `sequence`: the record's `sequence_number_of`, when the caller already has it.
    """
    if not isinstance(record, dict):
        raise MalformedStreamRecord("a stream record must be an object")
    if sequence is None:
        sequence = sequence_number_of(record)
    if sequence is None:
        raise MalformedStreamRecord("dynamodb.SequenceNumber is missing or not a string of digits")
    dynamodb = record["dynamodb"]
    event_name = record.get("eventName")
    if event_name not in EVENT_NAMES:
        raise MalformedStreamRecord(f"eventName {event_name!r} is not INSERT, MODIFY or REMOVE")
    arn = record.get("eventSourceARN")
    parts = _arn_parts(arn) if isinstance(arn, str) and arn.isascii() else None
    if parts is None or not isinstance(arn, str):
        raise MalformedStreamRecord(f"eventSourceARN {arn!r} is not a DynamoDB stream ARN")
    event_id = record.get("eventID")
    # The event id is how a redelivered record is recognised in the lake (see snaplake.streams.landed).
    if not isinstance(event_id, str) or not event_id:
        raise MalformedStreamRecord("eventID is missing or not a string")
    if not event_id.isascii() and not valid_unicode(event_id):
        raise MalformedStreamRecord("eventID is not valid Unicode (a lone surrogate)")
    micros = _created_micros(dynamodb)
    sections = _sections(dynamodb, event_name)
    identity = record.get("userIdentity") if event_name == "REMOVE" else None
    ttl_delete = isinstance(identity, dict) and identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL
    return StreamRecord(
        position=position,
        sequence_number=sequence,
        event_id=event_id,
        event_name=event_name,
        ttl_delete=ttl_delete,
        table=parts[1],
        table_arn=parts[0],
        stream_arn=arn,
        created_micros=micros,
        hour=_hour_partition(micros // 3_600_000_000),
        line=sections,
    )
