"""PII column rules (snaplake.core.pii): the rules document, the hash, the KMS-held key, and the stream and Firehose
hooks (each keeps the raw values out of what lands)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

import boto3
import pyarrow as pa
import pytest
from snaplake.core.errors import ConfigError, InvalidPiiRules, PiiKeyUnavailable
from snaplake.core.pii import KEY_CONTEXT, PiiKey, PiiProtector, PiiRules, PiiSettings, canonical_bytes
from snaplake.dynamodb.parquet import ConvertOptions
from snaplake.streams.change_log import SYSTEM_COLUMNS, flatten_batch
from snaplake.streams.firehose import transform_records
from snaplake.streams.settings import FlattenSettings

from tests.unit.change_log_store import MemoryStore
from tests.unit.helpers import REGION, load_event

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))


class FixedKey(PiiKey):
    """A key that needs no KMS (the KMS path has tests of its own below)."""

    def __init__(self, secret: bytes = SECRET) -> None:
        super().__init__("fixed", "arn:aws:kms:eu-west-1:123456789012:key/fixed")
        self._secret = secret


def protector(document: dict[str, Any], secret: bytes = SECRET) -> PiiProtector:
    return PiiProtector(PiiRules.parse(json.dumps(document)), FixedKey(secret))


def expected_hash(text: str, secret: bytes = SECRET) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------- the rules document
@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("{not json", "not JSON"),
        ('["dynamodb"]', "JSON object of sources"),
        ('{"mysql": {}}', "unknown source 'mysql'"),
        ('{"dynamodb": []}', "object of tables"),
        ('{"dynamodb": {"orders": ["email"]}}', "'drop' and/or 'hash'"),
        ('{"dynamodb": {"orders": {"mask": ["email"]}}}', "unknown action 'mask'"),
        ('{"dynamodb": {"orders": {"hash": [""]}}}', "non-empty column names"),
        ('{"dynamodb": {"orders": {"hash": "email"}}}', "non-empty column names"),
        ('{"dynamodb": {"orders": {"hash": ["email"], "drop": ["Email"]}}}', "both dropped and hashed"),
        ('{"dynamodb": {"Orders": {"hash": ["a"]}, "orders": {"drop": ["b"]}}}', "twice"),
        ('{"rds": {"customers": {"hash": ["email"]}}}', "'<database>.<table>'"),
        ('{"dynamodb": {"": {"hash": ["email"]}}}', "empty name"),
    ],
)
def test_a_bad_rules_document_is_refused_by_name(document: str, says: str) -> None:
    with pytest.raises(InvalidPiiRules, match=says):
        PiiRules.parse(document)


def test_a_bad_rules_document_fails_the_settings_before_any_work() -> None:
    with pytest.raises(InvalidPiiRules):
        PiiSettings.from_env({"PII_RULES": '{"dynamodb": {"orders": {"hide": ["email"]}}}'})
    assert issubclass(InvalidPiiRules, ConfigError)


def test_hashing_rules_need_the_key_ciphertext_and_its_kms_key() -> None:
    rules = json.dumps({"dynamodb": {"orders": {"hash": ["email"]}}})
    with pytest.raises(ConfigError, match="PII_KEY_CIPHERTEXT and PII_KMS_KEY_ARN are required"):
        PiiSettings.from_env({"PII_RULES": rules})
    # Dropping alone needs no key.
    assert PiiSettings.from_env({"PII_RULES": json.dumps({"dynamodb": {"orders": {"drop": ["email"]}}})}).protector().key is None


def test_tables_and_columns_are_matched_by_their_lake_names() -> None:
    rules = PiiRules.parse(json.dumps({"dynamodb": {"Shop-Orders": {"hash": ["Email"]}}, "rds": {"Shop.Customers": {"drop": ["SSN"]}}}))

    assert rules.rule("dynamodb", "shop_orders") == rules.rule("dynamodb", "shop-orders")
    rule = rules.rule("dynamodb", "shop_orders")
    assert rule is not None and rule.action("EMAIL") == "hash" and rule.action("new__email", ("key", "new", "old")) == "hash"
    assert rule.action("new__email") is None  # image prefixes only in change tables
    assert rules.rule("rds", "shop.customers") is not None and rules.rule("rds", "shop.orders") is None
    assert rules.rule("firehose", "shop_orders") is None


def test_a_rule_naming_a_partition_or_system_column_is_refused() -> None:
    pii = protector({"dynamodb": {"orders": {"drop": ["event_id"]}}})

    with pytest.raises(InvalidPiiRules, match="event_id"):
        pii.rule("dynamodb", "orders", frozenset(SYSTEM_COLUMNS))


# ---------------------------------------------------------------------- the hash
def test_values_hash_by_their_canonical_text_so_numbers_join_across_types() -> None:
    pii = protector({})

    assert pii.hash_value("ana@example.com") == expected_hash("ana@example.com")
    assert pii.hash_value(42) == pii.hash_value(Decimal("42.00")) == pii.hash_value("42")
    assert pii.hash_value(Decimal("19.90")) == pii.hash_value(19.9)
    assert pii.hash_value(None) is None
    assert canonical_bytes(True) == b"true" and canonical_bytes(b"\x00\x01") == b"\x00\x01"
    assert canonical_bytes({"b": 1, "a": [Decimal("1.50")]}) == b'{"a":["1.5"],"b":1}'


def test_another_key_gives_other_hashes() -> None:
    assert protector({}).hash_value("ana@example.com") != protector({}, OTHER_SECRET).hash_value("ana@example.com")


def test_a_table_loses_its_dropped_columns_and_gets_its_hashed_ones_as_strings() -> None:
    pii = protector({"dynamodb": {"orders": {"hash": ["email", "customer__id"], "drop": ["phone"]}}})
    rule = pii.rule("dynamodb", "orders")
    assert rule is not None
    table = pa.table(
        {"pk": ["A", "B"], "new__email": ["ana@example.com", None], "new__phone": ["+1 555", "+2"], "key__customer__id": [7, 8]}
    )

    landed = pii.protect_table(table, rule, ("key", "new", "old"))

    assert landed.column_names == ["pk", "new__email", "key__customer__id"]
    assert landed.schema.field("key__customer__id").type == pa.string()
    assert landed.to_pylist() == [
        {"pk": "A", "new__email": expected_hash("ana@example.com"), "key__customer__id": expected_hash("7")},
        {"pk": "B", "new__email": None, "key__customer__id": expected_hash("8")},
    ]
    assert pii.protect_schema(table.schema, rule, ("key", "new", "old")) == landed.schema


# ---------------------------------------------------------------------- the key, held in KMS
@pytest.fixture
def kms(aws: None) -> Any:
    return boto3.client("kms", region_name=REGION)


def test_the_key_is_a_kms_data_key_decrypted_once_per_container(kms: Any) -> None:
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    made = kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256", EncryptionContext=KEY_CONTEXT)
    key = PiiKey(base64.b64encode(made["CiphertextBlob"]).decode(), key_arn, kms)
    pii = PiiProtector(PiiRules(), key)

    assert pii.hash_value("ana@example.com") == expected_hash("ana@example.com", made["Plaintext"])
    key._kms = None  # a second decrypt would have to make a client: the first one's plaintext is kept
    assert key.secret() == made["Plaintext"]


def test_a_ciphertext_made_for_another_purpose_is_refused_by_name(kms: Any) -> None:
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    blob = kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256")["CiphertextBlob"]  # no encryption context
    key = PiiKey(base64.b64encode(blob).decode(), key_arn, kms)

    with pytest.raises(PiiKeyUnavailable, match="encryption context"):
        key.secret()
    with pytest.raises(PiiKeyUnavailable, match="not base64"):
        PiiKey("%%%", key_arn, kms).secret()


# ---------------------------------------------------------------------- the stream change log and Firehose
STREAM_RULES = {"dynamodb": {"orders": {"hash": ["customer__id"], "drop": ["customer__address__city"]}}}
FIREHOSE_RULES = {"firehose": {"orders-changes": {"hash": ["customer__id"], "drop": ["customer__address__city"]}}}


def test_the_change_log_lands_hashes_and_no_raw_value() -> None:
    lake = MemoryStore()

    outcome = flatten_batch(load_event("dynamodb_stream_batch.json"), "lake", ConvertOptions(), lake, protector(STREAM_RULES))

    assert outcome.response() == {"batchItemFailures": []}
    rows = lake.rows()
    assert not any("city" in column for row in rows for column in row)
    assert {row["new__customer__id"] for row in rows if row["change_type"] != "REMOVE"} == {expected_hash("C0001")}
    for body in lake.objects.values():
        assert b"C0001" not in body and b"Lyon" not in body
    assert "C0001" not in json.dumps(rows, default=str) and "Lyon" not in json.dumps(rows, default=str)


def test_a_redelivered_batch_with_rules_still_lands_once() -> None:
    lake = MemoryStore()
    event = load_event("dynamodb_stream_batch.json")
    pii = protector(STREAM_RULES)
    flatten_batch(event, "lake", ConvertOptions(), lake, pii)
    first = dict(lake.objects)

    again = flatten_batch(event, "lake", ConvertOptions(), lake, pii)

    assert lake.objects == first and again.skipped == len(event["Records"])


def test_the_firehose_transform_hashes_like_the_change_log() -> None:
    event = load_event("dynamodb_firehose_batch.json")

    answered = transform_records(event, FlattenSettings(), protector(FIREHOSE_RULES)).response()["records"]

    first = json.loads(base64.b64decode(answered[0]["data"]))
    assert first["customer__id"] == expected_hash("C0001")
    assert "customer__address__city" not in first and first["customer__address__zip"] == "69002"
    assert [a["result"] for a in answered] == ["Ok", "Ok", "Dropped", "ProcessingFailed", "ProcessingFailed"]
    for entry in answered[:2]:
        assert b"C000" not in base64.b64decode(entry["data"]) and b"Lyon" not in base64.b64decode(entry["data"])


def test_a_firehose_rule_on_a_partition_key_field_is_refused() -> None:
    with pytest.raises(InvalidPiiRules, match="customer__id"):
        transform_records(
            load_event("dynamodb_firehose_batch.json"), FlattenSettings(partition_key_fields=("customer__id",)), protector(FIREHOSE_RULES)
        )
