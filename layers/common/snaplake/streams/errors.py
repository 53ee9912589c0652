"""Errors of the DynamoDB Streams change log and the Firehose transform."""

from snaplake.core.errors import SnaplakeError


class MalformedStreamRecord(SnaplakeError):
    """A stream record (or the event holding them) is not what this pipeline can convert; the message says why."""


class MissingStreamImage(MalformedStreamRecord):
    """A stream record lacks an image its event needs (INSERT: NewImage; MODIFY: both; REMOVE: OldImage).

    Reported for that record alone: nothing is written for it, so a KEYS_ONLY / NEW_IMAGE / OLD_IMAGE record
    never lands as a change without its images.
    """


class UnsupportedStreamViewType(MalformedStreamRecord):
    """The stream (DescribeStream at first use) or a record (`dynamodb.StreamViewType`) is not NEW_AND_OLD_IMAGES."""


class StreamTableFolderTaken(SnaplakeError):
    """The change-log folder of a table (its Athena-safe name) is claimed by another table ARN (`Orders` vs `orders`)."""


class FieldNameCollision(SnaplakeError):
    """Two fields of one Firehose record would become the same column (`Foo` and `foo`; `a b.c` and `a_b__c`).

    Refused (ProcessingFailed, the original kept in Firehose's processing-failed/ output) rather than renamed per
    record: a suffix given per record would make one column hold `Foo` in some records and `foo` in others.
    """


class UnsafePartitionKey(SnaplakeError):
    """A Firehose partition key value would change the S3 path under dynamic partitioning (empty, `.`, `..`, `/`, a
    control character, or a character Athena escapes in folder names): the record fails (ProcessingFailed), never encoded."""


class InvalidReplayRequest(SnaplakeError):
    """A replay request is not `{"replayFailure": <body>}` with the body of one on-failure record of this function's
    DynamoDB stream mapping (DDBStreamBatchInfo: shard, sequence range, stream ARN); nothing was read or written."""


class ReplayInProgress(SnaplakeError):
    """Another replay of the same shard holds its replay lease (until its invocation's timeout has passed); nothing was
    read or written. Two replays at once could both find a record missing and both write it."""


class ReplayRangeIncomplete(SnaplakeError):
    """The stream did not give back every record of the failure's range (trimmed after 24 hours, the stream disabled,
    or the range not found in the shard); nothing was written."""


class ReplayLeaseExpired(SnaplakeError):
    """A replay reached its invocation's deadline, after which its lease may be another replay's: it writes nothing more."""
