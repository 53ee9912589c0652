"""The checkpoint table: one item per source table with where its exports reached, the export lease, and
the export a run began to publish.

Only one execution exports a table at a time: StartExport claims the table's
lease (`leaseHolder`, `leaseUntil`); an expired lease can be taken over. The
item also records an export whose files a run began to publish and has not
committed (`publishingExport`, written by MarkPublishing just before the first
lake write). Some of its files may be in the lake, so the next run finishes
that same export (the same lake keys, overwritten) instead of exporting the
window again under new keys, which would duplicate its change rows. Only an
explicit full export starts over. A run that failed before publishing left
nothing in the lake: the next run simply exports again. CommitCheckpoint moves
the checkpoint forward, never backwards, only for the lease holder, and releases the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from snaplake.core.aws import error_code, is_not_found
from snaplake.core.errors import ExportFailed, ExportNotFound, InvalidEvent
from snaplake.core.handler_input import text, timestamp
from snaplake.core.times import iso_utc, parse_iso_utc
from snaplake.dynamodb.errors import ExportLeaseLost
from snaplake.dynamodb.export import EXPORT_ARN, EXPORT_TYPES, Checkpoint, ExportPlan, Mode, execution_arn, started, table_name


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
        if not is_not_found(error, "ExportNotFoundException"):
            raise
        raise ExportNotFound(f"{start_over} because the export no longer exists; {hint}") from None
    if status not in ("IN_PROGRESS", "COMPLETED"):
        raise ExportFailed(f"{start_over} because the export is {status}; {hint}")
    return {**started(publishing.plan, publishing.export_arn, status), "resumed": True}, None


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
        if error_code(error) == "ConditionalCheckFailedException":
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
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        return str(_checkpoint_item(ddb, checkpoint_table, table_arn).get("leaseHolder", {}).get("S", "another run"))
    return None


def release_export_lease(ddb: Any, checkpoint_table: str, table_arn: str, holder: str) -> bool:
    """Give the lease up after a failure, if this execution holds it."""
    return _update_as_holder(ddb, checkpoint_table, table_arn, holder, "REMOVE leaseHolder, leaseUntil")


def commit_checkpoint(
    ddb: Any, checkpoint_table: str, table_arn: str, exported_to: datetime, export_arn: str, kind: str, holder: str | None = None
) -> bool:
    """Move the checkpoint forward to `exported_to`; never backwards. Writing the item whole also
    releases the export lease and clears the publishing record.

    With `holder` (the execution that exported), only while it holds the table's lease: a run whose
    lease expired and was taken over raises ExportLeaseLost and changes nothing, so the new holder's
    lease and publishing record stay (it finishes this same export). Without one (an execution
    started on the definition before CommitCheckpoint received it) the lease is not checked.

    Returns False when the checkpoint is already this far (an overlapping or repeated run, or the
    run that took over already committed this export): not an error, and nothing is changed.
    """
    value = iso_utc(exported_to)
    condition = "(attribute_not_exists(exportedTo) OR exportedTo < :to)"
    values = {":to": {"S": value}}
    if holder is not None:
        condition += " AND leaseHolder = :holder"
        values[":holder"] = {"S": holder}
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
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        if holder is not None:
            item = _checkpoint_item(ddb, checkpoint_table, table_arn)
            held_by = item.get("leaseHolder", {}).get("S")
            if held_by != holder and item.get("exportArn", {}).get("S") != export_arn:
                raise ExportLeaseLost(
                    f"{table_arn}: the export lease of {holder} expired and {held_by or 'another run'} took it over; the checkpoint "
                    f"stays at {item.get('exportedTo', {}).get('S', 'none')} and the run holding the lease finishes export {export_arn}"
                ) from None
        return False
    return True
