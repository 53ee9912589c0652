"""DynamoDB exports to S3: which window to export next, start it once, poll it, and the schedule's fan-out.

The checkpoint table (snaplake.dynamodb.checkpoint) holds, per source table,
the point in time the last *successful* export reached. A full export is taken
when there is none (or on request); after that each run exports the
incremental window that starts exactly there: at least 15 minutes, at most 24
hours, inside the PITR window, and ending on a whole UTC hour. A backlog longer
than 24 hours is worked off one window per run of the loop.

Windows end on the hour because change rows are partitioned by their write
hour: so every `dt=/hour=` partition of the change table is written by exactly
one export, and an attribute whose type differs from one window to the next
differs between partitions (a table version, snaplake.catalog.versions), never
inside one (two types in one partition can be read by no table definition).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from snaplake.core import metrics
from snaplake.core.aws import error_code, error_message, is_not_found
from snaplake.core.claims import Claims, claim_key
from snaplake.core.errors import ExportFailed, ExportNotFound, InvalidEvent
from snaplake.core.handler_input import integer, timestamp
from snaplake.core.limits import (
    DYNAMODB_INCREMENTAL_EXPORT_MAX_WINDOW,
    DYNAMODB_INCREMENTAL_EXPORT_MIN_WINDOW,
    DYNAMODB_LIST_EXPORTS_MAX_RESULTS,
)
from snaplake.core.names import athena_name, join_key
from snaplake.core.times import iso_utc
from snaplake.dynamodb.errors import (
    DynamoDbExportsBusy,
    DynamoDbTableNotFound,
    PitrDisabled,
    ScheduledExecutionConflict,
    TableFolderClaimed,
    WindowOutsidePitr,
)
from snaplake.dynamodb.settings import DynamoDbExportSettings

MIN_WINDOW = DYNAMODB_INCREMENTAL_EXPORT_MIN_WINDOW
MAX_WINDOW = DYNAMODB_INCREMENTAL_EXPORT_MAX_WINDOW
_FIRST_WAIT_SECONDS = 60
_STEADY_WAIT_SECONDS = 300

Mode = Literal["auto", "full", "incremental"]


@dataclass(frozen=True)
class Checkpoint:
    table_arn: str
    exported_to: datetime
    export_arn: str


_TABLE_ARN = re.compile(r"arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/([A-Za-z0-9_.-]{3,255})")
EXPORT_ARN = re.compile(r"arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[A-Za-z0-9_.-]{3,255}/export/[A-Za-z0-9-]+")
_EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:(execution|express):\S{1,1024}")
EXPORT_TYPES = ("FULL_EXPORT", "INCREMENTAL_EXPORT")
_REQUEST_FIELDS = frozenset({"tableArn", "mode"})


def table_name(table_arn: Any) -> str:
    match = _TABLE_ARN.fullmatch(table_arn) if isinstance(table_arn, str) else None
    if not match:
        raise InvalidEvent(f"tableArn must be a DynamoDB table ARN, got {str(table_arn)[:200]!r}")
    return match.group(1)


def parse_request(event: Any) -> tuple[str, Mode]:
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(event).__name__}")
    unknown = sorted(set(event) - _REQUEST_FIELDS)
    if unknown:
        # A misspelt "mode" would otherwise run the default mode without a word.
        raise InvalidEvent(f"unknown fields {[name[:40] for name in unknown[:5]]} in the export request; it takes 'tableArn' and 'mode'")
    table_arn = event.get("tableArn")
    table_name(table_arn)
    mode = event.get("mode", "auto")
    if mode not in ("auto", "full", "incremental"):
        raise InvalidEvent(f"mode must be 'auto', 'full' or 'incremental', got {str(mode)[:50]!r}")
    return str(table_arn), mode


def execution_arn(value: Any) -> str:
    """The Step Functions execution that holds (or releases) a table's export lease."""
    if not isinstance(value, str) or not _EXECUTION_ARN.fullmatch(value):
        raise InvalidEvent(f"'execution' must be a Step Functions execution ARN, got {str(value)[:200]!r}")
    return value


def require_own_table(table_arn: str, execution: str) -> None:
    """The table must be in the account and region of the execution exporting it (this stack's).

    DynamoDB is called with the table's name, so an ARN of another account or
    region would otherwise export the local table of that name under its ARN.
    """

    def partition_region_account(arn: str) -> tuple[str, str, str]:
        parts = arn.split(":")
        return parts[1], parts[3], parts[4]

    here = partition_region_account(execution)
    if partition_region_account(table_arn) != here:
        raise InvalidEvent(f"table {table_arn} is not in the partition, region and account of this pipeline {here}")


