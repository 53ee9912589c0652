"""PII column rules: columns dropped or hashed at landing, before their values reach the lake (docs/governance.md).

The rules document (PII_RULES, the PiiRules template parameter) is one JSON object, per source, per table:

    {"dynamodb": {"<DynamoDB table>": {"hash": ["email"], "drop": ["phone"]}},
     "rds": {"<database>.<table>": {"hash": ["email"]}},
     "firehose": {"<delivery stream>": {"drop": ["card__number"]}}}

Tables are named as in the lake (`athena_name`: `Shop-Customers` is `shop_customers`); a DynamoDB rule covers the
table's exports (full and incremental) and its stream change log. Columns are named as in the lake, nested ones by
their flattened name (`address__street`), case-insensitively; in DynamoDB change tables a rule on `email` covers
`key__email`, `new__email` and `old__email`. A rule naming a column the table does not have does nothing.

Hashing is HMAC-SHA256 over the value's canonical text (`canonical_bytes`), as 64 lower-case hex digits in a string
column; nulls stay null. The same value under the same key hashes alike in every pipeline, so hashed columns still
join. The key is a 256-bit KMS data key: its ciphertext (PII_KEY_CIPHERTEXT, encrypted under PII_KMS_KEY_ARN with
the encryption context KEY_CONTEXT) is decrypted once per container with kms:Decrypt. A document that is not valid
fails the function's first invocation with InvalidPiiRules, before anything lands.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from snaplake.core.aws import client, error_code, error_message, is_transient
from snaplake.core.errors import ConfigError, InvalidPiiRules, PiiKeyUnavailable
from snaplake.core.names import athena_name
from snaplake.core.settings import PII_KEY_CIPHERTEXT, PII_KMS_KEY_ARN, PII_RULES, Env, environ

DYNAMODB, RDS, FIREHOSE = "dynamodb", "rds", "firehose"
SOURCES = (DYNAMODB, RDS, FIREHOSE)
DROP, HASH = "drop", "hash"
KEY_CONTEXT = {"snaplake": "pii-hash"}  # the data key's encryption context: it decrypts for this purpose only
CHANGE_IMAGES = ("key", "new", "old")  # the prefixes of a DynamoDB change table's attribute columns
HASH_HEX_DIGITS = 64


@dataclass(frozen=True)
class TableRule:
    """One table's columns to drop and to hash (lower-case lake names)."""

    drop: frozenset[str] = frozenset()
    hash: frozenset[str] = frozenset()

    def action(self, column: str, images: tuple[str, ...] = (), separator: str = "__") -> str | None:
        """DROP, HASH or None for a column of the table; `images`: the prefixes of a change table's columns."""
        name = column.lower()
        for image in images:
            if name.startswith(image + separator):
                name = name[len(image) + len(separator) :]
                break
        if name in self.drop:
            return DROP
        return HASH if name in self.hash else None

    def check(self, protected: frozenset[str], table: str) -> None:
        """InvalidPiiRules when the rule names a column the pipeline needs as is (partition keys, system columns)."""
        named = sorted((self.drop | self.hash) & {name.lower() for name in protected})
        if named:
            raise InvalidPiiRules(
                f"the rule of table {table!r} names {named}, which the lake needs as they are (partition or system columns)"
            )


def _table_name(source: str, raw: str) -> str:
    if source == FIREHOSE:
        return raw
    if source == RDS:
        database, dot, table = raw.partition(".")
        if not dot or not database or not table:
            raise InvalidPiiRules(f"rds table {raw!r} must be named '<database>.<table>' (their lake names)")
        return f"{athena_name(database)}.{athena_name(table)}"
    return athena_name(raw)


def _columns(raw: Any, where: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(name, str) and name.strip() for name in raw):
        raise InvalidPiiRules(f"{where} must be a list of non-empty column names")
    return frozenset(name.strip().lower() for name in raw)


def _table_rule(raw: Any, where: str) -> TableRule:
    if not isinstance(raw, dict):
        raise InvalidPiiRules(f"{where} must be an object with 'drop' and/or 'hash' lists")
    unknown = sorted(set(raw) - {DROP, HASH})
    if unknown:
        raise InvalidPiiRules(f"{where}: unknown action {unknown[0]!r} (the actions are {DROP!r} and {HASH!r})")
    rule = TableRule(_columns(raw.get(DROP, []), f"{where}.{DROP}"), _columns(raw.get(HASH, []), f"{where}.{HASH}"))
    both = sorted(rule.drop & rule.hash)
    if both:
        raise InvalidPiiRules(f"{where}: {both} both dropped and hashed; name each column once")
    return rule


