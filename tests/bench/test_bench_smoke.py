"""The benchmarks keep working: a few ticks of the model-less one, with its structural claims
(sensing and recording in one round trip each). Figures are printed by `make bench`, never
asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from bench.cpu import CpuByRole, role
from bench.density import figures
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
    figures = run(6, repeats=3)
    # the side-by-side costs ran both ways (figures, not asserted on)
    assert set(figures["state_read_cpu_ms"]) == {"web3 contract functions", "encoded calls"}
    assert set(figures["signature_cpu_ms"]) == {"coincurve", "pure Python"}
    assert all(v is not None for v in figures["signature_cpu_ms"].values())
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


def test_density_figures_count_late_ticks_and_tokens_evaluated_per_new():
    """Late is a start more than 1.5 intervals after the one before; the first tick (the whole
    prompt) is left out; evaluated / new only where the new tokens were counted."""

    def tick(started: float, evaluated: int, new: int) -> dict[str, Any]:
        decision = {"latency_s": 0.5, "valid": True, "prompt_tokens": 900}
        decision |= {"cached_tokens": 900 - evaluated, "new_tokens": new}
        return {"started_at": started, "finished_at": started + 1, "decision": decision}

    counted = [tick(0, 900, 900), tick(2, 21, 20), tick(5.5, 30, 30), tick(7, 22, 20)]
    uncounted = [tick(0, 900, 0), tick(2, 25, 0), tick(4, 25, 0)]
    both = figures([counted, uncounted], interval=2.0)
    assert (both["late_ticks"], both["ticks_done"]) == (1, 7)  # 2 → 5.5
    assert both["evaluated_per_new_median"] == 1.05  # 1.05, 1.0, 1.1
    assert figures([uncounted], interval=2.0)["evaluated_per_new_median"] is None
    assert (both["late_ticks_settled"], both["late_share_settled"]) == (1, 0.333)  # all from 1 s


def test_density_figures_count_late_ticks_once_every_member_has_started():
    """A member still starting takes CPU from the others: ticks before every member's first
    tick has finished are left out of the settled count."""

    def tick(started: float) -> dict[str, Any]:
        decision = {"latency_s": 0.5, "valid": True, "prompt_tokens": 900, "cached_tokens": 0}
        return {"started_at": started, "finished_at": started + 1, "decision": decision}

    early = [tick(0), tick(2), tick(6), tick(8), tick(12)]  # late: 2 → 6 and 8 → 12
    last = [tick(5), tick(7), tick(9)]  # settled from 6 s, its first tick's end
    both = figures([early, last], interval=2.0)
    assert (both["late_ticks"], both["late_share"]) == (2, 0.5)  # 4 gaps
    assert (both["late_ticks_settled"], both["late_share_settled"]) == (1, round(1 / 3, 3))


def test_cpu_by_role_counts_a_childs_cpu_under_its_role():
    # The child spins until it has used 0.6 s of CPU (however busy the machine), then idles so
    # that the poller reads its final time before it exits.
    spin = "import time\nwhile time.process_time() < 0.6: pass\ntime.sleep(1.0)\n"
    with CpuByRole(every_s=0.1) as cpu:
        subprocess.run([sys.executable, "-c", spin, "anvil-like"], check=True)
    assert cpu.seconds["other"] >= 0.55
    assert cpu.seconds["other"] <= 0.6 + 0.5  # interpreter start-up and exit on top
    assert cpu.seconds["agents"] == cpu.seconds["model server"] == cpu.seconds["chain"] == 0
    assert "other" in cpu.shares()


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("/usr/bin/python -m agent.cli run --data-dir d", "agents"),
        ("/usr/bin/python -m agent.cli model serve --engine forager", "model server"),
        ("/x/.tools/bin/llama-server -m model.gguf --port 1", "model server"),
        ("/x/.tools/bin/anvil --port 8545", "chain"),
        ("/usr/bin/python -c print('anvil')", "other"),
    ],
)
def test_processes_are_named_by_their_role(cmdline: str, expected: str):
    assert role(cmdline) == expected
