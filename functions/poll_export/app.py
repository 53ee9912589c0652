"""PollExport: report the export task's status; fail on FAILED/CANCELED."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import aws
from snaplake.rds import describe_export, poll_export

logger = Logger()
RDS = aws.client("rds")


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = poll_export(RDS, event if isinstance(event, dict) else {})
    if result["warnings"] and result["done"]:
        full = describe_export(RDS, result["exportTaskIdentifier"])
        logger.warning(
            "export reported skipped tables or other warnings", extra={"warnings": full.warnings if full else result["warnings"]}
        )
    logger.info("export status", extra={"status": result["status"], "percent": result["percentProgress"]})
    return result
