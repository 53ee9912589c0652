"""Lambda tasks run the real handlers in this process (moto would need Docker), each with its
function's environment from template.yaml, and report errors the way Lambda does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from snaplake_local.emulator.account import DEFAULT_ACCOUNT
from snaplake_local.emulator.clock import patched_attribute

_COLD_STARTS = threading.Lock()


@dataclass
class LocalFunction:
    """A template function, loaded from its code folder with its own environment."""

    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    region: str
    account: str = DEFAULT_ACCOUNT
    _entry: Callable[[Any, Any], Any] | None = field(default=None, repr=False)
    _module: ModuleType | None = field(default=None, repr=False)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    def load(self) -> None:
        """Import the handler module with the function's environment set, as Lambda does at a cold start (again: a
        new container)."""
        module_file, _, attr = self.handler.rpartition(".")
        path = self.code_dir / f"{module_file.replace('.', '/')}.py"
        module_name = f"snaplake_function_{self.logical_id}"
        with _environment(self.environment):
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        self._entry, self._module = getattr(module, attr), module

    def module(self) -> ModuleType:
        """The handler module (its clients, its globals), imported now if the function has not run yet."""
        self._cold_start()
        assert self._module is not None
        return self._module

    def call(self, event: Any, remaining_ms: Callable[[], int] | None = None) -> Any:
        """Run the handler with a Lambda context; its exceptions propagate."""
        self._cold_start()
        assert self._entry is not None
        return self._entry(event, _LambdaContext(self, remaining_ms))

    def _cold_start(self) -> None:
        # On the first invocation, as Lambda: a stack's functions that never run cost nothing. One import at a time
        # (a module imported twice would be two containers' worth of clients).
        if self._entry is None:
            with _COLD_STARTS:
                if self._entry is None:
                    self.load()

    def invoke(self, event: Any, remaining_ms: Callable[[], int] | None = None) -> tuple[Any, bool]:
        """Run the handler; returns (payload, errored) the way Lambda reports them."""
        try:
            return self.call(event, remaining_ms), False
        except Exception as error:  # Lambda's own behaviour: report the error type and message.
            return {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-6:],
            }, True


class _LambdaContext:
    def __init__(self, function: LocalFunction, remaining_ms: Callable[[], int] | None):
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "local"
        deadline = time.monotonic() + function.timeout_seconds
        self._remaining = remaining_ms or (lambda: int((deadline - time.monotonic()) * 1000))

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining()


class _ThreadEnviron(MutableMapping[str, str]):
    """`os.environ` as each thread sees it: the process environment, under the variables of the function whose
    module this thread is importing (a cold start, `_environment`).

    Map children run their handlers in threads of one process; a cold start that set its function's variables
    process-wide would show them to, and on restoring take them from under, a handler running in another thread
    (botocore copying the environment then fails with a KeyError, seen in benchmarks/rds_copy.py).
    """

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process
        self._local = threading.local()

    def overlay(self) -> dict[str, str] | None:
        return getattr(self._local, "values", None)

    def set_overlay(self, values: dict[str, str] | None) -> None:
        self._local.values = values

    def __getitem__(self, key: str) -> str:
        overlay = self.overlay()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self.process[key]

    def get(self, key: str, default: Any = None) -> Any:  # no exception for a missing variable: botocore asks often
        overlay = self.overlay()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self.process.get(key, default)

    def __contains__(self, key: object) -> bool:
        overlay = self.overlay()
        return (overlay is not None and key in overlay) or key in self.process

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self.overlay()
        if overlay is not None:
            overlay[key] = value
        else:
            self.process[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = self.overlay()
        if overlay is not None and key in overlay:
            del overlay[key]
        else:
            del self.process[key]

    def __iter__(self) -> Iterator[str]:
        overlay = self.overlay()
        keys = list(self.process) if overlay is None else list(dict.fromkeys([*self.process, *overlay]))
        return iter(keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)


def _thread_environ() -> _ThreadEnviron:
    environ: MutableMapping[str, str] = os.environ
    if not isinstance(environ, _ThreadEnviron):
        environ = _ThreadEnviron(environ)
        os.environ = environ  # type: ignore[assignment]  # noqa: B003 - a per-thread view of the same variables
    return environ


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """The function's variables in os.environ for this thread only, while its module is imported."""
    environ = _thread_environ()
    outer = environ.overlay()
    environ.set_overlay({**(outer or {}), **values})
    try:
        yield
    finally:
        environ.set_overlay(outer)


class InProcessLambdas:
    """Routes moto's Lambda invocations to LocalFunction handlers in this process."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self.invocations: list[tuple[str, bool]] = []
        self.remaining_ms: dict[str, Callable[[], int]] = {}
        # Tests set this to inject a fault before a handler runs: hook(function_name, event).
        self.before_invoke: Callable[[str, Any], None] | None = None
        # The demo uses this to print progress: hook(function_name, event, payload, errored).
        self.after_invoke: Callable[[str, Any, Any, bool], None] | None = None

    def add(self, function: LocalFunction) -> None:
        self.functions[function.name] = function

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        function = self.functions[name]
        if self.before_invoke is not None:
            try:
                self.before_invoke(name, event)
            except Exception as error:
                self.invocations.append((name, True))
                return {"errorType": type(error).__name__, "errorMessage": str(error)}, True
        payload, errored = function.invoke(event, self.remaining_ms.get(name))
        self.invocations.append((name, errored))
        if self.after_invoke is not None:
            self.after_invoke(name, event, payload, errored)
        return payload, errored

    @contextmanager
    def patched(self) -> Iterator[None]:
        from moto.awslambda import models

        original = models.LambdaFunction._invoke_lambda
        lambdas = self

        def invoke_in_process(fn: Any, event: Any = None) -> tuple[str, bool, str]:
            if fn.function_name not in lambdas.functions:
                return original(fn, event)
            parsed = json.loads(event) if isinstance(event, str | bytes) else event
            payload, errored = lambdas.invoke(fn.function_name, parsed)
            return json.dumps(payload, default=str), errored, ""

        with patched_attribute(models.LambdaFunction, "_invoke_lambda", invoke_in_process):
            yield
