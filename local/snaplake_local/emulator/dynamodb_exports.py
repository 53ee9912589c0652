"""DynamoDB ExportTableToPointInTime as AWS documents it, on the virtual clock (moto writes one data
file without manifests and cannot do incremental exports; see DynamoDbExportEmulator).

DynamoDbExportEmulator records item writes and patches moto; _ExportRequests answers the export API
requests; _ExportFiles writes a completed export's files.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.emulator.clock import VirtualClock, patched_attribute
from snaplake_local.emulator.s3 import emulated_s3

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _as_utc(value: Any) -> datetime:
    """A timestamp from a request body: a datetime or epoch seconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _aws_time(value: datetime) -> str:
    """A manifest timestamp as DynamoDB writes it: UTC, milliseconds, `Z` (2026-01-14T10:18:50.622Z)."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def _gzip(data: bytes) -> bytes:
    """gzip as DynamoDB's data files are (no mtime, OS unknown): an empty file is the same 20 bytes."""
    import struct
    import zlib

    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


@dataclass
class _ItemVersion:
    at: datetime
    key: tuple[str, ...]
    keys: dict[str, Any]  # the key attributes, DynamoDB JSON
    image: dict[str, Any] | None  # DynamoDB JSON attributes; None once deleted


@dataclass
class _DynamoDbExport:
    arn: str
    export_id: str
    table_arn: str
    table_name: str
    bucket: str
    prefix: str
    export_type: str
    client_token: str
    started: datetime
    export_time: datetime | None
    window: tuple[datetime, datetime] | None
    duration_seconds: int
    failure: tuple[str, str] | None = None
    item_count: int = 0
    manifest_key: str = ""
    written: bool = False
    params: str = ""


