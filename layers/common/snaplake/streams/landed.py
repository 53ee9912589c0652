"""Where the change log lives in the lake, and which stream records have already landed there.

Layout (one table per DynamoDB table, apart from the incremental exports' `dynamodb_changes/`):

    <prefix>/dynamodb_stream_changes/<table>/dt=YYYY-MM-DD/hour=HH/
        changes-<stream>-<countdown>-<first>-<last>-<digest>.parquet

- `<stream>`: 16 hex digits of the SHA-256 of the stream ARN;
- `<first>`, `<last>`: the smallest and largest sequence number in the object (decimal);
- `<countdown>`: 10^40 - 1 - last, 40 digits, so that S3's ascending listing gives the objects of a stream
  in a partition from the largest last sequence number down;
- `<digest>`: 12 hex digits of the SHA-256 of the object's event ids, so two objects with other records
  never share a key.

Exactly once (see docs/streams.md): before writing, `landed_event_ids` lists, in each hour partition the
batch's records fall into, the stream's objects whose last sequence number is not below the batch's first
one (the listing stops at the first that is: one LIST page in steady state) and whose first is not above
the batch's last, and reads their `event_id` column. Records found there are not written again. A record's
partition is fixed by its own ApproximateCreationDateTime, so a copy of it can only be in that partition.
This relies on one writer per record at a time: the mapping runs one batch per shard (ParallelizationFactor 1,
enforced in template.yaml), and an operator's replay writes only the range of one failure record, which the mapping
never delivers again, one replay per shard at a time (snaplake.streams.replay).

`ChangeLogStore` is what the change log needs from the lake; `LakeChangeLog` is the real one (the lake
bucket, core.claims, the stream's DescribeStream), with per-container caches.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from snaplake.core.claims import Claims, ColumnRegistry, claim_key
from snaplake.core.names import athena_name, join_key
from snaplake.core.s3 import Bucket
from snaplake.streams.errors import StreamTableFolderTaken, UnsupportedStreamViewType
from snaplake.streams.records import REQUIRED_VIEW_TYPE, StreamRecord
from snaplake.streams.settings import CHANGE_LOG_FOLDER

EVENT_ID_COLUMN = "event_id"
# The change log of table <t> is the Glue table <t>_stream_changes (the incremental exports' is <t>_changes).
STREAM_TABLE_SUFFIX = "_stream_changes"
_COUNTDOWN_FROM = 10**40 - 1
_NAME = re.compile(
    r"^changes-(?P<stream>[0-9a-f]{16})-(?P<countdown>[0-9]{40})-(?P<first>[0-9]{1,40})-(?P<last>[0-9]{1,40})-[0-9a-f]{12}\.parquet$"
)


class ChangeLogStore(Protocol):
    """What the change log needs from the lake and the stream."""

    def keys_from(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix` in ascending (S3 listing) order; the caller may stop early."""
        ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, body: bytes) -> None: ...

    def claim(self, key: str, owner: Mapping[str, Any]) -> dict[str, Any]:
        """The owner on record at `key` (ours when we were first); see core.claims.Claims.claim."""
        ...

    def registered_columns(self, registry: tuple[str, ...], paths: Iterable[tuple[str, ...]], separator: str) -> dict[tuple[str, ...], str]:
        """Stable column names for attribute paths of one lake table; see core.claims.ColumnRegistry.names."""
        ...

    def view_type(self, stream_arn: str) -> str:
        """The stream's StreamViewType."""
        ...


def stream_id(stream_arn: str) -> str:
    return hashlib.sha256(stream_arn.encode()).hexdigest()[:16]


def table_folder(prefix: str, record: StreamRecord) -> str:
    return join_key(prefix, CHANGE_LOG_FOLDER, athena_name(record.table))


def partition_prefix(prefix: str, record: StreamRecord) -> str:
    day, hour = record.hour
    return join_key(table_folder(prefix, record), f"dt={day}", f"hour={hour}")


