"""RDS copy with PII rules (moto S3): files of a table with a rule are rewritten, the others copied byte for byte;
a retried CopyBatch skips exactly what landed with the same rule and key; changed rules are refused by name."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from snaplake.core.errors import InvalidPiiRules
from snaplake.core.pii import PiiKey, PiiProtector, PiiRules
from snaplake.rds.copy_batch import copy_batches
from snaplake.rds.copy_plan import plan_copy
from snaplake.rds.finalize import finalize_copy

from tests.unit.helpers import REGION
from tests.unit.test_lake_copy import (
    DATA_FILES,
    EXPORT_BUCKET,
    LAKE_BUCKET,
    LAKE_KEY_OF,
    METADATA_FILES,
    PLENTY_OF_TIME,
    REQUEST,
    lake_body,
    lake_settings,
    put_export,
    worker_requests,
)

SECRET = bytes(range(32))
RULES = {"rds": {"world.users": {"hash": ["name"], "drop": ["id"]}}}
USERS_FILE = "world/public.users/1/part-00000-a.gz.parquet"
INVOICE_FILE = "world/sales.Invoice_Lines/2/part-00000-c.gz.parquet"


def protector(rules: dict[str, Any] = RULES, ciphertext: str = "ciphertext-1") -> PiiProtector:
    key = PiiKey(ciphertext, "arn:aws:kms:eu-west-1:123456789012:key/k")
    key._secret = SECRET  # the KMS path is tested in test_pii.py
    return PiiProtector(PiiRules.parse(json.dumps(rules)), key)


@pytest.fixture
def buckets(s3: Any) -> Iterator[Any]:
    for bucket in (EXPORT_BUCKET, LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    put_export(s3, {**METADATA_FILES, **DATA_FILES})
    yield s3


def copy_all(s3: Any, pii: PiiProtector) -> dict[str, Any]:
    lake = lake_settings()
    plan = plan_copy(s3, REQUEST, lake, pii)
    results = [copy_batches(s3, worker, lake, PLENTY_OF_TIME, pii=pii) for worker in worker_requests(plan)]
    assert all(result["done"] for result in results)
    finalize_copy(s3, {"plan": plan["plan"], "batches": plan["batches"]}, lake)
    return {"plan": plan, "results": results}


def test_a_table_with_a_rule_is_rewritten_and_the_others_copied_byte_for_byte(buckets: Any) -> None:
    copy_all(buckets, protector())

    users = pq.read_table(pa.BufferReader(lake_body(buckets, LAKE_KEY_OF[USERS_FILE]))).to_pylist()
    assert users == [{"name": hmac.new(SECRET, b"users a", hashlib.sha256).hexdigest()}]
    assert lake_body(buckets, LAKE_KEY_OF[INVOICE_FILE]) == DATA_FILES[INVOICE_FILE]
    for key in (LAKE_KEY_OF[USERS_FILE], LAKE_KEY_OF["world/public.users/1/part-00001-b.gz.parquet"]):
        assert b"users a" not in lake_body(buckets, key) and b"users b" not in lake_body(buckets, key)


def test_a_rerun_with_the_same_rule_skips_what_landed_and_another_key_plans_anew(buckets: Any) -> None:
    first = copy_all(buckets, protector())
    landed = lake_body(buckets, LAKE_KEY_OF[USERS_FILE])

    again = copy_all(buckets, protector())
    assert again["plan"]["plan"] == first["plan"]["plan"]
    assert sum(r["copied"] for r in again["results"]) == 0 and lake_body(buckets, LAKE_KEY_OF[USERS_FILE]) == landed

    other = protector(ciphertext="ciphertext-2")
    assert plan_copy(buckets, REQUEST, lake_settings(), other)["plan"] != first["plan"]["plan"]


def test_a_retried_copy_batch_verifies_each_rewritten_object_and_skips_it(buckets: Any) -> None:
    pii, lake = protector(), lake_settings()
    plan = plan_copy(buckets, REQUEST, lake, pii)
    worker = worker_requests(plan)[0]
    copy_batches(buckets, worker, lake, PLENTY_OF_TIME, pii=pii)
    # The same invocation retried after a crash: its claim is there, its done marker is not.
    buckets.delete_objects(
        Bucket=EXPORT_BUCKET,
        Delete={
            "Objects": [{"Key": o["Key"]} for o in buckets.list_objects_v2(Bucket=EXPORT_BUCKET)["Contents"] if o["Key"].endswith(".done")]
        },
    )

    retried = copy_batches(buckets, worker, lake, PLENTY_OF_TIME, pii=pii)

    assert retried["copied"] == 0 and retried["skipped"] > 0


def test_copy_batch_refuses_rules_changed_since_the_plan(buckets: Any) -> None:
    lake = lake_settings()
    plan = plan_copy(buckets, REQUEST, lake, protector())
    changed = protector({"rds": {"world.users": {"drop": ["name"]}}})

    with pytest.raises(InvalidPiiRules, match="changed since PlanCopy"):
        for worker in worker_requests(plan):
            copy_batches(buckets, worker, lake, PLENTY_OF_TIME, pii=changed)
