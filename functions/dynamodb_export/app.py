"""DynamoDB export steps: StartExport (next window), PollExport, MarkPublishing, CommitCheckpoint, ReleaseLease.

Five functions share this code (see template.yaml), one handler each; the
schedule's fan-out is in schedule.py.
"""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import LakeSettings, aws, metrics
from snaplake.core.claims import Claims
from snaplake.core.errors import InvalidEvent
from snaplake.core.times import iso_utc
from snaplake.dynamodb import (
    DynamoDbExportSettings,
    abandon_commit,
    claim_export_lease,
    commit_checkpoint,
    execution_arn,
    load_export_state,
    mark_publishing,
    parse_commit,
    parse_publishing,
    parse_request,
    pitr_window,
    plan_next_export,
    poll_export,
    release_export_lease,
    require_own_table,
    resume_publishing_export,
    start_export,
    table_name,
)
from snaplake.dynamodb.export import claim_lake_folders, window_end

logger = Logger()
SETTINGS = DynamoDbExportSettings.from_env()
LAKE = LakeSettings.from_env()
DYNAMODB = aws.client("dynamodb")
S3 = aws.client("s3")


@logger.inject_lambda_context
@aws.named_errors
def start_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Input: {"request": <the execution input>, "execution": <execution ARN>}."""
    request = event.get("request") if isinstance(event, dict) else None
    execution = event.get("execution") if isinstance(event, dict) else None
    if not isinstance(execution, str) or not execution:
        raise InvalidEvent("start export needs {'request': {...}, 'execution': <execution ARN>}")
    table_arn, mode = parse_request(request)
    require_own_table(table_arn, execution_arn(execution))
    pitr_window(DYNAMODB, table_name(table_arn))  # the table exists and can be exported: checked before the lease is taken
    claim_lake_folders(Claims(LAKE.lake_bucket(S3)), LAKE.prefix, table_arn)  # no other table lands in its lake folders
    holder = claim_export_lease(DYNAMODB, SETTINGS.checkpoint_table, table_arn, execution, datetime.now(UTC))
    if holder is not None:
        busy = {"export": False, "tableArn": table_arn, "reason": f"another run is exporting this table: {holder}"}
        logger.info("dynamodb export", extra=busy)
        return busy
    checkpoint, publishing = load_export_state(DYNAMODB, SETTINGS.checkpoint_table, table_arn)
    resumed, forgotten = resume_publishing_export(DYNAMODB, SETTINGS.checkpoint_table, execution, mode, checkpoint, publishing)
    if forgotten:
        logger.warning(forgotten, extra={"tableArn": table_arn})
    if resumed is not None:
        result: dict[str, Any] = {"export": True, **resumed}
    elif (plan := plan_next_export(DYNAMODB, table_arn, mode, checkpoint)) is None:
        release_export_lease(DYNAMODB, SETTINGS.checkpoint_table, table_arn, execution)
        since = iso_utc(checkpoint.exported_to) if checkpoint else "?"
        result = {"export": False, "tableArn": table_arn, "reason": f"less than 15 minutes of changes since {since}"}
    else:
        result = {"export": True, **start_export(DYNAMODB, plan, SETTINGS)}
    logger.info("dynamodb export", extra=result)
    return result


@logger.inject_lambda_context
@aws.named_errors
def poll_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = poll_export(DYNAMODB, event if isinstance(event, dict) else {})
    logger.info("dynamodb export status", extra={"status": result["status"], "exportArn": result["exportArn"]})
    return result


@logger.inject_lambda_context
@aws.named_errors
def release_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """After a failure: {"tableArn": ..., "execution": <execution ARN>} gives up the export lease."""
    if not isinstance(event, dict) or not isinstance(event.get("execution"), str):
        raise InvalidEvent("release needs tableArn and execution")
    table_arn, _ = parse_request({"tableArn": event.get("tableArn")})
    released = release_export_lease(DYNAMODB, SETTINGS.checkpoint_table, table_arn, execution_arn(event["execution"]))
    return {"released": released}


@logger.inject_lambda_context
@aws.named_errors
def publishing_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Before the first lake write: from here on a failed run is finished by the next one, not redone."""
    holder, publishing = parse_publishing(event)
    mark_publishing(DYNAMODB, SETTINGS.checkpoint_table, holder, publishing)
    return {"marked": True}


@logger.inject_lambda_context
@aws.named_errors
def commit_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    table_arn, export_arn, kind, exported_to = parse_commit(event)
    # Executions started before an upgrade run their old definition, which sent no execution: their commit still counts.
    holder = execution_arn(event["execution"]) if event.get("execution") is not None else None
    _, latest = pitr_window(DYNAMODB, table_name(table_arn))
    if exported_to > latest:
        raise InvalidEvent(f"exportedTo {iso_utc(exported_to)} is later than {table_arn} can be exported to ({iso_utc(latest)})")
    committed = commit_checkpoint(DYNAMODB, SETTINGS.checkpoint_table, table_arn, exported_to, export_arn, kind, holder)
    if committed:  # the freshness alarm of the table watches CheckpointsCommitted
        age = (datetime.now(UTC) - exported_to).total_seconds()
        metrics.publish(metrics.DYNAMODB, table_name(table_arn), CheckpointsCommitted=1, CheckpointAge=age)
    if not committed and holder is not None:
        abandon_commit(DYNAMODB, SETTINGS.checkpoint_table, table_arn, holder)
    # A backlog longer than one window: the state machine runs the next window right away.
    more = committed and kind == "INCREMENTAL_EXPORT" and window_end(exported_to, latest) is not None
    result = {"committed": committed, "exportedTo": iso_utc(exported_to), "more": more, "tableArn": table_arn}
    logger.info("checkpoint", extra=result)
    return result
