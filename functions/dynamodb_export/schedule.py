"""On the schedule: start one DynamoDB export execution per table."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import aws
from snaplake.dynamodb import ScheduleSettings, start_table_executions

logger = Logger()
SETTINGS = ScheduleSettings.from_env()
SFN = aws.client("stepfunctions")


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """{"tableArns": [...], "mode": ..., "scheduledTime": ...} -> one execution per table."""
    started = start_table_executions(SFN, SETTINGS.state_machine_arn, event)
    logger.info("scheduled exports", extra={"executions": started})
    return {"executions": started}
