"""StartExport: start the snapshot's export task exactly once."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import aws
from snaplake.rds import ExportSettings, start_export

logger = Logger()
SETTINGS = ExportSettings.from_env()
RDS = aws.client("rds")


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = start_export(RDS, event if isinstance(event, dict) else {}, SETTINGS)
    logger.info("export task", extra=result)
    return result