LAKE_FOLDERS = ("dynamodb", "dynamodb_changes")  # full exports, changes (incremental exports and the stream change log)


def claim_lake_folders(claims: Claims, lake_prefix: str, table_arn: str) -> None:
    """Make `table_arn` the owner of its lake folders for good, or raise TableFolderClaimed.

    A table lands in `dynamodb/<t>/` and `dynamodb_changes/<t>/`, `<t>` the Athena-safe form of its
    name, so `Orders` and `orders` (or `shop-orders` and `shop_orders`) would share them. Each folder
    is claimed once, with S3's If-None-Match, at `<LakePrefix>/_snaplake/claims/<folder>/<t>.json`
    holding `{"tableArn": ...}`: the first table to claim it keeps it, and any other table is refused
    by name before it exports anything.
    """
    name, owner = athena_name(table_name(table_arn)), {"tableArn": table_arn}
    for folder in LAKE_FOLDERS:
        key = join_key(lake_prefix, claim_key(folder, name))
        recorded = claims.claim(key, owner)
        if recorded.get("tableArn") != table_arn:
            raise TableFolderClaimed(
                f"the lake folder {folder}/{name}/ belongs to table {recorded.get('tableArn')}, so {table_arn} cannot land there "
                f"(their names differ only in case or punctuation, or they are in other accounts or regions); the claim is "
                f"{claims.bucket.uri(key)}. Export {table_arn} with a stack of another LakePrefix"
            )


@dataclass(frozen=True)
class ExportPlan:
    table_arn: str
    export_type: Literal["FULL_EXPORT", "INCREMENTAL_EXPORT"]
    export_time: datetime | None = None
    window_from: datetime | None = None
    window_to: datetime | None = None

    @property
    def exported_to(self) -> datetime:
        value = self.export_time if self.export_type == "FULL_EXPORT" else self.window_to
        assert value is not None
        return value

    @classmethod
    def reaching(cls, table_arn: str, export_type: str, exported_to: datetime, window_from: datetime | None = None) -> ExportPlan:
        """The plan of an export of `export_type` that reached `exported_to` (the inverse of `exported_to`)."""
        if export_type == "FULL_EXPORT":
            return cls(table_arn, "FULL_EXPORT", export_time=exported_to)
        return cls(table_arn, "INCREMENTAL_EXPORT", window_from=window_from, window_to=exported_to)

    @property
    def client_token(self) -> str:
        """Same table and window -> same token: a retried start returns the same export."""
        seed = f"{self.table_arn}|{self.export_type}|{self.export_time}|{self.window_from}|{self.window_to}"
        return hashlib.sha256(seed.encode()).hexdigest()[:64]


def pitr_window(ddb: Any, name: str) -> tuple[datetime, datetime]:
    try:
        described = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    except ClientError as error:
        if is_not_found(error, "TableNotFoundException", "ResourceNotFoundException"):
            raise DynamoDbTableNotFound(f"DynamoDB table {name} does not exist in this account and region") from None
        raise
    pitr = described.get("PointInTimeRecoveryDescription", {})
    if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
        raise PitrDisabled(
            f"point-in-time recovery is not enabled for table {name}: enable it "
            "(aws dynamodb update-continuous-backups --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true), "
            "then run a full export"
        )
    return pitr["EarliestRestorableDateTime"].astimezone(UTC), pitr["LatestRestorableDateTime"].astimezone(UTC)


def window_end(start: datetime, latest: datetime) -> datetime | None:
    """The end of the window from `start` when `latest` is the latest restorable time: the last whole UTC hour at most
    24 hours on, or None while that is less than 15 minutes after `start`."""
    end = min(start + MAX_WINDOW, latest).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end if end - start >= MIN_WINDOW else None