class _ExportFiles:
    """What a completed export writes, in AWS's layout: a full export holds the table as of ExportTime,
    an incremental one each item changed in its window (new and old image); data files like a table's
    partitions (some empty), manifest-files.json, manifest-summary.json and their .md5 files.

    Part of DynamoDbExportEmulator, whose __init__ sets these attributes."""

    account: str
    history: dict[str, list[_ItemVersion]]
    files_per_export: int
    _miscount_next: set[str]

    def _state_at(self, table_name: str, when: datetime) -> dict[tuple[str, ...], dict[str, Any]]:
        state: dict[tuple[str, ...], dict[str, Any] | None] = {}
        for version in self.history.get(table_name, []):
            if version.at <= when:
                state[version.key] = version.image
        return {key: image for key, image in state.items() if image is not None}

    def _put(self, export: _DynamoDbExport, relative: str, body: bytes) -> str:
        key = f"{export.prefix}/{relative}" if export.prefix else relative
        with emulated_s3(self.account) as s3:
            s3.put_object(export.bucket, key, body)
        return key

    def _lines(self, export: _DynamoDbExport) -> list[dict[str, Any]]:
        if export.window is None:
            assert export.export_time is not None
            return [{"Item": image} for _, image in sorted(self._state_at(export.table_name, export.export_time).items())]
        start, end = export.window
        before = self._state_at(export.table_name, start - timedelta(microseconds=1))
        after = self._state_at(export.table_name, end - timedelta(microseconds=1))
        changed: dict[tuple[str, ...], _ItemVersion] = {}
        for version in self.history.get(export.table_name, []):
            if start <= version.at < end:
                changed[version.key] = version
        lines = []
        for key, last in sorted(changed.items()):
            old, new = before.get(key), after.get(key)
            if old is None and new is None:
                continue  # created and deleted inside the window
            line: dict[str, Any] = {
                "Metadata": {"WriteTimestampMicros": {"N": str((last.at - _EPOCH) // timedelta(microseconds=1))}},
                "Keys": last.keys,
            }
            if new is not None:
                line["NewImage"] = new
            if old is not None:
                line["OldImage"] = old
            lines.append(line)
        return lines

    def _write(self, export: _DynamoDbExport) -> None:
        import base64
        import hashlib

        lines = self._lines(export)
        count = max(1, self.files_per_export)
        chunks = [lines[i::count] for i in range(count)]  # like table partitions; some may be empty
        data_dir = f"AWSDynamoDB/{export.export_id}/data" if export.window is None else "AWSDynamoDB/data"
        manifest_lines: list[dict[str, Any]] = []
        for index, chunk in enumerate(chunks):
            body = _gzip("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in chunk).encode())
            name = hashlib.sha1(f"{export.export_id}/{index}".encode()).hexdigest()[:26]
            key = self._put(export, f"{data_dir}/{name}.json.gz", body)
            digest = hashlib.md5(body).digest()
            manifest_lines.append(
                {
                    "itemCount": len(chunk),
                    "md5Checksum": base64.b64encode(digest).decode(),
                    # DynamoDB uploads data files as one-part multipart uploads: the MD5 of the part's MD5, then "-1"
                    "etag": f"{hashlib.md5(digest).hexdigest()}-1",
                    "dataFileS3Key": key,
                }
            )
        if export.table_name in self._miscount_next:
            self._miscount_next.discard(export.table_name)
            manifest_lines[0]["itemCount"] += 1
        files_body = "".join(json.dumps(line) + "\n" for line in manifest_lines).encode()
        files_key = self._put(export, f"AWSDynamoDB/{export.export_id}/manifest-files.json", files_body)
        self._put(export, f"AWSDynamoDB/{export.export_id}/manifest-files.md5", base64.b64encode(hashlib.md5(files_body).digest()))
        export.item_count = sum(m["itemCount"] for m in manifest_lines)
        # The fields in the order of real summaries: a full export's (version 2020-06-30) has exportTime and no
        # exportType; an incremental one's (2023-08-01) has the window, outputView and exportType.
        summary: dict[str, Any] = {
            "version": "2020-06-30" if export.window is None else "2023-08-01",
            "exportArn": export.arn,
            "startTime": _aws_time(export.started),
            "endTime": _aws_time(export.started + timedelta(seconds=export.duration_seconds)),
            "tableArn": export.table_arn,
            "tableId": str(uuid.uuid5(uuid.NAMESPACE_URL, export.table_arn)),
        }
        if export.window is None:
            assert export.export_time is not None
            summary["exportTime"] = _aws_time(export.export_time)
        else:
            summary.update(exportFromTime=_aws_time(export.window[0]), exportToTime=_aws_time(export.window[1]))
        summary.update(
            s3Bucket=export.bucket,
            s3Prefix=export.prefix or None,
            s3SseAlgorithm="AES256",
            s3SseKmsKeyId=None,
            manifestFilesS3Key=files_key,
            billedSizeBytes=max(10_000_000, export.item_count * 100),
            itemCount=export.item_count,
            outputFormat="DYNAMODB_JSON",
        )
        if export.window is not None:
            summary.update(outputView="NEW_AND_OLD_IMAGES", exportType=export.export_type)
        summary_body = json.dumps(summary).encode()
        export.manifest_key = self._put(export, f"AWSDynamoDB/{export.export_id}/manifest-summary.json", summary_body)
        self._put(export, f"AWSDynamoDB/{export.export_id}/manifest-summary.md5", base64.b64encode(hashlib.md5(summary_body).digest()))


class _ExportRequests(_ExportFiles):
    """The export API requests moto answers wrongly: DescribeContinuousBackups (PITR windows on the
    virtual clock), ExportTableToPointInTime (window rules, ClientToken, injected failures),
    DescribeExport and ListExports. An export is IN_PROGRESS for `export_seconds`, then FAILED or
    COMPLETED, its files written once.

    Part of DynamoDbExportEmulator, whose __init__ sets these attributes."""

    LATEST_RESTORABLE_LAG = timedelta(minutes=5)

    clock: VirtualClock
    pitr_since: dict[str, datetime]
    exports: dict[str, _DynamoDbExport]
    by_token: dict[str, str]
    export_seconds: int
    _fail_next: dict[str, tuple[str, str]]
    _lock: threading.RLock

    def _pitr_window(self, table_name: str) -> tuple[datetime, datetime] | None:
        since = self.pitr_since.get(table_name)
        if since is None:
            return None
        return since, max(since, self.clock.now() - self.LATEST_RESTORABLE_LAG)

    def _describe_backups(self, handler: Any) -> Any:
        from moto.core.responses import ActionResult

        name = handler.body["TableName"]
        handler.dynamodb_backend.get_table(name)
        window = self._pitr_window(name)
        description: dict[str, Any] = {"PointInTimeRecoveryStatus": "DISABLED"}
        if window:
            description = {
                "PointInTimeRecoveryStatus": "ENABLED",
                "EarliestRestorableDateTime": window[0],
                "LatestRestorableDateTime": window[1],
                "RecoveryPeriodInDays": 35,
            }
        return ActionResult(
            {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": description}}
        )

    def _start(self, handler: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

        def error(code: str, message: str) -> DynamodbException:
            return DynamodbException(ERROR_TYPE_PREFIX + code, message)

        body = handler.body
        table_arn = body["TableArn"]
        table_name = table_arn.rsplit("/", 1)[-1]
        try:
            handler.dynamodb_backend.get_table(table_name)
        except Exception:
            raise error("TableNotFoundException", f"Table not found: {table_arn}") from None
        params = json.dumps({k: v for k, v in body.items() if k != "ClientToken"}, sort_keys=True, default=str)
        token = body.get("ClientToken", "")
        with self._lock:
            if token and token in self.by_token:
                existing = self.exports[self.by_token[token]]
                if existing.params != params:
                    raise error("ExportConflictException", "ClientToken was used with different parameters")
                return ActionResult({"ExportDescription": self._description(existing)})
            window = self._pitr_window(table_name)
            if window is None:
                raise error("PointInTimeRecoveryUnavailableException", f"Point in time recovery is not enabled for table '{table_name}'")
            export_type = body.get("ExportType", "FULL_EXPORT")
            export_time: datetime | None = None
            span: tuple[datetime, datetime] | None = None
            if export_type == "INCREMENTAL_EXPORT":
                spec = body.get("IncrementalExportSpecification") or {}
                start = _as_utc(spec["ExportFromTime"])
                end = _as_utc(spec.get("ExportToTime") or window[1])
                if end - start < timedelta(minutes=15):
                    raise error(
                        "InvalidExportTimeException",
                        "Difference between export period from time and export period to time is less than 15 minutes",
                    )
                if end - start > timedelta(hours=24):
                    raise error("InvalidExportTimeException", "Export period from time and to time are more than 24 hours apart")
                if start < window[0] or end > window[1]:
                    raise error("InvalidExportTimeException", "Incremental export start time outside PITR window")
                span = (start, end)
            else:
                raw = body.get("ExportTime")
                export_time = _as_utc(raw) if raw is not None else window[1]
                if not window[0] <= export_time <= window[1]:
                    raise error("InvalidExportTimeException", "Export time is outside the point in time recovery window")
            now = self.clock.now()
            export_id = f"{int(now.timestamp() * 1000):014d}-{uuid.uuid4().hex[:8]}"
            export = _DynamoDbExport(
                arn=f"{table_arn}/export/{export_id}",
                export_id=export_id,
                table_arn=table_arn,
                table_name=table_name,
                bucket=body["S3Bucket"],
                prefix=(body.get("S3Prefix") or "").strip("/"),
                export_type=export_type,
                client_token=token,
                started=now,
                export_time=export_time,
                window=span,
                duration_seconds=self.export_seconds,
                failure=self._fail_next.pop(table_name, None),
                params=params,
            )
            self.exports[export.arn] = export
            if token:
                self.by_token[token] = export.arn
            self._put(export, f"AWSDynamoDB/{export_id}/_started", b"")
            return ActionResult({"ExportDescription": self._description(export)})

    def _describe(self, handler: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

        export = self.exports.get(handler.body["ExportArn"])
        if export is None:
            raise DynamodbException(ERROR_TYPE_PREFIX + "ExportNotFoundException", f"Export not found: {handler.body['ExportArn']}")
        return ActionResult({"ExportDescription": self._description(export)})

    def _list(self, handler: Any) -> Any:
        from moto.core.responses import ActionResult

        table_arn = handler.body.get("TableArn")
        summaries = [
            {"ExportArn": e.arn, "ExportStatus": self._status(e), "ExportType": e.export_type}
            for e in self.exports.values()
            if table_arn in (None, e.table_arn)
        ]
        return ActionResult({"ExportSummaries": summaries})

    def _status(self, export: _DynamoDbExport) -> str:
        if (self.clock.now() - export.started).total_seconds() < export.duration_seconds:
            return "IN_PROGRESS"
        if export.failure:
            return "FAILED"
        with self._lock:
            if not export.written:
                self._write(export)
                export.written = True
        return "COMPLETED"

    def _description(self, export: _DynamoDbExport) -> dict[str, Any]:
        status = self._status(export)
        out: dict[str, Any] = {
            "ExportArn": export.arn,
            "ExportStatus": status,
            "StartTime": export.started,
            "TableArn": export.table_arn,
            "TableId": str(uuid.uuid5(uuid.NAMESPACE_URL, export.table_arn)),
            "S3Bucket": export.bucket,
            "S3Prefix": export.prefix,
            "ExportFormat": "DYNAMODB_JSON",
            "ExportType": export.export_type,
            "ClientToken": export.client_token,
        }
        if export.export_time:
            out["ExportTime"] = export.export_time
        if export.window:
            out["IncrementalExportSpecification"] = {
                "ExportFromTime": export.window[0],
                "ExportToTime": export.window[1],
                "ExportViewType": "NEW_AND_OLD_IMAGES",
            }
        if status == "FAILED" and export.failure:
            out["FailureCode"], out["FailureMessage"] = export.failure
        if status == "COMPLETED":
            out.update(EndTime=export.started + timedelta(seconds=export.duration_seconds), ExportManifest=export.manifest_key)
            out["ItemCount"] = export.item_count
            out["BilledSizeBytes"] = max(10_000_000, export.item_count * 100)
        return out


class DynamoDbExportEmulator(_ExportRequests):
    """ExportTableToPointInTime as AWS documents it, on the virtual clock.

    moto writes one data file without manifests and cannot do incremental
    exports. Here every item write is recorded with its virtual time, so a
    full export holds the table as of ExportTime and an incremental export
    holds each item changed in [from, to) once, in its final state, with the
    image from before the window (NEW_AND_OLD_IMAGES). Files follow the
    documented layout: `AWSDynamoDB/<id>/manifest-summary.json`,
    `manifest-files.json` (JSON lines), `_started`, `.md5` files, full-export
    data under `AWSDynamoDB/<id>/data/`, incremental data in the shared
    `AWSDynamoDB/data/`. PITR windows follow the virtual clock (latest
    restorable = now - 5 min). Window rules: incremental >= 15 min, <= 24 h.
    """

    def __init__(self, clock: VirtualClock, account: str = DEFAULT_ACCOUNT, region: str = "eu-west-1"):
        self.clock = clock
        self.account = account
        self.region = region
        self.history: dict[str, list[_ItemVersion]] = {}
        self.pitr_since: dict[str, datetime] = {}
        self.exports: dict[str, _DynamoDbExport] = {}
        self.by_token: dict[str, str] = {}
        self.files_per_export = 3
        self.export_seconds = 10 * 60
        self._fail_next: dict[str, tuple[str, str]] = {}
        self._miscount_next: set[str] = set()
        self._lock = threading.RLock()

    # ---- what tests and the runner configure
    def fail_next_export(self, table_name: str, code: str, message: str) -> None:
        self._fail_next[table_name] = (code, message)

    def miscount_next_export(self, table_name: str) -> None:
        """The next export's manifest claims one item more than its data file holds."""
        self._miscount_next.add(table_name)

    # ---- moto patching
    def _backend(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account][self.region]

    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.dynamodb import responses
        from moto.dynamodb.models import DynamoDBBackend

        emulator = self

        def recording(original: Callable[..., Any]) -> Callable[..., Any]:
            def write(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
                result = original(backend, table_name, *args, **kwargs)
                # The second argument is the item (put) or its key (update, delete).
                key_attrs: dict[str, Any] = args[0] if args else (kwargs.get("key") or kwargs["item_attrs"])
                emulator._record(backend, table_name, key_attrs)
                return result

            return write

        def update_continuous_backups(backend: Any, table_name: str, point_in_time_spec: dict[str, Any]) -> Any:
            result = original_update_backups(backend, table_name, point_in_time_spec)
            if point_in_time_spec.get("PointInTimeRecoveryEnabled"):
                emulator.pitr_since.setdefault(table_name, emulator.clock.now())
            else:
                emulator.pitr_since.pop(table_name, None)
            return result

        original_update_backups = DynamoDBBackend.update_continuous_backups
        with (
            patched_attribute(DynamoDBBackend, "put_item", recording(DynamoDBBackend.put_item)),
            patched_attribute(DynamoDBBackend, "update_item", recording(DynamoDBBackend.update_item)),
            patched_attribute(DynamoDBBackend, "delete_item", recording(DynamoDBBackend.delete_item)),
            patched_attribute(DynamoDBBackend, "update_continuous_backups", update_continuous_backups),
            patched_attribute(responses.DynamoHandler, "describe_continuous_backups", lambda handler: emulator._describe_backups(handler)),
            patched_attribute(responses.DynamoHandler, "export_table_to_point_in_time", lambda handler: emulator._start(handler)),
            patched_attribute(responses.DynamoHandler, "describe_export", lambda handler: emulator._describe(handler)),
            patched_attribute(responses.DynamoHandler, "list_exports", lambda handler: emulator._list(handler)),
        ):
            yield

    # ---- item history
    def _record(self, backend: Any, table_name: str, key_attrs: dict[str, Any]) -> None:
        from moto.dynamodb.models.utilities import dynamo_json_dump

        table = backend.get_table(table_name)
        key_names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        keys = {name: key_attrs[name] for name in key_names}
        item = backend.get_item(table_name, keys)
        image = json.loads(dynamo_json_dump(item.to_json()))["Attributes"] if item is not None else None
        key = tuple(json.dumps(keys[name], sort_keys=True) for name in key_names)
        with self._lock:
            self.history.setdefault(table_name, []).append(_ItemVersion(self.clock.now(), key, keys, image))
