"""`forager landlord` from the command line, and adopting a fleet's record, on a real anvil
arena and the Console mock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from agent.config import load_settings
from agent.populations.landlord_book import Book
from agent.populations.landlord_service import BOOK_FILE, adopt
from arena.local import LocalArena
from tests.agent.populations.landlord_helpers import API_KEY, AgentStandIn, Payer, place_of
from tests.akash.console_mock import ConsoleMock
from tests.conftest import REPO


def test_adopt_adds_a_fleets_leased_agents_once_on_the_deployed_terms(
    arena: LocalArena, console: ConsoleMock, agent: AgentStandIn, tmp_path: Path
):
    """From deployments.json: the address from the record or /state; none twice; errors skipped."""
    keyed, reachable = Payer(arena, tmp_path).address, Payer(arena, tmp_path).address
    agent.address = reachable
    record = tmp_path / "deployments.json"
    entries = [
        {"name": "agent-00", "dseq": "2001", "address": keyed, "state_url": None},
        {"name": "agent-01", "dseq": "2002", "state_url": agent.url + "/state"},
        {"name": "agent-02", "dseq": "2003", "state_url": "http://127.0.0.1:9/state"},
        {"name": "agent-03", "error": "no open bid"},
    ]
    record.write_text(json.dumps(entries))
    settings = load_settings(interval_s=2.0, rent={"amount": "0.5", "period_ticks": 7})
    book = Book(tmp_path / BOOK_FILE)
    done = dict(adopt(book, place_of(arena), record, settings))
    assert set(done) == {"2001", "2002", "2003"}
    assert done["2003"].startswith("skipped")
    assert {t.dseq: t.address for t in book.tenants()} == {"2001": keyed, "2002": reachable}
    tenant = book.tenant("2002")
    assert (tenant.amount, tenant.period_ticks, tenant.interval_s) == (
        500_000,
        7,
        "2.0",
    )  # 6 decimals
    assert dict(adopt(book, place_of(arena), record, settings)).keys() == {"2003"}


def _forager(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "landlord", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_the_cli_adds_a_tenant_runs_a_pass_and_serves_the_tenants(
    arena: LocalArena, console: ConsoleMock, tmp_path: Path
):
    """`landlord add`, `run --once`, `show`, then `run --port 0`: /healthz and /tenants."""
    info = arena.info
    assert info is not None
    arena_file = tmp_path / "arena.json"
    info.dump(arena_file)
    dseq = console.lease(price="1000")
    env = {
        "FORAGER_LANDLORD__DIR": str(tmp_path / "landlord"),
        "FORAGER_AKASH__API_KEY": API_KEY,
        "FORAGER_AKASH__CONSOLE_URL": console.url,
    }
    where = ["--arena", str(arena_file)]
    added = _forager(
        "add", "--address", Payer(arena, tmp_path).address, "--dseq", dseq,
        "--rent-amount", "0.001", "--period-ticks", "10", "--interval", "5",
        "--grace-ticks", "5", *where, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    once = _forager("run", "--once", *where, env=env)
    assert once.returncode == 0, once.stderr
    events = [json.loads(line) for line in once.stdout.splitlines()]
    (finished,) = [e for e in events if e.get("event") == "landlord_pass_finished"]
    assert finished["tenants"] == 1
    assert finished["trace_id"]  # logged inside the pass's OpenTelemetry span
    shown = _forager("show", env=env)
    assert dseq in shown.stdout
    assert "1000 uact" in shown.stdout  # the accepted bid, recorded
    cmd = [sys.executable, "-m", "agent.cli", "landlord", "run", "--port", "0", *where]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
    try:
        port = int(_wait_event(proc, "http_listening")["port"])
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        _wait_event(proc, "landlord_pass_finished")
        (row,) = httpx.get(f"http://127.0.0.1:{port}/tenants", timeout=10).json()
        assert (row["dseq"], row["status"], row["bid"]) == (dseq, "active", "1000 uact/block")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0


def _wait_event(proc: subprocess.Popen[str], name: str) -> dict[str, Any]:
    """Read the landlord's JSON lines until the event `name` (EOF fails the test)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        event: dict[str, Any] = json.loads(line)
        if event.get("event") == name:
            return event
    raise AssertionError(f"the landlord exited before {name}")
