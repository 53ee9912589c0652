"""The Glue Data Catalog kept next to a lake folder, so `snaplake local query --lake DIR` sees the tables the replay
registered: `snaplake local rds|dynamodb --out DIR` loads DIR/_snaplake_catalog.json into the emulated Glue before
the run (if present; RegisterCatalog then merges into it as it would in AWS) and saves Glue back after it.

The file holds every database, table (as Glue's TableInput) and partition (values and location) of the emulated
Glue, and the lake bucket the locations name; its name starts with `_`, so Athena would never read it as data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snaplake_local.emulator.athena_lake import FolderStorage
from snaplake_local.emulator.athena_types import AthenaQueryError

CATALOG_FILE = "_snaplake_catalog.json"
CATALOG_FORMAT = "snaplake-local-catalog/1"
_TABLE_FIELDS = ("Name", "Description", "TableType", "Parameters", "PartitionKeys", "StorageDescriptor")


def save_catalog(glue: Any, path: Path, lake_bucket: str) -> int:
    """Write every Glue database, table and partition of the emulated account to `path`; returns the table count."""
    databases: dict[str, dict[str, Any]] = {}
    for page in glue.get_paginator("get_databases").paginate():
        for database in page["DatabaseList"]:
            tables: dict[str, Any] = {}
            for table_page in glue.get_paginator("get_tables").paginate(DatabaseName=database["Name"]):
                for table in table_page["TableList"]:
                    partitions = [
                        {"Values": partition["Values"], "Location": partition.get("StorageDescriptor", {}).get("Location", "")}
                        for partition_page in glue.get_paginator("get_partitions").paginate(
                            DatabaseName=database["Name"], TableName=table["Name"]
                        )
                        for partition in partition_page["Partitions"]
                    ]
                    tables[table["Name"]] = {"table": {k: table[k] for k in _TABLE_FIELDS if k in table}, "partitions": partitions}
            databases[database["Name"]] = tables
    document = {"format": CATALOG_FORMAT, "lakeBucket": lake_bucket, "databases": databases}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True, default=str) + "\n")
    return sum(len(tables) for tables in databases.values())


def read_catalog(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AthenaQueryError(f"HIVE_METASTORE_ERROR: cannot read the lake's catalog {path}: {error}") from None
    if not isinstance(document, dict) or document.get("format") != CATALOG_FORMAT or not isinstance(document.get("databases"), dict):
        raise AthenaQueryError(f"HIVE_METASTORE_ERROR: {path} is not a catalog `snaplake local` saved ({CATALOG_FORMAT})")
    return document


def load_catalog(glue: Any, path: Path) -> int:
    """Register the saved catalog in the emulated Glue (before a replay adds to it); returns the table count."""
    if not path.is_file():
        return 0
    count = 0
    for database, tables in read_catalog(path)["databases"].items():
        glue.create_database(DatabaseInput={"Name": database})
        for name, entry in tables.items():
            table = entry["table"]
            glue.create_table(DatabaseName=database, TableInput=table)
            descriptor = table.get("StorageDescriptor", {})
            inputs = [
                {"Values": p["Values"], "StorageDescriptor": {**descriptor, "Location": p["Location"]}} for p in entry.get("partitions", [])
            ]
            for start in range(0, len(inputs), 100):
                glue.batch_create_partition(DatabaseName=database, TableName=name, PartitionInputList=inputs[start : start + 100])
            count += 1
    return count


class CatalogFile:
    """A saved catalog as the emulated Athena reads it (the LakeCatalog of a lake folder)."""

    def __init__(self, document: dict[str, Any]):
        self.lake_bucket = str(document.get("lakeBucket", ""))
        self._databases: dict[str, dict[str, Any]] = document["databases"]

    def has_database(self, database: str) -> bool:
        return database in self._databases

    def table(self, database: str, name: str) -> dict[str, Any] | None:
        entry = self._databases.get(database, {}).get(name)
        return dict(entry["table"]) if entry else None

    def partitions(self, database: str, name: str) -> list[dict[str, Any]]:
        entry = self._databases[database][name]
        return [{"Values": p["Values"], "StorageDescriptor": {"Location": p["Location"]}} for p in entry.get("partitions", [])]

    def databases(self) -> dict[str, list[str]]:
        return {database: sorted(tables) for database, tables in sorted(self._databases.items())}


class LakeFolder:
    """A lake folder with the catalog saved next to it: what `snaplake local query --lake DIR` reads."""

    def __init__(self, root: Path):
        path = root / CATALOG_FILE
        if not path.is_file():
            raise AthenaQueryError(
                f"HIVE_METASTORE_ERROR: {root} holds no {CATALOG_FILE}: write the lake with `snaplake local rds|dynamodb --out {root}` "
                "(the replay saves the Glue catalog it built there)"
            )
        self.root = root
        self.catalog = CatalogFile(read_catalog(path))
        self.storage = FolderStorage(root, self.catalog.lake_bucket)
