"""Where the local runner and the tests emulate AWS behaviour that moto lacks.

Everything that is *not* plain moto lives here, so it is easy to see what the
local results rest on:

- VirtualClock: Step Functions Wait states and Retry back-off advance a virtual
  clock instead of sleeping (moto's executor really sleeps).
- InProcessLambdas: Lambda tasks run the real handlers in this process (moto
  would need Docker), each with its function's environment from template.yaml.
- enforce_expected_bucket_owner: S3's ExpectedBucketOwner check (moto ignores it).
- RdsExportEmulator: moto's export tasks complete instantly and write nothing.
  Here a task goes STARTING -> IN_PROGRESS -> COMPLETE on the virtual clock
  and, on completion, writes the export's files in AWS's documented layout
  (`<prefix>/<id>/export_info_<id>.json`, `export_tables_info_...json`,
  `<db>/<schema.table>/<batch>/part-...gz.parquet` and `_SUCCESS`). It can also
  fail an export, report skipped tables, or occupy the account's 5 export slots.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
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


@contextmanager
def enforce_expected_bucket_owner() -> Iterator[None]:
    """S3 refuses a request whose ExpectedBucketOwner (or ExpectedSourceBucketOwner)
    is not the bucket's account with 403 AccessDenied; moto ignores both headers.
    Every emulated bucket belongs to the emulator's one account."""
    from moto.s3 import responses
    from moto.s3.exceptions import S3AccessDeniedError

    def checked(original: Callable[..., Any]) -> Callable[..., Any]:
        def check_owner(self: Any, request: Any, full_url: str) -> Any:
            for header in ("x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner"):
                expected = request.headers.get(header)
                if expected and expected != self.current_account:
                    raise S3AccessDeniedError()
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

    def invoke(self, event: Any, remaining_ms: Callable[[], int] | None = None) -> tuple[Any, bool]:
        """Run the handler; returns (payload, errored) the way Lambda reports them."""
        if self._entry is None:
            self.load()
        assert self._entry is not None
        context = _LambdaContext(self, remaining_ms)
        try:
            return self._entry(event, context), False
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
        from moto.s3.models import s3_backends

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
        s3 = s3_backends[self.account]["aws"]
        root = f"{prefix}/{task.export_task_identifier}" if prefix else task.export_task_identifier
        for relative, body in source.files(task.export_task_identifier, details).items():
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
        from moto.s3.models import s3_backends

        key = f"{export.prefix}/{relative}" if export.prefix else relative
        s3_backends[self.account]["aws"].put_object(export.bucket, key, body)
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
