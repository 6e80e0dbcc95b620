"""The benchmarks keep working: a few ticks of the model-less one, with its structural claims
(sensing and recording in one round trip each). Figures are printed by `make bench`, never
asserted here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bench.results import machine, record
from bench.tick import run
from tests.conftest import require_binary


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The benchmark renders its logs into a buffer: put logging back afterwards."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_the_tick_benchmark_counts_stages_and_round_trips():
    require_binary("anvil")
    figures = run(6)
    swap = figures["swap"]
    assert swap["ticks"] >= 2
    # A swap is sensed twice: for the decision, and again on fresh reserves just before it acts.
    assert swap["round_trips_median"]["sense"] == 2
    assert figures["hold"]["round_trips_median"]["sense"] == 1
    assert swap["round_trips_median"]["record"] == 1
    assert swap["round_trips_median"]["guard+act"] >= 4  # approve and swap, each signed and sent
    assert set(swap["stage_median_ms"]) == {"sense", "decide", "guard+act", "record"}


def test_results_keep_other_sections_and_name_the_machine(tmp_path: Path):
    out = tmp_path / "latest.json"
    record("a", {"x": 1}, out)
    record("b", {"y": 2}, out)
    data = json.loads(out.read_text())
    assert data["machine"] == machine() and data["machine"]["cores"]
    assert data["sections"]["a"]["x"] == 1 and data["sections"]["b"]["y"] == 2
