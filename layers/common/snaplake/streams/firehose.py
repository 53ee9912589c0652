"""Firehose data transformation: JSON records flattened to one level, with the change log's naming rules.

Every input recordId comes back exactly once, with one of:

- `Ok`: data is base64 of the flattened object as one JSON line (`{...}\\n`).
  Nested objects become `parent__child` fields (Athena-safe names) down to
  `max_depth` path segments; a deeper object, and every array, is kept as JSON
  text. A field's name depends on its own path only, so it is the same in every
  record and batch (Athena's JSON reading is case-insensitive: `Foo` in one
  record and `foo` in another are one column, as they would be unflattened).
- `Dropped`: the record is an empty JSON object `{}` (nothing to deliver).
- `ProcessingFailed`: the data is not valid base64, larger than 1,000 KiB, not
  JSON, not a JSON object, nested too deeply to parse, holds a string that is
  not valid Unicode (an escaped lone surrogate such as `\\udcff`), has two
  fields that would become one column (FieldNameCollision: `Foo` and `foo`,
  or `a b.c` and `a_b__c`; never renamed per record), lacks a
  configured partition key field, has a partition key value that would change the S3 path under dynamic
  partitioning (UnsafePartitionKey: empty, `.`, `..`, `/`, a control character or a character Athena
  escapes in folder names; refused, never encoded), or its result (or an earlier record's) would
  not fit in the 6 MB response. Firehose then writes it to the
  `processing-failed/` error prefix with the original data: nothing is lost.

Nothing here raises for a bad record: one record never fails the batch. An
event without a `records` list has no recordId to answer: InvalidEvent fails the
invocation, and Firehose retries it or sends it to its error output.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from snaplake.core.errors import InvalidEvent
from snaplake.core.limits import FIREHOSE_RECORD_MAX_BYTES, LAMBDA_SYNC_RESPONSE_MAX_BYTES
from snaplake.core.names import column_name, path_value_problem
from snaplake.core.pii import FIREHOSE, PiiProtector, TableRule
from snaplake.streams.errors import FieldNameCollision, UnsafePartitionKey
from snaplake.streams.settings import FlattenSettings

OK, DROPPED, FAILED = "Ok", "Dropped", "ProcessingFailed"
MAX_RECORD_BYTES = FIREHOSE_RECORD_MAX_BYTES
MAX_RESPONSE_BYTES = LAMBDA_SYNC_RESPONSE_MAX_BYTES
_RESPONSE_MARGIN = 16 * 1024  # room for the envelope and JSON separators


@dataclass
class TransformOutcome:
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # recordId -> why it failed

    def response(self) -> dict[str, Any]:
        return {"records": self.records}

    def counts(self) -> dict[str, int]:
        counts = {OK: 0, DROPPED: 0, FAILED: 0}
        for record in self.records:
            counts[record["result"]] += 1
        return counts


def _leaves(value: Mapping[str, Any], path: tuple[str, ...], max_depth: int, out: list[tuple[tuple[str, ...], Any]]) -> None:
    for name, child in value.items():
        child_path = (*path, name)
        if isinstance(child, dict) and child and len(child_path) < max_depth:
            _leaves(child, child_path, max_depth, out)
        elif isinstance(child, dict | list):
            out.append((child_path, json.dumps(child, ensure_ascii=False, separators=(",", ":"), sort_keys=True)))
        else:
            out.append((child_path, child))


def flatten_object(value: Mapping[str, Any], separator: str = "__", max_depth: int = 3) -> dict[str, Any]:
    """A JSON object with nested objects flattened to one level; fields in name order.

    FieldNameCollision when two of its paths give the same column name (see module docstring).
    """
    leaves: list[tuple[tuple[str, ...], Any]] = []
    _leaves(value, (), max_depth, leaves)
    flat: dict[str, Any] = {}
    paths: dict[str, tuple[str, ...]] = {}
    for path, leaf in leaves:
        name = column_name(path, separator)
        if name in paths:
            raise FieldNameCollision(f"fields {'.'.join(paths[name])!r} and {'.'.join(path)!r} both become column {name!r}")
        paths[name] = path
        flat[name] = leaf
    return dict(sorted(flat.items()))


class _Rejected(Exception):
    pass


def _flattened(
    data: Any, settings: FlattenSettings, pii: PiiProtector | None = None, rule: TableRule | None = None
) -> tuple[bytes | None, dict[str, str]]:
    """The output line (None for Dropped) and partition keys of one record's data; _Rejected says why it failed."""
    if not isinstance(data, str):
        raise _Rejected("data is not a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Rejected("data is not valid base64") from None
    if len(raw) > MAX_RECORD_BYTES:
        raise _Rejected(f"record of {len(raw)} bytes is larger than {MAX_RECORD_BYTES}")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise _Rejected(f"not JSON: {error}") from None
    except RecursionError:
        raise _Rejected("JSON nested too deeply to parse") from None
    if not isinstance(value, dict):
        raise _Rejected(f"JSON {type(value).__name__} is not an object")
    if not value:
        return None, {}
    try:
        flat = flatten_object(value, settings.separator, settings.max_depth)
        if pii is not None and rule is not None:
            flat = pii.protect_record(flat, rule)
        line = json.dumps(flat, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    except RecursionError:  # json.loads stopped just short of the limit, json.dumps of a nested part (a deeper call) did not
        raise _Rejected("JSON nested too deeply to write") from None
    except FieldNameCollision as error:
        raise _Rejected(f"FieldNameCollision: {error}") from None
    except UnicodeEncodeError:  # json.loads accepts an escaped lone surrogate (\udcff); UTF-8 cannot hold it
        raise _Rejected("JSON holds a string that is not valid Unicode (a lone surrogate)") from None
    keys = {}
    for name in settings.partition_key_fields:
        found = flat.get(name)
        if found is None or isinstance(found, bool) or not isinstance(found, str | int | float):
            raise _Rejected(f"partition key field {name!r} is missing or not a scalar")
        problem = path_value_problem(str(found))
        if problem is not None:  # Firehose would put it into the S3 prefix as is (dynamic partitioning)
            raise _Rejected(f"{UnsafePartitionKey.__name__}: partition key field {name!r}: {problem}")
        keys[name] = str(found)
    return line, keys


def delivery_stream_name(event: Mapping[str, Any]) -> str:
    """The name of the delivery stream an event comes from (its `deliveryStreamArn`), "" when it names none."""
    arn = event.get("deliveryStreamArn")
    return arn.rsplit("/", 1)[-1] if isinstance(arn, str) and ":deliverystream/" in arn else ""


def _size(entry: dict[str, Any]) -> int:
    return len(json.dumps(entry, separators=(",", ":"))) + 1


def transform_records(event: Any, settings: FlattenSettings, pii: PiiProtector | None = None) -> TransformOutcome:
    """Firehose transformation response for an event: every recordId once, within the response size limit. The
    delivery stream's PII rule (snaplake.core.pii, named by the stream's name) is applied to each flattened record."""
    records = event.get("records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise InvalidEvent("a Firehose transformation event is an object with a records list")
    rule = pii.rule(FIREHOSE, delivery_stream_name(event), frozenset(settings.partition_key_fields)) if pii is not None else None
    outcome = TransformOutcome()
    ids = [str(r.get("recordId", "")) if isinstance(r, Mapping) else "" for r in records]
    # The smallest answer for each record still to come, kept in reserve so a full response can always end.
    reserve = sum(_size({"recordId": record_id, "result": FAILED, "data": ""}) for record_id in ids)
    budget = settings.max_response_bytes - _RESPONSE_MARGIN
    used = 0
    full = False  # once a record did not fit, every later one fails too (Firehose keeps them in processing-failed/)
    for record_id, record in zip(ids, records, strict=True):
        minimal = {"recordId": record_id, "result": FAILED, "data": ""}
        reserve -= _size(minimal)
        data = record.get("data") if isinstance(record, Mapping) else None
        entry: dict[str, Any]
        try:
            line, keys = _flattened(data, settings, pii, rule)
            if line is None:
                entry = {"recordId": record_id, "result": DROPPED, "data": ""}
            else:
                entry = {"recordId": record_id, "result": OK, "data": base64.b64encode(line).decode()}
                if settings.partition_key_fields:
                    entry["metadata"] = {"partitionKeys": keys}
        except _Rejected as error:
            outcome.problems[record_id] = str(error)
            entry = {"recordId": record_id, "result": FAILED, "data": data if isinstance(data, str) else ""}
        if full or used + _size(entry) + reserve > budget:
            full = True
            if entry["result"] != FAILED:
                outcome.problems[record_id] = f"the flattened record does not fit in the {settings.max_response_bytes}-byte response"
            entry = minimal
        used += _size(entry)
        outcome.records.append(entry)
    return outcome