def plan_next_export(ddb: Any, table_arn: str, mode: Mode, checkpoint: Checkpoint | None) -> ExportPlan | None:
    """The export to run now, or None until a whole hour at least 15 minutes after the checkpoint is restorable."""
    earliest, latest = pitr_window(ddb, table_name(table_arn))
    latest = max(latest.replace(microsecond=0), earliest)
    if mode == "full" or (checkpoint is None and mode == "auto"):
        return ExportPlan(table_arn, "FULL_EXPORT", export_time=latest)
    if checkpoint is None:
        raise WindowOutsidePitr(f"table {table_arn} has no checkpoint to continue from: run a full export first ({{'mode': 'full'}})")
    start = checkpoint.exported_to
    if start < earliest:
        raise WindowOutsidePitr(
            f"the next incremental export of {table_arn} would start at {iso_utc(start)}, before the earliest restorable time "
            f"{iso_utc(earliest)} (PITR was disabled or the gap is older than its retention): changes since then cannot be exported; "
            "run a full export ({'mode': 'full'}) to start over"
        )
    end = window_end(start, latest)
    if end is None:
        return None
    return ExportPlan(table_arn, "INCREMENTAL_EXPORT", window_from=start, window_to=end)


def running_export(ddb: Any, plan: ExportPlan) -> tuple[ExportPlan, str] | None:
    """An IN_PROGRESS export of the same kind that this plan would repeat.

    A retried StartExport recomputes the plan, and "latest restorable" has moved
    on by then, so the ClientToken alone would not stop a second export.
    """
    token = None
    while True:
        page = ddb.list_exports(
            TableArn=plan.table_arn, MaxResults=DYNAMODB_LIST_EXPORTS_MAX_RESULTS, **({"NextToken": token} if token else {})
        )
        for summary in page.get("ExportSummaries", []):
            if summary.get("ExportStatus") != "IN_PROGRESS" or summary.get("ExportType", "FULL_EXPORT") != plan.export_type:
                continue
            described = ddb.describe_export(ExportArn=summary["ExportArn"])["ExportDescription"]
            if plan.export_type == "FULL_EXPORT" and described.get("ExportTime"):
                return ExportPlan(plan.table_arn, "FULL_EXPORT", export_time=described["ExportTime"].astimezone(UTC)), summary["ExportArn"]
            spec = described.get("IncrementalExportSpecification") or {}
            if plan.window_from and spec.get("ExportFromTime") and spec["ExportFromTime"].astimezone(UTC) == plan.window_from:
                adopted = ExportPlan(
                    plan.table_arn, "INCREMENTAL_EXPORT", window_from=plan.window_from, window_to=spec["ExportToTime"].astimezone(UTC)
                )
                return adopted, summary["ExportArn"]
        token = page.get("NextToken")
        if not token:
            return None


def start_export(ddb: Any, plan: ExportPlan, settings: DynamoDbExportSettings) -> dict[str, Any]:
    adopted = running_export(ddb, plan)
    if adopted is not None:
        plan, export_arn = adopted
        return started(plan, export_arn, "IN_PROGRESS")
    params: dict[str, Any] = {
        "TableArn": plan.table_arn,
        "S3Bucket": settings.bucket,
        "S3Prefix": join_key(settings.prefix, table_name(plan.table_arn)),
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": plan.export_type,
        "ClientToken": plan.client_token,
    }
    if settings.bucket_owner:
        params["S3BucketOwner"] = settings.bucket_owner
    if settings.kms_key_arn:
        params.update(S3SseAlgorithm="KMS", S3SseKmsKeyId=settings.kms_key_arn)
    if plan.export_type == "FULL_EXPORT":
        params["ExportTime"] = plan.export_time
    else:
        params["IncrementalExportSpecification"] = {
            "ExportFromTime": plan.window_from,
            "ExportToTime": plan.window_to,
            "ExportViewType": "NEW_AND_OLD_IMAGES",
        }
    try:
        described = ddb.export_table_to_point_in_time(**params)["ExportDescription"]
    except ClientError as error:
        code, message = error_code(error), error_message(error)
        if code == "PointInTimeRecoveryUnavailableException":
            raise PitrDisabled(f"point-in-time recovery is not enabled for {plan.table_arn}: {message}") from None
        if code == "InvalidExportTimeException":
            raise WindowOutsidePitr(f"{plan.table_arn}: {message}; run a full export ({{'mode': 'full'}}) to start over") from None
        if code == "LimitExceededException":
            raise DynamoDbExportsBusy(f"{plan.table_arn}: {message}") from None
        raise
    return started(plan, described["ExportArn"], described["ExportStatus"])


def started(plan: ExportPlan, export_arn: str, status: str) -> dict[str, Any]:
    return {
        "tableArn": plan.table_arn,
        "exportArn": export_arn,
        "exportType": plan.export_type,
        "exportedTo": iso_utc(plan.exported_to),
        "windowFrom": iso_utc(plan.window_from) if plan.window_from else None,
        "status": status,
        "done": False,
        "waitSeconds": _FIRST_WAIT_SECONDS,
        "polls": 0,
    }


