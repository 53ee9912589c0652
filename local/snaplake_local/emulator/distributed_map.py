"""Distributed Map failure tolerance: AWS fails a Distributed Map whose failed child workflows exceed
ToleratedFailureCount / ToleratedFailurePercentage (both 0 unless set) with
`States.ExceedToleratedFailureThreshold`; moto's executor counts a failed child and carries on, so the
Map succeeds. Here, once every child has ended, the Map fails as AWS's does (AWS may stop earlier,
while children are still running; what the execution sees is the same error).

Each Map run is also recorded (DistributedMapRuns.runs) with its children's histories, which moto keeps
out of the parent's: tests read a child's step outputs there.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from snaplake_local.emulator.clock import patched_attribute

EXCEEDED = "States.ExceedToleratedFailureThreshold"


@dataclass
class MapRun:
    """One run of a Distributed Map state: its children's counts and their (merged) history."""

    execution_arn: str
    state: str
    items: int = 0
    succeeded: int = 0
    failed: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def step_outputs(self, state: str) -> list[Any]:
        """The output of each time a child left the named state (all children, in no set order)."""
        return [
            json.loads(event["stateExitedEventDetails"]["output"])
            for event in self.history
            if event["type"].endswith("StateExited") and event["stateExitedEventDetails"]["name"] == state
        ]


class DistributedMapRuns:
    """Patches moto's Distributed Map run to apply the failure tolerance and records each run."""

    def __init__(self) -> None:
        self.runs: list[MapRun] = []
        self._lock = threading.Lock()

    def of(self, execution_arn: str, state: str | None = None) -> list[MapRun]:
        with self._lock:
            return [run for run in self.runs if run.execution_arn == execution_arn and state in (None, run.state)]

    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import distributed_iteration_component as module

        with patched_attribute(module.DistributedIterationComponent, "_map_run", self._wrap(module.DistributedIterationComponent._map_run)):
            yield

    def _wrap(self, original: Any) -> Any:
        runs = self

        def map_run(component: Any, env: Any, eval_input: Any) -> None:
            record = MapRun(str(env.states.context_object.context_object_data["Execution"]["Id"]), str(eval_input.state_name))
            with runs._lock:
                runs.runs.append(record)
            try:
                original(component, env, eval_input)
            finally:
                counter = eval_input.map_run_record.item_counter
                record.items, record.succeeded = counter.total.get(), counter.succeeded.get()
                record.failed = counter.failed.get() + counter.timed_out.get() + counter.aborted.get()
                record.history = [dict(event) for event in env.event_manager.get_event_history()]
            _fail_over_tolerance(env, eval_input, record)

        return map_run


def _fail_over_tolerance(env: Any, eval_input: Any, record: MapRun) -> None:
    if record.failed == 0:
        return
    percentage = 100.0 * record.failed / max(1, record.items)
    if record.failed <= eval_input.tolerated_failure_count and percentage <= eval_input.tolerated_failure_percentage:
        return
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    name = StatesErrorNameType.StatesExceedToleratedFailureThreshold
    cause = (
        f"The specified tolerated failure threshold was exceeded: {record.failed} of {record.items} child workflows failed "
        f"(tolerated: {eval_input.tolerated_failure_count} items, {eval_input.tolerated_failure_percentage}%)"
    )
    details: Any = EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(error=name.to_name(), cause=cause))  # type: ignore[typeddict-item]
    raise FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=name),
            event_type=HistoryEventType.ExecutionFailed,
            event_details=details,
        )
    )
