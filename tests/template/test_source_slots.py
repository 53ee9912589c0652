"""Several sources per stack (issue 16.7): up to five DynamoDB streams (an event source mapping each) and up to five
scheduled latest-snapshot sources (a schedule each), rendered for given parameters as CloudFormation would create them.

Both lists are String parameters with an AllowedPattern: CloudFormation Rules cannot count a list's items, so the
pattern is what refuses a sixth item (or an empty one) before anything is created."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.template._support import rendered_resources, template

SLOTS = 5
STREAM = "arn:aws:dynamodb:eu-west-1:123456789012:table/{}/stream/2024-05-02T00:00:00.000"
RDS_MACHINE = "RdsExportStateMachine"


def _allowed(parameter: str, value: str) -> bool:
    """CloudFormation's check of a String parameter: the whole value matches AllowedPattern."""
    return re.fullmatch(template()["Parameters"][parameter]["AllowedPattern"], value) is not None


def _mappings(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        logical_id: spec["Properties"]["EventSourceArn"]
        for logical_id, spec in resources.items()
        if spec["Type"] == "AWS::Lambda::EventSourceMapping"
    }


def _stream_read_resources(resources: dict[str, dict[str, Any]]) -> list[str]:
    [statement] = [
        s
        for policy in resources["StreamFlattenFunction"]["Properties"]["Policies"]
        for s in policy["Statement"]
        if isinstance(s, dict) and "dynamodb:GetRecords" in s.get("Action", [])
    ]
    return list(statement["Resource"])


def _schedules(resources: dict[str, dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    events = resources[RDS_MACHINE]["Properties"]["Events"]
    return {
        name: (event["Properties"]["State"], json.loads(event["Properties"]["Input"]))
        for name, event in events.items()
        if name.startswith("LatestSnapshot")
    }


def test_two_stream_arns_get_a_mapping_each_and_the_function_reads_exactly_those_streams() -> None:
    carts, wishlists = STREAM.format("carts"), STREAM.format("wish.lists-2")

    resources = rendered_resources(DynamoDbStreamArns=f"{carts},{wishlists}")

    assert _mappings(resources) == {"StreamFlattenEventSourceMapping1": carts, "StreamFlattenEventSourceMapping2": wishlists}
    assert _stream_read_resources(resources) == [carts, wishlists]
    assert "StreamFailureQueue" in resources and "StreamFailureAlarm" in resources  # one queue and alarm for all


def test_five_streams_fill_every_slot_and_no_stream_creates_no_stream_resource() -> None:
    arns = [STREAM.format(f"table-{n}") for n in range(1, SLOTS + 1)]

    assert sorted(_mappings(rendered_resources(DynamoDbStreamArns=",".join(arns))).values()) == sorted(arns)
    off = rendered_resources(DynamoDbStreamArns="")
    assert _mappings(off) == {}
    assert not {"StreamFlattenFunction", "StreamFailureQueue", "StreamFailureAlarm"} & set(off)


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        (STREAM.format("carts"), True),
        (",".join(STREAM.format(f"t{n}") for n in range(SLOTS)), True),
        (",".join(STREAM.format(f"t{n}") for n in range(SLOTS + 1)), False),  # a sixth stream would have no mapping
        (STREAM.format("carts") + ",", False),
        (STREAM.format("carts") + ", " + STREAM.format("orders"), False),
        (STREAM.format("carts") + ",," + STREAM.format("orders"), False),
        ("arn:aws:dynamodb:eu-west-1:123456789012:table/carts", False),  # a table, not its stream
        ("arn:aws:kinesis:eu-west-1:123456789012:stream/carts", False),
    ],
)
def test_stream_arns_parameter_takes_up_to_five_stream_arns_and_nothing_else(value: str, allowed: bool) -> None:
    assert _allowed("DynamoDbStreamArns", value) is allowed


def test_each_scheduled_source_gets_its_own_enabled_schedule_and_the_other_slots_stay_disabled() -> None:
    schedules = _schedules(rendered_resources(ScheduledSourceIdentifiers="world-aurora,shop-mysql"))

    assert sorted(schedules) == [f"LatestSnapshot{n}" for n in range(1, SLOTS + 1)]
    assert schedules["LatestSnapshot1"] == ("ENABLED", {"latestSnapshotOf": "world-aurora"})
    assert schedules["LatestSnapshot2"] == ("ENABLED", {"latestSnapshotOf": "shop-mysql"})
    assert {schedules[f"LatestSnapshot{n}"][0] for n in range(3, SLOTS + 1)} == {"DISABLED"}
    assert {state for state, _ in _schedules(rendered_resources()).values()} == {"DISABLED"}


def test_every_latest_snapshot_schedule_fires_on_the_schedule_parameter_and_retries_into_the_dead_letter_queue() -> None:
    events = template()["Resources"][RDS_MACHINE]["Properties"]["Events"]
    for n in range(1, SLOTS + 1):
        properties = events[f"LatestSnapshot{n}"]["Properties"]
        assert events[f"LatestSnapshot{n}"]["Type"] == "ScheduleV2"
        assert properties["ScheduleExpression"] == {"Ref": "LatestSnapshotSchedule"}
        assert properties["State"] == {"Fn::If": [f"ScheduleLatestSnapshot{n}", "ENABLED", "DISABLED"]}
        assert properties["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["TriggerDeadLetterQueue", "Arn"]}}
        assert properties["RetryPolicy"]["MaximumRetryAttempts"] > 0


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        ("world-aurora", True),
        ("a,b,c,d,e", True),
        ("a,b,c,d,e,f", False),  # at most five: the account runs five exports at once
        ("world-aurora,", False),
        ("world-aurora, shop-mysql", False),
        ("1shop", False),
        ("shop_mysql", False),
        ("a" * 64, False),
    ],
)
def test_scheduled_sources_parameter_takes_up_to_five_identifiers(value: str, allowed: bool) -> None:
    assert _allowed("ScheduledSourceIdentifiers", value) is allowed
