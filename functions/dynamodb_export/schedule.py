"""On the schedule: start one DynamoDB export execution per table."""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake import aws
from snaplake.ddb_export import start_table_executions
from snaplake.errors import ConfigError

logger = Logger()
STATE_MACHINE_ARN = os.environ.get("DYNAMODB_EXPORT_STATE_MACHINE_ARN", "")
if not STATE_MACHINE_ARN:
    raise ConfigError("environment variable DYNAMODB_EXPORT_STATE_MACHINE_ARN is required")
SFN = aws.client("stepfunctions")


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """{"tableArns": [...], "mode": ..., "scheduledTime": ...} -> one execution per table."""
    started = start_table_executions(SFN, STATE_MACHINE_ARN, event)
    logger.info("scheduled exports", extra={"executions": started})
    return {"executions": started}
