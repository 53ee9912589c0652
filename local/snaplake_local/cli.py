"""The `snaplake` command: the local runner."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snaplake", description="snaplake local runner: the pipelines on an embedded AWS emulator")
    commands = parser.add_subparsers(dest="area", required=True)
    local = commands.add_parser("local", help="run pipelines locally (no AWS account, no Docker)")
    actions = local.add_subparsers(dest="action", required=True)
    actions.add_parser("demo", help="seed sample databases, run the pipelines and the Athena jobs end to end, show the lake and answers")
    rds = actions.add_parser("rds", help="replay an RDS export tree downloaded from S3 through the RDS state machine")
    rds.add_argument(
        "--export-dir", type=Path, required=True, help="the export folder (aws s3 sync s3://<bucket>/<prefix>/<export-id>/ DIR)"
    )
    rds.add_argument("--out", type=Path, required=True, help="folder to write the resulting lake objects into")
    rds.add_argument("--snapshot-time", help="ISO 8601 snapshot time (default: export_info's snapshotTime, else now)")
    rds.add_argument("--event", type=Path, help="an EventBridge snapshot event or {'snapshotArn': ...} to replay with")
    dynamodb = actions.add_parser("dynamodb", help="replay a DynamoDB export tree downloaded from S3 through the conversion steps")
    dynamodb.add_argument(
        "--export-dir", type=Path, required=True, help="folder holding manifest-summary.json, manifest-files.json and data/"
    )
    dynamodb.add_argument("--out", type=Path, required=True, help="folder to write the resulting lake objects into")
    query = actions.add_parser("query", help="answer Athena SQL over a lake folder written by `snaplake local rds|dynamodb --out DIR`")
    query.add_argument("--lake", type=Path, required=True, help="the --out folder of `snaplake local rds` or `snaplake local dynamodb`")
    query.add_argument("--database", help="database of the tables the SQL names without one (default: the lake's only database)")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table", help="how to print the rows (default: table)")
    query.add_argument("sql", help='one Athena SELECT, e.g. "SELECT count(*) FROM world.city"')
    parser.add_argument("-v", "--verbose", action="store_true", help="show the handlers' logs")
    args = parser.parse_args(argv)

    level = "INFO" if args.verbose else "WARNING"
    logging.basicConfig(level=level)
    if args.action == "query":
        return run_query(args.lake, args.sql, args.database, args.format)
    from snaplake_local.demo import replay_dynamodb_export, replay_rds_export, run_demo

    if args.action == "demo":
        return 0 if run_demo(log_level=level) else 1
    if args.action == "dynamodb":
        if not args.export_dir.is_dir():
            parser.error(f"--export-dir {args.export_dir} is not a directory")
        return 0 if replay_dynamodb_export(args.export_dir, args.out, log_level=level) else 1
    if not args.export_dir.is_dir():
        parser.error(f"--export-dir {args.export_dir} is not a directory")
    return 0 if replay_rds_export(args.export_dir, args.out, args.snapshot_time, args.event, log_level=level) else 1


def run_query(lake: Path, sql: str, database: str | None = None, style: str = "table") -> int:
    """`snaplake local query`: the SQL run by the emulated Athena's engine (DuckDB) over the lake folder, with the
    tables of the catalog the replay saved next to it; the rows printed to stdout, a failure to stderr (exit 1)."""
    from snaplake_local.emulator import AthenaEngine, AthenaQueryError, LakeFolder
    from snaplake_local.report import format_rows

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns about statements it cannot parse; the failure says so
    databases: dict[str, list[str]] = {}
    try:
        folder = LakeFolder(lake)
        databases = folder.catalog.databases()
        if database is None and len(databases) == 1:
            database = next(iter(databases))
        result = AthenaEngine(folder.catalog, folder.storage).run_sql(sql, database)
    except AthenaQueryError as error:
        print(f"query failed: {error}", file=sys.stderr)
        if databases and any(name in str(error) for name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND", "Schema must be specified")):
            tables = ", ".join(f"{db}.{table}" for db, names in databases.items() for table in names)
            print(f"the lake's tables: {tables}", file=sys.stderr)
        return 1
    print(format_rows([column.column_info() for column in result.columns], result.text_rows(), style))
    if style == "table":
        print(f"({result.row_count} row{'' if result.row_count == 1 else 's'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
