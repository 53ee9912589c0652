"""template.yaml for landing events: the bus parameter, PutEvents on that bus only, and the AthenaLandingTables rule
(its pattern, its role allowed to start athena_etl only, and the input its transformer gives the jobs)."""

from __future__ import annotations

import json
from typing import Any

from snaplake_local.emulator.eventbridge import target_input

from ._support import policy_statements, resources, template

BUS_ARN = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${LandingEventBus}"}
# The catalog steps put the partitions' landings, MergeCurrent the `_current` tables'.
CATALOG_FUNCTIONS = ("RdsCatalogFunction", "DynamoDbCatalogFunction", "DynamoDbCurrentFunction")


def test_landing_event_bus_parameter_defaults_to_the_default_bus() -> None:
    parameters = template()["Parameters"]
    assert parameters["LandingEventBus"]["Default"] == "default"
    assert parameters["AthenaLandingTables"]["Type"] == "CommaDelimitedList" and parameters["AthenaLandingTables"]["Default"] == ""


def test_only_the_landing_functions_put_events_and_only_on_the_landing_bus() -> None:
    putting: dict[str, list[Any]] = {}
    for found in policy_statements(template()):
        if "events:PutEvents" in _actions(found.statement):
            putting.setdefault(found.resource_id, []).append(found.statement["Resource"])
    assert putting == {logical_id: [BUS_ARN] for logical_id in CATALOG_FUNCTIONS}
    for logical_id in CATALOG_FUNCTIONS:
        assert resources()[logical_id]["Properties"]["Environment"]["Variables"]["LANDING_EVENT_BUS"] == BUS_ARN


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def test_landing_rule_matches_landings_of_the_listed_tables_on_the_landing_bus() -> None:
    rule = resources()["AthenaLandingRule"]
    assert rule["Type"] == "AWS::Events::Rule" and rule["Condition"] == "HasAthenaLandingTables"
    assert template()["Conditions"]["HasAthenaLandingTables"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": [",", {"Ref": "AthenaLandingTables"}]}, ""]}]
    }
    properties = rule["Properties"]
    assert properties["EventBusName"] == {"Ref": "LandingEventBus"}
    assert properties["EventPattern"] == {
        "source": ["snaplake"],
        "detail-type": ["Lake Partition Landed"],
        "detail": {"qualifiedTable": {"Ref": "AthenaLandingTables"}},
    }
    [target] = properties["Targets"]
    assert target["Arn"] == {"Ref": "AthenaEtlStateMachine"} and target["RoleArn"] == {"Fn::GetAtt": ["AthenaLandingRuleRole", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["TriggerDeadLetterQueue", "Arn"]}


def test_landing_rule_role_may_only_start_athena_etl_executions() -> None:
    role = resources()["AthenaLandingRuleRole"]
    assert role["Condition"] == "HasAthenaLandingTables"
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    statements = [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": "AthenaEtlStateMachine"}}]


def test_landing_rule_gives_athena_etl_the_jobs_file_of_the_table_and_the_landed_detail_as_json() -> None:
    [target] = resources()["AthenaLandingRule"]["Properties"]["Targets"]
    detail = {"landingId": "0" * 32, "qualifiedTable": "world.city", "partition": {"snapshot_time": "20240502T024019Z"}, "rows": 34}
    event = {"version": "0", "id": "1", "detail-type": "Lake Partition Landed", "source": "snaplake", "detail": detail}

    given = json.loads(target_input(target, event, "rule", "arn:aws:events:eu-west-1:123456789012:rule/rule"))

    assert given == {"jobsFile": "on_landing/world.city.json", "landed": detail}
