"""The ASL sticks to what both AWS and moto's Step Functions executor (the local runner) run, and moto's parser accepts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._support import ASL_FILES, all_states, asl, asl_id, rendered

per_definition = pytest.mark.parametrize("path", ASL_FILES, ids=asl_id)

WAITING_INTEGRATIONS = (".sync", ".sync:2", ".waitForTaskToken")


def _keys(node: Any, where: str = "$") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key
            yield from _keys(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _keys(value, f"{where}[{index}]")


@per_definition
def test_no_sync_or_callback_integrations(path: Path) -> None:
    found = [
        f"{scope.where} > {name}: {state['Resource']}"
        for scope, name, state in all_states(asl(path))
        if isinstance(state.get("Resource"), str) and state["Resource"].endswith(WAITING_INTEGRATIONS)
    ]
    assert not found, "integrations that wait (.sync / .waitForTaskToken): " + ", ".join(found)


@per_definition
def test_every_map_is_inline_or_a_distributed_map_over_one_s3_object(path: Path) -> None:
    """moto's executor runs a DISTRIBUTED Map only over one S3 JSON/CSV object (test_asl_distributed checks the rest)."""
    bad = []
    for scope, name, state in all_states(asl(path)):
        if state.get("Type") != "Map":
            continue
        mode = state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode", "INLINE")
        reader = state.get("ItemReader", {})
        if mode == "DISTRIBUTED" and (reader.get("Resource") != "arn:aws:states:::s3:getObject" or "ReaderConfig" not in reader):
            bad.append(f"{scope.where} > {name}: a DISTRIBUTED Map without an s3:getObject ItemReader and its ReaderConfig")
        elif mode not in ("INLINE", "DISTRIBUTED"):
            bad.append(f"{scope.where} > {name}: ProcessorConfig.Mode {mode!r}")
    assert not bad, "Map states the local executor does not run like AWS: " + ", ".join(bad)


@per_definition
def test_moto_step_functions_parser_accepts_the_rendered_definition(path: Path) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    definition = rendered(path)
    try:
        program, _tree = AmazonStateLanguageParser.parse(definition)
    except ASLParserException as error:
        pytest.fail(f"moto's ASL parser rejects {path.name}: {error.errors}")
    assert program is not None
