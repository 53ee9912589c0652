"""RDS snapshot export tasks: a deterministic identifier, start once, poll."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from snaplake.core.aws import error_code, error_message, is_not_found
from snaplake.core.errors import ExportFailed, ExportNotFound, InvalidEvent
from snaplake.core.handler_input import integer, text
from snaplake.core.limits import RDS_EXPORT_TASK_IDENTIFIER_MAX, RDS_MAX_CONCURRENT_EXPORTS
from snaplake.core.names import join_key
from snaplake.rds.errors import ExportCanceled, ExportSlotsBusy, SnapshotNotFound
from snaplake.rds.settings import ExportSettings
from snaplake.rds.snapshots import export_attempt, parse_snapshot_arn

MAX_CONCURRENT_EXPORTS = RDS_MAX_CONCURRENT_EXPORTS
_ACTIVE_STATUSES = ("starting", "in_progress", "canceling")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# What StartExportTask accepts as ExportTaskIdentifier (and so all DescribeExportTasks can know).
EXPORT_TASK_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,59}$")
_SNAPSHOT_NOT_FOUND = ("DBSnapshotNotFound", "DBSnapshotNotFoundFault", "DBClusterSnapshotNotFoundFault")

# Poll quickly while the export starts, then settle: exports take minutes to hours.
_FIRST_WAIT_SECONDS = 60
_STEADY_WAIT_SECONDS = 300


def export_task_identifier(snapshot_arn: str, attempt: int = 1) -> str:
    """Deterministic, valid ExportTaskIdentifier for a snapshot.

    Valid means: starts with a letter, only letters, digits and single hyphens,
    no trailing hyphen, at most 60 characters. The hash of the full ARN keeps
    instance and cluster snapshots of the same name (and truncated long names)
    apart; a redelivered event maps to the same identifier.
    """
    seed = snapshot_arn if attempt == 1 else f"{snapshot_arn}#{attempt}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:10]
    name = snapshot_arn.rsplit(":snapshot:", 1)[-1].rsplit(":cluster-snapshot:", 1)[-1]
    readable = _NON_ALNUM.sub("-", name.lower()).strip("-")
    suffix = f"-{digest}" if attempt == 1 else f"-a{attempt}-{digest}"
    room = RDS_EXPORT_TASK_IDENTIFIER_MAX - len("sl-") - len(suffix)
    readable = readable[:room].strip("-")
    return f"sl-{readable}{suffix}" if readable else f"sl{suffix}"


@dataclass(frozen=True)
class ExportStatus:
    identifier: str
    status: str
    percent: int
    failure_cause: str | None
    warnings: dict[str, Any] | None
    s3_bucket: str
    s3_prefix: str

    @property
    def done(self) -> bool:
        return self.status == "COMPLETE"

    @property
    def export_root(self) -> str:
        """Where RDS writes this export's files: `<S3Prefix>/<identifier>/`."""
        return join_key(self.s3_prefix, self.identifier) + "/"


def _status(task: dict[str, Any]) -> ExportStatus:
    warnings = None
    raw_warning = task.get("WarningMessage")
    if raw_warning:
        try:
            warnings = json.loads(raw_warning)
        except ValueError:
            warnings = {"general": [{"reason": raw_warning}]}
    return ExportStatus(
        identifier=task["ExportTaskIdentifier"],
        status=str(task.get("Status", "")).upper(),
        percent=int(task.get("PercentProgress") or 0),
        failure_cause=task.get("FailureCause"),
        warnings=warnings,
        s3_bucket=task.get("S3Bucket", ""),
        s3_prefix=task.get("S3Prefix", ""),
    )


def describe_export(rds: Any, identifier: str) -> ExportStatus | None:
    try:
        tasks = rds.describe_export_tasks(ExportTaskIdentifier=identifier)["ExportTasks"]
    except ClientError as error:
        if is_not_found(error, "ExportTaskNotFound", "ExportTaskNotFoundFault"):
            return None
        raise
    return _status(tasks[0]) if tasks else None


def active_export_count(rds: Any) -> int:
    pages = rds.get_paginator("describe_export_tasks").paginate(Filters=[{"Name": "status", "Values": list(_ACTIVE_STATUSES)}])
    return sum(1 for page in pages for task in page["ExportTasks"] if str(task.get("Status", "")).lower() in _ACTIVE_STATUSES)


