"""FilterSnapshot: decide whether (and which) snapshot to export."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import aws
from snaplake.rds import SourceSelection, decide

logger = Logger()
SELECTION = SourceSelection.from_env()
RDS = aws.client("rds")


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    decision = decide(RDS, event, SELECTION.patterns)
    logger.info("snapshot decision", extra=decision)
    return decision
