"""Settings of the DynamoDB export pipeline's functions (see snaplake.core.settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snaplake.core.s3 import Bucket
from snaplake.core.settings import (
    COPY_WORKERS,
    EXPORT_BUCKET,
    EXPORT_BUCKET_OWNER,
    EXPORT_KMS_KEY_ARN,
    PLAN_PREFIX,
    Env,
    LakeSettings,
    Setting,
    environ,
)

DYNAMODB_EXPORT_PREFIX = Setting(
    "DYNAMODB_EXPORT_PREFIX",
    "dynamodb-exports",
    "where in the export bucket DynamoDB writes exports (blank: the root)",
    blank_is_default=False,
)
CHECKPOINT_TABLE = Setting("CHECKPOINT_TABLE", None, "the DynamoDB table holding each source table's checkpoint and export lease")
DYNAMODB_EXPORT_STATE_MACHINE_ARN = Setting(
    "DYNAMODB_EXPORT_STATE_MACHINE_ARN", None, "the state machine the schedule starts one execution of per table"
)


@dataclass(frozen=True)
class DynamoDbExportSettings:
    """Where DynamoDB exports go, and the checkpoint table (StartExport, PollExport, MarkPublishing, CommitCheckpoint, ReleaseLease)."""

    bucket: str
    prefix: str
    bucket_owner: str | None
    kms_key_arn: str | None
    checkpoint_table: str

    @classmethod
    def from_env(cls, env: Env | None = None) -> DynamoDbExportSettings:
        env = environ() if env is None else env
        return cls(
            bucket=EXPORT_BUCKET.bucket(env),
            prefix=DYNAMODB_EXPORT_PREFIX.prefix(env),
            bucket_owner=EXPORT_BUCKET_OWNER.account(env),
            kms_key_arn=EXPORT_KMS_KEY_ARN.optional(env),
            checkpoint_table=CHECKPOINT_TABLE.text(env),
        )


@dataclass(frozen=True)
class ConversionSettings:
    """The lake and the export bucket's owner, as the conversion steps (PlanConversion .. FinalizeConversion) use them."""

    bucket: str
    prefix: str
    bucket_owner: str | None
    kms_key_arn: str | None
    export_bucket_owner: str | None
    workers: int
    plan_prefix: str = PLAN_PREFIX.default or ""

    @classmethod
    def from_env(cls, env: Env | None = None) -> ConversionSettings:
        env = environ() if env is None else env
        lake = LakeSettings.from_env(env)
        return cls(
            bucket=lake.bucket,
            prefix=lake.prefix,
            bucket_owner=lake.bucket_owner,
            kms_key_arn=lake.kms_key_arn,
            export_bucket_owner=EXPORT_BUCKET_OWNER.account(env),
            workers=COPY_WORKERS.integer(env, 1, 40),
            plan_prefix=PLAN_PREFIX.prefix(env),
        )

    def lake(self, s3: Any) -> Bucket:
        return Bucket(s3, self.bucket, self.bucket_owner, self.kms_key_arn, lake=True)

    def export(self, s3: Any, bucket: str) -> Bucket:
        return Bucket(s3, bucket, self.export_bucket_owner)


@dataclass(frozen=True)
class ScheduleSettings:
    """The schedule's fan-out function: which state machine to start."""

    state_machine_arn: str

    @classmethod
    def from_env(cls, env: Env | None = None) -> ScheduleSettings:
        env = environ() if env is None else env
        return cls(DYNAMODB_EXPORT_STATE_MACHINE_ARN.text(env))
