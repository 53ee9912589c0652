"""DynamoDB exports to S3: which window to export next, start it once, poll it, checkpoint it.

The checkpoint table holds, per source table, the point in time the last
*successful* export reached. A full export is taken when there is none (or on
request); after that each run exports the incremental window that starts
exactly there: at least 15 minutes, at most 24 hours, inside the PITR window.
A backlog longer than 24 hours is worked off one window per run of the loop.

The item also records an export whose files a run began to publish and has
not committed (`publishingExport`, written just before the first lake write).
Some of its files may be in the lake, so the next run finishes that same
export (the same lake keys, overwritten) instead of exporting the window again
under new keys, which would duplicate its change rows. Only an explicit full
export starts over. A run that failed before publishing left nothing in the
lake: the next run simply exports again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from snaplake.errors import (
    ConfigError,
    DynamoDbExportsBusy,
    DynamoDbTableNotFound,
    ExportFailed,
    ExportLeaseLost,
    ExportNotFound,
    InvalidEvent,
    PitrDisabled,
    WindowOutsidePitr,
)
from snaplake.handler_input import integer, text, timestamp
from snaplake.lake_keys import iso_utc, join_key, parse_iso_utc

MIN_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=24)
_FIRST_WAIT_SECONDS = 60
_STEADY_WAIT_SECONDS = 300

Mode = Literal["auto", "full", "incremental"]


@dataclass(frozen=True)
class DynamoDbExportSettings:
    bucket: str
    prefix: str
    bucket_owner: str | None
    kms_key_arn: str | None
    checkpoint_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DynamoDbExportSettings:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"environment variable {name} is required")
            return value

        prefix = env.get("DYNAMODB_EXPORT_PREFIX", "dynamodb-exports").strip().strip("/")
        if ":" in prefix or ".." in prefix.split("/"):
            raise ConfigError(f"environment variable DYNAMODB_EXPORT_PREFIX={prefix!r} must not contain ':' or '..'")
        return cls(
            bucket=required("EXPORT_BUCKET"),
            prefix=prefix,
            bucket_owner=env.get("EXPORT_BUCKET_OWNER", "").strip() or None,
            kms_key_arn=env.get("EXPORT_KMS_KEY_ARN", "").strip() or None,
            checkpoint_table=required("CHECKPOINT_TABLE"),
        )


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


def parse_commit(event: Any) -> tuple[str, str, str, datetime]:
    """CommitCheckpoint's input: (tableArn, exportArn, exportType, exportedTo), each checked before anything is written."""
    if not isinstance(event, dict):
        raise InvalidEvent("commit needs the export's tableArn, exportArn, exportType and exportedTo")
    for name in ("tableArn", "exportArn", "exportType", "exportedTo"):
        if event.get(name) is None:
            raise InvalidEvent(f"commit needs tableArn, exportArn, exportType and an ISO exportedTo: {name!r} is missing")
    table_arn = event["tableArn"]
    table_name(table_arn)
    export_arn = text(event["exportArn"], "exportArn", EXPORT_ARN)
    if not export_arn.startswith(f"{table_arn}/export/"):
        raise InvalidEvent(f"export {export_arn} is not an export of {table_arn}")
    kind = event["exportType"]
    if kind not in EXPORT_TYPES:
        raise InvalidEvent(f"exportType must be one of {EXPORT_TYPES}, got {str(kind)[:50]!r}")
    return table_arn, export_arn, kind, timestamp(event["exportedTo"], "exportedTo")


# ---------------------------------------------------------------- checkpoint table


@dataclass(frozen=True)
class PublishingExport:
    """An export whose files a run began to publish, not committed."""

    plan: ExportPlan
    export_arn: str


def _checkpoint_item(ddb: Any, checkpoint_table: str, table_arn: str) -> dict[str, Any]:
    return dict(ddb.get_item(TableName=checkpoint_table, Key={"tableArn": {"S": table_arn}}, ConsistentRead=True).get("Item") or {})


