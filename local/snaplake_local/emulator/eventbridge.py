"""EventBridge rules with Step Functions targets, as AWS delivers to them.

moto's PutEvents matches a bus's rules against each event but delivers only to log groups, SQS queues, archives,
other buses and API destinations: a rule whose target is a state machine raises NotImplementedError. Here a
matching, enabled rule starts an execution of each Step Functions target, with the target's input as EventBridge
documents it ("Amazon EventBridge input transformation", PutTargets): `Input` (constant JSON), `InputPath` (a JSON
path into the event), `InputTransformer` (InputPathsMap + InputTemplate: a placeholder inside a JSON string inserts
the value's text, unescaped; anywhere else it inserts the value as JSON; a path the event lacks makes the
variable empty, `null` outside a string), or else the whole event. Other targets keep moto's delivery, and rules
keep moto's pattern matching.

Every accepted entry is also kept (`EventBridgeEmulator.events`, the events as a rule sees them), and the next
entries can be made to fail (`fail_entries`) the way PutEvents reports a partial failure (FailedEntryCount and an
ErrorCode per failed entry; the others are put).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from snaplake_local.emulator.clock import patched_attribute

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    """The value at a JSON path of EventBridge's subset (`$`, `$.a.b-c`, `$.a[0]`), or _MISSING."""
    if not path.startswith("$"):
        return _MISSING
    value, position = document, 1
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if step is None:
            return _MISSING
        key, index = step.groups()
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
        position = step.end()
    return value


def transform_input(template: str, paths_map: dict[str, str], event: dict[str, Any], rule_name: str, rule_arn: str) -> str:
    """An InputTemplate filled from the event (InputPathsMap variables and EventBridge's predefined ones)."""
    values = {name: json_path(event, path) for name, path in paths_map.items()}
    values.update(
        {
            "aws.events.rule-arn": rule_arn,
            "aws.events.rule-name": rule_name,
            "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
            "aws.events.event.json": event,
            "aws.events.event.ingestion-time": event.get("time"),
        }
    )
    out: list[str] = []
    in_string, position = False, 0
    while position < len(template):
        char = template[position]
        if in_string and char == "\\":
            out.append(template[position : position + 2])
            position += 2
            continue
        if char == '"':
            in_string = not in_string
        placeholder = _PLACEHOLDER.match(template, position)
        if placeholder and placeholder.group(1) in values:
            value = values[placeholder.group(1)]
            if in_string:
                out.append("" if value is _MISSING else value if isinstance(value, str) else json.dumps(value))
            else:
                out.append("null" if value is _MISSING else json.dumps(value))
            position = placeholder.end()
            continue
        out.append(char)
        position += 1
    return "".join(out)


def target_input(target: dict[str, Any], event: dict[str, Any], rule_name: str, rule_arn: str) -> str:
    """What a target receives for the event: Input, InputPath, InputTransformer, or the event itself."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        value = json_path(event, target["InputPath"])
        return "null" if value is _MISSING else json.dumps(value)
    transformer = target.get("InputTransformer")
    if transformer:
        return transform_input(transformer["InputTemplate"], transformer.get("InputPathsMap", {}), event, rule_name, rule_arn)
    return json.dumps(event)


class EventBridgeEmulator:
    """Patches moto's PutEvents: every accepted event is kept, Step Functions targets are started."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []  # every event put, as its rules see it
        self.started: list[dict[str, Any]] = []  # {"rule", "stateMachineArn", "executionArn", "input"} per execution started
        self._failing: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def fail_entries(self, calls: int, first: int = 1, code: str = "InternalFailure") -> None:
        """The next `calls` PutEvents calls each fail their first `first` entries with `code`, reported per entry as AWS
        reports a partial failure (the other entries are put)."""
        with self._lock:
            self._failing += [(first, code)] * calls

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self.events if event["detail-type"] == detail_type]

    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.events.models import EventsBackend, Rule

        with (
            patched_attribute(EventsBackend, "put_events", self._put_events(EventsBackend.put_events)),
            patched_attribute(Rule, "send_to_targets", self._send_to_targets(Rule.send_to_targets)),
        ):
            yield

    def _put_events(self, original: Any) -> Any:
        emulator = self

        def put_events(backend: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
            with emulator._lock:
                first, code = emulator._failing.pop(0) if emulator._failing else (0, "")
            failed = {index: code for index in range(min(first, len(events)))}
            passed = [event for index, event in enumerate(events) if index not in failed]
            answers = iter(original(backend, passed) if passed else [])
            results = []
            for index, event in enumerate(events):
                if index in failed:
                    results.append({"ErrorCode": failed[index], "ErrorMessage": "emulated PutEvents entry failure"})
                    continue
                result = next(answers)
                if "EventId" in result:
                    emulator._record(backend, event, result["EventId"])
                results.append(result)
            return results

        return put_events

    def _record(self, backend: Any, entry: dict[str, Any], event_id: str) -> None:
        event = {
            "version": "0",
            "id": event_id,
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": backend.account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": backend.region_name,
            "resources": entry.get("Resources", []),
            "detail": json.loads(entry["Detail"]),
            "eventBusName": str(entry.get("EventBusName") or "default").split("/")[-1],
        }
        with self._lock:
            self.events.append(event)

    def _send_to_targets(self, original: Any) -> Any:
        emulator = self

        def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(event):
                return
            if isinstance(event.get("time"), int | float):  # moto's event carries epoch seconds; AWS's an ISO 8601 time
                event = {**event, "time": datetime.fromtimestamp(event["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            others = [target for target in rule.targets if ":states:" not in target["Arn"]]
            for target in rule.targets:
                if ":states:" in target["Arn"]:
                    emulator._start(rule, target, target_input(target, event, rule.name, rule.arn))
            if others:
                view = copy.copy(rule)
                view.targets = others
                original(view, event, transform_input)

        return send_to_targets

    def _start(self, rule: Any, target: dict[str, Any], execution_input: str) -> None:
        from moto.stepfunctions.responses import get_backend

        execution = get_backend(rule.account_id, rule.region_name).start_execution(
            state_machine_arn=target["Arn"], name=str(uuid.uuid4()), execution_input=execution_input
        )
        with self._lock:
            self.started.append(
                {"rule": rule.name, "stateMachineArn": target["Arn"], "executionArn": execution.execution_arn, "input": execution_input}
            )
