"""Where the local runner and the tests emulate AWS behaviour that moto lacks.

Everything that is *not* plain moto lives here, so it is easy to see what the
local results rest on:

- VirtualClock: Step Functions Wait states and Retry back-off advance a virtual
  clock instead of sleeping (moto's executor really sleeps).
- InProcessLambdas: Lambda tasks run the real handlers in this process (moto
  would need Docker), each with its function's environment from template.yaml.
- enforce_expected_bucket_owner: S3's ExpectedBucketOwner check (moto ignores it), and S3
  requests handled one at a time (moto can close a buffer a concurrent request still reads);
  the emulators' own writes take the same turn (emulated_s3).
- RdsExportEmulator: moto's export tasks complete instantly and write nothing.
  Here a task goes STARTING -> IN_PROGRESS -> COMPLETE on the virtual clock
  and, on completion, writes the export's files in AWS's documented layout
  (`<prefix>/<id>/export_info_<id>.json`, `export_tables_info_...json`,
  `<db>/<schema.table>/<batch>/part-...gz.parquet` and `_SUCCESS`). It can also
  fail an export, report skipped tables, or occupy the account's 5 export slots.
- DynamoDbExportEmulator: ExportTableToPointInTime as documented (see its docstring).
- AthenaEmulator: moto's Athena runs no SQL; here queries take virtual time and then
  apply Athena's documented Glue/S3 effects (CTAS, INSERT INTO, ADD/DROP PARTITION,
  DROP TABLE), SELECTs return registered rows, and queries can be made to fail.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import sys
import threading
import time
import traceback
import types
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_ACCOUNT = "123456789012"


class VirtualClock:
    """Time that only moves when the state machine waits or backs off."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=max(0.0, float(seconds)))
            self.waited_seconds += max(0.0, float(seconds))


@contextmanager
def patched_attribute(owner: Any, name: str, value: Any) -> Iterator[Any]:
    """Replace `owner.name` for the duration; yields the original."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield original
    finally:
        setattr(owner, name, original)


@contextmanager
def fast_forward_step_functions(clock: VirtualClock) -> Iterator[None]:
    """Make moto's ASL executor advance `clock` instead of sleeping."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def virtual_wait(self: Any, env: Any, wait_seconds: int) -> None:
        clock.advance(wait_seconds)

    with (
        patched_attribute(wait_function.WaitFunction, "_wait_interval", virtual_wait),
        patched_attribute(retrier_decl, "time", types.SimpleNamespace(sleep=clock.advance, time=time.time)),
    ):
        yield


# S3 applies each request atomically; moto does not: overwriting a key closes the old
# object's buffer even while a concurrent request (another in-process Lambda thread) is
# still reading it. The emulated S3 therefore serves one request at a time, and the
# emulators below write through the same lock.
_S3_ONE_REQUEST_AT_A_TIME = threading.RLock()


@contextmanager
def emulated_s3(account: str) -> Iterator[Any]:
    """moto's S3 backend, held for one atomic step of an emulator."""
    from moto.s3.models import s3_backends

    with _S3_ONE_REQUEST_AT_A_TIME:
        yield s3_backends[account]["aws"]


@contextmanager
def enforce_expected_bucket_owner() -> Iterator[None]:
    """S3 refuses a request whose ExpectedBucketOwner (or ExpectedSourceBucketOwner)
    is not the bucket's account with 403 AccessDenied; moto ignores both headers.
    Every emulated bucket belongs to the emulator's one account.

    Requests are also handled one at a time (_S3_ONE_REQUEST_AT_A_TIME)."""
    from moto.s3 import responses
    from moto.s3.exceptions import S3AccessDeniedError

    def checked(original: Callable[..., Any]) -> Callable[..., Any]:
        def check_owner(self: Any, request: Any, full_url: str) -> Any:
            for header in ("x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner"):
                expected = request.headers.get(header)
                if expected and expected != self.current_account:
                    raise S3AccessDeniedError()
            with _S3_ONE_REQUEST_AT_A_TIME:
                return original(self, request, full_url)

        return check_owner

    with (
        patched_attribute(responses.S3Response, "_bucket_response", checked(responses.S3Response._bucket_response)),
        patched_attribute(responses.S3Response, "_key_response", checked(responses.S3Response._key_response)),
    ):
        yield


# --------------------------------------------------------------------------- Lambda


@dataclass
class LocalFunction:
    """A template function, loaded from its code folder with its own environment."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    region: str
    account: str = DEFAULT_ACCOUNT
    _entry: Callable[[Any, Any], Any] | None = field(default=None, repr=False)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    def load(self) -> None:
        """Import the handler module with the function's environment set, as Lambda would at cold start."""
        module_file, _, attr = self.handler.rpartition(".")
        path = self.code_dir / f"{module_file.replace('.', '/')}.py"
        module_name = f"snaplake_function_{self.logical_id}"
        with _environment(self.environment):
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        self._entry = getattr(module, attr)

    def call(self, event: Any, remaining_ms: Callable[[], int] | None = None) -> Any:
        """Run the handler with a Lambda context; its exceptions propagate."""
        if self._entry is None:
            self.load()
        assert self._entry is not None
        return self._entry(event, _LambdaContext(self, remaining_ms))

    def invoke(self, event: Any, remaining_ms: Callable[[], int] | None = None) -> tuple[Any, bool]:
        """Run the handler; returns (payload, errored) the way Lambda reports them."""
        try:
            return self.call(event, remaining_ms), False
        except Exception as error:  # Lambda's own behaviour: report the error type and message.
            return {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-6:],
            }, True


