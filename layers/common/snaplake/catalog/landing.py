"""Landing events: one EventBridge event per table partition, put once RegisterCatalog made it queryable.

The catalog step puts them after it registered the partitions (or, with partition projection, once the table
knows them), so a consumer that reacts to an event can query the partition at once. Delivery is at least once:
a retried step, or a DynamoDB run that finishes an export a failed run had published, puts the same event
again. `landingId` is the same every time (a digest of what landed and from which export), so consumers
dedupe on it. The schema and an example rule are in docs/events.md.

Row counts are never read here: the steps that touched every file already counted them (CopyBatch reads the
footers of its batch, ConvertFiles counts the rows it writes), and what they recorded arrives with the input.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from snaplake.catalog.errors import LandingEventsNotPut
from snaplake.catalog.partitions import LandedPartition
from snaplake.core.errors import InvalidEvent
from snaplake.core.handler_input import integer, text, timestamp
from snaplake.core.limits import EVENTBRIDGE_PUT_EVENTS_MAX_BYTES, EVENTBRIDGE_PUT_EVENTS_MAX_ENTRIES
from snaplake.core.settings import Env, Setting, environ
from snaplake.core.times import iso_utc

log = logging.getLogger(__name__)

SOURCE = "snaplake"
DETAIL_TYPE = "Lake Partition Landed"
SCHEMA_VERSION = 1
RDS, DYNAMODB, DYNAMODB_CHANGES = "rds", "dynamodb", "dynamodb_changes"
PUT_ATTEMPTS = 4  # PutEvents calls per batch before the step fails (and the state machine retries it)
RETRY_SECONDS = 0.5  # first pause between attempts, doubled each time

LANDING_EVENT_BUS = Setting("LANDING_EVENT_BUS", "default", "the EventBridge bus (name or ARN) landing events are put on")


def landing_event_bus(env: Env | None = None) -> str:
    return LANDING_EVENT_BUS.text(environ() if env is None else env)


@dataclass(frozen=True)
class Landing:
    """One completed, queryable table partition: what a landing event says."""

    pipeline: str  # rds | dynamodb | dynamodb_changes
    database: str
    table: str
    partition: Mapping[str, str]
    location: str
    rows: int
    files: int
    bytes: int
    export_ids: tuple[str, ...]
    snapshot_time: str | None
    extra: Mapping[str, Any] | None = None  # fields beyond the contract (a change window's bounds)

    @property
    def landing_id(self) -> str:
        """The same for every put of this partition from these exports: what consumers dedupe on."""
        parts = [self.pipeline, self.database, self.table, self.location, *self.export_ids]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def detail(self, landed_at: str) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "landingId": self.landing_id,
            "pipeline": self.pipeline,
            "database": self.database,
            "table": self.table,
            "qualifiedTable": f"{self.database}.{self.table}",
            "partition": dict(self.partition),
            "location": self.location,
            "rows": self.rows,
            "files": self.files,
            "bytes": self.bytes,
            "exportIds": list(self.export_ids),
            "snapshotTime": self.snapshot_time,
            "landedAt": landed_at,
            **(self.extra or {}),
        }


def table_version_fields(registered: Mapping[str, Any]) -> dict[str, Any]:
    """A partition registered in a table version (catalog.versions): which base table, which version, and whether
    this registration started it. Nothing for version 1, the base table itself."""
    if int(registered.get("tableVersion", 1)) == 1:
        return {}
    return {k: registered[k] for k in ("baseTable", "tableVersion", "tableVersionStarted")}


def _partition_of(registered: Mapping[str, Any], prefix: str) -> tuple[dict[str, str], str]:
    partition = LandedPartition.parse("", prefix)
    if tuple(registered["partitionValues"]) != partition.values:
        raise InvalidEvent(f"registered partition {registered['partitionValues']} is not the landed {list(partition.values)}")
    return dict(zip(partition.keys, partition.values, strict=True)), str(registered["location"])


def rds_landings(request: Mapping[str, Any], landed: Mapping[str, Any], registered: Sequence[Mapping[str, Any]]) -> list[Landing]:
    """One landing per table of FinalizeCopy's landed manifest, in the order RegisterCatalog registered them.

    `request` is RegisterCatalog's input: the export task and the snapshot time come with the landed manifest.
    """
    export_id = text(request.get("exportTaskIdentifier"), "exportTaskIdentifier")
    snapshot_time = iso_utc(timestamp(request.get("snapshotTime"), "snapshotTime"))
    landings = []
    for entry, registration in zip(landed["tables"], registered, strict=True):
        partition, location = _partition_of(registration, str(entry["partition"]))
        rows = entry.get("rows")
        if rows is None:
            raise InvalidEvent(f"landed manifest table {entry['table']!r} has no 'rows' (written before landing events): re-run the input")
        landings.append(
            Landing(
                pipeline=RDS,
                database=str(registration["database"]),
                table=str(registration["table"]),
                partition=partition,
                location=location,
                rows=integer(rows, "rows"),
                files=integer(entry["objects"], "objects"),
                bytes=integer(entry["bytes"], "bytes"),
                export_ids=(export_id,),
                snapshot_time=snapshot_time,
                extra=table_version_fields(registration) or None,
            )
        )
    return landings


def dynamodb_landings(request: Mapping[str, Any], prefixes: Sequence[str], registered: Sequence[Mapping[str, Any]]) -> list[Landing]:
    """One landing per partition FinalizeConversion published (`partitionTotals`: rows, files, bytes per prefix).

    A full export's partition is the table as of `exportedTo` (its snapshotTime); a change window's partitions
    hold changes, so their snapshotTime is null and `window` gives the window's bounds.
    """
    kind = request.get("kind")
    export_arn = text(request.get("exportArn"), "exportArn")
    exported_to = iso_utc(timestamp(request.get("exportedTo"), "exportedTo"))
    totals = request.get("partitionTotals")
    if not isinstance(totals, dict):
        raise InvalidEvent("register catalog needs 'partitionTotals' from FinalizeConversion for the landing events")
    extra = None
    if kind == "incremental":
        window_from = request.get("windowFrom")
        extra = {"window": {"from": iso_utc(timestamp(window_from, "windowFrom")) if window_from else None, "to": exported_to}}
    landings = []
    for prefix, registration in zip(prefixes, registered, strict=True):
        fields = {**(extra or {}), **table_version_fields(registration)}
        partition, location = _partition_of(registration, prefix)
        counted = totals.get(prefix)
        if not isinstance(counted, dict):
            raise InvalidEvent(f"'partitionTotals' has no totals for {prefix[:200]!r}")
        landings.append(
            Landing(
                pipeline=DYNAMODB if kind == "full" else DYNAMODB_CHANGES,
                database=str(registration["database"]),
                table=str(registration["table"]),
                partition=partition,
                location=location,
                rows=integer(counted.get("rows"), "partitionTotals.rows"),
                files=integer(counted.get("files"), "partitionTotals.files"),
                bytes=integer(counted.get("bytes"), "partitionTotals.bytes"),
                export_ids=(export_arn,),
                snapshot_time=exported_to if kind == "full" else None,
                extra=fields or None,
            )
        )
    return landings


def put_landing_events(
    events: Any, bus: str, landings: Sequence[Landing], *, now: datetime | None = None, sleep: Callable[[float], None] = time.sleep
) -> list[str]:
    """Put one event per landing on `bus`; returns their landingIds.

    Entries go in PutEvents batches (at most 10 entries, under 256 KB together). Entries a call reports as failed
    (FailedEntryCount) are put again, up to PUT_ATTEMPTS calls; entries still failing raise LandingEventsNotPut,
    so the step fails and its retry puts every event again (consumers dedupe on landingId).
    """
    landed_at = iso_utc(now or datetime.now(UTC))
    entries = [
        {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(landing.detail(landed_at)), "EventBusName": bus}
        for landing in landings
    ]
    for batch in _batches(entries):
        _put_batch(events, batch, sleep)
    ids = [landing.landing_id for landing in landings]
    if ids:
        log.info("landing events put", extra={"bus": bus, "events": len(ids)})
    return ids


def entry_size(entry: Mapping[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it (Source, DetailType, Detail, Resources; Time is 14 bytes)."""
    size = 14 if entry.get("Time") is not None else 0
    size += sum(len(str(entry.get(name, "")).encode()) for name in ("Source", "DetailType", "Detail"))
    return size + sum(len(resource.encode()) for resource in entry.get("Resources", []))


