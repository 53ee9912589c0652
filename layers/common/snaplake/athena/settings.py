"""Settings of the Athena SQL jobs' function (see snaplake.core.settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snaplake.catalog import CatalogSettings, database_prefix
from snaplake.core.s3 import Bucket
from snaplake.core.settings import Env, LakeSettings, Setting, environ

ATHENA_WORK_GROUP = Setting("ATHENA_WORK_GROUP", "primary", "the Athena work group every job runs in")
ATHENA_OUTPUT_LOCATION = Setting("ATHENA_OUTPUT_LOCATION", "", "where query results go (default: _snaplake/athena/results/ in the lake)")
ATHENA_WORK_LOCATION = Setting("ATHENA_WORK_LOCATION", "", "where plans and schema probes go (default: _snaplake/athena/ in the lake)")
ATHENA_JOBS_PREFIX = Setting(
    "ATHENA_JOBS_PREFIX", "athena", "the lake folder (under LAKE_PREFIX) the jobs' tables live in: the only one they write"
)
ATHENA_JOB_DATABASE_PREFIX = Setting(
    "ATHENA_JOB_DATABASE_PREFIX", "marts", "the jobs' Glue databases begin with GLUE_DATABASE_PREFIX and this: the only ones they change"
)
ATHENA_JOBS_TIME_ZONE = Setting(
    "ATHENA_JOBS_TIME_ZONE", "UTC", "the IANA time zone of the jobs' schedule and of their run-date variables (run_date, run_time)"
)

_S3_FOLDER = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([A-Za-z0-9_=.-]+/)*"


def _folder(setting: Setting, env: Env, default: str) -> str:
    return setting.matching(env, _S3_FOLDER, "must be an s3://bucket/prefix/ folder ending with '/'") if setting.text(env) else default


@dataclass(frozen=True)
class AthenaSettings:
    """Where Athena SQL jobs run and keep their files.

    ATHENA_WORK_GROUP (default primary); ATHENA_OUTPUT_LOCATION (query results) and
    ATHENA_WORK_LOCATION (plans and schema probes) default to `_snaplake/athena/...`
    under LAKE_PREFIX in LAKE_BUCKET; a job's default table folder is `athena/<database>/<table>/` there.
    GLUE_DATABASE_PREFIX: the databases the jobs may read begin with it (the function's Glue grants do).
    ATHENA_JOBS_PREFIX (default athena): the jobs write, and delete, only under `<LAKE_PREFIX>/<it>/` (and their own
    working files under the work location); ATHENA_JOB_DATABASE_PREFIX (default marts): they create and change tables
    only in databases named `<GLUE_DATABASE_PREFIX><it>...`, never the pipelines' (the DynamoDB database is refused by
    name; an RDS source database must not begin with it).
    """

    work_group: str
    glue_database_prefix: str
    lake_root: str  # s3://<LAKE_BUCKET>/<LAKE_PREFIX>/: where the jobs may write
    output_location: str
    work_location: str
    tables_location: str  # s3://<LAKE_BUCKET>/<LAKE_PREFIX>/<ATHENA_JOBS_PREFIX>/: the only folder the jobs' tables may use
    job_database_prefix: str  # <GLUE_DATABASE_PREFIX><ATHENA_JOB_DATABASE_PREFIX>
    pipeline_databases: frozenset[str]  # databases the pipelines own by name (the DynamoDB database)
    lake_bucket: str
    lake_bucket_owner: str | None
    lake_kms_key_arn: str | None
    time_zone: str = "UTC"

    @property
    def definitions_location(self) -> str:
        """Job lists and SQL files (`jobsFile`, `queryFile`): read by the jobs, never written by them."""
        return f"{self.tables_location}_definitions/"

    @property
    def temporary_location(self) -> str:
        """The default folder of temporary tables, dropped with their data at the end of each run."""
        return f"{self.tables_location}_temporary/"

    @classmethod
    def from_env(cls, env: Env | None = None) -> AthenaSettings:
        env = environ() if env is None else env
        lake = LakeSettings.from_env(env)
        root = lake.root
        glue_prefix = database_prefix(env)
        jobs_folder = ATHENA_JOBS_PREFIX.matching(env, r"[a-z0-9][a-z0-9_-]{0,62}", "must be one folder name of a-z, 0-9, _ and -")
        job_databases = ATHENA_JOB_DATABASE_PREFIX.matching(env, r"[a-z0-9_]{1,64}", "must be 1-64 characters of a-z, 0-9 and _")
        return cls(
            work_group=ATHENA_WORK_GROUP.matching(env, r"[A-Za-z0-9._-]{1,128}", "is not a work group name"),
            glue_database_prefix=glue_prefix,
            lake_root=root,
            output_location=_folder(ATHENA_OUTPUT_LOCATION, env, f"{root}_snaplake/athena/results/"),
            work_location=_folder(ATHENA_WORK_LOCATION, env, f"{root}_snaplake/athena/"),
            tables_location=f"{root}{jobs_folder}/",
            job_database_prefix=glue_prefix + job_databases,
            pipeline_databases=frozenset({glue_prefix + CatalogSettings.from_env(env).dynamodb_database}),
            lake_bucket=lake.bucket,
            lake_bucket_owner=lake.bucket_owner,
            lake_kms_key_arn=lake.kms_key_arn,
            time_zone=ATHENA_JOBS_TIME_ZONE.matching(env, r"[A-Za-z][A-Za-z0-9_+/-]{0,63}", "must be an IANA time zone name"),
        )

    def bucket(self, s3: Any, name: str) -> Bucket:
        """A bucket a job reads or writes: the lake with its owner check and key, any other (e.g. for results) as is."""
        if name == self.lake_bucket:
            return Bucket(s3, name, self.lake_bucket_owner, self.lake_kms_key_arn, lake=True)
        return Bucket(s3, name)
