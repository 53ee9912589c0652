"""A DynamoDB table's exports as the pipeline lands them (Parquet in the lake, Glue tables and partitions), and the
MergeCurrent step run on them against the emulated Athena (queries run on DuckDB when the virtual clock says they
finished): what the `_current` tests drive.

Items are {"pk": str, "sk": int, "a": int | None, "b": str | None, "c": int | None} (None: the attribute is absent);
the export files hold the columns the conversion writes for them (`pk`, `sk`, `a`, ... for a full export; `key__*`,
`new__*`, `old__*`, `change_type`, `write_time` for a window, one row per item changed, as DynamoDB compacts them).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from moto import mock_aws
from snaplake.athena import CurrentClients, CurrentSettings, merge_current
from snaplake_local.emulator import AthenaEmulator, VirtualClock

from tests.unit.helpers import REGION

BUCKET = "current-lake"
DATABASE = "dynamodb"
ATTRIBUTES = {"a": pa.int64(), "b": pa.string(), "c": pa.int64()}
GLUE_TYPES = {"string": "string", "int64": "bigint", "timestamp[us, tz=UTC]": "timestamp"}
Key = tuple[str, int]
Item = dict[str, Any]
SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def _glue(kind: pa.DataType) -> str:
    return GLUE_TYPES[str(kind)]


@dataclass
class SourceTable:
    """One DynamoDB table and what the pipeline landed of it."""

    lake: CurrentLake
    name: str
    items: dict[Key, Item] = field(default_factory=dict)
    checkpoint: datetime | None = None
    exports: int = 0

    @property
    def arn(self) -> str:
        return f"arn:aws:dynamodb:{REGION}:123456789012:table/{self.name}"

    def full_export(self) -> dict[str, Any]:
        """Land a full export of the items now; the MergeCurrent request for it."""
        now = self.lake.tick()
        rows = [{"pk": k[0], "sk": k[1], **item} for k, item in sorted(self.items.items())]
        used = [a for a in ATTRIBUTES if any(item.get(a) is not None for item in self.items.values())]
        schema = pa.schema([("pk", pa.string()), ("sk", pa.int64()), *[(a, ATTRIBUTES[a]) for a in used]])
        value = f"{now:%Y%m%dT%H%M%SZ}"
        prefix = f"dynamodb/{self.name}/export_time={value}/"
        partitions = []
        if rows:
            self.lake.put(prefix + "part-0.parquet", pa.Table.from_pylist(rows, schema))
            self.lake.register(self.name, schema, ["export_time"], [value], prefix)
            partitions = [prefix]
        self.checkpoint = now
        return self._request("FULL_EXPORT", now, None, partitions)

    def window(self, writes: list[tuple[Key, Item | None]]) -> dict[str, Any]:
        """Apply `writes` (an item, or None to delete) one after another inside a new window, land the window's
        changes, and return the MergeCurrent request for it."""
        assert self.checkpoint is not None
        start = self.checkpoint
        before = {k: dict(v) for k, v in self.items.items()}
        last: dict[Key, datetime] = {}
        for position, (key, item) in enumerate(writes):
            at = start + timedelta(seconds=60 + position)
            if item is None:
                self.items.pop(key, None)
            else:
                self.items[key] = {a: v for a, v in item.items() if v is not None}
            last[key] = at
        end = start + timedelta(seconds=60 + len(writes) + 60)
        self.lake.clock.advance(max(0.0, (end - self.lake.clock.now()).total_seconds()) + 1)
        rows = []
        for key, at in sorted(last.items()):
            old, new = before.get(key), self.items.get(key)
            if old is None and new is None:
                continue  # put and deleted inside the window: DynamoDB reports nothing
            row: dict[str, Any] = {"key__pk": key[0], "key__sk": key[1], "write_time": at}
            row["change_type"] = "REMOVE" if new is None else ("INSERT" if old is None else "MODIFY")
            for section, image in (("new", new), ("old", old)):
                if image is not None:
                    row.update({f"{section}__pk": key[0], f"{section}__sk": key[1]})
                    row.update({f"{section}__{a}": v for a, v in image.items()})
            rows.append(row)
        self.exports += 1
        partitions = []
        hours: dict[datetime, list[dict[str, Any]]] = {}
        for row in rows:  # partitioned by the write time's hour, as the conversion lands them
            hours.setdefault(row["write_time"].replace(minute=0, second=0, microsecond=0), []).append(row)
        for hour, landed in sorted(hours.items()):
            names = sorted({name for row in landed for name in row})
            schema = pa.schema([(n, self._change_type(n)) for n in names])
            prefix = f"dynamodb_changes/{self.name}/dt={hour:%Y-%m-%d}/hour={hour:%H}/"
            self.lake.put(f"{prefix}export{self.exports}-0.parquet", pa.Table.from_pylist(landed, schema))
            self.lake.register(f"{self.name}_changes", schema, ["dt", "hour"], [f"{hour:%Y-%m-%d}", f"{hour:%H}"], prefix)
            partitions.append(prefix)
        self.checkpoint = end
        return self._request("INCREMENTAL_EXPORT", end, start, partitions)

    @staticmethod
    def _change_type(name: str) -> pa.DataType:
        if name == "write_time":
            return pa.timestamp("us", tz="UTC")
        leaf = name.split("__", 1)[-1]
        return {"pk": pa.string(), "sk": pa.int64(), "change_type": pa.string(), **ATTRIBUTES}[leaf]

    def _request(self, kind: str, exported_to: datetime, window_from: datetime | None, partitions: list[str]) -> dict[str, Any]:
        return {
            "tableArn": self.arn,
            "exportArn": f"{self.arn}/export/{exported_to:%Y%m%d%H%M%S}-{kind[0]}",
            "exportType": kind,
            "exportedTo": exported_to.isoformat(),
            "windowFrom": window_from.isoformat() if window_from else None,
            "table": self.name,
            "partitions": partitions,
            "execution": f"arn:aws:states:{REGION}:123456789012:execution:ddb:{self.name}-{self.exports}",
        }

    def current_rows(self) -> dict[Key, Item]:
        """`<table>_current` as Athena answers SELECT * (an absent attribute is None); none before an export held items."""
        try:
            self.lake.glue.get_table(DatabaseName=DATABASE, Name=f"{self.name}_current")
        except self.lake.glue.exceptions.EntityNotFoundException:
            return {}
        found = self.lake.athena.engine.run_sql(f"SELECT * FROM {DATABASE}.{self.name}_current")
        rows = found.table.to_pylist()
        return {(r.pop("pk"), r.pop("sk")): {a: v for a, v in r.items() if v is not None} for r in rows}


class CurrentLake:
    """moto plus the emulated Athena, a lake bucket and the DynamoDB Glue database."""

    def __init__(self) -> None:
        self.clock = VirtualClock(datetime(2024, 5, 2, 10, 0, tzinfo=UTC))
        self.athena = AthenaEmulator(self.clock, region=REGION)
        self.s3: Any = boto3.client("s3", region_name=REGION)
        self.glue = boto3.client("glue", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.events = boto3.client("events", region_name=REGION)
        self.clients = CurrentClients(boto3.client("athena", region_name=REGION), self.glue, self.s3, self.dynamodb, self.events)
        self.settings = CurrentSettings.from_env({"LAKE_BUCKET": BUCKET, "ATHENA_WORK_GROUP": "primary", "CHANGE_LOG_RETENTION_DAYS": "1"})
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.glue.create_database(DatabaseInput={"Name": DATABASE})
        self.tables = 0

    def tick(self) -> datetime:
        self.clock.advance(60)
        return self.clock.now().replace(microsecond=0)

    def table(self) -> SourceTable:
        self.tables += 1
        name = f"orders{self.tables}"
        self.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "sk", "KeyType": "RANGE"}, {"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return SourceTable(self, name)

    def put(self, key: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())

    def register(self, name: str, schema: pa.Schema, keys: list[str], values: list[str], prefix: str) -> None:
        """The Glue table (columns merged, as RegisterCatalog merges them) and the partition."""
        location = f"s3://{BUCKET}/{prefix.split('/')[0]}/{prefix.split('/')[1]}/"
        try:
            columns = self.glue.get_table(DatabaseName=DATABASE, Name=name)["Table"]["StorageDescriptor"]["Columns"]
        except self.glue.exceptions.EntityNotFoundException:
            columns = None
        known = {c["Name"] for c in columns or []}
        merged = [*(columns or []), *[{"Name": f.name, "Type": _glue(f.type)} for f in schema if f.name not in known]]
        descriptor = {"Columns": merged, "Location": location, "SerdeInfo": {"SerializationLibrary": SERDE}}
        table = {"Name": name, "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys], "StorageDescriptor": descriptor}
        if columns is None:
            self.glue.create_table(DatabaseName=DATABASE, TableInput=table)
        else:
            self.glue.update_table(DatabaseName=DATABASE, TableInput=table)
        partition = {"Values": values, "StorageDescriptor": {**descriptor, "Location": f"s3://{BUCKET}/{prefix}"}}
        self.glue.batch_create_partition(DatabaseName=DATABASE, TableName=name, PartitionInputList=[partition])

    def merge_call(self, request: dict[str, Any], cursor: dict[str, Any]) -> dict[str, Any]:
        """One MergeCurrent call."""
        return merge_current(self.clients, self.settings, {**request, "cursor": cursor})

    def merge(self, request: dict[str, Any], *, calls: int = 50) -> dict[str, Any]:
        """Run MergeCurrent to the end as the state machine does: call, wait the cursor's seconds, call again."""
        cursor: dict[str, Any] = {}
        for _ in range(calls):
            cursor = self.merge_call(request, cursor)
            if cursor["done"]:
                return cursor
            self.clock.advance(cursor["waitSeconds"])
        raise AssertionError(f"MergeCurrent did not finish in {calls} calls: {cursor}")


@contextmanager
def current_lake() -> Iterator[CurrentLake]:
    with mock_aws():
        lake = CurrentLake()
        with lake.athena.patched():
            yield lake
