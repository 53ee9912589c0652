"""The change log: DynamoDB Streams records to Parquet in the lake, each exactly once (`change_log`, `landed`,
`records`; StreamFlattenFunction), and the Firehose transform that flattens JSON records by the same naming rules
(`firehose`, FirehoseFlattenFunction).

Only pyarrow-free names are imported here (the Firehose function has no arrow layer): the change log's entry
points are `snaplake.streams.change_log.flatten_batch` and `snaplake.streams.landed.LakeChangeLog`; an operator's
replay of one failure record is `snaplake.streams.replay.FailureReplay` (its lease: `snaplake.streams.replay_lease`).
"""

from snaplake.streams.errors import (
    FieldNameCollision,
    InvalidReplayRequest,
    MalformedStreamRecord,
    MissingStreamImage,
    ReplayInProgress,
    ReplayLeaseExpired,
    ReplayRangeIncomplete,
    StreamTableFolderTaken,
    UnsupportedStreamViewType,
)
from snaplake.streams.firehose import TransformOutcome, flatten_object, transform_records
from snaplake.streams.settings import CHANGE_LOG_FOLDER, FlattenSettings

__all__ = [
    "CHANGE_LOG_FOLDER",
    "FieldNameCollision",
    "FlattenSettings",
    "InvalidReplayRequest",
    "MalformedStreamRecord",
    "MissingStreamImage",
    "ReplayInProgress",
    "ReplayLeaseExpired",
    "ReplayRangeIncomplete",
    "StreamTableFolderTaken",
    "TransformOutcome",
    "UnsupportedStreamViewType",
    "flatten_object",
    "transform_records",
]
