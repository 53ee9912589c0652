"""Settings of RegisterCatalog (see snaplake.core.settings): where tables go in Glue and how partitions are made known."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from snaplake.catalog.partitions import DEFAULT_PROJECTION_RULES, ProjectionRule
from snaplake.core.names import athena_name
from snaplake.core.settings import EXPORT_BUCKET_OWNER, LAKE_BUCKET, LAKE_BUCKET_OWNER, Env, Setting, environ

CATALOG_MODE = Setting("CATALOG_MODE", "partitions", "'partitions' registers each landed partition, 'projection' uses partition projection")
GLUE_CATALOG_ID = Setting("GLUE_CATALOG_ID", "", "the Glue Data Catalog (account id) tables go to, when not this account's")
GLUE_DATABASE_PREFIX = Setting("GLUE_DATABASE_PREFIX", "", "prefix of every Glue database the pipelines and jobs use")
DYNAMODB_GLUE_DATABASE = Setting("DYNAMODB_GLUE_DATABASE", "dynamodb", "the Glue database of DynamoDB tables (after the prefix)")


def database_prefix(env: Env) -> str:
    return GLUE_DATABASE_PREFIX.matching(env, r"[a-z0-9_]*", "may hold only a-z, 0-9 and _")


@dataclass(frozen=True)
class CatalogOptions:
    projection: bool = False
    expected_bucket_owner: str | None = None  # for the footer reads
    catalog_id: str | None = None  # Glue catalog (account) when it is not the caller's
    projection_rules: Mapping[str, ProjectionRule] = field(default_factory=lambda: dict(DEFAULT_PROJECTION_RULES))

    @classmethod
    def from_env(cls, env: Env | None = None) -> CatalogOptions:
        """CATALOG_MODE (`partitions` or `projection`), GLUE_CATALOG_ID, LAKE_BUCKET_OWNER."""
        env = environ() if env is None else env
        mode = CATALOG_MODE.choice(env, ("partitions", "projection"))
        return cls(
            projection=mode == "projection", expected_bucket_owner=LAKE_BUCKET_OWNER.account(env), catalog_id=GLUE_CATALOG_ID.account(env)
        )

    def catalog(self) -> dict[str, str]:
        return {"CatalogId": self.catalog_id} if self.catalog_id else {}


@dataclass(frozen=True)
class CatalogSettings:
    """The catalog step: the lake bucket it registers, the databases it names, where its input manifests are."""

    lake_bucket: str
    database_prefix: str
    dynamodb_database: str
    export_bucket_owner: str | None
    options: CatalogOptions

    @classmethod
    def from_env(cls, env: Env | None = None) -> CatalogSettings:
        env = environ() if env is None else env
        return cls(
            lake_bucket=LAKE_BUCKET.bucket(env),
            database_prefix=database_prefix(env),
            dynamodb_database=athena_name(DYNAMODB_GLUE_DATABASE.text(env)),
            export_bucket_owner=EXPORT_BUCKET_OWNER.account(env),
            options=CatalogOptions.from_env(env),
        )
