"""Populations: four strategies (the model among them) on one shared arena, supervised; the
leaderboard from their stores matches the chain; a crashed member comes back as itself."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agent.config import default_cache_dir, load_settings
from agent.populations.fleet import run_fleet
from agent.populations.leaderboard import leaderboard
from arena.local import ArenaConfig, LocalArena
from arena.world import ArenaInfo
from tests.conftest import cast_balance
from wallets.keystore import derive_child_key, load_keystore

STRATEGIES = ["llm", "momentum", "mean_reversion", "random"]


def started(folder: Path, name: str) -> dict[str, object]:
    for line in (folder / name / "agent.log").read_text().splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "agent_started":
            return event
    raise AssertionError(f"{name} never started")


def last_record(data_dir: Path) -> dict[str, Any]:
    with sqlite3.connect(data_dir / "state.sqlite") as db:
        row = db.execute("SELECT record FROM ticks ORDER BY tick DESC LIMIT 1").fetchone()
    return dict(json.loads(row[0]))


@contextmanager
def restored_arena(folder: Path, seed: int) -> Iterator[ArenaInfo]:
    """The fleet's saved world, up again (no weather) for an independent read with cast."""
    arena = LocalArena(
        ArenaConfig(
            seed=seed,
            weather_interval_s=0,
            state_dir=folder / "arena",
            cache_dir=default_cache_dir() / "contracts",
        )
    )
    info = arena.up()
    try:
        yield info
    finally:
        arena.down()


def stored_ticks(folder: Path, name: str) -> list[int]:
    """The member's stored tick numbers; none while its store is still being created (the
    file exists a moment before its tables do)."""
    state = folder / name / "state.sqlite"
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
            return [row[0] for row in db.execute("SELECT tick FROM ticks ORDER BY tick")]
    except sqlite3.OperationalError:
        return []


