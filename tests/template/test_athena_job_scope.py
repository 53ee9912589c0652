"""What the Athena job role (AthenaQueryFunction) may change, with the default parameters (issue 12, finding 3).

Athena runs every job query with this role, so its grants are the last line behind job validation: with the default
empty GlueDatabasePrefix it must still not be able to drop or change the pipelines' tables, nor delete their data.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ._iam import Policy, policy_of
from ._support import template

ACCOUNT_ARN = "arn:aws:glue:{AWS::Region}:{AWS::AccountId}"
WRITES = ("glue:DeleteTable", "glue:UpdateTable", "glue:CreateTable", "glue:BatchDeletePartition", "glue:BatchCreatePartition")


def _with_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """The template with each parameter of the Athena job role's resources replaced by its default value."""
    text = json.dumps(document)
    for name, spec in document["Parameters"].items():
        if name in ("GlueDatabasePrefix", "AthenaJobDatabasePrefix", "AthenaJobsPrefix") and isinstance(spec.get("Default"), str):
            text = text.replace("${" + name + "}", spec["Default"])
    return dict(json.loads(text))


def _job_role() -> Policy:
    return policy_of(_with_defaults(template()), "AthenaQueryFunction")


@pytest.mark.parametrize("action", WRITES)
@pytest.mark.parametrize("table", ["lake/orders", "world/city", "dynamodb/shop_orders"])
def test_the_job_role_cannot_change_the_pipelines_tables(action: str, table: str) -> None:
    assert not any(g.allows(action, f"{ACCOUNT_ARN}:table/{table}") for g in _job_role().grants)


@pytest.mark.parametrize("action", WRITES)
def test_the_job_role_may_change_tables_of_job_databases(action: str) -> None:
    assert any(g.allows(action, f"{ACCOUNT_ARN}:table/marts/continent_summary") for g in _job_role().grants)


def test_the_job_role_still_reads_every_database_of_the_prefix() -> None:
    assert any(g.allows("glue:GetTable", f"{ACCOUNT_ARN}:table/world/city") for g in _job_role().grants)


def test_the_job_role_cannot_delete_pipeline_data() -> None:
    objects = "arn:aws:s3:::{LakeBucket}/rds/world/city/snapshot_time=20240502T024019Z/part-0.parquet"
    assert not any(g.allows("s3:DeleteObject", objects) for g in _job_role().grants)
