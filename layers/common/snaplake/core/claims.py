"""Records in the lake that only the first writer can make: claims and column registries.

Both are small JSON objects under `_snaplake/` written with S3 conditional writes, so two
pipelines (or two runs of one) racing for the same thing cannot both win:

- a claim (`Claims.claim`) is written once with `If-None-Match: *` and never changed; whoever
  wrote it owns what the key names (a lake folder, a partition). Callers compare the owner
  on record with their own and raise their named error when it differs.
- a column registry (`ColumnRegistry`) maps each source attribute path of one lake table to
  its column name for good, so `Foo` and `foo` keep the names they first got in every object
  written later, whatever else a batch holds. It grows with `If-Match` on the ETag read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from snaplake.core.aws import client_error_of, error_code
from snaplake.core.names import assign_column_names, join_key
from snaplake.core.s3 import Bucket

CLAIMS_PREFIX = "_snaplake/claims"
COLUMNS_PREFIX = "_snaplake/columns"
REGISTRY_FORMAT = "snaplake.column-registry/1"
# Another writer's conditional write won in between (412), or raced ours inside S3 (409): read again.
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
MAX_ATTEMPTS = 8


def is_conflict(error: BaseException) -> bool:
    cause = client_error_of(error)
    return cause is not None and error_code(cause) in CONFLICT_CODES


def claim_key(*parts: str) -> str:
    """`_snaplake/claims/<parts>.json`; callers put it under their lake prefix (join_key(prefix, claim_key(...)))."""
    return join_key(CLAIMS_PREFIX, *parts) + ".json"


@dataclass(frozen=True)
class Claims:
    """Claims in one bucket (see module docstring)."""

    bucket: Bucket

    def claim(self, key: str, owner: Mapping[str, Any]) -> dict[str, Any]:
        """Record `owner` at `key` unless a claim is already there; return the owner on record (ours when we won)."""
        body = json.dumps(dict(owner), sort_keys=True).encode()
        for _ in range(MAX_ATTEMPTS):
            try:
                self.bucket.write_bytes(key, body, "application/json", if_none_match=True)
                return dict(owner)
            except Exception as error:
                if not is_conflict(error):
                    raise
            recorded = self.bucket.read_json_or_none(key)
            if recorded is not None:
                return dict(recorded)
        raise RuntimeError(f"claim {self.bucket.uri(key)} kept conflicting without a winner")

    def release(self, key: str) -> None:
        """Remove a claim (an operator's recovery, or a run undoing a claim it made and did not use)."""
        self.bucket.delete_keys([key])


class ColumnRegistry:
    """The column name of every attribute path ever seen in one lake table (see module docstring)."""

    bucket: Bucket
    key: str

    def __init__(self, bucket: Bucket, *table: str, lake_prefix: str = "") -> None:
        self.bucket = bucket
        self.key = join_key(lake_prefix, COLUMNS_PREFIX, *table) + ".json"

    def _read(self) -> tuple[dict[tuple[str, ...], str], str | None]:
        head = self.bucket.read_json_with_etag(self.key)
        if head is None:
            return {}, None
        document, etag = head
        if document.get("format") != REGISTRY_FORMAT:
            raise ValueError(f"{self.bucket.uri(self.key)} is not a {REGISTRY_FORMAT} document")
        return {tuple(json.loads(path)): name for path, name in document["columns"].items()}, etag

    def names(self, paths: Iterable[tuple[str, ...]], separator: str, reserved: frozenset[str] = frozenset()) -> dict[tuple[str, ...], str]:
        """Column names for `paths`: those on record keep theirs; new ones get names no path has had, and are recorded."""
        wanted = set(paths)
        for _ in range(MAX_ATTEMPTS):
            recorded, etag = self._read()
            new = sorted(wanted - set(recorded))
            if not new:
                return {path: recorded[path] for path in wanted}
            taken = frozenset(recorded.values()) | reserved
            assigned = assign_column_names(new, separator, taken)
            columns = {**recorded, **assigned}
            body = json.dumps(
                {"format": REGISTRY_FORMAT, "columns": {json.dumps(list(path)): name for path, name in sorted(columns.items())}},
                sort_keys=True,
            ).encode()
            try:
                if etag is None:
                    self.bucket.write_bytes(self.key, body, "application/json", if_none_match=True)
                else:
                    self.bucket.write_bytes(self.key, body, "application/json", if_match=etag)
            except Exception as error:
                if not is_conflict(error):
                    raise
                continue
            return {path: columns[path] for path in wanted}
        raise RuntimeError(f"column registry {self.bucket.uri(self.key)} kept changing under {MAX_ATTEMPTS} attempts")
