"""Integration fixtures: template.yaml deployed on the embedded emulator, real ASL, handlers in-process."""

from collections.abc import Iterator

import pytest
from snaplake_local.sources import default_parameters, seed_sample_sources
from snaplake_local.stack import EmulatedStack


@pytest.fixture
def stack() -> Iterator[EmulatedStack]:
    with EmulatedStack(default_parameters(), function_log_level="WARNING") as deployed:
        seed_sample_sources(deployed)
        yield deployed


@pytest.fixture
def stack_factory() -> Iterator[object]:
    """For tests that need other template parameters: stack_factory(LakeKeyTemplate=...)."""
    opened: list[EmulatedStack] = []

    def make(**parameters: str) -> EmulatedStack:
        deployed = EmulatedStack(default_parameters(**parameters), function_log_level="WARNING").__enter__()
        opened.append(deployed)
        seed_sample_sources(deployed)
        return deployed

    yield make
    for deployed in reversed(opened):
        deployed.__exit__(None, None, None)
