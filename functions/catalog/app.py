"""RegisterCatalog: make what just landed queryable in Athena (Glue tables and partitions).

Two functions share this code (see template.yaml): one for RDS exports (the
copy's landed manifest), one for DynamoDB exports (the published partitions).
"""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.catalog import (
    CatalogSettings,
    LandedManifestInvalid,
    catalog_client,
    dynamodb_landings,
    dynamodb_partitions,
    expire_change_log,
    expire_snapshots,
    landing_event_bus,
    parse_landed_manifest,
    put_landing_events,
    rds_landings,
    register_landed,
    register_partition,
)
from snaplake.core import Bucket, InvalidEvent, aws, is_not_found
from snaplake.core.handler_input import athena_identifier, bucket, event_object, s3_key

logger = Logger()
SETTINGS = CatalogSettings.from_env()
GLUE = catalog_client(SETTINGS.options)
S3 = aws.client("s3")
EVENTS, LANDING_EVENT_BUS = aws.client("events"), landing_event_bus()
LAKE = Bucket(S3, SETTINGS.lake_bucket, SETTINGS.options.expected_bucket_owner)


@logger.inject_lambda_context
@aws.named_errors
def rds_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """{"landedManifest": {"bucket", "key"}}: one Glue table per exported table, one database per source database."""
    manifest = event_object(event).get("landedManifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("bucket"), str) or not isinstance(manifest.get("key"), str):
        raise InvalidEvent("register catalog needs 'landedManifest' {'bucket', 'key'} from FinalizeCopy")
    plans = Bucket(S3, bucket(manifest["bucket"], "landedManifest.bucket"), SETTINGS.export_bucket_owner)
    key = s3_key(manifest["key"], "landedManifest.key")
    try:
        body = plans.read_bytes(key)
    except Exception as error:
        if not is_not_found(error):
            raise
        raise LandedManifestInvalid(f"landed manifest {plans.uri(key)} does not exist") from None
    landed = parse_landed_manifest(body, plans.uri(key), lake_bucket=SETTINGS.lake_bucket)
    for table in landed["tables"]:
        table["database"] = f"{SETTINGS.database_prefix}{table['database']}"
    registrations = register_landed(GLUE, S3, landed, options=SETTINGS.options)
    registered = [r.as_json() for r in registrations]
    put_landing_events(EVENTS, LANDING_EVENT_BUS, rds_landings(event_object(event), landed, registered))
    retention = expire_snapshots(GLUE, LAKE, registrations, SETTINGS.snapshot_retention, datetime.now(UTC), SETTINGS.options)
    logger.info("catalog registered", extra={"tables": len(registrations)})
    return {"registered": registered, "retention": [r.as_json() for r in retention]}


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
            database=f"{SETTINGS.database_prefix}{SETTINGS.dynamodb_database}",
            table=name,
            bucket=SETTINGS.lake_bucket,
            partition_prefix=prefix,
            options=SETTINGS.options,
        ).as_json()
        for prefix in prefixes
    ]
    put_landing_events(EVENTS, LANDING_EVENT_BUS, dynamodb_landings(request, prefixes, registered))
    retention = []
    if kind == "incremental":
        database = f"{SETTINGS.database_prefix}{SETTINGS.dynamodb_database}"
        retention = expire_change_log(GLUE, LAKE, database, name, SETTINGS.change_log_retention, datetime.now(UTC), SETTINGS.options)
    logger.info("catalog registered", extra={"table": name, "partitions": len(registered)})
    return {"registered": registered, "retention": [r.as_json() for r in retention]}
