"""Firehose data-transformation Lambda: JSON records flattened to one level (see snaplake.streams.firehose).

No trigger in template.yaml: attach it to a delivery stream's ProcessingConfiguration (docs/streams.md).
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.core.pii import PiiSettings
from snaplake.streams import FlattenSettings, transform_records

logger = Logger()
SETTINGS = FlattenSettings.from_env()
PII = PiiSettings.from_env().protector()


@logger.inject_lambda_context
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    outcome = transform_records(event, SETTINGS, PII)
    for record_id, why in list(outcome.problems.items())[:20]:
        logger.warning("record not transformed", extra={"recordId": record_id, "reason": why})
    logger.info("records transformed", extra=outcome.counts())
    return outcome.response()
