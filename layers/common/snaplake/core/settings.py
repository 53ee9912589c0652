"""Configuration: every environment variable is declared once, as a `Setting`, with its one default.

Handlers build the settings they need at import time (frozen dataclasses with
`from_env`), so a misconfigured function fails on its first invocation with a
`ConfigError` naming the variable. Only the settings classes read the
environment: no handler or library function looks at `os.environ` itself.

The variables every pipeline shares (the lake bucket, the export bucket's
owner, where plans are kept) are declared here; each subpackage declares its
own in its settings.py. Declaring a name twice fails at import, so a variable
cannot have two defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snaplake.core.errors import ConfigError
from snaplake.core.s3 import Bucket

Env = Mapping[str, str]

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT = re.compile(r"^\d{12}$")

DECLARED: dict[str, Setting] = {}


@dataclass(frozen=True)
class Setting:
    """One environment variable. `default` None: required. `blank_is_default` False: set-but-empty is a value of its own."""

    name: str
    default: str | None
    about: str
    blank_is_default: bool = True

    def __post_init__(self) -> None:
        if self.name in DECLARED:
            raise RuntimeError(f"environment variable {self.name} is declared twice")
        DECLARED[self.name] = self

    def text(self, env: Env) -> str:
        """The value, stripped; the default when unset (or blank); ConfigError when required and missing."""
        raw = env.get(self.name)
        value = raw.strip() if raw is not None else None
        if value is None or (value == "" and self.blank_is_default):
            if self.default is None:
                raise ConfigError(f"environment variable {self.name} is required ({self.about})")
            return self.default
        return value

    def optional(self, env: Env) -> str | None:
        return self.text(env) or None

    def bucket(self, env: Env) -> str:
        value = self.text(env)
        if not BUCKET_NAME.match(value):
            raise ConfigError(f"environment variable {self.name}={value!r} is not a valid S3 bucket name")
        return value

    def prefix(self, env: Env) -> str:
        """A key prefix without leading or trailing '/', and without ':', '..' or '//'."""
        value = self.text(env).strip("/")
        if ":" in value or ".." in value.split("/") or "//" in value:
            raise ConfigError(f"environment variable {self.name}={value!r} must not contain ':', '..' or '//'")
        return value

    def account(self, env: Env) -> str | None:
        value = self.text(env)
        if not value:
            return None
        if not _ACCOUNT.match(value):
            raise ConfigError(f"environment variable {self.name}={value!r} must be a 12-digit account id")
        return value

    def integer(self, env: Env, low: int, high: int) -> int:
        raw = self.text(env)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {self.name}={raw!r} is not an integer") from None
        if not low <= value <= high:
            raise ConfigError(f"environment variable {self.name}={value} must be between {low} and {high}")
        return value

    def items(self, env: Env) -> tuple[str, ...]:
        """A comma-separated list, blanks dropped."""
        return tuple(item.strip() for item in self.text(env).split(",") if item.strip())

    def choice(self, env: Env, allowed: tuple[str, ...]) -> str:
        value = self.text(env).lower()
        if value not in allowed:
            raise ConfigError(f"environment variable {self.name}={value!r} must be one of {', '.join(repr(a) for a in allowed)}")
        return value

    def matching(self, env: Env, pattern: str, what: str) -> str:
        value = self.text(env)
        if not re.fullmatch(pattern, value):
            raise ConfigError(f"environment variable {self.name}={value!r} {what}")
        return value


def environ() -> Env:
    """The process environment: the one place it is read (handlers call `from_env()` with no argument)."""
    return os.environ


def metrics_namespace(env: Env | None = None) -> str:
    """The CloudWatch namespace the metrics go to (MetricsNamespace in template.yaml)."""
    pattern = r"[A-Za-z0-9 ._/#:-]{1,255}"
    return POWERTOOLS_METRICS_NAMESPACE.matching(
        env if env is not None else environ(), pattern, "is not a CloudWatch namespace (letters, digits, . _ / # : -, spaces)"
    )


LAKE_BUCKET = Setting("LAKE_BUCKET", None, "the lake bucket's name")
LAKE_PREFIX = Setting("LAKE_PREFIX", "", "the key prefix under which everything lands in the lake")
LAKE_BUCKET_OWNER = Setting("LAKE_BUCKET_OWNER", "", "the lake bucket's account, sent as ExpectedBucketOwner")
LAKE_KMS_KEY_ARN = Setting("LAKE_KMS_KEY_ARN", "", "the KMS key objects written to the lake are encrypted with")
EXPORT_BUCKET = Setting("EXPORT_BUCKET", None, "the bucket RDS and DynamoDB export to, and plans are kept in")
EXPORT_BUCKET_OWNER = Setting("EXPORT_BUCKET_OWNER", "", "the export bucket's account, sent as ExpectedBucketOwner")
EXPORT_KMS_KEY_ARN = Setting("EXPORT_KMS_KEY_ARN", "", "the KMS key exports are encrypted with")
PLAN_PREFIX = Setting("PLAN_PREFIX", "_snaplake/plans", "where in the export bucket a step keeps its plans")
COPY_WORKERS = Setting("COPY_WORKERS", "8", "copy or conversion workers running at once")
STACK_ACCOUNT_ID = Setting("STACK_ACCOUNT_ID", "", "the account this stack runs in (to tell a source account's stack)")
# Powertools reads it too; declared here so the metrics have the same namespace when it is unset (tests, tools).
POWERTOOLS_METRICS_NAMESPACE = Setting("POWERTOOLS_METRICS_NAMESPACE", "snaplake", "the CloudWatch namespace of snaplake's metrics")
PII_RULES = Setting("PII_RULES", "", "the PII column rules: which columns of which tables are dropped or hashed at landing")
PII_KEY_CIPHERTEXT = Setting("PII_KEY_CIPHERTEXT", "", "the PII hashing key: a KMS data key's CiphertextBlob, base64")
PII_KMS_KEY_ARN = Setting("PII_KMS_KEY_ARN", "", "the KMS key PII_KEY_CIPHERTEXT was encrypted under")
SOURCE_ACCOUNTS_FOLDER = "accounts"


def source_account_prefix(lake_prefix: str, account: str) -> str:
    """Where a source account may write in a lake another account owns (the lake's bucket policy allows nothing else)."""
    return "/".join(part for part in (lake_prefix, SOURCE_ACCOUNTS_FOLDER, account) if part)


@dataclass(frozen=True)
class LakeSettings:
    """The lake bucket, as every writer and reader of the lake sees it."""

    bucket: str
    prefix: str
    bucket_owner: str | None
    kms_key_arn: str | None

    @classmethod
    def from_env(cls, env: Env | None = None) -> LakeSettings:
        env = environ() if env is None else env
        settings = cls(
            bucket=LAKE_BUCKET.bucket(env),
            prefix=LAKE_PREFIX.prefix(env),
            bucket_owner=LAKE_BUCKET_OWNER.account(env),
            kms_key_arn=LAKE_KMS_KEY_ARN.optional(env),
        )
        account = STACK_ACCOUNT_ID.account(env)
        if settings.bucket_owner and account and settings.bucket_owner != account:
            folder = f"{SOURCE_ACCOUNTS_FOLDER}/{account}"
            if settings.prefix != folder and not settings.prefix.endswith("/" + folder):
                raise ConfigError(
                    f"environment variable {LAKE_PREFIX.name}={settings.prefix!r}: the lake bucket {settings.bucket} belongs to "
                    f"account {settings.bucket_owner}, which lets this account ({account}) write only under "
                    f"<its LakePrefix>/{folder}; deploy this stack with LakePrefix ending in '{folder}'"
                )
        return settings

    def lake_bucket(self, s3: Any, acl: str | None = None) -> Bucket:
        return Bucket(s3, self.bucket, self.bucket_owner, self.kms_key_arn, acl, lake=True)

    @property
    def root(self) -> str:
        """s3://<bucket>/<prefix>/: where everything in the lake is."""
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}"
