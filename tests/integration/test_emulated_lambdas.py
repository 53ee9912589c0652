"""The in-process Lambdas: a function's cold start must not change the environment under handlers running in other
threads (Map children run concurrently in one process)."""

import os
import threading
from pathlib import Path

from snaplake_local.emulator.lambdas import LocalFunction

_HANDLER = """
import os
import time

SEEN = os.environ["SNAPLAKE_COLD_START_PROBE"]
time.sleep(0.02)  # a slow import: the window in which another thread could see this function's variables


def handler(event, context):
    return {"seen": SEEN, "now": os.environ.get("SNAPLAKE_COLD_START_PROBE")}
"""


def _function(code_dir: Path, index: int) -> LocalFunction:
    return LocalFunction(
        logical_id=f"ColdStartProbe{index}",
        name=f"probe-{index}",
        code_dir=code_dir,
        handler="app.handler",
        environment={"SNAPLAKE_COLD_START_PROBE": f"value-{index}"},
        timeout_seconds=3,
        memory_mb=128,
        region="eu-west-1",
    )


def test_a_cold_start_shows_its_variables_to_its_own_import_only_and_other_threads_never_see_them(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(_HANDLER)
    assert "SNAPLAKE_COLD_START_PROBE" not in os.environ
    stop = threading.Event()
    seen_elsewhere: list[str] = []
    errors: list[BaseException] = []

    def running_handler_elsewhere() -> None:
        # What botocore does when it builds a client: copy the whole environment.
        while not stop.is_set():
            try:
                copied = dict(os.environ)
            except BaseException as error:  # a KeyError when a variable is removed during the copy
                errors.append(error)
                return
            if "SNAPLAKE_COLD_START_PROBE" in copied:
                seen_elsewhere.append(copied["SNAPLAKE_COLD_START_PROBE"])

    other = threading.Thread(target=running_handler_elsewhere)
    other.start()
    try:
        results = [_function(tmp_path, index).call({}) for index in range(10)]
    finally:
        stop.set()
        other.join()

    assert results == [{"seen": f"value-{index}", "now": None} for index in range(10)]
    assert not errors and not seen_elsewhere
    assert "SNAPLAKE_COLD_START_PROBE" not in os.environ
