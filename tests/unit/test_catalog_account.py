"""Which account's Glue catalog the catalog step writes (ADR 0016): the client names the lake's CatalogId on every
call that takes one, and a source stack's client acts as the lake's catalog role, tagged with its own account."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from snaplake.catalog import SOURCE_ACCOUNT_TAG, CatalogOptions, catalog_client
from snaplake.catalog.glue import name_catalog
from snaplake.core import aws

from tests.unit.helpers import REGION

LAKE = "111122223333"
SOURCE = "444455556666"
ROLE = f"arn:aws:iam::{LAKE}:role/snaplake-lake-LakeCatalogRole-1"
TABLE = {"Table": {"Name": "city", "DatabaseName": "world"}}


def test_every_glue_call_that_takes_a_catalog_id_names_the_lakes() -> None:
    glue = boto3.client("glue", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    name_catalog(glue, LAKE)
    with Stubber(glue) as stub:
        stub.add_response("get_table", TABLE, {"DatabaseName": "world", "Name": "city", "CatalogId": LAKE})
        stub.add_response("list_crawlers", {}, {})  # no CatalogId in its input: nothing added
        glue.get_table(DatabaseName="world", Name="city")
        glue.list_crawlers()


def test_without_a_lake_catalog_role_the_calls_name_no_catalog() -> None:
    glue = catalog_client(CatalogOptions())
    with Stubber(glue) as stub:
        stub.add_response("get_table", TABLE, {"DatabaseName": "world", "Name": "city"})
        glue.get_table(DatabaseName="world", Name="city")


def test_a_source_stacks_client_assumes_the_lake_role_tagged_with_its_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    assumed: list[dict[str, Any]] = []
    made = aws.client

    def recording(service: str) -> Any:
        client = made(service)
        if service == "sts":
            client.meta.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(dict(params)))
        return client

    monkeypatch.setattr(aws, "client", recording)
    options = CatalogOptions.from_env({"LAKE_CATALOG_ROLE": ROLE, "STACK_ACCOUNT_ID": SOURCE})
    with mock_aws():
        glue = catalog_client(options)
        assert assumed == [], "the role is assumed on first use, not when the client is made (at import)"
        glue.create_database(DatabaseInput={"Name": f"accounts_{SOURCE}_world"})
        glue.get_database(Name=f"accounts_{SOURCE}_world")

        tags = [{"Key": SOURCE_ACCOUNT_TAG, "Value": SOURCE}]
        assert assumed == [{"RoleArn": ROLE, "RoleSessionName": f"snaplake-catalog-{SOURCE}", "Tags": tags}]
        # moto serves an assumed role's credentials from the role's account: the database is in the lake's catalog.
        assert [d["Name"] for d in glue.get_databases()["DatabaseList"]] == [f"accounts_{SOURCE}_world"]
        assert boto3.client("glue", region_name=REGION).get_databases()["DatabaseList"] == []
