"""DynamoDB stream event -> change-log Parquet in the lake, with a partial batch response.

Runs with the arrow layer (pyarrow). See snaplake.streams.change_log for keys and failure handling.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core import LakeSettings, aws
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import flatten_batch, lake_writer

logger = Logger()
SETTINGS = LakeSettings.from_env()
OPTIONS = ConvertOptions()
S3 = aws.client("s3")
WRITE = lake_writer(SETTINGS.lake_bucket(S3))


@logger.inject_lambda_context
@aws.named_errors
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    outcome = flatten_batch(event, SETTINGS.prefix, OPTIONS, WRITE)
    for sequence, why in outcome.problems.items():
        logger.warning("stream record not processed", extra={"sequenceNumber": sequence, "reason": why})
    logger.info(
        "change log written",
        extra={"objects": [o.key for o in outcome.written], "rows": sum(o.rows for o in outcome.written), "reported": len(outcome.failed)},
    )
    return outcome.response()