def load_checkpoint(ddb: Any, checkpoint_table: str, table_arn: str) -> Checkpoint | None:
    return load_export_state(ddb, checkpoint_table, table_arn)[0]


def load_export_state(ddb: Any, checkpoint_table: str, table_arn: str) -> tuple[Checkpoint | None, PublishingExport | None]:
    """The table's checkpoint, and the export a run began to publish after it and did not commit."""
    item = _checkpoint_item(ddb, checkpoint_table, table_arn)
    checkpoint = None
    if "exportedTo" in item:
        checkpoint = Checkpoint(table_arn, parse_iso_utc(item["exportedTo"]["S"]), item.get("exportArn", {}).get("S", ""))
    publishing = None
    if "publishingExport" in item:
        recorded = {name: value["S"] for name, value in item["publishingExport"]["M"].items()}
        window_from = parse_iso_utc(recorded["windowFrom"]) if recorded.get("windowFrom") else None
        plan = ExportPlan.reaching(table_arn, recorded["exportType"], parse_iso_utc(recorded["exportedTo"]), window_from)
        publishing = PublishingExport(plan, recorded["exportArn"])
    return checkpoint, publishing


def parse_publishing(event: Any) -> tuple[str, PublishingExport]:
    """MarkPublishing's input: CommitCheckpoint's fields, the incremental window's start
    (windowFrom, null for a full export) and the execution holding the lease."""
    table_arn, export_arn, kind, exported_to = parse_commit(event)
    holder = execution_arn(event.get("execution"))
    window_from = None
    if kind == "INCREMENTAL_EXPORT":
        window_from = timestamp(event.get("windowFrom"), "windowFrom")
        if not window_from < exported_to:
            raise InvalidEvent(f"windowFrom {iso_utc(window_from)} must be before exportedTo {iso_utc(exported_to)}")
    return holder, PublishingExport(ExportPlan.reaching(table_arn, kind, exported_to, window_from), export_arn)


def mark_publishing(ddb: Any, checkpoint_table: str, holder: str, publishing: PublishingExport) -> None:
    """Record that this run (the lease holder) is about to publish the export's files."""
    plan = publishing.plan
    recorded = {"exportArn": publishing.export_arn, "exportType": plan.export_type, "exportedTo": iso_utc(plan.exported_to)}
    if plan.window_from is not None:
        recorded["windowFrom"] = iso_utc(plan.window_from)
    values = {":publishing": {"M": {name: {"S": value} for name, value in recorded.items()}}}
    if not _update_as_holder(ddb, checkpoint_table, plan.table_arn, holder, "SET publishingExport = :publishing", values=values):
        raise ExportLeaseLost(f"{plan.table_arn}: the export lease of {holder} was lost; nothing was published")


def _forget_publishing_export(ddb: Any, checkpoint_table: str, holder: str, publishing: PublishingExport) -> None:
    table_arn = publishing.plan.table_arn
    values = {":export": {"S": publishing.export_arn}}
    ours = "publishingExport.exportArn = :export"
    if not _update_as_holder(ddb, checkpoint_table, table_arn, holder, "REMOVE publishingExport", ours, values):
        raise ExportLeaseLost(f"{table_arn}: another run took over the export lease of {holder}")


