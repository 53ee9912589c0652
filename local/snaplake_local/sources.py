"""Source databases and snapshots on the emulator, shared by the demo and the tests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from snaplake.core.times import parse_iso_utc

from snaplake_local.emulator import ExportSource, TablesSource
from snaplake_local.sample_data import orders_items, shop_mysql_tables, world_postgres_tables
from snaplake_local.stack import PROJECT_ROOT, EmulatedStack

EVENTS_DIR = PROJECT_ROOT / "events"

WORLD_CLUSTER = "world-aurora"
SHOP_INSTANCE = "shop-mysql"
ORDERS_TABLE = "shop-orders"
ORDERS_TABLE_ARN = f"arn:aws:dynamodb:eu-west-1:123456789012:table/{ORDERS_TABLE}"


def sample_event(name: str) -> Any:
    return json.loads((EVENTS_DIR / name).read_text())


def create_cluster(stack: EmulatedStack, cluster_id: str, engine: str = "aurora-postgresql", database: str = "world") -> None:
    stack.client("rds").create_db_cluster(
        DBClusterIdentifier=cluster_id,
        Engine=engine,
        MasterUsername="admin_user",
        MasterUserPassword="local-password-1",
        DatabaseName=database,
    )


def create_instance(stack: EmulatedStack, instance_id: str, engine: str = "mysql", database: str = "shop") -> None:
    stack.client("rds").create_db_instance(
        DBInstanceIdentifier=instance_id,
        Engine=engine,
        DBInstanceClass="db.t4g.micro",
        MasterUsername="admin_user",
        MasterUserPassword="local-password-1",
        DBName=database,
        AllocatedStorage=20,
    )


def cluster_snapshot(stack: EmulatedStack, cluster_id: str, snapshot_id: str, source: ExportSource, created: datetime | None = None) -> str:
    if snapshot_id.startswith(("rds:", "awsbackup:")):
        arn = stack.rds_exports.automated_snapshot("cluster", cluster_id, snapshot_id)
    else:
        response = stack.client("rds").create_db_cluster_snapshot(DBClusterIdentifier=cluster_id, DBClusterSnapshotIdentifier=snapshot_id)
        arn = str(response["DBClusterSnapshot"]["DBClusterSnapshotArn"])
    stack.rds_exports.add_source(arn, source)
    if created is not None:
        stack.rds_exports.backdate_snapshot(arn, created)
    return arn


def instance_snapshot(
    stack: EmulatedStack, instance_id: str, snapshot_id: str, source: ExportSource, created: datetime | None = None
) -> str:
    if snapshot_id.startswith(("rds:", "awsbackup:")):
        arn = stack.rds_exports.automated_snapshot("instance", instance_id, snapshot_id)
    else:
        response = stack.client("rds").create_db_snapshot(DBInstanceIdentifier=instance_id, DBSnapshotIdentifier=snapshot_id)
        arn = str(response["DBSnapshot"]["DBSnapshotArn"])
    stack.rds_exports.add_source(arn, source)
    if created is not None:
        stack.rds_exports.backdate_snapshot(arn, created)
    return arn


def world_source(**layout: Any) -> TablesSource:
    return TablesSource(engine="aurora-postgresql", database="world", tables=world_postgres_tables(), **layout)


def shop_source(**layout: Any) -> TablesSource:
    return TablesSource(engine="mysql", database="shop", tables=shop_mysql_tables(), **layout)


def seed_sample_sources(stack: EmulatedStack) -> dict[str, str]:
    """The Aurora PostgreSQL cluster and MySQL instance that events/*.json refer to,
    with the snapshots those events name. Returns snapshot identifier -> ARN."""
    create_cluster(stack, WORLD_CLUSTER)
    create_instance(stack, SHOP_INSTANCE)
    stack.rds_exports.add_database(WORLD_CLUSTER, world_source(files_per_table=2))
    stack.rds_exports.add_database(SHOP_INSTANCE, shop_source())
    snapshots = {}
    for event_file in sorted(EVENTS_DIR.glob("rds_*snapshot.json")):
        event = json.loads(event_file.read_text())
        detail = event["detail"]
        identifier = detail["SourceIdentifier"]
        created = parse_iso_utc(detail["Date"]).replace(microsecond=0)
        if detail["SourceType"] == "CLUSTER_SNAPSHOT":
            snapshots[identifier] = cluster_snapshot(stack, WORLD_CLUSTER, identifier, world_source(files_per_table=2), created)
        else:
            snapshots[identifier] = instance_snapshot(stack, SHOP_INSTANCE, identifier, shop_source(), created)
    for copy, original in SAMPLE_COPIES.items():
        snapshots[copy] = copy_instance_snapshot(stack, original, copy, COPY_EVENT)
    return snapshots


# The copy events/rds_snapshot_copy_finished.json (RDS-EVENT-0197) announces, and the snapshot it copies.
COPY_EVENT = "rds_snapshot_copy_finished.json"
SAMPLE_COPIES = {"shop-mysql-2024-05-02-03-15-copy": "rds:shop-mysql-2024-05-02-03-15"}


def copy_instance_snapshot(stack: EmulatedStack, original: str, copy: str, event_file: str | None = None) -> str:
    """A same-Region copy of a DB snapshot (what AWS Backup makes): it keeps the original's
    OriginalSnapshotCreateTime; its own SnapshotCreateTime is when the copy finished (the event's Date)."""
    response = stack.client("rds").copy_db_snapshot(SourceDBSnapshotIdentifier=original, TargetDBSnapshotIdentifier=copy)
    arn = str(response["DBSnapshot"]["DBSnapshotArn"])
    if event_file is not None:
        copied = parse_iso_utc(json.loads((EVENTS_DIR / event_file).read_text())["detail"]["Date"]).replace(microsecond=0)
        stack.rds_exports.backdate_snapshot(arn, copied, copy=True)
    return arn


def default_parameters(**overrides: str) -> dict[str, str]:
    from snaplake_local.streams import STREAM_ARN_PARAMETER

    return {
        "SourceIdentifiers": f"{WORLD_CLUSTER},shop-*",
        "DynamoDbTableArns": ORDERS_TABLE_ARN,
        # The DynamoDB Streams change log and the Firehose transform (snaplake_local.streams).
        "DynamoDbStreamArns": STREAM_ARN_PARAMETER,
        "FirehoseTransform": "true",
        **overrides,
    }


def create_orders_table(
    stack: EmulatedStack, items: list[dict[str, Any]] | None = None, pitr: bool = True, name: str = ORDERS_TABLE
) -> str:
    """The DynamoDB table the demo exports (PITR on), filled with sample orders; `name` makes another one like it."""
    ddb = stack.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if pitr:
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    for item in orders_items() if items is None else items:
        ddb.put_item(TableName=name, Item=item)
    return f"{ORDERS_TABLE_ARN.rsplit('/', 1)[0]}/{name}"


def events_path(name: str) -> Path:
    return EVENTS_DIR / name


# The demo's PII rules (PiiRules, docs/governance.md): the shop customers' e-mail addresses land hashed.
PII_RULES = {"rds": {"shop.customers": {"hash": ["email"]}}}
