"""DynamoDB stream event -> change-log Parquet in the lake (each record exactly once), with a partial batch response.

Runs with the arrow layer (pyarrow). See snaplake.streams.change_log for failure handling and
snaplake.streams.landed for keys and the exactly-once check. Before the batch's objects are written, their Glue
table (`<table>_stream_changes` in the DynamoDB database, partition projection on dt/hour) is created or given the
objects' new columns, so what lands is queryable without a registration step; a Glue failure fails the batch
before anything is written (docs/streams.md).

Two kinds of event, and nothing else: the event source mapping's `{"Records": [...]}`, and an operator's
`{"replayFailure": <StreamFailureQueue message body>}`, which replays exactly the range of that one failure record
from the stream (snaplake.streams.replay; docs/operations.md, StreamFailureAlarm). Any other event is refused by
name (MalformedStreamRecord, InvalidReplayRequest) and writes nothing.
"""

import time
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.catalog import CatalogSettings, Column, catalog_client, conform_to_table, get_table, register_projected_table, schema_columns
from snaplake.core import LakeSettings, aws
from snaplake.core.pii import PiiSettings
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import ChangeObject, parquet_bytes, plan_batch, publish_metrics, write_batch
from snaplake.streams.landed import STREAM_TABLE_SUFFIX, LakeChangeLog
from snaplake.streams.replay import FailureReplay, is_replay_request, replay_request
from snaplake.streams.replay_lease import LakeReplayLeases

logger = Logger()
SETTINGS = LakeSettings.from_env()
CATALOG = CatalogSettings.from_env()
OPTIONS = ConvertOptions()
PII = PiiSettings.from_env().protector()
GLUE = catalog_client(CATALOG.options)
STREAMS = aws.client("dynamodbstreams")
LAKE = SETTINGS.lake_bucket(aws.client("s3"))
# Per container: claims, column names and the stream's view type are looked up once ...
STORE = LakeChangeLog(LAKE, STREAMS, SETTINGS.prefix)
LEASES = LakeReplayLeases(LAKE)
# ... and so are the columns each change-log Glue table already has.
KNOWN_COLUMNS: dict[str, set[Column]] = {}


def register_tables(objects: list[ChangeObject]) -> None:
    """Make each object fit its Glue table (a column the table cannot read is cast exactly or moved to its typed
    column, snaplake.catalog.conform), replacing it in `objects`, then give the table the object's new columns
    (creating the table if need be)."""
    database = f"{CATALOG.database_prefix}{CATALOG.dynamodb_database}"
    for index, change in enumerate(objects):
        partition = change.key.rsplit("/", 1)[0] + "/"  # <prefix>/dynamodb_stream_changes/<table>/dt=.../hour=.../
        table = partition.rstrip("/").split("/")[-3] + STREAM_TABLE_SUFFIX
        if set(schema_columns(pq.read_schema(pa.BufferReader(change.body)))) <= KNOWN_COLUMNS.get(table, set()):
            continue
        existing = get_table(GLUE, database, table, CATALOG.options)
        registered = {c["Name"]: c["Type"] for c in (existing or {}).get("StorageDescriptor", {}).get("Columns", [])}
        rows = pq.read_table(pa.BufferReader(change.body))
        conformed = conform_to_table(table, rows, registered)
        if conformed is not rows:
            change = objects[index] = replace(change, body=parquet_bytes(conformed))
        changed = register_projected_table(
            GLUE,
            database=database,
            table=table,
            bucket=SETTINGS.bucket,
            partition_prefix=partition,
            columns=schema_columns(conformed.schema),
            options=CATALOG.options,
        )
        KNOWN_COLUMNS[table] = set(changed.columns)


def replay_failure(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Replay the range of one StreamFailureQueue message; the answer says whether every record is now in the lake."""
    failure = replay_request(event, context.invoked_function_arn)
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000
    replay = FailureReplay(failure, SETTINGS.prefix, OPTIONS, STORE, LEASES, STREAMS, context.aws_request_id, deadline, pii=PII)
    outcome = replay.run(register_tables)
    for sequence, why in outcome.not_landed.items():
        logger.warning("stream record not processed", extra={"sequenceNumber": sequence, "reason": why, "replay": True})
    response = outcome.response()
    logger.info("stream failure replayed", extra={key: value for key, value in response.items() if key != "notLanded"})
    return response


@logger.inject_lambda_context
@aws.named_errors
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if is_replay_request(event):
        return replay_failure(event, context)
    plan = plan_batch(event, SETTINGS.prefix, OPTIONS, STORE, PII)
    register_tables(plan.objects)
    outcome = write_batch(plan, STORE)
    publish_metrics(event, outcome)
    for sequence, why in outcome.problems.items():
        logger.warning("stream record not processed", extra={"sequenceNumber": sequence, "reason": why})
    logger.info(
        "change log written",
        extra={
            "objects": [o.key for o in outcome.written],
            "rows": sum(o.rows for o in outcome.written),
            "alreadyLanded": outcome.skipped,
            "reported": len(outcome.failed),
        },
    )
    return outcome.response()