def resume_publishing_export(
    ddb: Any, checkpoint_table: str, holder: str, mode: Mode, checkpoint: Checkpoint | None, publishing: PublishingExport | None
) -> tuple[dict[str, Any] | None, str | None]:
    """(the export to finish, as StartExport returns it, or None; why a recorded one was forgotten).

    A run that began publishing and failed is finished by the next. A requested
    full export starts over instead, and leaves the record in place: if it fails
    before publishing, the next run still finishes the recorded export; once it
    publishes, its own record replaces this one. A record the checkpoint is
    already past is forgotten. A recorded export that no longer exists cannot be
    finished, and exporting its window again would duplicate what it published:
    that needs a full export.
    """
    if publishing is None or mode == "full":
        return None, None
    if checkpoint is not None and publishing.plan.exported_to <= checkpoint.exported_to:
        _forget_publishing_export(ddb, checkpoint_table, holder, publishing)
        return (
            None,
            f"partly published export {publishing.export_arn} forgotten: the checkpoint is already at {iso_utc(checkpoint.exported_to)}",
        )
    start_over = f"a run began publishing export {publishing.export_arn} of {publishing.plan.table_arn} and failed; it cannot be finished"
    hint = "exporting its window again would duplicate what it published: start a full export ({'mode': 'full'}) to start over"
    try:
        status = ddb.describe_export(ExportArn=publishing.export_arn)["ExportDescription"]["ExportStatus"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExportNotFoundException":
            raise
        raise ExportNotFound(f"{start_over} because the export no longer exists; {hint}") from None
    if status not in ("IN_PROGRESS", "COMPLETED"):
        raise ExportFailed(f"{start_over} because the export is {status}; {hint}")
    return {**_started(publishing.plan, publishing.export_arn, status), "resumed": True}, None


def abandon_commit(ddb: Any, checkpoint_table: str, table_arn: str, holder: str) -> bool:
    """After a commit that moved nothing (the checkpoint is already there): give up this run's lease
    and its publishing record, which that commit would otherwise have cleared."""
    return _update_as_holder(ddb, checkpoint_table, table_arn, holder, "REMOVE leaseHolder, leaseUntil, publishingExport")


def _update_as_holder(
    ddb: Any, checkpoint_table: str, table_arn: str, holder: str, update: str, condition: str = "", values: dict[str, Any] | None = None
) -> bool:
    """Update the table's checkpoint item only while `holder` holds its lease; False when it does not."""
    try:
        ddb.update_item(
            TableName=checkpoint_table,
            Key={"tableArn": {"S": table_arn}},
            UpdateExpression=update,
            ConditionExpression="leaseHolder = :holder" + (f" AND {condition}" if condition else ""),
            ExpressionAttributeValues={":holder": {"S": holder}, **(values or {})},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


LEASE_SECONDS = 36 * 3600  # longer than any export plus its conversion


def claim_export_lease(ddb: Any, checkpoint_table: str, table_arn: str, holder: str, now: datetime) -> str | None:
    """Make this execution the only one exporting the table until it commits or releases.

    Returns None when claimed, else the execution that holds the lease. An
    expired lease (its holder died without releasing) can be taken over.
    """
    try:
        ddb.update_item(
            TableName=checkpoint_table,
            Key={"tableArn": {"S": table_arn}},
            UpdateExpression="SET leaseHolder = :holder, leaseUntil = :until",
            ConditionExpression="attribute_not_exists(leaseHolder) OR leaseHolder = :holder OR leaseUntil < :now",
            ExpressionAttributeValues={
                ":holder": {"S": holder},
                ":until": {"S": iso_utc(now + timedelta(seconds=LEASE_SECONDS))},
                ":now": {"S": iso_utc(now)},
            },
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return str(_checkpoint_item(ddb, checkpoint_table, table_arn).get("leaseHolder", {}).get("S", "another run"))
    return None


def release_export_lease(ddb: Any, checkpoint_table: str, table_arn: str, holder: str) -> bool:
    """Give the lease up after a failure, if this execution holds it."""
    return _update_as_holder(ddb, checkpoint_table, table_arn, holder, "REMOVE leaseHolder, leaseUntil")


def commit_checkpoint(ddb: Any, checkpoint_table: str, table_arn: str, exported_to: datetime, export_arn: str, kind: str) -> bool:
    """Move the checkpoint forward to `exported_to`; never backwards.

    Returns False when another run already moved it this far (an overlapping
    or repeated run): not an error, and nothing is changed. Writing the item
    whole also releases the export lease.
    """
    value = iso_utc(exported_to)
    try:
        ddb.put_item(
            TableName=checkpoint_table,
            Item={
                "tableArn": {"S": table_arn},
                "exportedTo": {"S": value},
                "exportArn": {"S": export_arn},
                "exportType": {"S": kind},
                "updatedAt": {"S": iso_utc(datetime.now(UTC))},
            },
            # ISO 8601 UTC strings of one fixed format order like the times they name.
            ConditionExpression="attribute_not_exists(exportedTo) OR exportedTo < :to",
            ExpressionAttributeValues={":to": {"S": value}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


# ---------------------------------------------------------------- planning the next export


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
        if error.response["Error"]["Code"] in ("TableNotFoundException", "ResourceNotFoundException"):
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


def plan_next_export(ddb: Any, table_arn: str, mode: Mode, checkpoint: Checkpoint | None) -> ExportPlan | None:
    """The export to run now, or None when less than 15 minutes have passed since the checkpoint."""
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
    end = min(start + MAX_WINDOW, latest)
    if end - start < MIN_WINDOW:
        return None
    return ExportPlan(table_arn, "INCREMENTAL_EXPORT", window_from=start, window_to=end)


def running_export(ddb: Any, plan: ExportPlan) -> tuple[ExportPlan, str] | None:
    """An IN_PROGRESS export of the same kind that this plan would repeat.

    A retried StartExport recomputes the plan, and "latest restorable" has moved
    on by then, so the ClientToken alone would not stop a second export.
    """
    token = None
    while True:
        page = ddb.list_exports(TableArn=plan.table_arn, MaxResults=25, **({"NextToken": token} if token else {}))
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
        return _started(plan, export_arn, "IN_PROGRESS")
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
        code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
        if code == "PointInTimeRecoveryUnavailableException":
            raise PitrDisabled(f"point-in-time recovery is not enabled for {plan.table_arn}: {message}") from None
        if code == "InvalidExportTimeException":
            raise WindowOutsidePitr(f"{plan.table_arn}: {message}; run a full export ({{'mode': 'full'}}) to start over") from None
        if code == "LimitExceededException":
            raise DynamoDbExportsBusy(f"{plan.table_arn}: {message}") from None
        raise
    return _started(plan, described["ExportArn"], described["ExportStatus"])


def _started(plan: ExportPlan, export_arn: str, status: str) -> dict[str, Any]:
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
        if error.response["Error"]["Code"] == "ExportNotFoundException":
            raise ExportNotFound(f"export {export_arn} does not exist") from None
        raise
    status = described["ExportStatus"]
    if status == "FAILED":
        raise ExportFailed(f"export {export_arn} failed: {described.get('FailureCode')}: {described.get('FailureMessage')}")
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


def start_table_executions(sfn: Any, state_machine_arn: str, event: Any) -> list[str]:
    """The schedule's fan-out: one execution per table, named after the table and the
    scheduled time, so a repeated delivery of the same schedule starts nothing new."""
    if not isinstance(event, dict) or not isinstance(event.get("tableArns"), list) or not event["tableArns"]:
        raise InvalidEvent("the schedule's input must be {'tableArns': [...], 'mode': ..., 'scheduledTime': ...}")
    mode = event.get("mode", "auto")
    if event.get("scheduledTime") is not None:
        timestamp(event["scheduledTime"], "scheduledTime")
    scheduled = re.sub(r"[^0-9A-Za-z]", "", str(event.get("scheduledTime") or iso_utc(datetime.now(UTC))))[:20]
    for table_arn in event["tableArns"]:  # every table checked before any execution starts
        parse_request({"tableArn": table_arn, "mode": mode})
    started = []
    for table_arn in event["tableArns"]:
        name = f"{table_name(table_arn)[:50]}-{scheduled}"
        try:
            started.append(
                sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps({"tableArn": table_arn, "mode": mode}))[
                    "executionArn"
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
    return started