@dataclass(frozen=True)
class PiiRules:
    """The parsed rules document: (source, lake table name) -> rule."""

    tables: Mapping[tuple[str, str], TableRule] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> PiiRules:
        if not text.strip():
            return cls()
        try:
            document = json.loads(text)
        except ValueError as error:
            raise InvalidPiiRules(f"the PII rules are not JSON: {error}") from None
        if not isinstance(document, dict):
            raise InvalidPiiRules("the PII rules must be a JSON object of sources (" + ", ".join(SOURCES) + ")")
        tables: dict[tuple[str, str], TableRule] = {}
        for source, rules in document.items():
            if source not in SOURCES:
                raise InvalidPiiRules(f"unknown source {source!r} in the PII rules (the sources are {', '.join(SOURCES)})")
            if not isinstance(rules, dict):
                raise InvalidPiiRules(f"PII rules {source!r} must be an object of tables")
            for raw_table, raw_rule in rules.items():
                if not isinstance(raw_table, str) or not raw_table.strip():
                    raise InvalidPiiRules(f"PII rules {source!r} name a table with an empty name")
                table = _table_name(source, raw_table.strip())
                if (source, table) in tables:
                    raise InvalidPiiRules(f"PII rules {source!r} name lake table {table!r} twice")
                tables[(source, table)] = _table_rule(raw_rule, f"{source}.{raw_table}")
        return cls(tables)

    def rule(self, source: str, table: str) -> TableRule | None:
        """The rule of a table (named as the lake names it), or None when none of its columns is touched."""
        found = self.tables.get((source, _table_name(source, table)))
        return found if found is not None and (found.drop or found.hash) else None

    @property
    def hashes(self) -> bool:
        return any(rule.hash for rule in self.tables.values())


