"""Settings of the RDS/Aurora snapshot pipeline's functions (see snaplake.core.settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from snaplake.core.errors import ConfigError
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
from snaplake.rds.errors import InvalidKeyTemplate
from snaplake.rds.layout import DEFAULT_KEY_TEMPLATE, KeyTemplate

SOURCE_IDENTIFIERS = Setting(
    "SOURCE_IDENTIFIERS", None, "comma-separated identifiers or glob patterns of the sources to export; '*' exports every source"
)
EXPORT_PREFIX = Setting("EXPORT_PREFIX", "", "where in the export bucket RDS writes snapshot exports")
# StartExportTask's S3Prefix: at most 60 characters (observed; the API model states no limit) and no ':'. RDS rewrites
# space, backtick, double quote and backslash to '_' in S3 paths, so the prefix keeps to characters it leaves alone.
EXPORT_PREFIX_MAX_CHARS = 60
EXPORT_PREFIX_PATTERN = re.compile(r"^([A-Za-z0-9_=.-]+(/[A-Za-z0-9_=.-]+)*)?$")
EXPORT_ROLE_ARN = Setting("EXPORT_ROLE_ARN", None, "the role RDS assumes to write the export")
EXPORT_ONLY = Setting("EXPORT_ONLY", "", "comma-separated databases/schemas/tables to export (ExportOnly); all when empty")
LAKE_KEY_TEMPLATE = Setting("LAKE_KEY_TEMPLATE", DEFAULT_KEY_TEMPLATE, "the lake key of each exported file")
LAKE_OBJECT_ACL = Setting(
    "LAKE_OBJECT_ACL", "bucket-owner-full-control", "the canned ACL of copied objects ('' for none)", blank_is_default=False
)
COPY_BATCH_SIZE = Setting("COPY_BATCH_SIZE", "1000", "objects per copy batch")
COPY_THREADS = Setting("COPY_THREADS", "16", "copies in flight per worker")


@dataclass(frozen=True)
class SourceSelection:
    """Which clusters/instances are exported: exact identifiers or glob patterns."""

    patterns: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Env | None = None) -> SourceSelection:
        env = environ() if env is None else env
        patterns = SOURCE_IDENTIFIERS.items(env)
        if not patterns:
            raise ConfigError(f"environment variable SOURCE_IDENTIFIERS is required ({SOURCE_IDENTIFIERS.about})")
        return cls(patterns)


@dataclass(frozen=True)
class ExportSettings:
    """Where and how RDS writes a snapshot export."""

    bucket: str
    prefix: str
    role_arn: str
    kms_key_arn: str
    export_only: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Env | None = None) -> ExportSettings:
        env = environ() if env is None else env
        role = EXPORT_ROLE_ARN.text(env)
        if not role.startswith("arn:") or ":role/" not in role:
            raise ConfigError(f"environment variable EXPORT_ROLE_ARN={role!r} is not an IAM role ARN")
        kms_key = EXPORT_KMS_KEY_ARN.text(env)
        if not kms_key:
            raise ConfigError("environment variable EXPORT_KMS_KEY_ARN is required (RDS encrypts every export with a KMS key)")
        prefix = EXPORT_PREFIX.prefix(env)
        if len(prefix) > EXPORT_PREFIX_MAX_CHARS or not EXPORT_PREFIX_PATTERN.match(prefix):
            raise ConfigError(
                f"environment variable EXPORT_PREFIX={prefix[:100]!r} must be at most {EXPORT_PREFIX_MAX_CHARS} characters of "
                "A-Z a-z 0-9 _ = . - in '/'-separated segments (StartExportTask's S3Prefix)"
            )
        return cls(
            bucket=EXPORT_BUCKET.bucket(env),
            prefix=prefix,
            role_arn=role,
            kms_key_arn=kms_key,
            export_only=EXPORT_ONLY.items(env),
        )


@dataclass(frozen=True)
class CopySettings:
    """Where exported objects land and how they are copied there (PlanCopy, CopyBatch, FinalizeCopy)."""

    bucket: str
    prefix: str
    key_template: KeyTemplate
    kms_key_arn: str | None
    bucket_owner: str | None
    source_bucket_owner: str | None
    object_acl: str | None
    batch_size: int
    workers: int
    threads: int
    plan_prefix: str = PLAN_PREFIX.default or ""

    @classmethod
    def from_env(cls, env: Env | None = None) -> CopySettings:
        env = environ() if env is None else env
        lake = LakeSettings.from_env(env)
        acl = LAKE_OBJECT_ACL.text(env)
        if acl not in ("", "bucket-owner-full-control"):
            raise ConfigError("environment variable LAKE_OBJECT_ACL must be '' or 'bucket-owner-full-control'")
        try:
            template = KeyTemplate.parse(LAKE_KEY_TEMPLATE.text(env))
        except InvalidKeyTemplate as error:
            raise ConfigError(f"environment variable LAKE_KEY_TEMPLATE: {error}") from None
        return cls(
            bucket=lake.bucket,
            prefix=lake.prefix,
            key_template=template,
            kms_key_arn=lake.kms_key_arn,
            bucket_owner=lake.bucket_owner,
            source_bucket_owner=EXPORT_BUCKET_OWNER.account(env),
            object_acl=acl or None,
            batch_size=COPY_BATCH_SIZE.integer(env, 1, 5000),
            workers=COPY_WORKERS.integer(env, 1, 40),
            threads=COPY_THREADS.integer(env, 1, 64),
            plan_prefix=PLAN_PREFIX.prefix(env),
        )

    def lake(self, s3: Any) -> Bucket:
        return Bucket(s3, self.bucket, self.bucket_owner, self.kms_key_arn, self.object_acl, lake=True)

    def export(self, s3: Any, bucket: str) -> Bucket:
        """The export bucket named by the step's input (the copy's source, and where its plan is kept)."""
        return Bucket(s3, bucket, self.source_bucket_owner)
