"""FilterSnapshot: decide whether (and which) snapshot to export."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import aws
from snaplake.core.settings import LakeSettings
from snaplake.rds import SourceSelection, decide

logger = Logger()
SELECTION = SourceSelection.from_env()
LAKE = LakeSettings.from_env()  # where PlanCopy records which export owns each source's snapshot time
RDS = aws.client("rds")
S3 = aws.client("s3")


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    decision = decide(RDS, event, SELECTION.patterns, LAKE.lake_bucket(S3), LAKE.prefix)
    logger.info("snapshot decision", extra=decision)
    return decision
