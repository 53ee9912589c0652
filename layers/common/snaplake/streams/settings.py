"""Settings of the change-log functions (see snaplake.core.settings); the stream function uses the lake's
settings (snaplake.core.settings.LakeSettings) only."""

from __future__ import annotations

from dataclasses import dataclass

from snaplake.core.limits import LAMBDA_SYNC_RESPONSE_MAX_BYTES
from snaplake.core.settings import Env, Setting, environ

# The stream change log's folder in the lake (apart from the incremental exports' dynamodb_changes/).
CHANGE_LOG_FOLDER = "dynamodb_stream_changes"
PARTITION_KEY_FIELDS = Setting("PARTITION_KEY_FIELDS", "", "comma-separated flattened fields returned as Firehose partition keys")
FLATTEN_MAX_DEPTH = Setting("FLATTEN_MAX_DEPTH", "3", "nested objects are flattened to this many path segments")


@dataclass(frozen=True)
class FlattenSettings:
    """The Firehose transform: how records are flattened and which fields become partition keys."""

    separator: str = "__"
    max_depth: int = 3
    partition_key_fields: tuple[str, ...] = ()
    max_response_bytes: int = LAMBDA_SYNC_RESPONSE_MAX_BYTES

    @classmethod
    def from_env(cls, env: Env | None = None) -> FlattenSettings:
        env = environ() if env is None else env
        return cls(max_depth=FLATTEN_MAX_DEPTH.integer(env, 1, 32), partition_key_fields=PARTITION_KEY_FIELDS.items(env))
