"""Fixtures of the Akash tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.akash.console_mock import ConsoleMock


@pytest.fixture
def console() -> Iterator[ConsoleMock]:
    """The Console API on loopback; every request and answer must match its OpenAPI schemas."""
    made = ConsoleMock()
    yield made
    made.close()
    assert made.violations == []
