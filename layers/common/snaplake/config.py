"""Configuration read once from environment variables into frozen dataclasses.

Each handler builds the settings it needs at import time, so a misconfigured
function fails on its first invocation with a message naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snaplake.errors import ConfigError, InvalidKeyTemplate
from snaplake.lake_keys import DEFAULT_KEY_TEMPLATE, KeyTemplate

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")


def _get(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, default)
    if value is None or value.strip() == "":
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is required")
    return value.strip()


def _bucket(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name)
    if not _BUCKET_RE.match(value):
        raise ConfigError(f"environment variable {name}={value!r} is not a valid S3 bucket name")
    return value


def _prefix(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip().strip("/")
    if ":" in value or ".." in value.split("/") or "//" in value:
        raise ConfigError(f"environment variable {name}={value!r} must not contain ':', '..' or '//'")
    return value


def _optional_account(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if not _ACCOUNT_RE.match(value):
        raise ConfigError(f"environment variable {name}={value!r} must be a 12-digit account id")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"environment variable {name}={value} must be between {low} and {high}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _key_template(env: Mapping[str, str]) -> KeyTemplate:
    try:
        return KeyTemplate.parse(env.get("LAKE_KEY_TEMPLATE", "").strip() or DEFAULT_KEY_TEMPLATE)
    except InvalidKeyTemplate as error:
        raise ConfigError(f"environment variable LAKE_KEY_TEMPLATE: {error}") from None


def lake_write_args(bucket: str, bucket_owner: str | None, kms_key_arn: str | None) -> dict[str, Any]:
    """What every object written to the lake carries: the owner check and the lake's KMS key."""
    args: dict[str, Any] = {"Bucket": bucket}
    if bucket_owner:
        args["ExpectedBucketOwner"] = bucket_owner
    if kms_key_arn:
        args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_arn, BucketKeyEnabled=True)
    return args


@dataclass(frozen=True)
class SourceSelection:
    """Which clusters/instances are exported: exact identifiers or glob patterns."""

    patterns: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SourceSelection:
        patterns = _list(env, "SOURCE_IDENTIFIERS")
        if not patterns:
            raise ConfigError(
                "environment variable SOURCE_IDENTIFIERS is required "
                "(comma-separated identifiers or glob patterns; '*' exports every source)"
            )
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
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ExportSettings:
        role = _get(env, "EXPORT_ROLE_ARN")
        if not role.startswith("arn:") or ":role/" not in role:
            raise ConfigError(f"environment variable EXPORT_ROLE_ARN={role!r} is not an IAM role ARN")
        return cls(
            bucket=_bucket(env, "EXPORT_BUCKET"),
            prefix=_prefix(env, "EXPORT_PREFIX"),
            role_arn=role,
            kms_key_arn=_get(env, "EXPORT_KMS_KEY_ARN"),
            export_only=_list(env, "EXPORT_ONLY"),
        )


@dataclass(frozen=True)
class LakeSettings:
    """Where exported objects land and how they are copied there."""

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

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LakeSettings:
        acl = env.get("LAKE_OBJECT_ACL", "bucket-owner-full-control").strip()
        if acl not in ("", "bucket-owner-full-control"):
            raise ConfigError("environment variable LAKE_OBJECT_ACL must be '' or 'bucket-owner-full-control'")
        return cls(
            bucket=_bucket(env, "LAKE_BUCKET"),
            prefix=_prefix(env, "LAKE_PREFIX"),
            key_template=_key_template(env),
            kms_key_arn=env.get("LAKE_KMS_KEY_ARN", "").strip() or None,
            bucket_owner=_optional_account(env, "LAKE_BUCKET_OWNER"),
            source_bucket_owner=_optional_account(env, "EXPORT_BUCKET_OWNER"),
            object_acl=acl or None,
            batch_size=_int(env, "COPY_BATCH_SIZE", 1000, 1, 5000),
            workers=_int(env, "COPY_WORKERS", 8, 1, 40),
            threads=_int(env, "COPY_THREADS", 16, 1, 64),
        )


_WORK_GROUP_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _s3_folder(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([A-Za-z0-9_=.-]+/)*", value):
        raise ConfigError(f"environment variable {name}={value!r} must be an s3://bucket/prefix/ folder ending with '/'")
    return value


@dataclass(frozen=True)
class AthenaSettings:
    """Where Athena SQL jobs run and keep their files.

    ATHENA_WORK_GROUP (default primary); ATHENA_OUTPUT_LOCATION (query results) and
    ATHENA_WORK_LOCATION (plans and schema probes) default to `_snaplake/athena/...`
    under LAKE_PREFIX in LAKE_BUCKET; a job's default table folder is `athena/<database>/<table>/` there.
    GLUE_DATABASE_PREFIX: the databases the jobs may use begin with it (the function's Glue grants do).
    """

    work_group: str
    glue_database_prefix: str
    lake_root: str  # s3://<LAKE_BUCKET>/<LAKE_PREFIX>/: where the jobs may write
    output_location: str
    work_location: str
    tables_location: str
    lake_bucket: str
    lake_bucket_owner: str | None
    lake_kms_key_arn: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AthenaSettings:
        bucket = _bucket(env, "LAKE_BUCKET")
        prefix = _prefix(env, "LAKE_PREFIX")
        root = f"s3://{bucket}/{prefix + '/' if prefix else ''}"
        work_group = env.get("ATHENA_WORK_GROUP", "").strip() or "primary"
        if not _WORK_GROUP_RE.match(work_group):
            raise ConfigError(f"environment variable ATHENA_WORK_GROUP={work_group!r} is not a work group name")
        database_prefix = env.get("GLUE_DATABASE_PREFIX", "").strip()
        if not re.fullmatch(r"[a-z0-9_]*", database_prefix):
            raise ConfigError(f"environment variable GLUE_DATABASE_PREFIX={database_prefix!r} may hold only a-z, 0-9 and _")
        return cls(
            work_group=work_group,
            glue_database_prefix=database_prefix,
            lake_root=root,
            output_location=_s3_folder(env, "ATHENA_OUTPUT_LOCATION", f"{root}_snaplake/athena/results/"),
            work_location=_s3_folder(env, "ATHENA_WORK_LOCATION", f"{root}_snaplake/athena/"),
            tables_location=f"{root}athena/",
            lake_bucket=bucket,
            lake_bucket_owner=_optional_account(env, "LAKE_BUCKET_OWNER"),
            lake_kms_key_arn=env.get("LAKE_KMS_KEY_ARN", "").strip() or None,
        )
