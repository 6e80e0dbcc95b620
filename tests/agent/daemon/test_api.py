"""The HTTP surface in front of a real running agent: typed answers, history, control only
with the token, 405 and 413."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ForagerProcess

TOKEN = "operator-token-123456"


def test_openapi_describes_every_endpoint_and_history_pages(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """/openapi.json names each endpoint with a schema; /ticks pages through stored records."""
    agent = ForagerProcess(tmp_path / "data", "--interval", "0.3")
    forager.append(agent)
    agent.wait_event("tick_finished", tick=2)
    spec = agent.get("/openapi.json").json()
    paths = (
        "/healthz",
        "/readyz",
        "/state",
        "/ticks",
        "/series",
        "/actions",
        "/control/{command}",
        "/",
    )
    for path in paths:
        assert path in spec["paths"], path
    assert {"State", "Health", "Readiness", "Ticks", "Series", "Actions"} <= set(
        spec["components"]["schemas"]
    )
    first = agent.get("/ticks?since=0&limit=2").json()
    assert [t["tick"] for t in first["ticks"]] == [0, 1] and first["next_since"] == 2
    rest = agent.get(f"/ticks?since={first['next_since']}&limit=2").json()
    assert rest["ticks"][0]["tick"] == 2
    assert agent.get("/ticks?since=-1").status_code == 422
    assert agent.get("/state").json()["paused"] is False
    assert agent.terminate() == 0


def test_control_needs_the_token_and_nothing_else_writes(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """Without a token control is off; with one: 401 without it, pause/resume/stop with it."""
    off = ForagerProcess(tmp_path / "off", "--interval", "0.3")
    forager.append(off)
    off.wait_event("agent_started")
    assert httpx.post(off.url + "/control/pause", timeout=10).status_code == 403
    assert off.terminate() == 0

    agent = ForagerProcess(
        tmp_path / "on", "--interval", "0.3", env={"FORAGER_HTTP__CONTROL_TOKEN": TOKEN}
    )
    forager.append(agent)
    agent.wait_event("tick_finished", tick=1)
    url = agent.url
    assert httpx.post(url + "/control/pause", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.post(url + "/control/pause", headers=wrong, timeout=10).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    paused = httpx.post(url + "/control/pause", headers=auth, timeout=10)
    assert paused.status_code == 200 and paused.json() == {"done": "pause", "paused": True}
    assert agent.get("/healthz").json()["paused"] is True
    time.sleep(3.0)  # a tick already running when paused may still finish (slow under load)
    held = agent.get("/state").json()["tick"]
    time.sleep(1.2)  # four intervals: a running scheduler would have ticked
    assert agent.get("/state").json()["tick"] == held
    assert agent.get("/healthz").status_code == 200  # a deliberate pause is not a fault
    assert httpx.put(url + "/state", timeout=10).status_code == 405
    assert httpx.post(url + "/state", timeout=10).status_code == 405
    big = httpx.post(url + "/control/pause", headers=auth, content=b"x" * 100_000, timeout=10)
    assert big.status_code == 413
    assert httpx.post(url + "/control/rent", headers=auth, timeout=10).status_code == 422
    resumed = httpx.post(url + "/control/resume", headers=auth, timeout=10)
    assert resumed.json()["paused"] is False
    ticks_before = agent.get("/state").json()["tick"]
    agent.wait_event("tick_finished", tick=ticks_before + 1)
    stopped = httpx.post(url + "/control/stop", headers=auth, timeout=10)
    assert stopped.status_code == 200
    assert agent.wait(timeout=60) == 0
    assert TOKEN not in "\n".join(agent.lines)


def test_status_command_shows_the_agent(tmp_path: Path, forager: list[ForagerProcess]):
    """`forager status URL` prints identity, health, money, rent and the last decision."""
    agent = ForagerProcess(tmp_path / "data", "--interval", "0.3")
    forager.append(agent)
    agent.wait_event("tick_finished", tick=1)
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status", agent.url],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("agent-") and "ALIVE" in lines[0]
    assert lines[1] == "health: ok"
    assert any(line.startswith("net worth ") for line in lines)
    assert any(line.startswith("rent 5 every 10 ticks") for line in lines)
    assert lines[-1].startswith("last: tick ")
    assert agent.terminate() == 0
    gone = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status", agent.url],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert gone.returncode == 2 and "no agent answered" in gone.stderr


def test_answers_stay_correct_under_load_while_ticking(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """Bounded load (4 clients x 150 requests) on /state and /healthz: every answer is right
    and the agent keeps ticking."""
    agent = ForagerProcess(tmp_path / "data", "--interval", "0.3")
    forager.append(agent)
    agent.wait_event("tick_finished", tick=0)
    url = agent.url
    bad: list[str] = []

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            for i in range(150):
                path = "/state" if i % 2 else "/healthz"
                response = http.get(url + path)
                body = response.json()
                ok = response.status_code == 200 and (
                    body.get("agent_id", "").startswith("agent-") or body.get("ok") is True
                )
                if not ok:
                    bad.append(f"{path}: {response.status_code} {response.text[:100]}")

    before = agent.get("/state").json()["tick"]
    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert bad == []
    agent.wait_event("tick_finished", tick=before + 2)
    assert agent.terminate() == 0


def test_health_names_each_check_and_funds_short_of_rent_turn_it_red(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """Every check is reported by name; an agent that cannot pay its next rent is unhealthy
    (has_required_funds false) before it dies, with the reason in words."""
    rich = ForagerProcess(tmp_path / "rich", "--interval", "0.3")
    forager.append(rich)
    rich.wait_event("tick_finished", tick=0)
    health = rich.get("/healthz")
    body = health.json()
    assert health.status_code == 200 and body["is_healthy"] is body["ok"] is True
    assert {"model", "alive", "scheduler", "ticks", "chain", "signer", "journal"} <= set(
        body["checks"]
    )
    assert {"gas_funds", "rent_funds"} <= set(body["checks"]) and body["has_required_funds"]
    assert body["seconds_since_last_transition"] is not None
    assert rich.terminate() == 0

    poor = ForagerProcess(
        tmp_path / "poor",
        "--interval",
        "0.3",
        env={"FORAGER_ARENA__AGENT_STABLE": "1", "FORAGER_RENT__GRACE_TICKS": "1000"},
    )
    forager.append(poor)
    poor.wait_event("tick_finished", tick=0)
    health = poor.get("/healthz")
    body = health.json()
    assert health.status_code == 503 and body["is_healthy"] is False
    assert body["has_required_funds"] is False and body["checks"]["gas_funds"]["ok"] is True
    assert body["checks"]["rent_funds"]["ok"] is False
    assert any("vs next rent 5" in reason for reason in body["reasons"])
    assert poor.terminate() == 0
