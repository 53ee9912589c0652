"""RDS snapshot exports: moto's export tasks complete instantly and write nothing.

Here a task goes STARTING -> IN_PROGRESS -> COMPLETE on the virtual clock and, on completion,
writes the export's files in AWS's documented layout (`<prefix>/<id>/export_info_<id>.json`,
`export_tables_info_...json`, `<db>/<schema.table>/<batch>/part-...gz.parquet` and `_SUCCESS`).
What an export contains comes from an ExportSource. An export can also be made to fail, report
skipped tables, or occupy the account's 5 export slots.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.emulator.clock import VirtualClock, patched_attribute
from snaplake_local.emulator.s3 import emulated_s3


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

    def backdate_snapshot(self, snapshot_arn: str, created: datetime, copy: bool = False) -> None:
        """Give a snapshot the creation time its event or name says (moto stamps 'now'). A copy keeps its
        original's OriginalSnapshotCreateTime, as RDS documents; only its SnapshotCreateTime moves."""
        backend = self._backend()
        kind, identifier = snapshot_arn.split(":", 6)[5:]
        if kind == "cluster-snapshot":
            backend.cluster_snapshots[identifier].created = created
        else:
            snapshot = backend.database_snapshots[identifier]
            snapshot.created = created
            if not copy:
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
