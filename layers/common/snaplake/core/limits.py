"""AWS service limits the pipelines are built around, each named after the service (and call) that imposes it.

Sources: the service quotas and API references of S3, Glue, Athena, RDS, DynamoDB,
Lambda, Firehose and Step Functions. Designed for, not discovered: code that
batches, splits or refuses because of a limit uses the constant here.
"""

from datetime import timedelta

# --- S3
S3_COPY_OBJECT_MAX_BYTES = 5 * 1024**3  # CopyObject copies at most 5 GiB; larger objects need UploadPartCopy
S3_MULTIPART_MAX_PARTS = 10_000
S3_KEY_MAX_BYTES = 1024
S3_DELETE_OBJECTS_MAX_KEYS = 1000  # DeleteObjects' per-call maximum

# --- Glue
GLUE_BATCH_CREATE_PARTITION_MAX = 100  # BatchCreatePartition's PartitionInputList
GLUE_BATCH_UPDATE_PARTITION_MAX = 100  # BatchUpdatePartition's Entries
GLUE_BATCH_DELETE_PARTITION_MAX = 25  # BatchDeletePartition's PartitionsToDelete
GLUE_NAME_MAX = 255  # database, table and column names

# --- Athena
ATHENA_MAX_PARTITIONS_PER_QUERY = 100  # open writers per CTAS / INSERT INTO (HIVE_TOO_MANY_OPEN_PARTITIONS)

# --- RDS snapshot export
RDS_MAX_CONCURRENT_EXPORTS = 5  # per account and region
RDS_EXPORT_TASK_IDENTIFIER_MAX = 60

# --- DynamoDB
DYNAMODB_INCREMENTAL_EXPORT_MIN_WINDOW = timedelta(minutes=15)
DYNAMODB_INCREMENTAL_EXPORT_MAX_WINDOW = timedelta(hours=24)
DYNAMODB_MAX_NESTING_DEPTH = 32  # maps and lists inside one another
DYNAMODB_LIST_EXPORTS_MAX_RESULTS = 25

# --- EventBridge
EVENTBRIDGE_PUT_EVENTS_MAX_ENTRIES = 10  # PutEvents' Entries per call
EVENTBRIDGE_PUT_EVENTS_MAX_BYTES = 256 * 1024  # the entries of one PutEvents call together (EventBridge's entry size)

# --- Lambda, Firehose, Step Functions
LAMBDA_SYNC_RESPONSE_MAX_BYTES = 6 * 1024 * 1024  # a synchronous invocation's response (Firehose transforms share it)
FIREHOSE_RECORD_MAX_BYTES = 1000 * 1024  # one record, before base64
STEP_FUNCTIONS_PAYLOAD_MAX_BYTES = 256 * 1024  # a state's input or output