def _batches(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_bytes = entry_size(entry)
        if batch and (len(batch) == EVENTBRIDGE_PUT_EVENTS_MAX_ENTRIES or size + entry_bytes >= EVENTBRIDGE_PUT_EVENTS_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_bytes
    if batch:
        yield batch


def _put_batch(events: Any, batch: list[dict[str, Any]], sleep: Callable[[float], None]) -> None:
    pending = batch
    for attempt in range(PUT_ATTEMPTS):
        if attempt:
            sleep(RETRY_SECONDS * 2 ** (attempt - 1))
        response = events.put_events(Entries=pending)
        if not response.get("FailedEntryCount"):
            return
        # The response's entries match the request's, in order; a failed one has an ErrorCode.
        failed = [(entry, result) for entry, result in zip(pending, response["Entries"], strict=True) if result.get("ErrorCode")]
        log.warning("landing events not put; retrying them", extra={"failed": len(failed), "attempt": attempt + 1})
        pending = [entry for entry, _ in failed]
    codes = sorted({str(result.get("ErrorCode")) for _, result in failed})
    raise LandingEventsNotPut(
        f"{len(pending)} of {len(batch)} landing events were not put after {PUT_ATTEMPTS} PutEvents calls "
        f"({', '.join(codes)}: {str(failed[0][1].get('ErrorMessage'))[:200]}); the step's retry puts them again"
    )
