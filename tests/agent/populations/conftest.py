"""Fixtures of the population tests: the Console mock and an agent's HTTP stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.populations.landlord_helpers import API_KEY, AgentStandIn
from tests.akash.console_mock import ConsoleMock


@pytest.fixture
def console() -> Iterator[ConsoleMock]:
    """The Console API on loopback; every request and answer must match its OpenAPI schemas."""
    made = ConsoleMock(api_key=API_KEY)
    yield made
    made.close()
    assert made.violations == []


@pytest.fixture
def agent() -> Iterator[AgentStandIn]:
    """An agent's /state and /series on loopback (alive until told otherwise)."""
    made = AgentStandIn()
    yield made
    made.close()
