"""Metrics namespace, freshness alarms, the dashboard and the state machines' log level in template.yaml.

The alarms and the dashboard are rendered with the local template evaluator for given parameters, so what is
checked is what CloudFormation would create: which slots get an alarm, and the exact metric, namespace and
dimensions each watches, which must be what snaplake.core.metrics emits."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from snaplake.core.metrics import UNITS

from tests.template._support import function_globals, rendered_resources, resources_of_type, template

FRESHNESS_SLOTS = 5
TABLE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/"


def alarms(resources: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    return {logical_id: spec["Properties"] for logical_id, spec in resources.items() if logical_id.startswith(prefix)}


def watched(alarm: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    return alarm["Namespace"], alarm["MetricName"], {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_functions_emit_into_the_metrics_namespace_parameter() -> None:
    assert function_globals()["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert template()["Parameters"]["MetricsNamespace"]["Default"] == "snaplake"


def test_each_literal_source_identifier_of_the_first_five_gets_a_freshness_alarm_and_patterns_none() -> None:
    resources = rendered_resources(
        SourceIdentifiers="world-aurora,shop-*,billing-db,ledger?,x[ab],orders-db,seventh-db", MetricsNamespace="lake-ns"
    )

    found = alarms(resources, "RdsFreshnessAlarm")
    assert sorted(found) == ["RdsFreshnessAlarm1", "RdsFreshnessAlarm3"]  # slots 2, 4, 5 hold patterns
    assert watched(found["RdsFreshnessAlarm1"]) == ("lake-ns", "SnapshotsLanded", {"pipeline": "rds", "source": "world-aurora"})
    assert watched(found["RdsFreshnessAlarm3"]) == ("lake-ns", "SnapshotsLanded", {"pipeline": "rds", "source": "billing-db"})
    assert "billing-db" in found["RdsFreshnessAlarm3"]["AlarmDescription"]


def test_freshness_alarms_fire_when_no_landing_was_seen_for_the_configured_hours_missing_data_breaching() -> None:
    resources = rendered_resources(FreshnessHours="30", DynamoDbFreshnessHours="4", DynamoDbTableArns=TABLE_ARN + "Orders")

    rds = alarms(resources, "RdsFreshnessAlarm")["RdsFreshnessAlarm1"]
    ddb = alarms(resources, "DynamoDbFreshnessAlarm")["DynamoDbFreshnessAlarm1"]
    for alarm, hours in ((rds, "30"), (ddb, "4")):
        assert alarm["Period"] == 3600 and alarm["Statistic"] == "Sum"
        assert str(alarm["EvaluationPeriods"]) == str(alarm["DatapointsToAlarm"]) == hours  # every hour of the window empty
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
        assert alarm["TreatMissingData"] == "breaching"  # no metric at all is what they exist for
        assert alarm["AlarmActions"] == ["FailureTopic"]
        assert 3600 * int(hours) <= 7 * 24 * 3600  # CloudWatch: Period x EvaluationPeriods at most seven days
    assert template()["Parameters"]["FreshnessHours"]["MaxValue"] * 3600 <= 7 * 24 * 3600
    assert template()["Parameters"]["DynamoDbFreshnessHours"]["MaxValue"] * 3600 <= 7 * 24 * 3600


def test_each_of_the_first_five_dynamodb_tables_gets_a_checkpoint_alarm_on_its_name() -> None:
    arns = [f"arn:aws:dynamodb:eu-west-1:123456789012:table/Table-{n}.v2" for n in range(1, 7)]
    resources = rendered_resources(DynamoDbTableArns=",".join(arns))

    found = alarms(resources, "DynamoDbFreshnessAlarm")
    assert sorted(found) == [f"DynamoDbFreshnessAlarm{n}" for n in range(1, FRESHNESS_SLOTS + 1)]
    for n in range(1, FRESHNESS_SLOTS + 1):
        namespace, metric, dimensions = watched(found[f"DynamoDbFreshnessAlarm{n}"])
        assert (namespace, metric, dimensions) == ("snaplake", "CheckpointsCommitted", {"pipeline": "dynamodb", "source": f"Table-{n}.v2"})
    assert not alarms(rendered_resources(), "DynamoDbFreshnessAlarm")  # no tables, no alarms


def test_freshness_alarms_watch_metrics_the_code_emits_with_their_dimension_sets() -> None:
    """CloudWatch matches the exact dimension set: pipeline and source, as snaplake.core.metrics.publish writes
    a source-level fact (the integration tests read those documents back)."""
    resources = rendered_resources(DynamoDbTableArns="arn:aws:dynamodb:eu-west-1:123456789012:table/orders")
    for alarm in [*alarms(resources, "RdsFreshnessAlarm").values(), *alarms(resources, "DynamoDbFreshnessAlarm").values()]:
        _, metric, dimensions = watched(alarm)
        assert metric in UNITS and set(dimensions) == {"pipeline", "source"}
    assert len([n for n in template()["Resources"] if re.fullmatch(r"(Rds|DynamoDb)FreshnessAlarm\d", n)]) == 2 * FRESHNESS_SLOTS


@pytest.mark.parametrize("with_optional_pipelines", [True, False])
def test_dashboard_is_valid_json_and_shows_every_metric_executions_and_the_stream_iterator_age(with_optional_pipelines: bool) -> None:
    optional = {"DynamoDbTableArns": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders", "DynamoDbStreamArns": ""}
    if with_optional_pipelines:
        optional["DynamoDbStreamArns"] = "arn:aws:dynamodb:eu-west-1:123456789012:table/carts/stream/2024-05-02T00:00:00.000"
    else:
        optional["DynamoDbTableArns"] = ""
    [(_, dashboard)] = [(i, s) for i, s in rendered_resources(**optional).items() if s["Type"] == "AWS::CloudWatch::Dashboard"]

    body = json.loads(dashboard["Properties"]["DashboardBody"])
    text = json.dumps(body)
    assert set(re.findall(r'MetricName=\\"(\w+)\\"', text)) == set(UNITS)
    assert all("{snaplake,pipeline,source" in expression for expression in re.findall(r"SEARCH\('([^']*)'", text))
    plain = [m for w in body["widgets"] for m in w.get("properties", {}).get("metrics", []) if isinstance(m[0], str)]
    assert {(m[0], m[1]) for m in plain} >= {
        ("AWS/States", "ExecutionsStarted"),
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/Lambda", "IteratorAge"),
    }
    states = {m[3] for m in plain if m[0] == "AWS/States"}
    assert "RdsExportStateMachine" in states and "AthenaEtlStateMachine" in states
    assert ("DynamoDbExportStateMachine" in states) is with_optional_pipelines
    lambdas = {m[3] for m in plain if m[0] == "AWS/Lambda"}
    assert lambdas == ({"StreamFlattenFunction"} if with_optional_pipelines else {"none"})


def test_every_state_machine_logs_at_the_configured_level_with_execution_data_off_by_default() -> None:
    parameters = template()["Parameters"]
    assert parameters["StateMachineLogLevel"]["AllowedValues"] == ["ALL", "ERROR", "FATAL", "OFF"]
    assert parameters["StateMachineLogLevel"]["Default"] == "ERROR"
    assert parameters["StateMachineLogIncludeExecutionData"]["Default"] == "false"
    machines = resources_of_type("AWS::Serverless::StateMachine")
    assert len(machines) == 3
    for _, spec in machines:
        logging = spec["Properties"]["Logging"]
        assert logging["Level"] == {"Ref": "StateMachineLogLevel"}
        assert logging["IncludeExecutionData"] == {"Fn::If": ["LogExecutionData", True, False]}
    for level, data in (("ALL", "true"), ("OFF", "false")):
        rendered = rendered_resources(
            StateMachineLogLevel=level,
            StateMachineLogIncludeExecutionData=data,
            DynamoDbTableArns=TABLE_ARN + "t",
        )
        for logical_id, _ in machines:
            assert rendered[logical_id]["Properties"]["Logging"]["Level"] == level
            assert rendered[logical_id]["Properties"]["Logging"]["IncludeExecutionData"] is (data == "true")