class _LambdaContext:
    def __init__(self, function: LocalFunction, remaining_ms: Callable[[], int] | None):
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "local"
        deadline = time.monotonic() + function.timeout_seconds
        self._remaining = remaining_ms or (lambda: int((deadline - time.monotonic()) * 1000))

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining()


_ENV_LOCK = threading.Lock()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


class InProcessLambdas:
    """Routes moto's Lambda invocations to LocalFunction handlers in this process."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.invocations: list[tuple[str, bool]] = []
        self.remaining_ms: dict[str, Callable[[], int]] = {}
        # Tests set this to inject a fault before a handler runs: hook(function_name, event).
        self.before_invoke: Callable[[str, Any], None] | None = None
        # The demo uses this to print progress: hook(function_name, event, payload, errored).
        self.after_invoke: Callable[[str, Any, Any, bool], None] | None = None

    def add(self, function: LocalFunction) -> None:
        function.load()
        self.functions[function.name] = function

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        function = self.functions[name]
        if self.before_invoke is not None:
            try:
                self.before_invoke(name, event)
            except Exception as error:
                self.invocations.append((name, True))
                return {"errorType": type(error).__name__, "errorMessage": str(error)}, True
        payload, errored = function.invoke(event, self.remaining_ms.get(name))
        self.invocations.append((name, errored))
        if self.after_invoke is not None:
            self.after_invoke(name, event, payload, errored)
        return payload, errored

    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.awslambda import models

        original = models.LambdaFunction._invoke_lambda
        lambdas = self

        def invoke_in_process(fn: Any, event: Any = None) -> tuple[str, bool, str]:
            if fn.function_name not in lambdas.functions:
                return original(fn, event)
            parsed = json.loads(event) if isinstance(event, str | bytes) else event
            payload, errored = lambdas.invoke(fn.function_name, parsed)
            return json.dumps(payload, default=str), errored, ""

        with patched_attribute(models.LambdaFunction, "_invoke_lambda", invoke_in_process):
            yield


# --------------------------------------------------------------------------- RDS exports


class ExportSource:
    """What an export of one snapshot contains: relative key -> bytes."""

    def files(self, export_id: str, task: dict[str, Any]) -> dict[str, bytes]:
        raise NotImplementedError


@dataclass
class TablesSource(ExportSource):
    """Sample tables exported the way RDS lays them out.

    `tables` maps the export's table folder (`schema.table` for PostgreSQL,
    `database.table` for MySQL) to an Arrow table. `files_per_table` splits a
    table into several part files; `batches` spreads them over batch folders;
    `old_layout` drops the batch folder (exports from before the batch folders).
    """

    engine: str
    database: str
    tables: dict[str, Any]
    files_per_table: int = 1
    batches: int = 1
    old_layout: bool = False

    def files(self, export_id: str, task: dict[str, Any]) -> dict[str, bytes]:
        import pyarrow.parquet as pq

        out: dict[str, bytes] = {}
        per_table = []
        for folder, table in self.tables.items():
            parts = max(1, self.files_per_table)
            step = -(-table.num_rows // parts) if table.num_rows else 0
            for index in range(parts):
                batch = str(index % self.batches + 1)
                chunk = table.slice(index * step, step) if step else table
                buffer = io.BytesIO()
                pq.write_table(chunk, buffer, compression="gzip")
                name = f"part-{index:05d}-{uuid.uuid5(uuid.NAMESPACE_URL, f'{export_id}/{folder}/{index}')}-c000.gz.parquet"
                base = f"{self.database}/{folder}"
                out[f"{base}/{name}" if self.old_layout else f"{base}/{batch}/{name}"] = buffer.getvalue()
            for batch_index in range(1, (1 if self.old_layout else min(parts, self.batches)) + 1):
                marker = f"{self.database}/{folder}/_SUCCESS" if self.old_layout else f"{self.database}/{folder}/{batch_index}/_SUCCESS"
                out[marker] = b""
            target = f"{self.database}.{folder}" if self.engine.startswith(("postgres", "aurora-postgresql")) else folder
            per_table.append({"target": target, "status": "COMPLETE", "sizeGB": round(table.nbytes / 1024**3, 9)})
        out.update(_export_metadata(export_id, task, per_table))
        return out


@dataclass
class ManyFilesSource(ExportSource):
    """A large export for scale tests and benchmarks: `file_count` small, identical
    one-row Parquet files spread over `tables` tables and `batches` batch folders."""

    database: str
    tables: int
    file_count: int
    batches: int = 1
    file_bytes: int = 64

    def keys(self) -> Iterator[str]:
        for index in range(self.file_count):
            table = index % self.tables
            batch = index // self.tables % self.batches + 1
            yield f"{self.database}/public.table_{table:04d}/{batch}/part-{index:05d}-{uuid.UUID(int=index)}-c000.gz.parquet"

    def files(self, export_id: str, task: dict[str, Any]) -> dict[str, bytes]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"id": [1], "payload": ["x" * self.file_bytes]}), sink)
        out = dict.fromkeys(self.keys(), sink.getvalue().to_pybytes())
        per_table = [{"target": f"{self.database}.public.table_{t:04d}", "status": "COMPLETE", "sizeGB": 0.0} for t in range(self.tables)]
        out.update(_export_metadata(export_id, task, per_table))
        return out


@dataclass
class DirectorySource(ExportSource):
    """An export tree downloaded from S3 (`aws s3 sync s3://bucket/prefix/<export-id>/ DIR`)."""

    root: Path

    def files(self, export_id: str, task: dict[str, Any]) -> dict[str, bytes]:
        out = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                out[path.relative_to(self.root).as_posix()] = path.read_bytes()
        return out


def _export_metadata(export_id: str, task: dict[str, Any], per_table: list[dict[str, Any]]) -> dict[str, bytes]:
    info = {
        "exportTaskIdentifier": export_id,
        "sourceArn": task["source_arn"],
        "exportOnly": task.get("export_only") or [],
        "snapshotTime": task["snapshot_time"],
        "taskStartTime": task["start"],
        "taskEndTime": task["end"],
        "s3Bucket": task["bucket"],
        "s3Prefix": task["prefix"],
        "exportedFilesPath": f"{task['prefix']}/{export_id}".lstrip("/"),
        "iamRoleArn": task["role"],
        "kmsKeyId": task["kms"],
        "status": "COMPLETE",
        "percentProgress": 100,
        "totalExportedDataInGB": sum(t["sizeGB"] for t in per_table),
    }
    tables = {"perTableStatus": per_table}
    return {
        f"export_info_{export_id}.json": json.dumps(info).encode(),
        f"export_tables_info_{export_id}_from_1_to_{max(1, len(per_table))}.json": json.dumps(tables).encode(),
    }


@dataclass
class _Plan:
    """How an emulated export task will behave."""

    starting_seconds: int = 20 * 60
    running_seconds: int = 40 * 60
    failure_cause: str | None = None
    warning: dict[str, Any] | None = None


@dataclass
class _Task:
    identifier: str
    source_arn: str
    started: datetime
    plan: _Plan
    written: bool = False


class RdsExportEmulator:
    """Export tasks that progress on the virtual clock and write AWS's layout."""

    def __init__(self, clock: VirtualClock, account: str = DEFAULT_ACCOUNT, region: str = "eu-west-1"):
        self.clock = clock
        self.account = account
        self.region = region
        self.sources: dict[str, ExportSource] = {}
        self.databases: dict[str, ExportSource] = {}
        self.plans: dict[str, _Plan] = {}
        self.tasks: dict[str, _Task] = {}
        self.started_exports: list[str] = []
        # Concurrent DescribeExportTasks calls (one per execution) must see one task
        # complete once: its files are written exactly once, before it reads COMPLETE.
        self._lock = threading.RLock()

    # ---- what tests and the runner configure
    def add_source(self, snapshot_arn: str, source: ExportSource) -> None:
        self.sources[snapshot_arn] = source

    def add_database(self, source_id: str, source: ExportSource) -> None:
        """What any snapshot of this cluster/instance exports, unless add_source says otherwise."""
        self.databases[source_id] = source

    def fail_export(self, snapshot_arn: str, cause: str) -> None:
        self.plans.setdefault(snapshot_arn, _Plan()).failure_cause = cause

    def warn_export(self, snapshot_arn: str, warning: dict[str, Any]) -> None:
        self.plans.setdefault(snapshot_arn, _Plan()).warning = warning

    def occupy_slots(self, count: int, for_seconds: int) -> None:
        """Start `count` unrelated exports that hold the account's slots for a while."""
        backend = self._backend()
        from moto.rds.models import ExportTask

        for index in range(count):
            identifier = f"other-export-{len(self.tasks)}-{index}"
            snapshot = next(iter(backend.database_snapshots.values()), None) or next(iter(backend.cluster_snapshots.values()))
            task = ExportTask(backend, snapshot, {"export_task_identifier": identifier, "source_arn": "other", "s3_bucket_name": "other"})
            backend.export_tasks[identifier] = task
            self.tasks[identifier] = _Task(
                identifier, "other", self.clock.now(), _Plan(starting_seconds=for_seconds, running_seconds=0), written=True
            )
            self._refresh(task)

    def automated_snapshot(self, source_type: str, source_id: str, snapshot_id: str) -> str:
        """Take a snapshot the way RDS's backup window (`rds:<id>-<time>`, type automated) or
        AWS Backup (`awsbackup:job-<id>`, type awsbackup) does; the API refuses those names."""
        backend = self._backend()
        kind = "awsbackup" if snapshot_id.startswith("awsbackup:") else "automated"
        if source_type == "cluster":
            return str(backend.create_db_cluster_snapshot(source_id, snapshot_id, snapshot_type=kind).db_cluster_snapshot_arn)
        return str(backend.create_db_snapshot(source_id, snapshot_id, snapshot_type=kind).db_snapshot_arn)

    def backdate_snapshot(self, snapshot_arn: str, created: datetime) -> None:
        """Give a snapshot the creation time its event or name says (moto stamps 'now')."""
        backend = self._backend()
        kind, identifier = snapshot_arn.split(":", 6)[5:]
        if kind == "cluster-snapshot":
            backend.cluster_snapshots[identifier].created = created
        else:
            snapshot = backend.database_snapshots[identifier]
            snapshot.created = created
            snapshot.original_snapshot_create_time = created

    # ---- moto patching
    def _backend(self) -> Any:
        from moto.rds.models import rds_backends

        return rds_backends[self.account][self.region]

    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.rds import models

        original_start = models.RDSBackend.start_export_task
        original_describe = models.RDSBackend.describe_export_tasks
        emulator = self

        def start_export_task(backend: Any, kwargs: dict[str, Any]) -> Any:
            task = original_start(backend, kwargs)
            arn, identifier = kwargs["source_arn"], str(task.export_task_identifier)
            emulator.tasks[identifier] = _Task(identifier, arn, emulator.clock.now(), emulator.plans.get(arn, _Plan()))
            emulator.started_exports.append(identifier)
            emulator._refresh(task)
            return task

        def describe_export_tasks(backend: Any, export_task_identifier: str) -> Any:
            tasks = list(original_describe(backend, export_task_identifier))
            for task in tasks:
                emulator._refresh(task)
            return tasks

        with (
            patched_attribute(models.RDSBackend, "start_export_task", start_export_task),
            patched_attribute(models.RDSBackend, "describe_export_tasks", describe_export_tasks),
        ):
            yield

    def _refresh(self, task: Any) -> None:
        with self._lock:
            self._advance(task)

    def _advance(self, task: Any) -> None:
        state = self.tasks.get(task.export_task_identifier)
        if state is None:
            return
        elapsed = (self.clock.now() - state.started).total_seconds()
        plan = state.plan
        task.snapshot_time = task.snapshot.snapshot_create_time if hasattr(task.snapshot, "snapshot_create_time") else None
        task.task_start_time = state.started
        if elapsed < plan.starting_seconds:
            task.status, task.percent_progress = "STARTING", 0
            return
        if elapsed < plan.starting_seconds + plan.running_seconds:
            task.status = "IN_PROGRESS"
            task.percent_progress = int(100 * (elapsed - plan.starting_seconds) / max(1, plan.running_seconds))
            return
        task.task_end_time = state.started + timedelta(seconds=plan.starting_seconds + plan.running_seconds)
        if plan.failure_cause:
            task.status, task.failure_cause = "FAILED", plan.failure_cause
            return
        if not state.written:
            self._write_export(task, state)
            state.written = True
        task.status, task.percent_progress = "COMPLETE", 100
        if plan.warning:
            task.warning_message = json.dumps(plan.warning)

    def _write_export(self, task: Any, state: _Task) -> None:
        snapshot = task.snapshot
        source_id = snapshot.cluster.db_cluster_identifier if hasattr(snapshot, "cluster") else snapshot.database.db_instance_identifier
        source = self.sources.get(state.source_arn) or self.databases.get(source_id) or TablesSource(engine="", database="", tables={})
        prefix = (task.s3_prefix or "").strip("/")
        created = getattr(task.snapshot, "snapshot_create_time", None) or getattr(task.snapshot, "created", "")
        details = {
            "source_arn": state.source_arn,
            "export_only": task.export_only,
            "snapshot_time": str(created),
            "start": state.started.isoformat(),
            "end": self.clock.now().isoformat(),
            "bucket": task.s3_bucket,
            "prefix": prefix,
            "role": task.iam_role_arn,
            "kms": task.kms_key_id,
        }
        root = f"{prefix}/{task.export_task_identifier}" if prefix else task.export_task_identifier
        files = source.files(task.export_task_identifier, details)
        with emulated_s3(self.account) as s3:
            for relative, body in files.items():
                s3.put_object(task.s3_bucket, f"{root}/{relative}", body)