def test_a_population_shares_one_arena_and_the_leaderboard_matches_the_chain(tmp_path: Path):
    folder = tmp_path / "fleet"
    members = run_fleet(
        folder,
        agents=4,
        strategies=STRATEGIES,
        ticks=12,
        settings=load_settings(),
        interval_s=0.4,
        seed=5,
        stagger_s=0.2,
    )
    assert [m.exit_code for m in members] == [0, 0, 0, 0]
    starts = {m.name: started(folder, m.name) for m in members}
    assert len({s["rpc_url"] for s in starts.values()}) == 1  # one market for all
    assert len({s["address"] for s in starts.values()}) == 4  # each its own wallet
    assert not (folder / "arena.json").exists()  # the arena is down, its file gone

    lives = leaderboard(folder)
    assert sorted(life.strategy for life in lives) == sorted(STRATEGIES)
    keys = [(-x.ticks_lived, -x.final_worth, -x.rent_paid) for x in lives]
    assert keys == sorted(keys)
    assert all(life.ticks_lived == 12 and life.alive for life in lives)
    assert all(life.rent_paid == 10.0 for life in lives)  # periods 0 and 1, 5 each

    # The chain agrees with the stores: restore the saved world, read balances with cast.
    with restored_arena(folder, seed=5) as info:
        for life in lives:
            address = str(starts[life.name]["address"])
            after = last_record(folder / life.name)["balances_after"]
            assert cast_balance(info.rpc_url, info.stable_token, address) == after["stable"]
            assert cast_balance(info.rpc_url, info.risk_token, address) == after["risk"]

    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "fleet", "leaderboard", str(folder),
         "--json", str(tmp_path / "board.json")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[1] == lives[0].name
    assert (folder / "networth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((tmp_path / "board.json").read_text())
    assert [r["name"] for r in rows] == [x.name for x in lives]


def _pid_of(data_dir: Path) -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"agent.cli" in cmdline and str(data_dir).encode() in cmdline:
            return int(proc.name)
    return None


class Recorded:
    """A Progress that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def phase(self, name: str, total: int) -> None:
        self.events.append(("phase", f"{name} {total}"))

    def step(self, note: str = "") -> None:
        self.events.append(("step", note))

    def say(self, line: str) -> None:
        self.events.append(("say", line))


def test_a_crashed_member_is_restarted_from_its_data_dir(tmp_path: Path):
    folder = tmp_path / "fleet"
    result: dict[str, object] = {}
    progress = Recorded()
    runner = threading.Thread(
        target=lambda: result.update(
            members=run_fleet(
                folder,
                agents=2,
                strategies=["hold", "random"],
                ticks=25,
                settings=load_settings(),
                interval_s=0.2,
                seed=1,
                stagger_s=0.1,
                progress=progress,
            )
        )
    )
    runner.start()
    victim = folder / "agent-01"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (victim / "state.sqlite").exists() and len(stored_ticks(folder, "agent-01")) >= 5:
            break
        time.sleep(0.1)
    pid = _pid_of(victim)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=240)
    assert not runner.is_alive()
    members = {m.name: m for m in result["members"]}  # type: ignore[attr-defined]
    assert members["agent-01"].restarts == 1 and members["agent-00"].restarts == 0
    assert members["agent-01"].exit_code == 0
    ticks = stored_ticks(folder, "agent-01")
    assert ticks == list(range(25))  # the same life went on: no gap, no repeat
    starts = [
        json.loads(line)
        for line in (victim / "agent.log").read_text().splitlines()
        if '"agent_started"' in line
    ]
    assert len(starts) == 2 and starts[0]["agent_id"] == starts[1]["agent_id"]
    assert starts[1]["age"] >= 5
    # What a person watching `fleet run` sees: each start, the crash, each end.
    assert progress.events[:3] == [
        ("phase", "agents 2"),
        ("step", "agent-00 hold"),
        ("step", "agent-01 random"),
    ]
    assert progress.events[3] == ("phase", "lives 2")
    assert any(e[0] == "say" and e[1].startswith("agent-01 crashed") for e in progress.events)
    ends = sorted(note for kind, note in progress.events[4:] if kind == "step")
    assert ends == ["agent-00 finished", "agent-01 finished"]


def test_bad_strategy_and_missing_arena_file_are_named(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "fleet", "run", "--agents", "2",
         "--strategies", "hold,yolo", "--ticks", "3", "--dir", str(tmp_path / "f")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "FORAGER_STRATEGY" in done.stderr
    joined = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", "--arena", str(tmp_path / "nope.json"),
         "--data-dir", str(tmp_path / "d"), "--ticks", "1", "--port", "0"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert joined.returncode == 2
    assert "nope.json does not exist" in joined.stdout + joined.stderr


# Every test here starts a population of agent processes (one runs the model) on one arena:
# on a slow, busy 2-core machine that is minutes, so the whole module gets a wider limit.
pytestmark = pytest.mark.timeout(900)


def test_a_rich_agent_replicates_and_the_child_lives_with_its_own_wallet(tmp_path: Path):
    """Past the runway threshold a parent funds a child (capped by the policy); the supervisor
    launches it as generation 1 with the parent's id; the chain holds the child's money."""
    folder = tmp_path / "fleet"
    members = run_fleet(
        folder,
        agents=1,
        strategies=["hold"],
        ticks=8,
        settings=load_settings(),
        interval_s=0.3,
        seed=2,
        stagger_s=0.1,
        extra_env={
            "FORAGER_REPLICATION__ENABLED": "true",
            "FORAGER_REPLICATION__MIN_RUNWAY": "10",
            "FORAGER_REPLICATION__MAX_CHILDREN": "1",
            "FORAGER_REPLICATION__MAX_CHILD_STABLE": "100",
            "FORAGER_ARENA__AGENT_STABLE": "500",  # rich enough that the policy's cap binds
        },
    )
    names = [m.name for m in members]
    assert names == ["agent-00", "agent-00.c1"] and [m.exit_code for m in members] == [0, 0]
    child_dir = folder / "agent-00.c1"
    assert (child_dir / "keystore.json").stat().st_mode & 0o777 == 0o600
    request = json.loads((folder / "agent-00" / "spawn" / "agent-00.c1.json").read_text())
    assert request["generation"] == 1 and request["strategy"] == "hold"
    assert request["status"] == "funded"
    assert request["stable"] == 100 * 10**6  # the policy's cap, not the 25 % share (~122)
    parent, child = started(folder, "agent-00"), started(folder, "agent-00.c1")
    assert child["address"] == request["address"] != parent["address"]
    parent_key = load_keystore(
        folder / "agent-00" / "keystore.json",
        (folder / "agent-00" / "keystore.password").read_text(),
    ).key
    derived = Account.from_key(derive_child_key(bytes(parent_key), 1))
    assert derived.address == child["address"]  # an operator can recreate it from the parent
    assert request["parent_id"] == parent["agent_id"]

    with sqlite3.connect(folder / "agent-00" / "state.sqlite") as db:
        rows = db.execute("SELECT status, detail FROM actions WHERE kind = 'replicate'").fetchall()
    assert len(rows) == 1 and rows[0][0] == "ok"
    assert json.loads(rows[0][1])["tx_hashes"] == request["tx_hashes"]

    lives = {life.name: life for life in leaderboard(folder)}
    assert lives["agent-00.c1"].generation == 1
    assert lives["agent-00.c1"].parent_id == parent["agent_id"]
    assert lives["agent-00"].parent_id is None

    with restored_arena(folder, seed=2) as info:
        stable = cast_balance(info.rpc_url, info.stable_token, request["address"])
    after = last_record(child_dir)["balances_after"]
    assert stable == after["stable"] == 100 * 10**6 - 5 * 10**6  # one rent


def test_a_member_that_died_is_not_restarted(tmp_path: Path):
    """Death is final: the supervisor does not bring a dead agent back."""
    members = run_fleet(
        tmp_path / "fleet",
        agents=1,
        strategies=["hold"],
        ticks=30,
        settings=load_settings(),
        interval_s=0.2,
        seed=1,
        stagger_s=0.1,
        extra_env={"FORAGER_ARENA__AGENT_STABLE": "1", "FORAGER_RENT__GRACE_TICKS": "1"},
    )
    assert [(m.exit_code, m.restarts) for m in members] == [(0, 0)]
    life = leaderboard(tmp_path / "fleet")[0]
    assert not life.alive and "rent unpaid" in str(life.death_cause) and life.ticks_lived < 30