def start_export(rds: Any, request: dict[str, Any], settings: ExportSettings) -> dict[str, Any]:
    """Start the snapshot's export, or find the one a previous delivery started."""
    snapshot_arn = request.get("snapshotArn")
    if not isinstance(snapshot_arn, str) or not snapshot_arn.startswith("arn:"):
        raise InvalidEvent("start export needs the filter's output with a 'snapshotArn'")
    parse_snapshot_arn(snapshot_arn)
    attempt = export_attempt(request)
    identifier = export_task_identifier(snapshot_arn, attempt)
    existing = describe_export(rds, identifier)
    reused = existing is not None
    if existing is None:
        if active_export_count(rds) >= MAX_CONCURRENT_EXPORTS:
            raise ExportSlotsBusy(
                f"{MAX_CONCURRENT_EXPORTS} snapshot exports already running in this account; {identifier} will be retried"
            )
        params: dict[str, Any] = {
            "ExportTaskIdentifier": identifier,
            "SourceArn": snapshot_arn,
            "S3BucketName": settings.bucket,
            "IamRoleArn": settings.role_arn,
            "KmsKeyId": settings.kms_key_arn,
        }
        if settings.prefix:
            params["S3Prefix"] = settings.prefix
        if settings.export_only:
            params["ExportOnly"] = list(settings.export_only)
        try:
            existing = _status(rds.start_export_task(**params))
        except ClientError as error:
            code = error_code(error)
            message = error_message(error)
            if code in _SNAPSHOT_NOT_FOUND:
                raise SnapshotNotFound(f"snapshot {snapshot_arn} does not exist in this account and region: {message}") from None
            if code == "ExportTaskAlreadyExists":
                existing, reused = describe_export(rds, identifier), True
                if existing is None:
                    raise
            elif _looks_like_quota(code, message) or active_export_count(rds) >= MAX_CONCURRENT_EXPORTS:
                # Another export took the last slot between our count and our start.
                raise ExportSlotsBusy(f"StartExportTask refused {identifier}: {code}: {message}") from None
            else:
                raise
    return {
        "exportTaskIdentifier": identifier,
        "status": existing.status,
        "reused": reused,
        "exportBucket": existing.s3_bucket or settings.bucket,
        "exportRoot": existing.export_root,
        "waitSeconds": _FIRST_WAIT_SECONDS,
        "polls": 0,
    }


def _looks_like_quota(code: str, message: str) -> bool:
    text = f"{code} {message}".lower()
    return any(word in text for word in ("limit", "quota", "concurrent", "too many"))


WARNINGS_KEPT = 20


def summarize_warnings(warnings: dict[str, Any] | None) -> dict[str, Any] | None:
    """The export's WarningMessage, cut to a bounded size for the state payload
    (thousands of skipped tables would pass 256 KB); the handler logs it whole."""
    if not warnings:
        return None
    summary: dict[str, Any] = {}
    for key, value in warnings.items():
        if isinstance(value, list):
            summary[key] = value[:WARNINGS_KEPT]
            if len(value) > WARNINGS_KEPT:
                summary[f"{key}Count"] = len(value)
        else:
            summary[key] = str(value)[:1000]
    return summary


def poll_export(rds: Any, state: dict[str, Any]) -> dict[str, Any]:
    identifier = state.get("exportTaskIdentifier")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidEvent("poll export needs 'exportTaskIdentifier'")
    text(identifier, "exportTaskIdentifier", EXPORT_TASK_IDENTIFIER)
    polls = integer(state.get("polls", 0), "polls") + 1
    status = describe_export(rds, identifier)
    if status is None:
        raise ExportNotFound(f"export task {identifier} does not exist")
    if status.status == "FAILED":
        raise ExportFailed(f"export task {identifier} failed: {status.failure_cause or 'no FailureCause given'}")
    if status.status in ("CANCELED", "CANCELING"):
        raise ExportCanceled(f"export task {identifier} was canceled")
    return {
        **{k: v for k, v in state.items() if k not in ("status", "percentProgress", "waitSeconds", "polls", "warnings")},
        "exportTaskIdentifier": identifier,
        "status": status.status,
        "done": status.done,
        "percentProgress": status.percent,
        "warnings": summarize_warnings(status.warnings),
        "exportBucket": status.s3_bucket or state.get("exportBucket"),
        "exportRoot": status.export_root,
        "polls": polls,
        "waitSeconds": _FIRST_WAIT_SECONDS if polls < 5 else _STEADY_WAIT_SECONDS,
    }
