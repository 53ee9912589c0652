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
    actions.add_parser("demo", help="seed sample databases, run the RDS pipeline end to end, show the lake")
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
    parser.add_argument("-v", "--verbose", action="store_true", help="show the handlers' logs")
    args = parser.parse_args(argv)

    level = "INFO" if args.verbose else "WARNING"
    logging.basicConfig(level=level)
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


if __name__ == "__main__":
    sys.exit(main())
