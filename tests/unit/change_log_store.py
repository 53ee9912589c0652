"""An in-memory ChangeLogStore for the change-log unit tests: a dict of objects read in S3's listing order,
claims and column registries with core.claims' semantics, a fixed stream view type."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
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
