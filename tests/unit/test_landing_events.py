"""Landing events (snaplake.catalog.landing): PutEvents batches, partial failures, landing ids; and the emulated
EventBridge's input transformer on the examples of "Amazon EventBridge input transformation"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from snaplake.catalog import Landing, LandingEventsNotPut, put_landing_events
from snaplake.catalog.landing import PUT_ATTEMPTS, dynamodb_landings, entry_size
from snaplake.core import InvalidEvent
from snaplake_local.emulator.eventbridge import json_path, target_input, transform_input


def landing(table: str = "city", export: str = "export-1", padding: int = 0) -> Landing:
    return Landing(
        pipeline="rds",
        database="world",
        table=table,
        partition={"snapshot_time": "20240502T024019Z"},
        location=f"s3://lake/rds/world/{table}/snapshot_time=20240502T024019Z/",
        rows=3,
        files=1,
        bytes=100,
        export_ids=(export,),
        snapshot_time="2024-05-02T02:40:19Z",
        extra={"padding": "x" * padding} if padding else None,
    )


class FakeEvents:
    """PutEvents that fails the entries `fail(call, index)` names, per call."""

    def __init__(self, fail: Any = lambda call, index: False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append(Entries)
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} if self.fail(call, i) else {"EventId": f"{call}-{i}"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_events_go_in_batches_of_at_most_ten_entries_with_the_contract_fields() -> None:
    events = FakeEvents()

    ids = put_landing_events(events, "arn:aws:events:eu-west-1:123456789012:event-bus/lake", [landing(f"t{i}") for i in range(23)])

    assert [len(call) for call in events.calls] == [10, 10, 3]
    entry = events.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "snaplake",
        "Lake Partition Landed",
        "arn:aws:events:eu-west-1:123456789012:event-bus/lake",
    )
    detail = json.loads(entry["Detail"])
    assert detail["qualifiedTable"] == "world.t0" and detail["partition"] == {"snapshot_time": "20240502T024019Z"}
    assert ids == [json.loads(e["Detail"])["landingId"] for call in events.calls for e in call]


def test_a_batch_stays_under_256_kb_of_entries() -> None:
    events = FakeEvents()

    put_landing_events(events, "default", [landing(f"t{i}", padding=100_000) for i in range(5)])

    assert [len(call) for call in events.calls] == [2, 2, 1]
    assert all(sum(entry_size(e) for e in call) < 256 * 1024 for call in events.calls)


def test_only_the_failed_entries_are_put_again() -> None:
    events = FakeEvents(fail=lambda call, index: call == 0 and index in (1, 3))

    put_landing_events(events, "default", [landing(f"t{i}") for i in range(4)], sleep=lambda _: None)

    assert [[json.loads(e["Detail"])["table"] for e in call] for call in events.calls] == [["t0", "t1", "t2", "t3"], ["t1", "t3"]]


def test_entries_that_keep_failing_raise_landing_events_not_put_after_the_last_attempt() -> None:
    events = FakeEvents(fail=lambda call, index: index == 0)
    pauses: list[float] = []

    with pytest.raises(LandingEventsNotPut, match=r"1 of 2 landing events were not put.*InternalFailure"):
        put_landing_events(events, "default", [landing("a"), landing("b")], sleep=pauses.append)

    assert len(events.calls) == PUT_ATTEMPTS and pauses == [0.5, 1.0, 2.0]


def test_landing_id_is_deterministic_and_names_the_export() -> None:
    assert landing().landing_id == landing().landing_id
    assert landing(export="export-2").landing_id != landing().landing_id
    assert len(landing().landing_id) == 32


def test_dynamodb_landings_refuse_a_partition_without_totals() -> None:
    request = {"kind": "full", "exportArn": "arn:x", "exportedTo": "2024-05-02T00:00:00Z", "partitionTotals": {}}
    registered = [{"database": "dynamodb", "table": "t", "partitionValues": ["20240502T000000Z"], "location": "s3://l/dynamodb/t/x/"}]

    with pytest.raises(InvalidEvent, match="no totals"):
        dynamodb_landings(request, ["dynamodb/t/export_time=20240502T000000Z/"], registered)


# --- the emulated input transformer, on the EventBridge user guide's example event and templates
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
PATHS = {"timestamp": "$.time", "instance": "$.detail.instance-id", "state": "$.detail.state"}
RULE = ("example", "arn:aws:events:us-east-2:123456789012:rule/example")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('"instance <instance> is in <state>"', '"instance i-0123456789 is in RUNNING"'),
        ('"instance \\"<instance>\\" is in <state>"', '"instance \\"i-0123456789\\" is in RUNNING"'),
        ('{"instance" : <instance>, "state": <state>}', '{"instance" : "i-0123456789", "state": "RUNNING"}'),
        (
            '{"instance" : <instance>, "state": "<state>", "instanceStatus": "instance \\"<instance>\\" is in <state>"}',
            '{"instance" : "i-0123456789", "state": "RUNNING", "instanceStatus": "instance \\"i-0123456789\\" is in RUNNING"}',
        ),
        ('{"instance" : <instance>, "state": [ 9, <state>, true ], "Transformed" : "Yes"}', None),
        ('"<aws.events.rule-name> triggered"', '"example triggered"'),
    ],
)
def test_input_transformer_fills_the_documented_examples(template: str, expected: str | None) -> None:
    filled = transform_input(template, PATHS, EC2_EVENT, *RULE)

    if expected is not None:
        assert filled == expected
    else:
        assert json.loads(filled) == {"instance": "i-0123456789", "state": [9, "RUNNING", True], "Transformed": "Yes"}


def test_input_transformer_inserts_objects_as_json_and_reserved_variables() -> None:
    template = '{"ruleArn": <aws.events.rule-arn>, "original": <aws.events.event>, "detail": <detail>, "gone": <missing>}'

    filled = json.loads(transform_input(template, {"detail": "$.detail", "missing": "$.detail.nothing"}, EC2_EVENT, *RULE))

    assert filled["ruleArn"] == RULE[1] and filled["detail"] == EC2_EVENT["detail"] and filled["gone"] is None
    assert filled["original"]["id"] == EC2_EVENT["id"] and "detail" not in filled["original"]


def test_the_landing_rule_template_gives_the_jobs_file_and_the_landed_detail() -> None:
    detail = {"qualifiedTable": "world.city", "partition": {"snapshot_time": "20240502T024019Z"}, "rows": 34}
    event = {**EC2_EVENT, "detail": detail}
    transformer = {
        "InputPathsMap": {"qualifiedTable": "$.detail.qualifiedTable", "detail": "$.detail"},
        "InputTemplate": '{"jobsFile": "on_landing/<qualifiedTable>.json", "landed": <detail>}',
    }

    assert json.loads(target_input({"Arn": "x", "InputTransformer": transformer}, event, *RULE)) == {
        "jobsFile": "on_landing/world.city.json",
        "landed": detail,
    }


def test_input_and_input_path_and_the_whole_event() -> None:
    assert target_input({"Input": '{"a": 1}'}, EC2_EVENT, *RULE) == '{"a": 1}'
    assert json.loads(target_input({"InputPath": "$.detail"}, EC2_EVENT, *RULE)) == EC2_EVENT["detail"]
    assert json.loads(target_input({}, EC2_EVENT, *RULE)) == EC2_EVENT
    assert json_path(EC2_EVENT, "$.resources[0]") == EC2_EVENT["resources"][0]
