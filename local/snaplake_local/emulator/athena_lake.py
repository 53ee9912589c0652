"""What the emulated Athena reads and writes: the Glue tables a query names (with their partitions, registered or
projected) and the lake objects under their locations, in two places:

- the emulated stack: moto's Glue and S3 backends (GlueBackendCatalog, MotoLakeStorage), for AthenaEmulator;
- a lake folder written by `snaplake local rds|dynamodb --out DIR`: the catalog the replay saved next to it
  (athena_catalog.CatalogFile) and the folder's files (FolderStorage), for `snaplake local query`.

table_files() lists the data files of each partition of a table as Athena would read them: registered partitions
(or, with `projection.enabled`, the folders `storage.location.template` matches within the projected ranges), all
objects below each location except hidden ones (a path segment starting with `_` or `.`) and empty ones.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from snaplake_local.emulator.athena_types import AthenaQueryError
from snaplake_local.emulator.s3 import emulated_s3

PARQUET_SERDE_MARK = "parquet"
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"


class LakeCatalog(Protocol):
    """The Glue Data Catalog as the emulated Athena reads it (GetTable and GetPartitions shapes)."""

    def table(self, database: str, name: str) -> dict[str, Any] | None: ...

    def partitions(self, database: str, name: str) -> list[dict[str, Any]]: ...

    def has_database(self, database: str) -> bool: ...


class LakeStorage(Protocol):
    """S3 as the emulated Athena reads and writes it."""

    def objects(self, location: str) -> list[str]:
        """The s3:// URIs of the non-empty objects below `location` (a folder URI ending with '/')."""
        ...

    def local_path(self, uri: str) -> str:
        """A local file holding the object (DuckDB reads files)."""
        ...

    def put(self, uri: str, body: bytes) -> None: ...

    def delete(self, uri: str) -> None:
        """Delete the object (a missing one is no error, as in S3)."""
        ...


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise AthenaQueryError(f"HIVE_INVALID_METADATA: location {uri!r} is not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def folder(location: str) -> str:
    return location if location.endswith("/") else location + "/"


def visible(relative: str) -> bool:
    """Athena (Hive) skips files and folders whose name starts with `_` or `.` (`_SUCCESS`, `.hoodie`, ...)."""
    return not any(part.startswith(("_", ".")) for part in relative.split("/"))


# ---------------------------------------------------------------------------------------------- the emulated stack
class GlueBackendCatalog:
    """moto's Glue backend of the emulated account and region."""

    def __init__(self, account: str, region: str):
        self.account, self.region = account, region

    def _glue(self) -> Any:
        from moto.glue.models import glue_backends

        return glue_backends[self.account][self.region]

    def has_database(self, database: str) -> bool:
        return database in self._glue().databases

    def table(self, database: str, name: str) -> dict[str, Any] | None:
        glue = self._glue()
        if database not in glue.databases or name not in glue.databases[database].tables:
            return None
        return dict(glue.databases[database].tables[name].as_dict())

    def partitions(self, database: str, name: str) -> list[dict[str, Any]]:
        table = self._glue().databases[database].tables[name]
        return [dict(partition.as_dict()) for partition in table.partitions.values()]


class MotoLakeStorage:
    """moto's S3 backend; objects a query reads are copied once into a scratch folder (keyed by ETag)."""

    def __init__(self, account: str):
        self.account = account
        self._scratch: Path | None = None

    def objects(self, location: str) -> list[str]:
        bucket, prefix = split_uri(folder(location))
        with emulated_s3(self.account) as s3:
            try:
                found = s3.list_objects(s3.get_bucket(bucket), prefix, None, None, None)[0]
            except Exception:  # moto's MissingBucket
                raise AthenaQueryError(f"HIVE_UNKNOWN_ERROR: The specified bucket does not exist: {bucket} ({location})") from None
            return [f"s3://{bucket}/{key.name}" for key in found if key.size and visible(key.name[len(prefix) :])]

    def local_path(self, uri: str) -> str:
        bucket, key = split_uri(uri)
        with emulated_s3(self.account) as s3:
            found = s3.get_object(bucket, key)
            if found is None:
                raise AthenaQueryError(f"HIVE_CANNOT_OPEN_SPLIT: {uri} does not exist")
            if self._scratch is None:
                self._scratch = Path(tempfile.mkdtemp(prefix="snaplake-athena-"))
            path = self._scratch / f"{hashlib.sha256(uri.encode()).hexdigest()[:24]}-{found.etag.strip(chr(34))}"
            if not path.exists():
                path.write_bytes(found.value)
        return str(path)

    def put(self, uri: str, body: bytes) -> None:
        bucket, key = split_uri(uri)
        with emulated_s3(self.account) as s3:
            s3.put_object(bucket, key, body)

    def delete(self, uri: str) -> None:
        bucket, key = split_uri(uri)
        with emulated_s3(self.account) as s3:
            s3.delete_object(bucket, key)

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


# ---------------------------------------------------------------------------------------------- a lake folder
class FolderStorage:
    """A folder holding the lake bucket's objects under their keys (`snaplake local rds|dynamodb --out DIR`)."""

    def __init__(self, root: Path, bucket: str):
        self.root, self.bucket = root, bucket

    def _path(self, uri: str) -> Path:
        bucket, key = split_uri(uri)
        if bucket != self.bucket:
            raise AthenaQueryError(f"HIVE_UNKNOWN_ERROR: {uri} is not in the lake folder (it holds s3://{self.bucket}/ only)")
        return self.root / key

    def objects(self, location: str) -> list[str]:
        base = self._path(folder(location))
        if not base.is_dir():
            return []
        found = []
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(base).as_posix()
            if path.is_file() and path.stat().st_size and visible(relative):
                found.append(folder(location) + relative)
        return found

    def local_path(self, uri: str) -> str:
        return str(self._path(uri))

    def put(self, uri: str, body: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- a table's files
@dataclass
class PartitionFiles:
    values: tuple[str, ...]  # () for an unpartitioned table
    location: str
    files: list[str] = field(default_factory=list)


@dataclass
class TableFiles:
    database: str
    name: str
    columns: list[tuple[str, str]]  # (name, Glue type) of the data columns
    keys: list[tuple[str, str]]  # (name, Glue type) of the partition keys
    partitions: list[PartitionFiles]


def glue_columns(table: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    columns = [(str(c["Name"]).lower(), str(c["Type"])) for c in table.get("StorageDescriptor", {}).get("Columns", [])]
    keys = [(str(c["Name"]).lower(), str(c.get("Type", "string"))) for c in table.get("PartitionKeys", [])]
    return columns, keys


def require_table(catalog: LakeCatalog, database: str, name: str) -> dict[str, Any]:
    if not catalog.has_database(database):
        raise AthenaQueryError(f"SCHEMA_NOT_FOUND: line 1:1: Schema '{database}' does not exist")
    table = catalog.table(database, name)
    if table is None:
        raise AthenaQueryError(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist")
    return table


def table_files(
    catalog: LakeCatalog,
    storage: LakeStorage,
    database: str,
    name: str,
    now: datetime,
    injected: Mapping[str, frozenset[str]] | None = None,
) -> TableFiles:
    """The table's partitions and the data files Athena reads in each."""
    table = require_table(catalog, database, name)
    from snaplake_local.emulator.athena_iceberg import iceberg_files, is_iceberg

    if is_iceberg(table):
        return iceberg_files(storage, database, name, table)
    columns, keys = glue_columns(table)
    descriptor = table.get("StorageDescriptor", {})
    serde = str(descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "")) + str(descriptor.get("InputFormat", ""))
    if PARQUET_SERDE_MARK not in serde.lower():
        raise AthenaQueryError(
            f"NOT_SUPPORTED: table {database}.{name} is not a Parquet table ({serde or 'no SerDe'}); the emulated Athena reads Parquet only"
        )
    location = str(descriptor.get("Location", ""))
    if not keys:
        return TableFiles(database, name, columns, keys, [PartitionFiles((), location, storage.objects(location))])
    parameters = {str(k): str(v) for k, v in (table.get("Parameters") or {}).items()}
    if parameters.get("projection.enabled", "").lower() == "true":
        partitions = _projected(storage, parameters, [k for k, _ in keys], location, now, injected or {})
    else:
        partitions = []
        for partition in catalog.partitions(database, name):
            where = str(partition.get("StorageDescriptor", {}).get("Location") or "")
            values = tuple(str(v) for v in partition.get("Values", []))
            partitions.append(PartitionFiles(values, where, storage.objects(where) if where else []))
        partitions.sort(key=lambda p: p.values)
    return TableFiles(database, name, columns, keys, partitions)


# ---------------------------------------------------------------------------------------------- partition projection
def _projected(
    storage: LakeStorage,
    parameters: dict[str, str],
    keys: list[str],
    location: str,
    now: datetime,
    injected: Mapping[str, frozenset[str]],
) -> list[PartitionFiles]:
    """Athena enumerates every value of the projected ranges (an `injected` key: the values the query compares it
    with) and reads `storage.location.template` for each; the folders that exist and whose values lie in those ranges
    are what it finds."""
    template = parameters.get("storage.location.template") or folder(location) + "".join(f"{k}=${{{k}}}/" for k in keys)
    static = template.split("${", 1)[0]
    pattern = re.escape(template)
    for key in keys:
        pattern = pattern.replace(re.escape(f"${{{key}}}"), f"(?P<{key}>[^/]+)", 1)
    matcher = re.compile(pattern)
    accept = {key: _projection_rule(parameters, key, now, injected) for key in keys}
    found: dict[tuple[str, ...], PartitionFiles] = {}
    for uri in storage.objects(static[: static.rfind("/") + 1]):
        match = matcher.match(uri)
        if not match:
            continue
        values = tuple(unquote(match.group(key)) for key in keys)
        if all(accept[key](value) for key, value in zip(keys, values, strict=True)):
            found.setdefault(values, PartitionFiles(values, match.group(0))).files.append(uri)
    return [found[values] for values in sorted(found)]


def _projection_rule(parameters: dict[str, str], key: str, now: datetime, injected: Mapping[str, frozenset[str]]) -> Callable[[str], bool]:
    kind = parameters.get(f"projection.{key}.type", "")
    low, _, high = parameters.get(f"projection.{key}.range", ",").partition(",")
    if kind == "integer":
        digits = int(parameters.get(f"projection.{key}.digits", "0") or 0)

        def integer(value: str) -> bool:
            return value.lstrip("-").isdigit() and int(low) <= int(value) <= int(high) and value == f"{int(value):0{digits}d}"

        return integer
    if kind == "enum":
        allowed = {v.strip() for v in parameters.get(f"projection.{key}.values", "").split(",")}
        return lambda value: value in allowed
    if kind == "date":
        python_format = java_date_format(parameters.get(f"projection.{key}.format", "yyyy-MM-dd"))

        def date(value: str) -> bool:
            try:
                parsed = datetime.strptime(value, python_format).replace(tzinfo=UTC)
            except ValueError:
                return False
            start, end = (_date_bound(bound, python_format, now) for bound in (low, high))
            return parsed.strftime(python_format) == value and start <= parsed <= end

        return date
    if kind == "injected":
        values = injected.get(key.lower())
        if not values:
            raise AthenaQueryError(
                f"CONSTRAINT_VIOLATION: For the injected projected partition column {key}, the WHERE clause must contain only "
                "static equality conditions, and at least one such condition must be present."
            )
        return lambda value: value in values
    raise AthenaQueryError(f"HIVE_INVALID_METADATA: projection type {kind!r} of partition key {key!r} is not one Athena knows")


_RELATIVE = re.compile(r"^NOW\s*(?:(?P<sign>[+-])\s*(?P<count>\d+)\s*(?P<unit>YEARS?|MONTHS?|WEEKS?|DAYS?|HOURS?|MINUTES?|SECONDS?))?$")


def _date_bound(bound: str, python_format: str, now: datetime) -> datetime:
    relative = _RELATIVE.match(bound.strip().upper())
    if not relative:
        return datetime.strptime(bound.strip(), python_format).replace(tzinfo=UTC)
    if not relative["sign"]:
        return now
    unit = relative["unit"].rstrip("S").lower()
    days = {"year": 365, "month": 30, "week": 7, "day": 1}.get(unit)
    seconds = {"hour": 3600, "minute": 60, "second": 1}.get(unit, 0)
    delta = timedelta(days=int(relative["count"]) * days) if days else timedelta(seconds=int(relative["count"]) * seconds)
    return now + delta if relative["sign"] == "+" else now - delta


_JAVA_TOKENS = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def java_date_format(pattern: str) -> str:
    """A projection's Java date format (`yyyyMMdd'T'HHmmss'Z'`) as a strptime format."""
    out, position = [], 0
    while position < len(pattern):
        if pattern[position] == "'":
            end = pattern.index("'", position + 1)
            out.append(pattern[position + 1 : end].replace("%", "%%") or "'")
            position = end + 1
            continue
        token = next((t for t in _JAVA_TOKENS if pattern.startswith(t, position)), None)
        if token is None:
            if pattern[position].isalpha():
                raise AthenaQueryError(f"NOT_SUPPORTED: the emulator cannot read projection date format {pattern!r}")
            out.append(pattern[position].replace("%", "%%"))
            position += 1
            continue
        out.append(_JAVA_TOKENS[token])
        position += len(token)
    return "".join(out)
