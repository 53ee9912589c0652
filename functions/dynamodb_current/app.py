"""MergeCurrent (statemachine/dynamodb_export.asl.json): advance a DynamoDB table's `<table>_current` Iceberg table by
the export that just landed, one Athena query per call; the state machine polls each query, never this function."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.athena import CurrentClients, CurrentSettings, merge_current
from snaplake.core import aws
from snaplake.core.handler_input import event_object

logger = Logger()
SETTINGS = CurrentSettings.from_env()
CLIENTS = CurrentClients(
    athena=aws.client("athena"), glue=aws.client("glue"), s3=aws.client("s3"), dynamodb=aws.client("dynamodb"), events=aws.client("events")
)


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    cursor = merge_current(CLIENTS, SETTINGS, event_object(event))
    logger.info("current table step", extra={k: cursor.get(k) for k in ("label", "queryExecutionId", "status", "done", "upkeep")})
    return cursor
