"""Which folders of the lake each function reads, writes and deletes: the scope template.yaml must grant, and no more.

snaplake.permissions.AWS_CALLS says which calls touch the lake ("lake"); this table says where in it, per function
(every AWS::Serverless::Function of template.yaml has an entry, an empty one when it does not touch the lake).
Folders are relative to LakePrefix and end in "/". The real key builders put them there:

- RDS: the data (LakeKeyTemplate, `rds/` by default) and its `_SUCCESS` markers, `snaplake.rds.layout`; the claims
  `_snaplake/claims/rds/{tables,snapshots,partitions}/`, `snaplake.rds.lake_guards`.
- DynamoDB exports: `dynamodb/` and `dynamodb_changes/` (`snaplake.dynamodb.conversion.LAKE_FOLDERS`), staged under
  `_snaplake_staging/<export id>/` (`conversion.staging_key`); the folder claims `_snaplake/claims/<folder>/`
  (`snaplake.dynamodb.export.claim_lake_folders`); the column registries `_snaplake/columns/dynamodb/<folder>/`.
- The `_current` Iceberg tables: `dynamodb_current/` and `_snaplake/current/` (`snaplake.athena.current`).
- The stream change log: `dynamodb_stream_changes/` (`snaplake.streams.settings.CHANGE_LOG_FOLDER`), its claims and
  column registries under `_snaplake/claims/` and `_snaplake/columns/` of that name (`snaplake.streams.landed`).
- Athena jobs: `<AthenaJobsPrefix>/` and `_snaplake/athena/` (`snaplake.athena.settings`).

How it is used: test_template_permissions.py requires each lake call of a function's code to be granted in every
folder listed here for that kind of access (nothing legitimate denied); test_lake_write_scope.py requires every
other folder to be refused (nothing more); test_lake_requests_on_the_emulator.py runs the real handlers and checks
that each S3 request they make is allowed by their policy and inside the folders listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EVERYTHING = ""  # the whole LakePrefix
RDS_DATA = "<RDS data: LakeKeyTemplate up to its first placeholder>"  # "rds/" with the default template
ATHENA_JOBS = "<AthenaJobsPrefix>/"

RDS_CLAIMS = "_snaplake/claims/rds/"
RDS_SNAPSHOT_CLAIMS = "_snaplake/claims/rds/snapshots/"
DYNAMODB_DATA = ("dynamodb/", "dynamodb_changes/")
DYNAMODB_CLAIMS = ("_snaplake/claims/dynamodb/", "_snaplake/claims/dynamodb_changes/")
DYNAMODB_COLUMNS = "_snaplake/columns/dynamodb/"
DYNAMODB_STAGING = "_snaplake_staging/"
DYNAMODB_CURRENT = "dynamodb_current/"
CURRENT_WORK = "_snaplake/current/"
STREAM_DATA = "dynamodb_stream_changes/"
STREAM_CLAIMS = "_snaplake/claims/dynamodb_stream_changes/"
STREAM_COLUMNS = "_snaplake/columns/dynamodb_stream_changes/"
ATHENA_WORK = "_snaplake/athena/"
SOURCE_ACCOUNTS = "accounts/"  # <LakePrefix>/accounts/<id>/: the folders of LakeWriterAccounts in a central lake

# The actions each kind of access is, for the objects of the lake.
READS = ("s3:GetObject", "s3:GetObjectTagging")
WRITES = ("s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
DELETES = ("s3:DeleteObject",)


@dataclass(frozen=True)
class LakeScope:
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()

    def folders(self, action: str) -> tuple[str, ...] | None:
        """The folders an object action is granted in; None for an action that is not an object read, write or delete."""
        if action in READS:
            return self.reads
        if action in WRITES:
            return self.writes
        if action in DELETES:
            return self.deletes
        return None

    @property
    def touches_the_lake(self) -> bool:
        return bool(self.reads or self.writes or self.deletes)


NOTHING = LakeScope()

LAKE_SCOPES: dict[str, LakeScope] = {
    # RDS: FilterSnapshot skips a snapshot whose claim names another export; PlanCopy claims, CopyBatch copies (and
    # HEADs what is already there), FinalizeCopy writes the _SUCCESS markers, RegisterCatalog reads the footers
    # (and deletes what retention expired).
    "SnapshotFilterFunction": LakeScope(reads=(RDS_SNAPSHOT_CLAIMS,)),
    "StartExportFunction": NOTHING,
    "PollExportFunction": NOTHING,
    "PlanCopyFunction": LakeScope(reads=(RDS_CLAIMS,), writes=(RDS_CLAIMS,)),
    "CopyBatchFunction": LakeScope(reads=(RDS_DATA,), writes=(RDS_DATA,)),
    "FinalizeCopyFunction": LakeScope(writes=(RDS_DATA,)),
    "RdsCatalogFunction": LakeScope(reads=(RDS_DATA,), deletes=(RDS_DATA,)),  # deletes: snapshots retention expired
    # DynamoDB exports: StartExport claims the table's folders; MergeSchema names the columns; ConvertFiles stages;
    # PublishFiles copies its share's staged files into place and drops them; FinalizeConversion writes _SUCCESS and
    # sweeps what is left in staging.
    "DynamoDbStartExportFunction": LakeScope(reads=DYNAMODB_CLAIMS, writes=DYNAMODB_CLAIMS),
    "DynamoDbPollExportFunction": NOTHING,
    "DynamoDbMarkPublishingFunction": NOTHING,
    "DynamoDbCommitFunction": NOTHING,
    "DynamoDbReleaseLeaseFunction": NOTHING,
    "DynamoDbScheduleFunction": NOTHING,
    "ConvertPlanFunction": NOTHING,
    "ConvertScanFunction": NOTHING,
    "ConvertMergeFunction": LakeScope(reads=(DYNAMODB_COLUMNS,), writes=(DYNAMODB_COLUMNS,)),
    "ConvertFilesFunction": LakeScope(writes=(DYNAMODB_STAGING,)),
    "ConvertPublishFunction": LakeScope(reads=(DYNAMODB_STAGING, *DYNAMODB_DATA), writes=DYNAMODB_DATA, deletes=(DYNAMODB_STAGING,)),
    "ConvertFinalizeFunction": LakeScope(writes=DYNAMODB_DATA, deletes=(DYNAMODB_STAGING,)),
    "DynamoDbCatalogFunction": LakeScope(reads=DYNAMODB_DATA, deletes=("dynamodb_changes/",)),  # change hours retention expired
    # MergeCurrent: Athena reads the exports' tables and writes the _current Iceberg tables; the function keeps the record
    # of what each table applied (and Athena the results) under _snaplake/current/.
    # VACUUM (Athena, with this role) deletes the Iceberg tables' expired and orphan files.
    "DynamoDbCurrentFunction": LakeScope(
        reads=(*DYNAMODB_DATA, DYNAMODB_CURRENT, CURRENT_WORK), writes=(DYNAMODB_CURRENT, CURRENT_WORK), deletes=(DYNAMODB_CURRENT,)
    ),
    # The stream change log, its claim and column registry; the Firehose transform only returns records.
    "StreamFlattenFunction": LakeScope(
        reads=(STREAM_DATA, STREAM_CLAIMS, STREAM_COLUMNS),
        writes=(STREAM_DATA, STREAM_CLAIMS, STREAM_COLUMNS),
    ),
    "FirehoseFlattenFunction": NOTHING,
    # Athena reads any table of the lake with the job role; the jobs write and delete only their own folders.
    "AthenaQueryFunction": LakeScope(reads=(EVERYTHING,), writes=(ATHENA_JOBS, ATHENA_WORK), deletes=(ATHENA_JOBS, ATHENA_WORK)),
}


def parameter_values(template: dict[str, Any]) -> dict[str, str]:
    """Each parameter's Default (what with_parameters set, or the template's own)."""
    return {name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec}


def resolve(folder: str, parameters: dict[str, str]) -> str:
    """A folder of the table as a key prefix relative to LakePrefix, for these parameter values."""
    if folder == RDS_DATA:
        return parameters["LakeKeyTemplate"].split("{", 1)[0]
    if folder == ATHENA_JOBS:
        return parameters["AthenaJobsPrefix"] + "/"
    return folder


def within(inner: str, outer: str) -> bool:
    """Whether the folder `inner` of the table is `outer` or inside it. RDS_DATA (whatever its literal head) is inside
    no other folder but EVERYTHING: even when it is the whole LakePrefix, the other folders are not its own."""
    if outer == EVERYTHING or inner == outer:
        return True
    if RDS_DATA in (inner, outer) or ATHENA_JOBS in (inner, outer):
        return False
    return inner.startswith(outer)
