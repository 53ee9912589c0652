"""Helpers shared by the unit tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account, also the account of the sample events
EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    """One of the sample events in /events, freshly parsed (tests may mutate it)."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


class RdsClock:
    """Sets the time moto's RDS backend stamps on clusters, instances and snapshots.

    moto names automated snapshots `rds:<source>-YYYY-MM-DD-HH-MM` from this
    clock, so the sample EventBridge events can name real moto snapshots.
    """

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)

    def set(self, iso: str) -> None:
        self.now = datetime.fromisoformat(iso.replace("Z", "+00:00"))

    def __call__(self) -> datetime:
        return self.now


def create_aurora_postgresql_cluster(rds: Any, identifier: str) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        MasterUsername="snaplake",
        MasterUserPassword="not-a-secret-1",
    )


def create_mysql_instance(rds: Any, identifier: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="mysql",
        DBInstanceClass="db.t3.micro",
        MasterUsername="snaplake",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
