"""What PlanCopy makes sure of before the first object lands, so nothing is refused after data and `_SUCCESS` are in.

- Each table's columns are distinct in Athena (names fold to lower case) and none is named like a
  partition key of the key template: one Parquet footer per table, read from the export
  (`ColumnNameConflict`; a data file without a readable footer is `ExportFileUnreadable`).
- The target partitions hold nothing but this export's files: one listing per partition
  (`DestinationMismatch`). The same listing says which planned objects are missing, so a re-run
  restores what was deleted after landing instead of trusting its `done` markers.
- Claims in the lake (`snaplake.core.claims`: S3 conditional writes, the first writer wins, the record
  never changes), under `<LakePrefix>/_snaplake/claims/rds/`, made in this order after every check:
  - `tables/<table folder>.json`: {"source"}. A lake table holds one source's snapshots: two clusters
    that each have a database `app` never fold together. Another source -> `SourceCollision`.
  - `snapshots/<source>/<snapshot time>.json`: {"export", "snapshotArn", "source"}. One export per
    source and snapshot time: a snapshot and its copy (same source, same OriginalSnapshotCreateTime)
    never both land. Another export on record -> `DestinationMismatch`. FilterSnapshot reads it to
    skip a copy of a snapshot that already landed.
  - `partitions/<partition>.json`: {"export"}. One export per partition, whatever the template maps
    there. Another export on record -> `DestinationMismatch`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from snaplake.core.claims import CLAIMS_PREFIX, Claims, claim_key
from snaplake.core.names import join_key
from snaplake.core.s3 import Bucket
from snaplake.core.times import snapshot_time_value
from snaplake.rds.errors import ColumnNameConflict, DestinationMismatch, ExportFileUnreadable, SourceCollision

PARQUET_MAGIC = b"PAR1"
FOOTER_TAIL_BYTES = 64 * 1024  # one ranged GET covers almost every footer
MAX_FOOTER_BYTES = 64 * 1024**2


def snapshot_claim_key(lake_prefix: str, source_id: str, snapshot_time: datetime) -> str:
    """Where the export that owns a source's snapshot time is recorded."""
    return join_key(lake_prefix, claim_key("rds", "snapshots", source_id.lower(), snapshot_time_value(snapshot_time)))


def landed_snapshot_owner(lake: Bucket, lake_prefix: str, source_id: str, snapshot_time: datetime) -> dict[str, Any] | None:
    """The export on record for this source and snapshot time (it landed, or is landing), or None."""
    found = lake.read_json_or_none(snapshot_claim_key(lake_prefix, source_id, snapshot_time))
    return dict(found) if isinstance(found, dict) else None


