"""Schemathesis against the agent's own /openapi.json, while the agent ticks on a real arena.

No server error, no status code, content type or body the document does not declare; and the
agent is still alive, unpaused and healthy afterwards (the fuzzer has no control token).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from schemathesis.core.warnings import SchemathesisWarning

from tests.conftest import ForagerProcess

TOKEN = "fuzz-control-token-0123456789"
# Every warning counts, except "missing_auth": the fuzzer has no control token on purpose, and
# when it only ever reaches /control's 401 (a short run on a busy machine), that is the point.
WARNINGS = ",".join(
    w.value for w in SchemathesisWarning if w is not SchemathesisWarning.MISSING_AUTH
)


# Above its own bounds (the first tick, then schemathesis's 240 s) so those report first.
@pytest.mark.timeout(900)
def test_schemathesis_finds_no_error_and_no_undocumented_answer(
    tmp_path: Path, forager: list[ForagerProcess]
):
    agent = ForagerProcess(
        tmp_path / "data", "--interval", "0.5", env={"FORAGER_HTTP__CONTROL_TOKEN": TOKEN}
    )
    forager.append(agent)
    agent.wait_event("tick_finished", tick=1)
    st = Path(sys.executable).with_name("st")
    done = subprocess.run(
        [
            str(st),
            "run",
            agent.url + "/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "20",
            "--max-time",
            "40",
            "--seed",
            "1",
            "--request-timeout",
            "10",
            "--workers",
            "1",
            "--warnings",
            WARNINGS,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout, done.stdout[-3000:]
    health = agent.get("/healthz")
    assert health.status_code == 200, health.text
    state = agent.get("/state").json()
    assert state["alive"] is True and state["paused"] is False
    assert TOKEN not in "\n".join(agent.lines)
    assert agent.terminate() == 0
