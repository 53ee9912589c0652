"""events/: sample events for `sam local invoke` / the local runner are JSON objects named rds_*.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ._support import EVENTS_DIR

EVENT_FILES = sorted(path for path in EVENTS_DIR.iterdir() if path.is_file()) if EVENTS_DIR.is_dir() else []


def test_there_are_sample_events() -> None:
    assert EVENT_FILES, "events/ is empty or missing"


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda path: path.name)
def test_event_is_a_json_object_named_rds_something(path: Path) -> None:
    assert re.fullmatch(r"rds_[a-z0-9_]+\.json", path.name), f"{path.name}: sample events are named rds_<what>.json"
    assert isinstance(json.loads(path.read_text()), dict), f"{path.name}: not a JSON object"
