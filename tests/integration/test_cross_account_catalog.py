"""A source account's stack registers its tables in the lake account's Glue catalog (issue 16 item 6, ADR 0016).

Two emulated accounts: the stack runs in the source account (moto's default); its catalog functions assume the lake
stack's catalog role, whose credentials moto serves from the lake account. snaplake_local.emulator.glue refuses a
Glue call naming another account's CatalogId, as AWS does without a Glue resource policy, so a call made with the
source's own credentials cannot pass for one in the lake's catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.emulator.clock import patched_attribute
from snaplake_local.sample_data import orders_items
from snaplake_local.sources import ORDERS_TABLE, ORDERS_TABLE_ARN, create_orders_table, sample_event
from snaplake_local.stack import EmulatedStack

SOURCE = DEFAULT_ACCOUNT
LAKE = "111122223333"
ROLE = f"arn:aws:iam::{LAKE}:role/snaplake-lake-LakeCatalogRole-EXAMPLE"
PREFIX = f"accounts_{SOURCE}_"


@pytest.fixture
def source_stack(stack_factory: Callable[..., EmulatedStack]) -> EmulatedStack:
    return stack_factory(LakeCatalogRoleArn=ROLE, GlueDatabasePrefix=PREFIX, DynamoDbCurrentTables="off")


@contextmanager
def glue_calls() -> Iterator[list[tuple[str, str, Any]]]:
    """Every Glue request moto serves meanwhile: (the calling account, the operation, the CatalogId it named)."""
    from moto.glue import responses

    seen: list[tuple[str, str, Any]] = []
    original = responses.GlueResponse.call_action

    def call_action(self: Any) -> Any:
        seen.append((self.current_account, self._get_action(), self._get_param("CatalogId")))
        return original(self)

    with patched_attribute(responses.GlueResponse, "call_action", call_action):
        yield seen


def lake_glue(stack: EmulatedStack) -> Any:
    """A Glue client of the lake account (an assumed role: moto serves its credentials from the role's account)."""
    credentials = stack.client("sts").assume_role(RoleArn=f"arn:aws:iam::{LAKE}:role/reader", RoleSessionName="test-reader")["Credentials"]
    return boto3.client(
        "glue",
        region_name=stack.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def databases(glue: Any) -> set[str]:
    return {d["Name"] for d in glue.get_databases()["DatabaseList"]}


def assert_every_call_was_the_lakes(calls: list[tuple[str, str, Any]]) -> None:
    assert calls, "the run made no Glue call"
    strays = [call for call in calls if call[0] != LAKE or call[2] != LAKE]
    assert not strays, f"Glue calls not made in and for the lake account's catalog: {strays}"


def test_an_rds_export_of_a_source_account_registers_its_tables_in_the_lake_accounts_catalog(source_stack: EmulatedStack) -> None:
    with glue_calls() as calls:
        execution = source_stack.run("RdsExportStateMachine", sample_event("rds_automated_cluster_snapshot.json"))

    assert execution.status == "SUCCEEDED", execution.cause
    assert_every_call_was_the_lakes(calls)
    assert {operation for _, operation, _ in calls} >= {"CreateDatabase", "CreateTable", "BatchCreatePartition"}
    lake = lake_glue(source_stack)
    assert f"{PREFIX}world" in databases(lake)
    tables = {t["Name"] for t in lake.get_tables(DatabaseName=f"{PREFIX}world", CatalogId=LAKE)["TableList"]}
    assert {"city", "city_latest", "country"} <= tables
    assert databases(source_stack.client("glue")) == set(), "nothing may be registered in the source account's catalog"


def test_a_dynamodb_export_of_a_source_account_registers_its_tables_in_the_lake_accounts_catalog(source_stack: EmulatedStack) -> None:
    create_orders_table(source_stack)
    source_stack.clock.advance(20 * 60)
    with glue_calls() as calls:
        full = source_stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})
        source_stack.client("dynamodb").put_item(TableName=ORDERS_TABLE, Item=orders_items(start=900, count=1)[0])
        source_stack.clock.advance(3600)
        incremental = source_stack.run("DynamoDbExportStateMachine", {"tableArn": ORDERS_TABLE_ARN})

    assert full.status == incremental.status == "SUCCEEDED", incremental.cause
    assert_every_call_was_the_lakes(calls)
    lake = lake_glue(source_stack)
    tables = {t["Name"] for t in lake.get_tables(DatabaseName=f"{PREFIX}dynamodb")["TableList"]}
    assert tables == {"shop_orders", "shop_orders_changes"}
    assert databases(source_stack.client("glue")) == set()


def test_a_call_naming_the_lakes_catalog_with_the_source_accounts_own_credentials_is_refused(source_stack: EmulatedStack) -> None:
    glue = source_stack.client("glue")
    with pytest.raises(glue.exceptions.AccessDeniedException):
        glue.create_database(DatabaseInput={"Name": f"{PREFIX}world"}, CatalogId=LAKE)
    assert databases(glue) == set() and f"{PREFIX}world" not in databases(lake_glue(source_stack))
