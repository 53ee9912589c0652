"""ConvertToParquet steps: Plan, ScanFiles, MergeSchema, ConvertFiles, Finalize.

Five functions share this code (see template.yaml), one handler each; they
run with the arrow layer (pyarrow).
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import aws
from snaplake.core.handler_input import event_object
from snaplake.core.pii import PiiSettings
from snaplake.dynamodb import (
    ConversionSettings,
    convert_files,
    finalize_conversion,
    merge_schemas,
    plan_conversion,
    publish_share,
    scan_files,
)

logger = Logger()
SETTINGS = ConversionSettings.from_env()
S3 = aws.client("s3")
PII = PiiSettings.from_env().protector()


@logger.inject_lambda_context
@aws.named_errors
def plan_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = plan_conversion(S3, event_object(event), SETTINGS)
    logger.info("conversion planned", extra={k: v for k, v in result.items() if k != "workers"})
    return result


@logger.inject_lambda_context
@aws.named_errors
def scan_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return scan_files(S3, event_object(event), SETTINGS, context.get_remaining_time_in_millis)


@logger.inject_lambda_context
@aws.named_errors
def merge_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = merge_schemas(S3, event_object(event), SETTINGS)
    logger.info("schema merged", extra=result)
    return result


@logger.inject_lambda_context
@aws.named_errors
def convert_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return convert_files(S3, event_object(event), SETTINGS, context.get_remaining_time_in_millis, pii=PII)


@logger.inject_lambda_context
@aws.named_errors
def publish_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return publish_share(S3, event_object(event), SETTINGS, context.get_remaining_time_in_millis)


@logger.inject_lambda_context
@aws.named_errors
def finalize_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    result = finalize_conversion(S3, event_object(event), SETTINGS)
    logger.info("conversion finalized", extra=result)
    return result
