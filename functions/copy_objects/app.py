"""CopyToLake: plan the copy, copy batches server-side, finalize with _SUCCESS.

Three functions share this code (PlanCopy, CopyBatch, FinalizeCopy in
template.yaml), each with its own handler below.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import aws
from snaplake.core.handler_input import event_object
from snaplake.core.pii import PiiSettings
from snaplake.rds import CopySettings, copy_batches, finalize_copy, plan_copy

logger = Logger()
LAKE = CopySettings.from_env()
S3 = aws.client("s3")
PII = PiiSettings.from_env().protector()


@logger.inject_lambda_context
@aws.named_errors
def plan_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = plan_copy(S3, event_object(event), LAKE, PII)
    logger.info("copy planned", extra={k: v for k, v in result.items() if k != "workers"})
    return result


@logger.inject_lambda_context
@aws.named_errors
def copy_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = copy_batches(S3, event_object(event), LAKE, context.get_remaining_time_in_millis, pii=PII)
    logger.info("copy progress", extra=result)
    return result


@logger.inject_lambda_context
@aws.named_errors
def finalize_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = finalize_copy(S3, event_object(event), LAKE)
    logger.info("copy finalized", extra=result)
    return result
