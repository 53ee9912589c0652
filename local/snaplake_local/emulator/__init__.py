"""Where the local runner and the tests emulate AWS behaviour that moto lacks.

Everything that is *not* plain moto lives in this package, one module per emulated
service, so it is easy to see what the local results rest on:

- clock: VirtualClock: Step Functions Wait states and Retry back-off advance a virtual
  clock instead of sleeping (moto's executor really sleeps).
- lambdas: InProcessLambdas: Lambda tasks run the real handlers in this process (moto
  would need Docker), each with its function's environment from template.yaml.
- s3: enforce_expected_bucket_owner: S3's ExpectedBucketOwner check (moto ignores it), and S3
  requests handled one at a time (moto can close a buffer a concurrent request still reads);
  the emulators' own writes take the same turn (emulated_s3).
- rds_exports: RdsExportEmulator: moto's export tasks complete instantly and write nothing.
  Here a task goes STARTING -> IN_PROGRESS -> COMPLETE on the virtual clock
  and, on completion, writes the export's files in AWS's documented layout
  (`<prefix>/<id>/export_info_<id>.json`, `export_tables_info_...json`,
  `<db>/<schema.table>/<batch>/part-...gz.parquet` and `_SUCCESS`), its contents from an
  ExportSource. It can also fail an export, report skipped tables, or occupy the account's
  5 export slots.
- dynamodb_exports: DynamoDbExportEmulator: ExportTableToPointInTime as documented (see its docstring).
- athena: AthenaEmulator: moto's Athena runs no SQL; here queries take virtual time, then run on
  DuckDB over the lake's Parquet (athena_engine: AthenaEngine, with athena_translate for Athena SQL
  to DuckDB SQL, athena_lake for the Glue tables' files, athena_types for types and values) and apply
  Athena's documented Glue/S3 effects (athena_effects, athena_writes: CTAS and INSERT INTO write
  Parquet and register partitions, ADD/DROP PARTITION, DROP TABLE); SELECTs return their rows
  through GetQueryResults, and queries can be made to fail. The same engine answers
  `snaplake local query` over a lake folder (athena_catalog: LakeFolder, the catalog saved with it).
- glue: enforce_table_version_ids: UpdateTable with a stale VersionId fails with
  ConcurrentModificationException, as on AWS (moto overwrites the table); enforce_catalog_ids: a call naming
  another account's CatalogId is refused (moto serves the caller's own catalog).
- eventbridge: EventBridgeEmulator: PutEvents keeps every event put (the landing events), and a matching rule
  starts its Step Functions targets with Input / InputPath / InputTransformer applied (moto delivers to no
  state machine); entries can be made to fail as a partial PutEvents failure.
- distributed_map: DistributedMapRuns: a Distributed Map whose failed children exceed its tolerance fails
  with States.ExceedToleratedFailureThreshold (moto counts the failure and succeeds); each run is recorded.
- firehose: FirehoseDelivery: a delivery stream's extended S3 destination as documented (Lambda processor, dynamic
  partitioning, Parquet from the Glue table, error output, source backup); moto's mock writes the raw records only.
- cloudwatch_metrics: capture_metrics, parse_metrics: CloudWatch Logs turns the handlers' EMF lines into metrics
  (moto runs no log agent); here the lines are taken off stdout and read back, for the demo and the tests.

docs/local.md 'What is emulated' lists each difference from moto. The names below are the
package's public face; EmulatedStack (snaplake_local.stack) puts them together.
"""

from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.emulator.athena import AthenaEmulator
from snaplake_local.emulator.athena_catalog import CATALOG_FILE, LakeFolder, load_catalog, save_catalog
from snaplake_local.emulator.athena_engine import AthenaEngine, QueryResult
from snaplake_local.emulator.athena_types import AthenaQueryError
from snaplake_local.emulator.clock import VirtualClock, fast_forward_step_functions, patched_attribute
from snaplake_local.emulator.cloudwatch_metrics import Emitted, capture_metrics, landed_summary, parse_metrics, total
from snaplake_local.emulator.distributed_map import DistributedMapRuns, MapRun
from snaplake_local.emulator.dynamodb_exports import DynamoDbExportEmulator
from snaplake_local.emulator.eventbridge import EventBridgeEmulator
from snaplake_local.emulator.firehose import Delivered, FirehoseDelivery
from snaplake_local.emulator.glue import enforce_catalog_ids, enforce_table_version_ids
from snaplake_local.emulator.lambdas import InProcessLambdas, LocalFunction
from snaplake_local.emulator.rds_exports import DirectorySource, ExportSource, ManyFilesSource, RdsExportEmulator, TablesSource
from snaplake_local.emulator.s3 import emulated_s3, enforce_expected_bucket_owner

__all__ = [
    "CATALOG_FILE",
    "DEFAULT_ACCOUNT",
    "AthenaEmulator",
    "AthenaEngine",
    "AthenaQueryError",
    "Delivered",
    "DirectorySource",
    "DistributedMapRuns",
    "DynamoDbExportEmulator",
    "Emitted",
    "EventBridgeEmulator",
    "ExportSource",
    "FirehoseDelivery",
    "InProcessLambdas",
    "LakeFolder",
    "LocalFunction",
    "ManyFilesSource",
    "MapRun",
    "QueryResult",
    "RdsExportEmulator",
    "TablesSource",
    "VirtualClock",
    "capture_metrics",
    "emulated_s3",
    "enforce_catalog_ids",
    "enforce_expected_bucket_owner",
    "enforce_table_version_ids",
    "fast_forward_step_functions",
    "landed_summary",
    "load_catalog",
    "parse_metrics",
    "patched_attribute",
    "save_catalog",
    "total",
]
