"""The ASL sticks to what both AWS and moto's Step Functions executor (the local runner) run, and moto's parser accepts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._support import ASL_FILES, all_states, asl, asl_id, rendered

per_definition = pytest.mark.parametrize("path", ASL_FILES, ids=asl_id)

# Distributed-Map-only fields: neither moto's executor nor an INLINE Map runs them.
DISTRIBUTED_MAP_FIELDS = {"ItemBatcher", "ItemReader", "ResultWriter", "ToleratedFailurePercentage", "ToleratedFailureCount"}
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
def test_no_distributed_map_fields(path: Path) -> None:
    found = [f"{where}.{key}" for where, key in _keys(asl(path)) if key in DISTRIBUTED_MAP_FIELDS]
    assert not found, "distributed-Map-only fields: " + ", ".join(found)


@per_definition
def test_no_sync_or_callback_integrations(path: Path) -> None:
    found = [
        f"{scope.where} > {name}: {state['Resource']}"
        for scope, name, state in all_states(asl(path))
        if isinstance(state.get("Resource"), str) and state["Resource"].endswith(WAITING_INTEGRATIONS)
    ]
    assert not found, "integrations that wait (.sync / .waitForTaskToken): " + ", ".join(found)


@per_definition
def test_every_map_runs_inline(path: Path) -> None:
    bad = []
    for scope, name, state in all_states(asl(path)):
        if state.get("Type") != "Map":
            continue
        mode = state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode", "INLINE")
        if mode != "INLINE":
            bad.append(f"{scope.where} > {name}: ProcessorConfig.Mode {mode!r}")
    assert not bad, "Map states not in INLINE mode: " + ", ".join(bad)


@per_definition
def test_moto_step_functions_parser_accepts_the_rendered_definition(path: Path) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    definition = rendered(path)
    try:
        program, _tree = AmazonStateLanguageParser.parse(definition)
    except ASLParserException as error:
        pytest.fail(f"moto's ASL parser rejects {path.name}: {error.errors}")
    assert program is not None
