"""Time on the emulator: Step Functions Wait states and Retry back-off advance a virtual clock
instead of sleeping (moto's executor really sleeps).

patched_attribute is how every emulator module patches moto for the life of a stack.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any


class VirtualClock:
    """Time that only moves when the state machine waits or backs off."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=max(0.0, float(seconds)))
            self.waited_seconds += max(0.0, float(seconds))


@contextmanager
def patched_attribute(owner: Any, name: str, value: Any) -> Iterator[Any]:
    """Replace `owner.name` for the duration; yields the original."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield original
    finally:
        setattr(owner, name, original)


@contextmanager
def fast_forward_step_functions(clock: VirtualClock) -> Iterator[None]:
    """Make moto's ASL executor advance `clock` instead of sleeping."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def virtual_wait(self: Any, env: Any, wait_seconds: int) -> None:
        clock.advance(wait_seconds)

    with (
        patched_attribute(wait_function.WaitFunction, "_wait_interval", virtual_wait),
        patched_attribute(retrier_decl, "time", types.SimpleNamespace(sleep=clock.advance, time=time.time)),
    ):
        yield