@dataclass(frozen=True)
class Destination:
    """One export's place in the lake: the claims PlanCopy makes for it, all or nothing refused by name."""

    lake: Bucket
    lake_prefix: str
    source_id: str
    export_id: str
    snapshot_arn: str | None
    snapshot_time: datetime

    def claim(self, table_folders: Iterable[str], partitions: Iterable[str], threads: int) -> None:
        """Claim each table folder, then the snapshot time, then each partition (keys relative to the lake prefix).

        Tables first: a source refused there leaves no claim on a snapshot time it never landed.
        """
        claims = Claims(self.lake)

        def claim_table(folder: str) -> None:
            key = join_key(self.lake_prefix, claim_key("rds", "tables", folder))
            recorded = claims.claim(key, {"source": self.source_id})
            if recorded.get("source") != self.source_id:
                raise SourceCollision(
                    f"lake table {self.lake.uri(join_key(self.lake_prefix, folder))}/ holds the snapshots of "
                    f"{recorded.get('source')!r}, not of {self.source_id!r} (their databases and tables have the same names): "
                    f"put {{source_id}} in LAKE_KEY_TEMPLATE's table folder, or export one of them elsewhere (claim {self.lake.uri(key)})"
                )

        def claim_partition(partition: str) -> None:
            key = join_key(self.lake_prefix, claim_key("rds", "partitions", partition))
            recorded = claims.claim(key, {"export": self.export_id})
            if recorded.get("export") != self.export_id:
                raise DestinationMismatch(
                    f"lake partition {self.lake.uri(join_key(self.lake_prefix, partition))}/ is claimed by export "
                    f"{recorded.get('export')!r}; delete that partition and {self.lake.uri(key)} if it is wrong, then re-run"
                )

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            list(pool.map(claim_table, sorted(set(table_folders))))
            snapshot_key = snapshot_claim_key(self.lake_prefix, self.source_id, self.snapshot_time)
            recorded = claims.claim(snapshot_key, {"export": self.export_id, "snapshotArn": self.snapshot_arn, "source": self.source_id})
            if recorded.get("export") != self.export_id:
                raise DestinationMismatch(
                    f"snapshot time {snapshot_time_value(self.snapshot_time)} of {self.source_id!r} is claimed by export "
                    f"{recorded.get('export')!r} (snapshot {recorded.get('snapshotArn')!r}): its data landed or is landing, so "
                    f"this export must not land too. To replace it on purpose, delete that partition of each table, "
                    f"{self.lake.uri(snapshot_key)} and the partitions' claims under "
                    f"{self.lake.uri(join_key(self.lake_prefix, CLAIMS_PREFIX, 'rds', 'partitions'))}/, then re-run"
                )
            list(pool.map(claim_partition, sorted(set(partitions))))


def check_columns(export: Bucket, sample_keys: dict[str, str], partition_keys: tuple[str, ...], threads: int) -> None:
    """One data file per table (table name -> key in the export): its columns must be distinct columns in Athena."""

    def check(item: tuple[str, str]) -> None:
        table, key = item
        seen: dict[str, str] = {}
        for name in parquet_column_names(export, key):
            folded = name.lower()
            if folded in seen:
                raise ColumnNameConflict(
                    f"table {table!r}: columns {seen[folded]!r} and {name!r} are the same column in Athena (names are case-insensitive); "
                    "rename one at the source or leave the table out (ExportOnly)"
                )
            if folded in partition_keys:
                raise ColumnNameConflict(
                    f"table {table!r}: column {name!r} has the name of a partition key of LAKE_KEY_TEMPLATE ({', '.join(partition_keys)}); "
                    "rename the key in the template, or the column at the source"
                )
            seen[folded] = name

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(sample_keys)))) as pool:
        list(pool.map(check, sorted(sample_keys.items())))


def parquet_column_names(bucket: Bucket, key: str) -> list[str]:
    """The top-level column names of a Parquet object, from its footer only."""
    return [field.name for field in parquet_footer(bucket, key).schema.to_arrow_schema()]


def parquet_footer(bucket: Bucket, key: str) -> Any:
    """The footer (pyarrow FileMetaData: schema, row count) of a Parquet object: one ranged GET, two for a large footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tail, total = bucket.read_tail(key, FOOTER_TAIL_BYTES)
    if len(tail) < 12 or tail[-4:] != PARQUET_MAGIC:
        raise ExportFileUnreadable(f"{bucket.uri(key)} is not a Parquet file (no PAR1 footer)")
    needed = struct.unpack("<I", tail[-8:-4])[0] + 8
    if needed > total - 4 or needed > MAX_FOOTER_BYTES:
        raise ExportFileUnreadable(f"{bucket.uri(key)} declares a {needed - 8}-byte footer in a {total}-byte file")
    if needed > len(tail):
        tail, _ = bucket.read_tail(key, needed)
    try:
        # The reader looks only at the end of the buffer; the leading magic satisfies its size checks.
        return pq.read_metadata(pa.BufferReader(PARQUET_MAGIC + tail[-needed:]))
    except (OSError, ValueError) as error:
        raise ExportFileUnreadable(f"{bucket.uri(key)}: {error}") from None
