"""RegisterCatalog: make what just landed queryable in Athena (Glue tables and partitions).

Two functions share this code (see template.yaml): one for RDS exports (the
copy's landed manifest), one for DynamoDB exports (the published partitions).
"""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from snaplake import aws
from snaplake.catalog import CatalogOptions, dynamodb_partitions, parse_landed_manifest, register_landed, register_partition
from snaplake.errors import ConfigError, InvalidEvent, LandedManifestInvalid
from snaplake.handler_input import athena_identifier, bucket, event_object, s3_key
from snaplake.lake_keys import athena_name

logger = Logger()
OPTIONS = CatalogOptions.from_env()
LAKE_BUCKET = os.environ.get("LAKE_BUCKET", "")
if not LAKE_BUCKET:
    raise ConfigError("environment variable LAKE_BUCKET is required")
DATABASE_PREFIX = athena_name(os.environ.get("GLUE_DATABASE_PREFIX", "")) if os.environ.get("GLUE_DATABASE_PREFIX") else ""
DYNAMODB_DATABASE = athena_name(os.environ.get("DYNAMODB_GLUE_DATABASE", "dynamodb"))
GLUE = aws.client("glue")
S3 = aws.client("s3")


@logger.inject_lambda_context
@aws.named_errors
def rds_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """{"landedManifest": {"bucket", "key"}}: one Glue table per exported table, one database per source database."""
    manifest = event_object(event).get("landedManifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("bucket"), str) or not isinstance(manifest.get("key"), str):
        raise InvalidEvent("register catalog needs 'landedManifest' {'bucket', 'key'} from FinalizeCopy")
    where = f"s3://{bucket(manifest['bucket'], 'landedManifest.bucket')}/{s3_key(manifest['key'], 'landedManifest.key')}"
    owner = {"ExpectedBucketOwner": os.environ["EXPORT_BUCKET_OWNER"]} if os.environ.get("EXPORT_BUCKET_OWNER") else {}
    try:
        body = S3.get_object(Bucket=manifest["bucket"], Key=manifest["key"], **owner)["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("NoSuchKey", "NoSuchBucket", "404"):
            raise
        raise LandedManifestInvalid(f"landed manifest {where} does not exist") from None
    landed = parse_landed_manifest(body, where, lake_bucket=LAKE_BUCKET)
    for table in landed["tables"]:
        table["database"] = f"{DATABASE_PREFIX}{table['database']}"
    registered = [r.as_json() for r in register_landed(GLUE, S3, landed, options=OPTIONS)]
    logger.info("catalog registered", extra={"tables": len(registered)})
    return {"registered": registered}


@logger.inject_lambda_context
@aws.named_errors
def dynamodb_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """{"kind": "full"|"incremental", "table": <name>, "partitions": [<lake prefix>, ...]}."""
    request = event_object(event)
    kind, table, partitions = request.get("kind"), request.get("table"), request.get("partitions")
    if kind not in ("full", "incremental") or not isinstance(table, str) or not isinstance(partitions, list):
        raise InvalidEvent("register catalog needs 'kind', 'table' and 'partitions' from FinalizeConversion")
    athena_identifier(table, "table")
    prefixes = dynamodb_partitions(kind, table, partitions)
    name = table if kind == "full" else athena_identifier(f"{table}_changes", "table")
    registered = [
        register_partition(
            GLUE,
            S3,
            database=f"{DATABASE_PREFIX}{DYNAMODB_DATABASE}",
            table=name,
            bucket=LAKE_BUCKET,
            partition_prefix=prefix,
            options=OPTIONS,
        ).as_json()
        for prefix in prefixes
    ]
    logger.info("catalog registered", extra={"table": name, "partitions": len(registered)})
    return {"registered": registered}