def poll_export(ddb: Any, state: dict[str, Any]) -> dict[str, Any]:
    export_arn = state.get("exportArn")
    if not isinstance(export_arn, str) or not EXPORT_ARN.fullmatch(export_arn):
        raise InvalidEvent(f"poll needs the DynamoDB 'exportArn' from StartExport, got {str(export_arn)[:200]!r}")
    polls = integer(state.get("polls", 0), "polls") + 1
    try:
        described = ddb.describe_export(ExportArn=export_arn)["ExportDescription"]
    except ClientError as error:
        if is_not_found(error, "ExportNotFoundException"):
            raise ExportNotFound(f"export {export_arn} does not exist") from None
        raise
    status = described["ExportStatus"]
    if status == "FAILED":
        raise ExportFailed(f"export {export_arn} failed: {described.get('FailureCode')}: {described.get('FailureMessage')}")
    if status == "COMPLETED" and described.get("StartTime") and described.get("EndTime"):
        duration = (described["EndTime"] - described["StartTime"]).total_seconds()
        metrics.publish(metrics.DYNAMODB, table_name(export_arn.split("/export/")[0]), ExportDuration=duration)
    return {
        **state,
        "status": status,
        "done": status == "COMPLETED",
        "bucket": described.get("S3Bucket"),
        "manifestSummaryKey": described.get("ExportManifest"),
        "itemCount": described.get("ItemCount"),
        "polls": polls,
        "waitSeconds": _FIRST_WAIT_SECONDS if polls < 5 else _STEADY_WAIT_SECONDS,
    }


_EXECUTION_NAME_MAX = 80  # Step Functions execution names: 1-80 characters
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(table_arn: str, scheduled: str) -> str:
    """The schedule's execution name for one table and scheduled time: `<table name>-<hash>-<time>`.

    The hash (8 hex characters of SHA-256 of the table ARN) keeps the name unique per table when the
    name is cut short or differs only in case or punctuation; the table name is cut so the whole stays
    within 80 characters of `[A-Za-z0-9_-]` (the characters CloudWatch logging of executions accepts).
    """
    digest = hashlib.sha256(table_arn.encode()).hexdigest()[:8]
    stamp = re.sub(r"[^0-9A-Za-z]", "", scheduled)[:20]  # 2024-05-02T04:00:00Z -> 20240502T040000Z
    room = _EXECUTION_NAME_MAX - len(digest) - len(stamp) - 2
    return f"{_UNSAFE_NAME_CHARACTERS.sub('_', table_name(table_arn))[:room]}-{digest}-{stamp}"


def start_table_executions(sfn: Any, state_machine_arn: str, event: Any) -> list[str]:
    """The schedule's fan-out: one execution per table, named by `execution_name`.

    A repeated delivery of the same schedule starts nothing new: Step Functions answers
    ExecutionAlreadyExists (or, while it runs, the same execution), and that execution's input
    is the one this table would get. An execution of that name with any other input raises
    ScheduledExecutionConflict naming the tables, after every other table's execution started.
    """
    if not isinstance(event, dict) or not isinstance(event.get("tableArns"), list) or not event["tableArns"]:
        raise InvalidEvent("the schedule's input must be {'tableArns': [...], 'mode': ..., 'scheduledTime': ...}")
    mode = event.get("mode", "auto")
    if event.get("scheduledTime") is not None:
        timestamp(event["scheduledTime"], "scheduledTime")
    scheduled = str(event.get("scheduledTime") or iso_utc(datetime.now(UTC)))
    for table_arn in event["tableArns"]:  # every table checked before any execution starts
        parse_request({"tableArn": table_arn, "mode": mode})
    started, conflicts = [], []
    for table_arn in event["tableArns"]:
        name, request = execution_name(table_arn, scheduled), {"tableArn": table_arn, "mode": mode}
        try:
            started.append(sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(request))["executionArn"])
        except ClientError as error:
            if error_code(error) != "ExecutionAlreadyExists":
                raise
            execution = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
            if json.loads(sfn.describe_execution(executionArn=execution)["input"]) != request:
                conflicts.append(f"{table_arn} ({execution})")
    if conflicts:
        raise ScheduledExecutionConflict(
            f"the execution names of this schedule are taken by executions with other input, so these tables were not "
            f"exported: {', '.join(conflicts[:10])}; start them by hand with {{'tableArn': ..., 'mode': {mode!r}}}"
        )
    return started
