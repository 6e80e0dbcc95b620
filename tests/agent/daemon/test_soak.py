"""A soak: 1,250 fast ticks (rule-based decider) under light HTTP polling, watching the agent
process's memory, file descriptors and threads. A few minutes here; `pytest -m slow` selects it.

The agent runs until the test stops it (SIGTERM): with a tick budget of its own it could end
while the last samples are being taken."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ForagerProcess

EARLY, LATE = 200, 1250


def sample(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":")[1].split() for line in status}
    return {
        "rss_kib": int(fields["VmRSS"][0]),
        "threads": int(fields["Threads"][0]),
        "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_growth_in_memory_fds_or_threads_over_1250_ticks(
    tmp_path: Path, forager: list[ForagerProcess]
):
    agent = ForagerProcess(
        tmp_path / "data",
        "--strategy",
        "random",
        "--interval",
        "0.02",
        env={"FORAGER_RENT__PERIOD_TICKS": "100", "FORAGER_LINGER_S": "0"},
    )
    forager.append(agent)
    samples: dict[int, dict[str, int]] = {}
    with httpx.Client(timeout=10) as http:
        for mark in (EARLY, LATE):
            agent.wait_event("tick_finished", timeout=600, tick=mark)
            for _ in range(20):  # light polling, as a dashboard would
                assert http.get(agent.url + "/state").status_code == 200
                http.get(agent.url + "/healthz")
            samples[mark] = sample(agent.proc.pid)
    early, late = samples[EARLY], samples[LATE]
    print(f"soak: tick {EARLY} {early} -> tick {LATE} {late}")
    assert late["threads"] <= early["threads"]
    assert late["fds"] <= early["fds"] + 2
    # 6 MiB over 1,050 ticks: a leak of ~6 KiB per tick or more fails (2 MiB seen here)
    assert late["rss_kib"] <= early["rss_kib"] + 6 * 1024
    assert agent.terminate() == 0
