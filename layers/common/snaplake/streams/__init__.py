"""The change log: DynamoDB Streams records to Parquet in the lake (`change_log`, StreamFlattenFunction), and the
Firehose transform that flattens JSON records by the same naming rules (`firehose`, FirehoseFlattenFunction)."""

from snaplake.streams.errors import MalformedStreamRecord
from snaplake.streams.firehose import TransformOutcome, flatten_object, transform_records
from snaplake.streams.settings import FlattenSettings

__all__ = ["FlattenSettings", "MalformedStreamRecord", "TransformOutcome", "flatten_object", "transform_records"]