def object_key(prefix: str, records: list[StreamRecord]) -> str:
    """The key of the object holding `records` (one partition, one stream)."""
    sequences = [record.sequence for record in records]
    first, last = min(sequences), max(sequences)
    digest = hashlib.sha256("\n".join(sorted(r.event_id for r in records)).encode()).hexdigest()[:12]
    name = f"changes-{stream_id(records[0].stream_arn)}-{_COUNTDOWN_FROM - last:040d}-{first}-{last}-{digest}.parquet"
    return join_key(partition_prefix(prefix, records[0]), name)


def landed_event_ids(store: ChangeLogStore, prefix: str, records: list[StreamRecord]) -> set[str]:
    """The event ids of `records` (one partition, one stream) that are already in an object of the change log."""
    if not records:
        return set()
    sequences = [record.sequence for record in records]
    first, last = min(sequences), max(sequences)
    found: set[str] = set()
    for key in store.keys_from(join_key(partition_prefix(prefix, records[0]), f"changes-{stream_id(records[0].stream_arn)}-")):
        match = _NAME.match(key.rsplit("/", 1)[-1])
        if match is None:
            continue  # not a change-log object of this stream
        if _COUNTDOWN_FROM - int(match["countdown"]) < first:
            break  # every later key ends below the batch
        if int(match["first"]) > last:
            continue
        found.update(pq.read_table(pa.BufferReader(store.read(key)), columns=[EVENT_ID_COLUMN]).column(0).to_pylist())
    return found & {record.event_id for record in records}


def claim_table_folder(store: ChangeLogStore, prefix: str, record: StreamRecord) -> None:
    """Claim the table's change-log folder for its table ARN; StreamTableFolderTaken when another ARN has it."""
    folder = table_folder(prefix, record)
    owner = {"table_arn": record.table_arn, "folder": folder}
    recorded = store.claim(join_key(prefix, claim_key(CHANGE_LOG_FOLDER, athena_name(record.table))), owner)
    if recorded.get("table_arn") != record.table_arn:
        raise StreamTableFolderTaken(
            f"{folder}/ holds the changes of {recorded.get('table_arn')!r}; {record.table_arn!r} has the same Athena name"
        )


def check_view_type(store: ChangeLogStore, stream_arn: str) -> None:
    view_type = store.view_type(stream_arn)
    if view_type != REQUIRED_VIEW_TYPE:
        raise UnsupportedStreamViewType(f"stream {stream_arn} has view type {view_type!r}, the change log needs {REQUIRED_VIEW_TYPE}")


class LakeChangeLog:
    """The change log's store on AWS: the lake bucket (claims and column registries under `<prefix>/_snaplake/`)
    and dynamodbstreams.DescribeStream. Claims, column names and view types are cached for the container's life:
    none of them ever changes once recorded."""

    lake: Bucket
    prefix: str

    def __init__(self, lake: Bucket, streams: Any, prefix: str) -> None:
        self.lake = lake
        self.streams = streams
        self.prefix = prefix
        self._claims: dict[str, dict[str, Any]] = {}
        self._columns: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}

    def keys_from(self, prefix: str) -> Iterator[str]:
        for found in self.lake.objects_under(prefix):
            yield str(found["Key"])

    def read(self, key: str) -> bytes:
        return self.lake.read_bytes(key)

    def write(self, key: str, body: bytes) -> None:
        self.lake.write_bytes(key, body, content_type="application/vnd.apache.parquet")

    def claim(self, key: str, owner: Mapping[str, Any]) -> dict[str, Any]:
        if key not in self._claims:
            self._claims[key] = Claims(self.lake).claim(key, owner)
        return self._claims[key]

    def registered_columns(self, registry: tuple[str, ...], paths: Iterable[tuple[str, ...]], separator: str) -> dict[tuple[str, ...], str]:
        known = self._columns.setdefault(registry, {})
        wanted = set(paths)
        if not wanted <= known.keys():
            columns = ColumnRegistry(self.lake, *registry, lake_prefix=self.prefix)
            known.update(columns.names(wanted - known.keys(), separator))
        return {path: known[path] for path in wanted}

    @functools.lru_cache(maxsize=16)  # noqa: B019 - one store per container, a handful of streams
    def view_type(self, stream_arn: str) -> str:
        return str(self.streams.describe_stream(StreamArn=stream_arn, Limit=1)["StreamDescription"].get("StreamViewType", ""))