def canonical_bytes(value: Any) -> bytes:
    """The text a value is hashed as, alike in every pipeline: strings as UTF-8, binary as is, booleans `true`/`false`,
    integers and decimals in plain notation without trailing zeros (`42`, `19.9`: RDS numeric(10,2) 42.00 and DynamoDB
    N 42 hash alike), floats by Python's shortest repr, times in ISO 8601, lists and maps as sorted compact JSON."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, Decimal):
        return _plain_decimal(value).encode()
    if isinstance(value, float):
        return repr(value).encode()
    if isinstance(value, datetime | date | time):
        return value.isoformat().encode()
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode()


def _plain_decimal(value: Decimal) -> str:
    if not value.is_finite():
        return str(value)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return canonical_bytes(value).decode("utf-8", "surrogatepass")


class PiiKey:
    """The HMAC key: a KMS data key's ciphertext, decrypted on first use and kept for the container's life."""

    def __init__(self, ciphertext: str, kms_key_arn: str, kms: Any | None = None) -> None:
        self.ciphertext = ciphertext
        self.kms_key_arn = kms_key_arn
        self._kms = kms
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                self._secret = self._decrypt()
            return self._secret

    def _decrypt(self) -> bytes:
        from botocore.exceptions import ClientError

        if not self.ciphertext:
            raise PiiKeyUnavailable(f"PII rules hash columns but {PII_KEY_CIPHERTEXT.name} is empty (the PiiKeyCiphertext parameter)")
        try:
            blob = base64.b64decode(self.ciphertext, validate=True)
        except (binascii.Error, ValueError):
            raise PiiKeyUnavailable(f"{PII_KEY_CIPHERTEXT.name} is not base64 (a KMS CiphertextBlob)") from None
        kms = self._kms if self._kms is not None else client("kms")
        try:
            plaintext = kms.decrypt(CiphertextBlob=blob, KeyId=self.kms_key_arn, EncryptionContext=KEY_CONTEXT)["Plaintext"]
        except ClientError as error:
            if is_transient(error):
                raise
            raise PiiKeyUnavailable(
                f"KMS did not decrypt the PII key with {self.kms_key_arn}: {error_code(error)}: {error_message(error)} (the "
                f"ciphertext must come from that key with encryption context {KEY_CONTEXT}, and this role needs kms:Decrypt on it)"
            ) from None
        if len(plaintext) < 32:
            raise PiiKeyUnavailable(f"the PII key decrypts to {len(plaintext)} bytes; generate it with --key-spec AES_256")
        return bytes(plaintext)


class PiiProtector:
    """The rules and the key, applied: to Arrow tables (exports, change logs, RDS files) and to flat records (Firehose)."""

    def __init__(self, rules: PiiRules, key: PiiKey | None) -> None:
        self.rules = rules
        self.key = key
        self._mac: Any = None

    def rule(self, source: str, table: str, protected: frozenset[str] = frozenset()) -> TableRule | None:
        found = self.rules.rule(source, table)
        if found is not None:
            found.check(protected, table)
        return found

    def _base_mac(self) -> Any:
        if self._mac is None:
            key: PiiKey | None = self.key
            if key is None:
                raise PiiKeyUnavailable(f"PII rules hash columns but {PII_KEY_CIPHERTEXT.name} is not set (the PiiKeyCiphertext parameter)")
            self._mac = hmac.new(key.secret(), digestmod=hashlib.sha256)
        return self._mac

    def hash_value(self, value: Any) -> str | None:
        if value is None:
            return None
        mac = self._base_mac().copy()
        mac.update(canonical_bytes(value))
        return str(mac.hexdigest())

    def protect_schema(self, schema: Any, rule: TableRule, images: tuple[str, ...] = ()) -> Any:
        """An Arrow schema as it lands: dropped columns left out, hashed ones strings."""
        import pyarrow as pa

        for index in reversed(range(len(schema))):
            item = schema.field(index)
            action = rule.action(item.name, images)
            if action == HASH:
                schema = schema.set(index, pa.field(item.name, pa.string()))
            elif action == DROP:
                schema = schema.remove(index)
        return schema

    def protect_table(self, table: Any, rule: TableRule, images: tuple[str, ...] = ()) -> Any:
        """An Arrow table (or record batch) as it lands (`protect_schema`), its hashed columns HMAC hex strings."""
        import pyarrow as pa

        columns, names = [], []
        for name, column in zip(table.column_names, table.columns, strict=True):
            action = rule.action(name, images)
            if action == DROP:
                continue
            if action == HASH:
                column = self._hashed(column)
            columns.append(column)
            names.append(name)
        schema = self.protect_schema(table.schema, rule, images)
        if isinstance(table, pa.RecordBatch):
            return pa.RecordBatch.from_arrays(columns, schema=schema)
        return pa.Table.from_arrays(columns, schema=schema)

    def _hashed(self, column: Any) -> Any:
        """A column's HMAC hex strings; each distinct value is hashed once (dictionary-encoded where Arrow can)."""
        import pyarrow as pa

        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        try:
            encoded = values.dictionary_encode()
        except pa.ArrowNotImplementedError:  # nested types: hashed value by value
            return pa.array([self.hash_value(value) for value in values.to_pylist()], pa.string())
        hashed = pa.array([self.hash_value(value) for value in encoded.dictionary.to_pylist()], pa.string())
        return hashed.take(encoded.indices)

    def protect_record(self, flat: Mapping[str, Any], rule: TableRule) -> dict[str, Any]:
        """A flattened JSON record as it lands: dropped fields left out, hashed ones HMAC hex strings."""
        out = {}
        for name, value in flat.items():
            action = rule.action(name)
            if action != DROP:
                out[name] = self.hash_value(value) if action == HASH else value
        return out

    def fingerprint(self, rule: TableRule) -> str:
        """What decides a table's landed bytes besides its data: the rule and the key (for a re-run's 'already landed')."""
        text = json.dumps([sorted(rule.drop), sorted(rule.hash), self.key.ciphertext if self.key else ""])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PiiSettings:
    """PII_RULES, parsed and checked, and the key's ciphertext and KMS key (checked when any rule hashes)."""

    rules: PiiRules
    key_ciphertext: str
    kms_key_arn: str

    @classmethod
    def from_env(cls, env: Env | None = None) -> PiiSettings:
        env = environ() if env is None else env
        settings = cls(PiiRules.parse(PII_RULES.text(env)), PII_KEY_CIPHERTEXT.text(env), PII_KMS_KEY_ARN.text(env))
        if settings.rules.hashes and not (settings.key_ciphertext and settings.kms_key_arn):
            raise ConfigError(
                f"PII rules hash columns: environment variables {PII_KEY_CIPHERTEXT.name} and {PII_KMS_KEY_ARN.name} are required "
                "(the PiiKeyCiphertext and PiiKmsKeyArn parameters, docs/governance.md)"
            )
        return settings

    def protector(self, kms: Any | None = None) -> PiiProtector:
        """The protector; the key is decrypted (with `kms`, or a client made then) the first time a value is hashed."""
        key = PiiKey(self.key_ciphertext, self.kms_key_arn, kms) if self.rules.hashes else None
        return PiiProtector(self.rules, key)