# --------------------------------------------------------------------------- DynamoDB exports


def _as_utc(value: Any) -> datetime:
    """A timestamp from a request body: a datetime or epoch seconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


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


class DynamoDbExportEmulator:
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

    LATEST_RESTORABLE_LAG = timedelta(minutes=5)

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

    def _state_at(self, table_name: str, when: datetime) -> dict[tuple[str, ...], dict[str, Any]]:
        state: dict[tuple[str, ...], dict[str, Any] | None] = {}
        for version in self.history.get(table_name, []):
            if version.at <= when:
                state[version.key] = version.image
        return {key: image for key, image in state.items() if image is not None}

    # ---- API
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
                "Metadata": {"WriteTime": {"N": str(int(last.at.timestamp() * 1_000_000))}},
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
        import gzip
        import hashlib

        lines = self._lines(export)
        count = max(1, self.files_per_export)
        chunks = [lines[i::count] for i in range(count)]  # like table partitions; some may be empty
        data_dir = f"AWSDynamoDB/{export.export_id}/data" if export.window is None else "AWSDynamoDB/data"
        manifest_lines: list[dict[str, Any]] = []
        for index, chunk in enumerate(chunks):
            body = gzip.compress("".join(json.dumps(line) + "\n" for line in chunk).encode(), mtime=0)
            name = hashlib.sha1(f"{export.export_id}/{index}".encode()).hexdigest()[:26]
            key = self._put(export, f"{data_dir}/{name}.json.gz", body)
            digest = hashlib.md5(body).digest()
            manifest_lines.append(
                {
                    "itemCount": len(chunk),
                    "md5Checksum": base64.b64encode(digest).decode(),
                    "etag": digest.hex(),
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
        summary: dict[str, Any] = {
            "version": "2020-06-30" if export.window is None else "2023-08-01",
            "exportArn": export.arn,
            "startTime": export.started.isoformat().replace("+00:00", "Z"),
            "endTime": (export.started + timedelta(seconds=export.duration_seconds)).isoformat().replace("+00:00", "Z"),
            "tableArn": export.table_arn,
            "tableId": str(uuid.uuid5(uuid.NAMESPACE_URL, export.table_arn)),
            "s3Bucket": export.bucket,
            "s3Prefix": export.prefix or None,
            "s3SseAlgorithm": "AES256",
            "s3SseKmsKeyId": None,
            "manifestFilesS3Key": files_key,
            "billedSizeBytes": max(10_000_000, export.item_count * 100),
            "itemCount": export.item_count,
            "outputFormat": "DYNAMODB_JSON",
            "exportType": export.export_type,
        }
        if export.window is None:
            assert export.export_time is not None
            summary["exportTime"] = export.export_time.isoformat().replace("+00:00", "Z")
        else:
            summary.update(
                exportFromTime=export.window[0].isoformat().replace("+00:00", "Z"),
                exportToTime=export.window[1].isoformat().replace("+00:00", "Z"),
                outputView="NEW_AND_OLD_IMAGES",
            )
        summary_body = json.dumps(summary).encode()
        export.manifest_key = self._put(export, f"AWSDynamoDB/{export.export_id}/manifest-summary.json", summary_body)
        self._put(export, f"AWSDynamoDB/{export.export_id}/manifest-summary.md5", base64.b64encode(hashlib.md5(summary_body).digest()))


# --------------------------------------------------------------------------- Athena


class _AthenaFailure(Exception):
    """A query the emulated Athena fails; the message becomes its StateChangeReason."""


@dataclass
class _AthenaQuery:
    id: str
    sql: str
    database: str | None
    output_location: str | None
    started: datetime
    seconds: float
    state: str = "RUNNING"
    reason: str = ""
    failure: str | None = None  # injected by fail_queries
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, Athena type) of a SELECT's result
    rows: list[list[str | None]] = field(default_factory=list)


_PARTITION_CLAUSE = re.compile(r"PARTITION\s*\((?P<spec>[^)]*)\)(?:\s*LOCATION\s*'(?P<location>[^']*)')?", re.IGNORECASE)
_PARTITION_VALUE = re.compile(r"`?(?P<column>[A-Za-z0-9_]+)`?\s*=\s*(?:'(?P<text>[^']*)'|(?P<number>-?\d+))")
_ALTER_PARTITIONS = re.compile(
    r"^\s*ALTER\s+TABLE\s+(?P<table>\S+)\s+(?P<action>ADD|DROP)\s+(?P<guard>IF\s+(?:NOT\s+)?EXISTS\s+)?(?P<clauses>PARTITION\b.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TRINO_TYPES = {"string": "varchar", "int": "integer"}
_PLACEHOLDER = b"snaplake local emulator: Athena would write this query's data files here\n"


class AthenaEmulator:
    """Athena's documented effects on the Glue Data Catalog and S3; moto's Athena runs no SQL
    (every query SUCCEEDS at once and changes nothing).

    A query runs for `ddl_seconds` (ALTER / DROP) or `query_seconds` on the virtual clock,
    then its effects are applied, as Athena applies them when a query completes:

    - CREATE TABLE ... WITH (...) AS SELECT: a Glue table whose columns are the SELECT's, derived
      with sqlglot (types from CAST, from the Glue columns of the tables it reads, aggregates;
      otherwise string); format, external_location (which must be empty, else
      HIVE_PATH_ALREADY_EXISTS) and partitioned_by from the WITH properties.
    - INSERT INTO: the target's partitions the query writes are registered.
    - ALTER TABLE ADD / DROP PARTITION, DROP TABLE, CREATE DATABASE: the Glue change.
    - SELECT: the rows registered with `add_results` (none otherwise), in the output location as CSV.

    Written partitions are known from the WHERE filter of a batched CTAS/INSERT
    (`("dt" = '...') OR ...`) or from a literal projected as the partition column; a
    placeholder object stands for the data files in each written folder, so "the
    location must be empty" and deleting replaced data are exercised. Referenced
    tables must exist (TABLE_NOT_FOUND), columns must resolve (COLUMN_NOT_FOUND),
    and `fail_queries` fails chosen queries with a given reason. GetQueryResults
    pages by MaxResults/NextToken with at most `page_rows` rows a page.
    """

    def __init__(self, clock: VirtualClock, account: str = DEFAULT_ACCOUNT, region: str = "eu-west-1"):
        self.clock = clock
        self.account = account
        self.region = region
        self.ddl_seconds = 1.0
        self.query_seconds = 5.0
        self.page_rows = 1000
        self.write_placeholders = True
        self.queries: dict[str, _AthenaQuery] = {}
        self._failures: list[tuple[str, str]] = []
        self._results: list[tuple[str, list[tuple[str, str]], list[tuple[Any, ...]]]] = []
        self._lock = threading.RLock()

    # ---- what tests and the runner configure
    def fail_queries(self, containing: str, reason: str) -> None:
        """The next query whose SQL contains `containing` ends FAILED with `reason` (and changes nothing)."""
        self._failures.append((containing, reason))

    def add_results(self, containing: str, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        """Rows a SELECT whose SQL contains `containing` returns; columns are (name, Athena type)."""
        self._results.append((containing, columns, rows))

    def statements(self) -> list[tuple[str, str]]:
        """(state, SQL) of every query started so far, in order."""
        with self._lock:
            for query in self.queries.values():
                self._refresh(query)
            return [(query.state, query.sql) for query in self.queries.values()]

    # ---- moto patching
    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.athena import models, responses

        emulator = self
        original_start = models.AthenaBackend.start_query_execution
        original_describe = responses.AthenaResponse.get_query_execution

        def start_query_execution(backend: Any, query: str, context: Any, config: Any, workgroup: str, execution_parameters: Any) -> str:
            output = (config or {}).get("OutputLocation")
            query_id = str(original_start(backend, query, context, config, workgroup, execution_parameters))
            emulator._started(query_id, query, (context or {}).get("Database"), output)
            return query_id

        def get_query_execution(handler: Any) -> str:
            query_id = handler._get_param("QueryExecutionId")
            described = json.loads(original_describe(handler))
            query = emulator.queries.get(query_id)
            if query is not None:
                with emulator._lock:
                    emulator._refresh(query)
                status = described["QueryExecution"]["Status"]
                status["State"] = query.state
                if query.state in ("FAILED", "CANCELLED"):
                    status["StateChangeReason"] = query.reason
                    status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1000, "Retryable": False, "ErrorMessage": query.reason}
            return json.dumps(described)

        def get_query_results(handler: Any) -> Any:
            return emulator._results_page(handler)

        def stop_query_execution(backend: Any, exec_id: str) -> None:
            with emulator._lock:
                query = emulator.queries.get(exec_id)
                if query is not None:
                    emulator._refresh(query)
                    if query.state in ("QUEUED", "RUNNING"):
                        query.state, query.reason = "CANCELLED", "Query cancelled by user"

        with (
            patched_attribute(models.AthenaBackend, "start_query_execution", start_query_execution),
            patched_attribute(models.AthenaBackend, "stop_query_execution", stop_query_execution),
            patched_attribute(responses.AthenaResponse, "get_query_execution", get_query_execution),
            patched_attribute(responses.AthenaResponse, "get_query_results", get_query_results),
        ):
            yield

    def _started(self, query_id: str, sql: str, database: str | None, output: str | None) -> None:
        ddl = sql.lstrip().upper().startswith(("ALTER", "DROP"))
        injected = next((item for item in self._failures if item[0] in sql), None)
        if injected is not None:
            self._failures.remove(injected)
        failure = injected[1] if injected else None
        query = _AthenaQuery(
            query_id, sql, database, output, self.clock.now(), self.ddl_seconds if ddl else self.query_seconds, failure=failure
        )
        with self._lock:
            self.queries[query_id] = query
            self._refresh(query)

    def _refresh(self, query: _AthenaQuery) -> None:
        if query.state != "RUNNING" or (self.clock.now() - query.started).total_seconds() < query.seconds:
            return
        if query.failure is not None:
            query.state, query.reason = "FAILED", query.failure
            return
        try:
            self._apply(query)
        except _AthenaFailure as failure:
            query.state, query.reason = "FAILED", str(failure)
            return
        query.state = "SUCCEEDED"

    def _results_page(self, handler: Any) -> Any:
        query = self.queries.get(handler._get_param("QueryExecutionId"))
        if query is None:
            return handler.error("QueryExecution was not found", 400)
        with self._lock:
            self._refresh(query)
        if query.state != "SUCCEEDED":
            return handler.error(f"Query has not yet finished. Current state: {query.state}", 400)
        header = [name for name, _ in query.columns]
        rows: list[list[str | None]] = [list(header), *query.rows] if query.columns else []
        start = int(handler._get_param("NextToken") or 0)
        size = min(int(handler._get_param("MaxResults") or 1000), self.page_rows)
        page = rows[start : start + size]
        body: dict[str, Any] = {
            "ResultSet": {
                "Rows": [{"Data": [{} if value is None else {"VarCharValue": str(value)} for value in row]} for row in page],
                "ResultSetMetadata": {
                    "ColumnInfo": [{"Name": name, "Label": name, "Type": kind, "CatalogName": "hive"} for name, kind in query.columns]
                },
            },
            "UpdateCount": 0,
        }
        if start + size < len(rows):
            body["NextToken"] = str(start + size)
        return json.dumps(body)

    # ---- effects
    def _glue(self) -> Any:
        from moto.glue.models import glue_backends

        return glue_backends[self.account][self.region]

    def _glue_table(self, database: str, table: str) -> dict[str, Any] | None:
        glue = self._glue()
        if database not in glue.databases or table not in glue.databases[database].tables:
            return None
        return dict(glue.databases[database].tables[table].as_dict())

    def _require_database(self, database: str) -> None:
        if database not in self._glue().databases:
            raise _AthenaFailure(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")

    def _name(self, table: Any, query: _AthenaQuery) -> tuple[str, str]:
        database = table.db or query.database
        if not database:
            raise _AthenaFailure(f"SYNTAX_ERROR: table {table.name} has no database and the query has no database context")
        return str(database), str(table.name)

    def _apply(self, query: _AthenaQuery) -> None:
        import sqlglot
        from sqlglot import exp

        alter = _ALTER_PARTITIONS.match(query.sql)
        if alter:
            self._alter_partitions(query, alter)
            return
        try:
            statements = [s for s in sqlglot.parse(query.sql, read="athena") if s is not None]
        except sqlglot.errors.ParseError as error:
            raise _AthenaFailure(f"SYNTAX_ERROR: {error}") from None
        if len(statements) != 1 or isinstance(statements[0], exp.Command):
            raise _AthenaFailure(f"SYNTAX_ERROR: the emulator cannot parse this statement: {query.sql[:200]}")
        statement = statements[0]
        if isinstance(statement, exp.Create) and str(statement.args.get("kind", "")).upper() in ("DATABASE", "SCHEMA"):
            name = statement.this.name
            if name not in self._glue().databases:
                self._glue().create_database(name, {"Name": name})
        elif isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query):
            self._ctas(query, statement)
        elif isinstance(statement, exp.Insert):
            self._insert(query, statement)
        elif isinstance(statement, exp.Drop) and str(statement.args.get("kind", "")).upper() == "TABLE":
            self._drop_table(query, statement)
        elif isinstance(statement, exp.Query):
            self._select(query, statement)

    def _schema(self, query: _AthenaQuery, select: Any) -> dict[str, dict[str, dict[str, str]]]:
        """The Glue columns (and partition keys) of every table the SELECT reads; a missing one fails the query."""
        from sqlglot import exp

        ctes = {cte.alias_or_name for cte in select.find_all(exp.CTE)}
        schema: dict[str, dict[str, dict[str, str]]] = {}
        for table in select.find_all(exp.Table):
            if not table.db and table.name in ctes:
                continue
            database, name = self._name(table, query)
            found = self._glue_table(database, name)
            if found is None:
                raise _AthenaFailure(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist")
            columns = [*found["StorageDescriptor"].get("Columns", []), *found.get("PartitionKeys", [])]
            schema.setdefault(database, {})[name] = {c["Name"]: _sqlglot_type(c["Type"]) for c in columns}
        return schema

    def _columns(self, query: _AthenaQuery, select: Any) -> list[tuple[str, str]]:
        """(name, Glue type) of the SELECT's output, as Athena's CTAS would declare them."""
        from sqlglot.errors import OptimizeError
        from sqlglot.optimizer.annotate_types import annotate_types
        from sqlglot.optimizer.qualify import qualify
        from sqlglot.schema import MappingSchema

        tables: dict[str, Any] = dict(self._schema(query, select))
        schema = MappingSchema(tables, dialect="hive")
        try:
            qualified = qualify(select.copy(), schema=schema, db=query.database, dialect="athena", validate_qualify_columns=True)
            annotated = annotate_types(qualified, schema=schema, dialect="athena")
        except OptimizeError as error:
            raise _AthenaFailure(f"COLUMN_NOT_FOUND: {error}") from None
        return [(str(p.alias_or_name).lower(), _glue_type(p.type)) for p in annotated.selects]

    def _written_partitions(self, select: Any, keys: list[str]) -> list[tuple[str, ...]] | None:
        """The partitions a write covers: [] for WHERE false, None when the emulator cannot tell."""
        from sqlglot import exp

        where = select.args.get("where")
        if where is not None and isinstance(where.this, exp.Boolean) and not where.this.this:
            return []
        if where is not None:
            found = []
            for term in _or_terms(where.this):
                pairs = {}
                for eq in _and_terms(term):
                    column = eq.this.this if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Cast) else getattr(eq, "this", None)
                    if isinstance(eq, exp.EQ) and isinstance(column, exp.Column) and isinstance(eq.expression, exp.Literal):
                        pairs[column.name] = str(eq.expression.this)
                if set(pairs) != set(keys):
                    break
                found.append(tuple(pairs[k] for k in keys))
            else:
                return found
        constants = {
            alias.alias: str(alias.this.this)
            for node in select.find_all(exp.Select)
            for alias in node.expressions
            if isinstance(alias, exp.Alias) and isinstance(alias.this, exp.Literal)
        }
        if keys and all(k in constants for k in keys):
            return [tuple(constants[k] for k in keys)]
        return None

    def _write(self, query: _AthenaQuery, location: str, keys: list[str], partitions: list[tuple[str, ...]] | None) -> list[str]:
        """Placeholder data objects for the folders written; returns the partition locations."""
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        folders = [prefix] if not keys else ["".join(f"{k}={v}/" for k, v in zip(keys, p, strict=True)) for p in partitions or []]
        if keys:
            folders = [prefix + folder for folder in folders]
        if self.write_placeholders and partitions != []:
            with emulated_s3(self.account) as s3:
                for folder in folders:
                    s3.put_object(bucket, f"{folder}{query.id}_00000", _PLACEHOLDER)
        return [f"s3://{bucket}/{folder}" for folder in folders]

    def _add_partitions(self, database: str, table: str, keys: list[str], values: list[tuple[str, ...]], locations: list[str]) -> None:
        glue_table = self._glue().databases[database].tables[table]
        descriptor = self._glue_table(database, table) or {}
        for row, location in zip(values, locations, strict=True):
            try:
                glue_table.get_partition(list(row))
                continue
            except Exception:  # moto's PartitionNotFoundException: add it
                pass
            storage = {**descriptor.get("StorageDescriptor", {}), "Location": location}
            glue_table.create_partition({"Values": list(row), "StorageDescriptor": storage, "Parameters": {}})

    def _ctas(self, query: _AthenaQuery, statement: Any) -> None:
        from snaplake.catalog import PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE

        database, table = self._name(statement.this, query)
        self._require_database(database)
        if self._glue_table(database, table) is not None:
            raise _AthenaFailure(f"AlreadyExistsException: Table {database}.{table} already exists")
        properties = _ctas_properties(statement)
        select = statement.expression
        columns = self._columns(query, select)
        keys = [str(k) for k in properties.get("partitioned_by", [])]
        if [name for name, _ in columns[len(columns) - len(keys) :]] != keys:
            raise _AthenaFailure("HIVE_COLUMN_ORDER_MISMATCH: Partition keys must be the last columns in the table and in the same order")
        location = str(properties.get("external_location") or f"{(query.output_location or 's3://athena-results/')}tables/{query.id}/")
        if properties.get("external_location"):
            bucket, _, prefix = location.removeprefix("s3://").partition("/")
            try:
                with emulated_s3(self.account) as s3:
                    listed = s3.list_objects(s3.get_bucket(bucket), prefix, None, None, 1)[0]
            except Exception as error:  # moto's MissingBucket
                raise _AthenaFailure(f"HIVE_PATH_ALREADY_EXISTS: cannot use {location}: {error}") from None
            if listed:
                raise _AthenaFailure(
                    f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{database}.{table}' already exists: {location}"
                )
        data_columns = [{"Name": n, "Type": t} for n, t in columns if n not in keys]
        partition_keys = [{"Name": n, "Type": t} for n, t in columns if n in keys]
        parquet = str(properties.get("format", "PARQUET")).upper() == "PARQUET"
        table_input = {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", "classification": str(properties.get("format", "parquet")).lower()},
            "PartitionKeys": partition_keys,
            "StorageDescriptor": {
                "Columns": data_columns,
                "Location": location,
                "InputFormat": PARQUET_INPUT_FORMAT if parquet else "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": PARQUET_OUTPUT_FORMAT if parquet else "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE if parquet else "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"},
            },
        }
        self._glue().create_table(database, table, table_input)
        partitions = self._written_partitions(select, keys) if keys else None
        locations = self._write(query, location, keys, partitions if keys else ([] if _selects_nothing(select) else None))
        if keys and partitions:
            self._add_partitions(database, table, keys, partitions, locations)

    def _insert(self, query: _AthenaQuery, statement: Any) -> None:
        database, table = self._name(statement.this, query)
        target = self._glue_table(database, table)
        if target is None:
            raise _AthenaFailure(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{table}' does not exist")
        select = statement.expression
        columns = self._columns(query, select)
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        expected = len(target["StorageDescriptor"].get("Columns", [])) + len(keys)
        if len(columns) != expected:
            raise _AthenaFailure(f"TYPE_MISMATCH: Insert query has {len(columns)} columns; table {database}.{table} has {expected}")
        partitions = self._written_partitions(select, keys) if keys else None
        location = target["StorageDescriptor"]["Location"]
        locations = self._write(query, location, keys, partitions if keys else ([] if _selects_nothing(select) else None))
        if keys and partitions:
            self._add_partitions(database, table, keys, partitions, locations)

    def _drop_table(self, query: _AthenaQuery, statement: Any) -> None:
        from sqlglot import exp

        for table in statement.find_all(exp.Table):
            database, name = self._name(table, query)
            if self._glue_table(database, name) is not None:
                self._glue().delete_table(database, name)  # the data stays: the tables are external
            elif not statement.args.get("exists"):
                raise _AthenaFailure(f"Table {database}.{name} not found")

    def _alter_partitions(self, query: _AthenaQuery, match: re.Match[str]) -> None:
        names = [part.strip('`"') for part in match["table"].split(".")]
        database, table = (names[0], names[1]) if len(names) == 2 else (query.database or "", names[0])
        target = self._glue_table(database, table)
        if target is None:
            raise _AthenaFailure(f"TABLE_NOT_FOUND: Table {database}.{table} not found")
        keys = [k["Name"] for k in target.get("PartitionKeys", [])]
        glue_table = self._glue().databases[database].tables[table]
        guarded = bool(match["guard"])
        for clause in _PARTITION_CLAUSE.finditer(match["clauses"]):
            given = {v["column"]: v["text"] if v["text"] is not None else v["number"] for v in _PARTITION_VALUE.finditer(clause["spec"])}
            if set(given) != set(keys):
                raise _AthenaFailure(
                    f"HIVE_METASTORE_ERROR: partition {given} does not match the partition keys {keys} of {database}.{table}"
                )
            values = [str(given[k]) for k in keys]
            try:
                glue_table.get_partition(values)
                exists = True
            except Exception:  # moto's PartitionNotFoundException
                exists = False
            if match["action"].upper() == "DROP":
                if exists:
                    glue_table.delete_partition(values)
                elif not guarded:
                    raise _AthenaFailure(f"Partition {values} of {database}.{table} not found")
                continue
            if exists:
                if not guarded:
                    raise _AthenaFailure(f"AlreadyExistsException: Partition {values} already exists")
                continue
            location = clause["location"] or target["StorageDescriptor"]["Location"].rstrip("/") + "/" + "/".join(
                f"{k}={v}" for k, v in zip(keys, values, strict=True)
            )
            storage = {**target["StorageDescriptor"], "Location": location}
            glue_table.create_partition({"Values": values, "StorageDescriptor": storage, "Parameters": {}})

    def _select(self, query: _AthenaQuery, statement: Any) -> None:
        columns = self._columns(query, statement)
        query.columns = [(name, _TRINO_TYPES.get(kind, kind)) for name, kind in columns]
        rows = next((rows for text, _, rows in self._results if text in query.sql), [])
        query.rows = [[None if value is None else str(value) for value in row] for row in rows]
        if query.output_location:
            bucket, _, prefix = query.output_location.removeprefix("s3://").partition("/")
            lines = [",".join(f'"{name}"' for name, _ in columns)]
            lines += [",".join("" if value is None else f'"{value}"' for value in row) for row in query.rows]
            folder = prefix if prefix.endswith("/") or not prefix else prefix + "/"
            with emulated_s3(self.account) as s3:
                s3.put_object(bucket, f"{folder}{query.id}.csv", ("\n".join(lines) + "\n").encode())


def _sqlglot_type(glue_type: str) -> str:
    """A Glue column type sqlglot can read (unknown ones as string, as the emulator cannot type them anyway)."""
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        exp.DataType.build(glue_type, dialect="hive")
    except (ParseError, ValueError):
        return "string"
    return glue_type


def _glue_type(data_type: Any) -> str:
    from sqlglot import exp

    if data_type is None or data_type.this in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL):
        return "string"
    return re.sub(r"\s+", "", data_type.sql(dialect="hive").lower())


def _ctas_properties(statement: Any) -> dict[str, Any]:
    from sqlglot import exp

    found: dict[str, Any] = {}
    properties = statement.args.get("properties")
    for prop in properties.expressions if properties is not None else []:
        if isinstance(prop, exp.FileFormatProperty):
            found["format"] = prop.this.name
        elif isinstance(prop, exp.PartitionedByProperty):
            found["partitioned_by"] = [item.name for item in prop.this.expressions]
        elif isinstance(prop, exp.Property):
            value = prop.args.get("value")
            if isinstance(value, exp.Array):
                found[prop.name.lower()] = [item.name for item in value.expressions]
            elif value is not None:
                found[prop.name.lower()] = value.name
    return found


def _or_terms(node: Any) -> list[Any]:
    from sqlglot import exp

    node = node.unnest() if isinstance(node, exp.Paren) else node
    return [*_or_terms(node.this), *_or_terms(node.expression)] if isinstance(node, exp.Or) else [node]


def _and_terms(node: Any) -> list[Any]:
    from sqlglot import exp

    node = node.unnest() if isinstance(node, exp.Paren) else node
    return [*_and_terms(node.this), *_and_terms(node.expression)] if isinstance(node, exp.And) else [node]


def _selects_nothing(select: Any) -> bool:
    from sqlglot import exp

    where = select.args.get("where")
    return where is not None and isinstance(where.this, exp.Boolean) and not where.this.this
