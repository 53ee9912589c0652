"""Settings of RegisterCatalog (see snaplake.core.settings): where tables go in Glue and how partitions are made known."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from snaplake.catalog.partitions import DEFAULT_PROJECTION_RULES, ProjectionRule
from snaplake.core.errors import ConfigError
from snaplake.core.names import athena_name
from snaplake.core.settings import EXPORT_BUCKET_OWNER, LAKE_BUCKET, LAKE_BUCKET_OWNER, STACK_ACCOUNT_ID, Env, Setting, environ

CATALOG_MODE = Setting("CATALOG_MODE", "partitions", "'partitions' registers each landed partition, 'projection' uses partition projection")
LAKE_CATALOG_ROLE = Setting(
    "LAKE_CATALOG_ROLE", "", "a source account's stack: the lake account's role whose Glue Data Catalog the tables go to"
)
GLUE_DATABASE_PREFIX = Setting("GLUE_DATABASE_PREFIX", "", "prefix of every Glue database the pipelines and jobs use")
SNAPSHOT_RETENTION_COUNT = Setting("SNAPSHOT_RETENTION_COUNT", "0", "keep the newest N snapshots of each RDS table (0: keep all)")
SNAPSHOT_RETENTION_DAYS = Setting("SNAPSHOT_RETENTION_DAYS", "0", "keep the RDS snapshots younger than D days (0: off)")
CHANGE_LOG_RETENTION_DAYS = Setting("CHANGE_LOG_RETENTION_DAYS", "0", "keep the DynamoDB change-log hours of the last D days (0: keep all)")
DYNAMODB_GLUE_DATABASE = Setting("DYNAMODB_GLUE_DATABASE", "dynamodb", "the Glue database of DynamoDB tables (after the prefix)")


def database_prefix(env: Env) -> str:
    return GLUE_DATABASE_PREFIX.matching(env, r"[a-z0-9_]*", "may hold only a-z, 0-9 and _")


# Athena's DML query timeout can be raised to at most 240 minutes: an expired partition's objects stay that long and an
# hour more after it left Glue, so a query that planned it before it left has ended when they go.
QUERY_GRACE = timedelta(hours=5)


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the newest `keep_count` partitions and/or those younger than `keep_days` (0 turns a rule off); a partition
    is let go only when every rule that is on lets it go, and its objects go `grace` after it left Glue."""

    keep_count: int = 0
    keep_days: int = 0
    grace: timedelta = QUERY_GRACE

    @property
    def enabled(self) -> bool:
        return self.keep_count > 0 or self.keep_days > 0


@dataclass(frozen=True)
class CatalogOptions:
    projection: bool = False
    expected_bucket_owner: str | None = None  # for the footer reads
    catalog_role: str | None = None  # the lake account's role, when the tables go to its Glue catalog
    source_account: str | None = None  # this stack's account, the session tag the lake's role requires
    projection_rules: Mapping[str, ProjectionRule] = field(default_factory=lambda: dict(DEFAULT_PROJECTION_RULES))

    @classmethod
    def from_env(cls, env: Env | None = None) -> CatalogOptions:
        """CATALOG_MODE (`partitions` or `projection`), LAKE_BUCKET_OWNER, LAKE_CATALOG_ROLE (with STACK_ACCOUNT_ID)."""
        env = environ() if env is None else env
        mode = CATALOG_MODE.choice(env, ("partitions", "projection"))
        role = LAKE_CATALOG_ROLE.matching(env, r"(arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+)?", "must be an IAM role ARN (or empty)")
        account = STACK_ACCOUNT_ID.account(env)
        if role and account is None:
            raise ConfigError(
                f"environment variable {LAKE_CATALOG_ROLE.name} needs {STACK_ACCOUNT_ID.name} (the session tag the role requires)"
            )
        return cls(
            projection=mode == "projection",
            expected_bucket_owner=LAKE_BUCKET_OWNER.account(env),
            catalog_role=role or None,
            source_account=account if role else None,
        )

    @property
    def catalog_id(self) -> str | None:
        """The Glue catalog (account id) the tables go to when it is not the caller's: the lake role's account."""
        return self.catalog_role.split(":")[4] if self.catalog_role else None


@dataclass(frozen=True)
class CatalogSettings:
    """The catalog step: the lake bucket it registers, the databases it names, where its input manifests are."""

    lake_bucket: str
    database_prefix: str
    dynamodb_database: str
    export_bucket_owner: str | None
    options: CatalogOptions
    snapshot_retention: RetentionPolicy = RetentionPolicy()
    change_log_retention: RetentionPolicy = RetentionPolicy()

    @classmethod
    def from_env(cls, env: Env | None = None) -> CatalogSettings:
        env = environ() if env is None else env
        options = CatalogOptions.from_env(env)
        snapshots = RetentionPolicy(SNAPSHOT_RETENTION_COUNT.integer(env, 0, 100_000), SNAPSHOT_RETENTION_DAYS.integer(env, 0, 36_500))
        changes = RetentionPolicy(0, CHANGE_LOG_RETENTION_DAYS.integer(env, 0, 36_500))
        if options.projection and changes.enabled:
            raise ConfigError(
                f"environment variable {CATALOG_MODE.name}=projection projects the change log's dt/hour partitions as ranges, so "
                f"retention cannot take one out of queries before deleting its data: set {CHANGE_LOG_RETENTION_DAYS.name} to 0, "
                "or use CATALOG_MODE=partitions"
            )
        if LAKE_CATALOG_ROLE.text(env) and (snapshots.enabled or changes.enabled):
            raise ConfigError(
                f"environment variable {LAKE_CATALOG_ROLE.name} is set (a source account's stack), whose lake bucket lets it write "
                f"but never delete: set {SNAPSHOT_RETENTION_COUNT.name}, {SNAPSHOT_RETENTION_DAYS.name} and "
                f"{CHANGE_LOG_RETENTION_DAYS.name} to 0 (retention is not available to source accounts)"
            )
        return cls(
            snapshot_retention=snapshots,
            change_log_retention=changes,
            lake_bucket=LAKE_BUCKET.bucket(env),
            database_prefix=database_prefix(env),
            dynamodb_database=athena_name(DYNAMODB_GLUE_DATABASE.text(env)),
            export_bucket_owner=EXPORT_BUCKET_OWNER.account(env),
            options=options,
        )
