"""`forager run`'s own world survives a crash, and is never replaced without being told to."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import default_cache_dir
from arena import snapshot
from arena.local import ArenaConfig, LocalArena
from arena.snapshot import SNAPSHOT, Snapshot
from arena.world import ArenaInfo
from tests.conftest import ForagerProcess, cast, cast_balance

RULE = ("--strategy", "random", "--interval", "0.5")  # a rule decides: no model is loaded
SAVE_OFTEN = {"FORAGER_ARENA__SAVE_INTERVAL_S": "0.5"}
ENDOWMENT = (100 * 10**6, 0)  # FORAGER_ARENA__AGENT_STABLE / __AGENT_RISK, in base units


def stored_ticks(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "state.sqlite") as db:
        return [row[0] for row in db.execute("SELECT tick FROM ticks ORDER BY tick")]


def tick_record(data_dir: Path, tick: int) -> dict[str, Any]:
    with sqlite3.connect(data_dir / "state.sqlite") as db:
        row = db.execute("SELECT record FROM ticks WHERE tick = ?", (tick,)).fetchone()
    return dict(json.loads(row[0]))


def wait_for_snapshot(
    state_dir: Path, ready: Callable[[Snapshot], bool], timeout: float = 120.0
) -> Snapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        saved = snapshot.read(state_dir)
        if saved is not None and ready(saved):
            return saved
        time.sleep(0.1)
    raise AssertionError(f"no such snapshot in {state_dir} within {timeout:.0f} s")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def kill_with_its_chain(agent: ForagerProcess) -> None:
    """SIGKILL the agent and its anvil, as a machine that loses power would: nothing is saved
    on the way down (anvil runs in a session of its own, so it is killed by pid)."""
    chain = children(agent.proc.pid)
    assert chain, "the agent runs its own anvil"
    agent.kill()
    for pid in chain:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def saved_world(data_dir: Path) -> Iterator[ArenaInfo]:
    """The data dir's saved world, up again without weather, for an independent read."""
    arena = LocalArena(
        ArenaConfig(
            weather_interval_s=0,
            save_interval_s=0,
            state_dir=data_dir / "arena",
            cache_dir=default_cache_dir() / "contracts",
        )
    )
    info = arena.up()
    try:
        yield info
    finally:
        arena.down()


@pytest.mark.timeout(300)
def test_a_killed_agent_comes_back_older_in_the_same_world(
    tmp_path: Path, forager: list[ForagerProcess]
):
    """kill -9 of the agent and its chain mid-run, after a periodic save, then a restart on the
    data dir: the saved world comes back (its chain and weather step continue), the agent's
    age continues, it is not funded again, and cast reads on the chain what the record says."""
    data = tmp_path / "data"
    first = ForagerProcess(data, *RULE, env=SAVE_OFTEN)
    forager.append(first)
    address = first.wait_event("arena_funded")["address"]
    block = first.wait_event("tick_finished", tick=2)["block"]
    saved = wait_for_snapshot(data / "arena", lambda s: s.block >= block and s.weather_step > 0)
    kill_with_its_chain(first)
    lived = stored_ticks(data)
    assert len(lived) >= 3 and lived == list(range(len(lived)))

    second = ForagerProcess(data, "--ticks", "2", *RULE, env=SAVE_OFTEN)
    forager.append(second)
    assert second.wait() == 0
    world = second.wait_event("arena_started")
    assert world["fresh"] is False and world["weather_step"] >= saved.weather_step > 0
    assert "arena_funded" not in [e["event"] for e in second.events()]
    again = second.wait_event("agent_started")
    assert again["address"] == address and again["age"] >= len(lived)
    ticks = [e["tick"] for e in second.events() if e["event"] == "tick_started"]
    # (a tick the kill interrupted may be completed from the journal first, unannounced)
    assert ticks[0] >= again["age"] and stored_ticks(data) == list(range(ticks[-1] + 1))
    seen = tick_record(data, ticks[0])["observation"]
    assert seen["block"] >= saved.block  # the same chain, not a new one
    assert (seen["balances"]["stable"], seen["balances"]["risk"]) != ENDOWMENT
    after = tick_record(data, ticks[-1])["balances_after"]
    with saved_world(data) as info:
        assert int(cast("block-number", "--rpc-url", info.rpc_url)) >= seen["block"]
        assert cast_balance(info.rpc_url, info.stable_token, address) == after["stable"]
        assert cast_balance(info.rpc_url, info.risk_token, address) == after["risk"]


@pytest.mark.timeout(300)
def test_a_lost_world_is_not_replaced_unless_told(tmp_path: Path, forager: list[ForagerProcess]):
    """An agent's data dir without its world (or with an unreadable one) refuses to start:
    exit 2, naming the data dir, the file and --new-world, nothing deployed; with --new-world
    a new world is deployed and the agent, older, is funded in it once."""
    data, hold = tmp_path / "data", ("--strategy", "hold", "--interval", "0.2", "--ticks", "1")
    lived = ForagerProcess(data, *hold)
    forager.append(lived)
    assert lived.wait() == 0
    world = data / "arena" / SNAPSHOT
    world.unlink()

    missing = ForagerProcess(data, *hold)
    forager.append(missing)
    assert missing.wait(timeout=120) == 2
    error = missing.wait_event("agent_start_failed")["error"]
    assert f"data dir {data}" in error and f"{world} is missing" in error
    assert "--new-world" in error and "FORAGER_ARENA__NEW_WORLD" in error
    assert "arena_started" not in [e["event"] for e in missing.events()]
    assert not world.exists()

    world.write_text('{"format": 1, "block": 12, "weather_st')  # a snapshot cut short
    unreadable = ForagerProcess(data, *hold)
    forager.append(unreadable)
    assert unreadable.wait(timeout=120) == 2
    error = unreadable.wait_event("agent_start_failed")["error"]
    assert f"{world} cannot be read" in error and "--new-world" in error
    assert world.read_text() == '{"format": 1, "block": 12, "weather_st'

    renewed = ForagerProcess(data, *hold, "--new-world")
    forager.append(renewed)
    assert renewed.wait() == 0
    assert renewed.wait_event("arena_started")["fresh"] is True
    assert [e["event"] for e in renewed.events()].count("arena_funded") == 1
    assert renewed.wait_event("agent_started")["age"] == 1
    assert len(list(world.parent.glob(SNAPSHOT + ".unreadable-*"))) == 1
    saved = snapshot.read(data / "arena")
    assert saved is not None and saved.block > 0
