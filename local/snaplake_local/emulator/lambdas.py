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
from collections.abc import Callable, Iterator, Mapping
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
        # On the first invocation, as Lambda: a stack's functions that never run cost nothing. One import at a time,
        # since the function's environment is set process-wide while its module is imported.
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


_ENV_LOCK = threading.Lock()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


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
