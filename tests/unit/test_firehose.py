"""Firehose transformation: every recordId back once, Ok / Dropped / ProcessingFailed, within 6 MB."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import pytest
from snaplake.core.errors import ConfigError, InvalidEvent
from snaplake.streams.errors import FieldNameCollision
from snaplake.streams.firehose import MAX_RESPONSE_BYTES, flatten_object, transform_records
from snaplake.streams.settings import FlattenSettings

from tests.unit.helpers import load_event

SETTINGS = FlattenSettings()


def record(record_id: str, payload: bytes) -> dict[str, Any]:
    return {"recordId": record_id, "approximateArrivalTimestamp": 1764054000000, "data": base64.b64encode(payload).decode()}


def decoded(entry: dict[str, Any]) -> Any:
    data = base64.b64decode(entry["data"])
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    return json.loads(data)


def test_sample_batch_gets_one_answer_per_record_in_order() -> None:
    event = load_event("dynamodb_firehose_batch.json")

    answered = transform_records(event, SETTINGS).response()["records"]

    assert [a["recordId"] for a in answered] == [r["recordId"] for r in event["records"]]
    assert [a["result"] for a in answered] == ["Ok", "Ok", "Dropped", "ProcessingFailed", "ProcessingFailed"]
    assert decoded(answered[0]) == {
        "customer__address__city": "Lyon",
        "customer__address__zip": "69002",
        "customer__id": "C0001",
        "lines": '[{"qty":2,"sku":"A-1"}]',
        "order_id": "ORDER#00001",
        "status": "PAID",
        "total": 19.99,
    }


def test_failed_records_carry_their_original_data_for_the_error_prefix() -> None:
    event = load_event("dynamodb_firehose_batch.json")

    answered = transform_records(event, SETTINGS).response()["records"]

    assert answered[3]["data"] == event["records"][3]["data"]


def test_names_are_athena_safe() -> None:
    flat = flatten_object({"A b": {"C": 1}, "deep": {"x": {"y": {"z": {"w": 1}}}}, "empty": {}})

    assert flat == {"a_b__c": 1, "deep__x__y": '{"z":{"w":1}}', "empty": "{}"}


@pytest.mark.parametrize(
    "value",
    [{"Foo": 1, "foo": 2}, {"A b": {"C": 1}, "a_b__c": 2}],
    ids=["case", "flattened-path"],
)
def test_fields_that_would_share_a_column_are_refused_by_name_not_renamed_per_record(value: dict[str, Any]) -> None:
    """Issue 11 case 7: a suffix (`foo_2`) given per record would name `Foo` in one record and `foo` in the next."""
    event = {"records": [{"recordId": "1", "data": base64.b64encode(json.dumps(value).encode()).decode()}]}

    outcome = transform_records(event, SETTINGS)

    assert outcome.records[0]["result"] == "ProcessingFailed"
    assert outcome.records[0]["data"] == event["records"][0]["data"]  # Firehose keeps the original in processing-failed/
    assert "FieldNameCollision" in outcome.problems["1"] and "both become column" in outcome.problems["1"]
    with pytest.raises(FieldNameCollision):
        flatten_object(value)


@pytest.mark.parametrize(
    "data",
    [
        "not base64!!",
        base64.b64encode(b"\xff\xfe not utf-8").decode(),
        base64.b64encode(b'{"unterminated": ').decode(),
        base64.b64encode(b'"a string"').decode(),
        base64.b64encode(b"null").decode(),
        base64.b64encode(b"[{}]").decode(),
        base64.b64encode(b'{"big": "' + b"x" * (1000 * 1024) + b'"}').decode(),
        base64.b64encode(b'{"a": "\\udcff"}').decode(),
        base64.b64encode(b'{"a": {"b": {"c": {"d": ["x\\ud800y"]}}}}').decode(),
        base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode(),
        base64.b64encode(b'{"a":' * 100_000 + b"1" + b"}" * 100_000).decode(),
    ],
    ids=[
        "bad-base64",
        "not-utf8",
        "bad-json",
        "json-string",
        "json-null",
        "json-array",
        "over-1000-kib",
        "lone-surrogate-escape",
        "lone-surrogate-escape-in-json-text",
        "arrays-nested-too-deep",
        "objects-nested-too-deep",
    ],
)
def test_bad_input_is_processing_failed_never_an_exception(data: str) -> None:
    outcome = transform_records({"records": [{"recordId": "r1", "data": data}]}, SETTINGS)

    assert outcome.response()["records"][0]["result"] == "ProcessingFailed"
    assert "r1" in outcome.problems


def test_lone_surrogate_escape_fails_only_its_record() -> None:
    event = {"records": [record("r1", b'{"a": 1}'), record("r2", b'{"a": "x\\udcffy"}'), record("r3", b'{"a": "\\u00e9"}')]}

    outcome = transform_records(event, SETTINGS)

    answered = outcome.response()["records"]
    assert [a["result"] for a in answered] == ["Ok", "ProcessingFailed", "Ok"]
    assert answered[1]["data"] == event["records"][1]["data"]
    assert "not valid Unicode" in outcome.problems["r2"]
    assert decoded(answered[2]) == {"a": "\u00e9"}


def test_json_nested_around_the_recursion_limit_is_answered_never_raised() -> None:
    # Where json.loads and json.dumps give up on deep nesting depends on the Python version (3.11: near the
    # recursion limit; 3.13, Lambda's runtime here: far deeper), so each record may be either answer, never an error.
    limit = sys.getrecursionlimit()
    depths = range(limit - 100, limit + 10)
    event = {"records": [record(f"r{depth}", b'{"a":' * depth + b"1" + b"}" * depth) for depth in depths]}

    answered = transform_records(event, SETTINGS).response()["records"]

    assert [a["recordId"] for a in answered] == [f"r{depth}" for depth in depths]
    for sent, got in zip(event["records"], answered, strict=True):
        if got["result"] == "Ok":
            row = decoded(got)
            assert list(row) == ["a__a__a"] and json.loads(row["a__a__a"])["a"]  # deeper than max_depth: kept as JSON text
        else:
            assert got == {"recordId": sent["recordId"], "result": "ProcessingFailed", "data": sent["data"]}


@pytest.mark.parametrize(
    ("patched", "reason"),
    [("loads", "JSON nested too deeply to parse"), ("flatten_object", "JSON nested too deeply to write")],
)
def test_nesting_python_cannot_parse_or_write_fails_only_its_record(patched: str, reason: str) -> None:
    from types import SimpleNamespace
    from unittest import mock

    from snaplake.streams import firehose

    real = json.loads if patched == "loads" else flatten_object

    def too_deep(value: Any, *args: Any, **kwargs: Any) -> Any:
        parsed = json.loads(value) if patched == "loads" else value
        if "deep" in parsed:
            raise RecursionError("maximum recursion depth exceeded")
        return real(value, *args, **kwargs)

    event = {"records": [record("r1", b'{"a": 1}'), record("r2", b'{"deep": 1}'), record("r3", b'{"b": 2}')]}
    replacement = SimpleNamespace(loads=too_deep, dumps=json.dumps) if patched == "loads" else too_deep
    with mock.patch.object(firehose, "json" if patched == "loads" else "flatten_object", replacement):
        outcome = transform_records(event, SETTINGS)

    assert [a["result"] for a in outcome.response()["records"]] == ["Ok", "ProcessingFailed", "Ok"]
    assert outcome.problems["r2"] == reason


def test_record_without_data_is_processing_failed() -> None:
    answered = transform_records({"records": [{"recordId": "r1"}]}, SETTINGS).response()["records"]

    assert answered == [{"recordId": "r1", "result": "ProcessingFailed", "data": ""}]


def test_empty_object_is_dropped() -> None:
    answered = transform_records({"records": [record("r1", b"{}")]}, SETTINGS).response()["records"]

    assert answered[0]["result"] == "Dropped"


def test_partition_keys_come_from_flattened_fields() -> None:
    settings = FlattenSettings(partition_key_fields=("customer__country", "year"))
    event = {
        "records": [
            record("r1", json.dumps({"customer": {"country": "FR"}, "year": 2025}).encode()),
            record("r2", json.dumps({"customer": {}, "year": 2025}).encode()),
        ]
    }

    answered = transform_records(event, settings).response()["records"]

    assert answered[0]["metadata"] == {"partitionKeys": {"customer__country": "FR", "year": "2025"}}
    assert answered[1]["result"] == "ProcessingFailed"


@pytest.mark.parametrize(
    "value",
    ["", ".", "..", "a/b", "../../other-prefix", "/", "line\nbreak", "tab\there", "nul\x00", "del\x7f", "k=v", "50%", "a:b", "q?"]
    + [f"x{char}y" for char in "\"#'*\\{[]^"],
)
def test_a_partition_key_value_that_would_change_the_s3_path_fails_its_record_by_name(value: str) -> None:
    """Issue 12 finding 4: Firehose puts partitionKeys into the S3 prefix as they are (dynamic partitioning), so a value
    with '/', '..', a newline or a character Athena escapes in folder names would write outside the intended folder or
    under a folder Athena reads as another value. Refused (ProcessingFailed, the original kept), never encoded."""
    settings = FlattenSettings(partition_key_fields=("country",))
    event = {"records": [record("bad", json.dumps({"country": value, "n": 1}).encode()), record("ok", b'{"country": "FR"}')]}

    answered = transform_records(event, settings).response()["records"]

    assert answered[0]["result"] == "ProcessingFailed" and "metadata" not in answered[0]
    assert base64.b64decode(answered[0]["data"]) == json.dumps({"country": value, "n": 1}).encode()
    assert answered[1]["metadata"] == {"partitionKeys": {"country": "FR"}}


def test_a_partition_key_value_with_spaces_or_unicode_is_kept_as_is() -> None:
    settings = FlattenSettings(partition_key_fields=("city",))
    for value in ("São Paulo", "東京", "New York", "a-b_c.d"):
        answered = transform_records({"records": [record("r", json.dumps({"city": value}).encode())]}, settings).response()["records"]
        assert answered[0]["metadata"] == {"partitionKeys": {"city": value}}


def test_settings_read_partition_keys_and_depth_from_the_environment() -> None:
    settings = FlattenSettings.from_env({"PARTITION_KEY_FIELDS": " a, b__c ,", "FLATTEN_MAX_DEPTH": "2"})

    assert settings.partition_key_fields == ("a", "b__c") and settings.max_depth == 2
    with pytest.raises(ConfigError, match="FLATTEN_MAX_DEPTH"):
        FlattenSettings.from_env({"FLATTEN_MAX_DEPTH": "deep"})


def test_response_stays_under_6_mb_and_the_rest_fails_without_loss() -> None:
    # 8 records of ~900 KB flatten into ~1.2 MB of base64 each: only five fit in 6 MB; a small one after them fails too.
    payload = json.dumps({"a": {"b": "y" * 900_000}}).encode()
    event = {"records": [record(f"r{i}", payload) for i in range(7)] + [record("r7", b'{"small": 1}')]}

    outcome = transform_records(event, SETTINGS)

    answered = outcome.response()["records"]
    size = len(json.dumps(outcome.response()))
    assert size <= MAX_RESPONSE_BYTES
    assert [a["recordId"] for a in answered] == [f"r{i}" for i in range(8)]
    results = [a["result"] for a in answered]
    assert results == ["Ok"] * 5 + ["ProcessingFailed"] * 3
    assert "6291456-byte response" in outcome.problems["r7"]


def test_many_small_records_all_fit() -> None:
    event = {"records": [record(f"r{i}", b'{"n": {"m": 1}}') for i in range(5000)]}

    answered = transform_records(event, SETTINGS).response()["records"]

    assert {a["result"] for a in answered} == {"Ok"} and len(answered) == 5000


def test_empty_records_list_answers_nothing() -> None:
    assert transform_records({"records": []}, SETTINGS).response() == {"records": []}


@pytest.mark.parametrize("event", [{}, {"records": "x"}, {"records": None}, [], None, "records"], ids=repr)
def test_event_without_a_records_list_fails_the_invocation(event: Any) -> None:
    # There is no recordId to answer: an empty response would tell Firehose nothing, a named error makes it retry.
    with pytest.raises(InvalidEvent, match="records list"):
        transform_records(event, SETTINGS)


def test_the_firehose_handler_loads_without_pyarrow() -> None:
    # Its function ships without the arrow layer (template.yaml): importing pyarrow there would fail at cold start.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    probe = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pyarrow':\n"
        "            raise ImportError('pyarrow is not in the Firehose function')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path[:0] = [{str(root / 'layers' / 'common')!r}, {str(root / 'functions' / 'firehose_flatten')!r}]\n"
        "import app\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={"AWS_DEFAULT_REGION": "eu-west-1"})
    assert result.returncode == 0, result.stderr
