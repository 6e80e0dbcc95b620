"""The saved world: written whole while the arena runs, read back as it was, never mistaken."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import default_cache_dir
from arena import snapshot
from arena.errors import SavedWorldError
from arena.local import ArenaConfig, LocalArena
from arena.snapshot import SNAPSHOT, TEMP, Snapshot
from arena.world import ArenaInfo
from tests.conftest import require_binary

INFO = ArenaInfo(
    rpc_url="http://127.0.0.1:1",
    chain_id=31337,
    stable_token="0x" + "1" * 40,
    risk_token="0x" + "2" * 40,
    pool="0x" + "3" * 40,
    router="0x" + "4" * 40,
    landlord="0x" + "5" * 40,
    faucet="0x" + "6" * 40,
    weather_trader="0x" + "7" * 40,
)


def arena_at(state_dir: Path | None, **changes: Any) -> LocalArena:
    require_binary("anvil")
    config = ArenaConfig(
        weather_interval_s=0, state_dir=state_dir, cache_dir=default_cache_dir() / "contracts"
    )
    return LocalArena(dataclasses.replace(config, **changes))


def wait_for_snapshot(state_dir: Path, steps: int, timeout: float = 60.0) -> Snapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        saved = snapshot.read(state_dir)
        if saved is not None and saved.weather_step >= steps:
            return saved
        time.sleep(0.05)
    raise AssertionError(f"no snapshot with {steps} weather steps in {state_dir}")


def test_a_leftover_temp_file_is_ignored_and_overwritten(tmp_path: Path):
    """A save cut short leaves the temp file: the snapshot before it is what is read, and the
    next save replaces both; the snapshot's header comes before the chain."""
    snapshot.write(tmp_path, Snapshot("0x00aa", 3, INFO, block=9))
    (tmp_path / TEMP).write_text('{"format": 1, "block": 12, "weather_st')  # cut mid-write
    assert snapshot.read(tmp_path) == Snapshot("0x00aa", 3, INFO, block=9)
    snapshot.write(tmp_path, Snapshot("0x00bb", 4, INFO, block=11))
    assert not (tmp_path / TEMP).exists()
    assert snapshot.read(tmp_path) == Snapshot("0x00bb", 4, INFO, block=11)
    text = (tmp_path / SNAPSHOT).read_text()
    assert text.startswith('{"format": 1, "block": 11, "weather_step": 4')


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda text: text[: len(text) // 2], "cannot be read"),
        (lambda _text: "", "cannot be read"),
        (lambda text: text.replace('"weather_step"', '"steps"'), "lacks 'weather_step'"),
        (lambda text: text.replace('"format": 1', '"format": 9'), "not a format-1"),
    ],
    ids=["truncated", "empty", "a field missing", "another format"],
)
def test_a_damaged_snapshot_is_an_error_naming_the_file(tmp_path: Path, damage, reason: str):
    """Truncated, empty, a field missing, an unknown format: SavedWorldError names the file
    and what is wrong; it is never read as 'no world'."""
    snapshot.write(tmp_path, Snapshot("0x00aa", 3, INFO, block=9))
    path = tmp_path / SNAPSHOT
    path.write_text(damage(path.read_text()))
    with pytest.raises(SavedWorldError, match=reason) as caught:
        snapshot.read(tmp_path)
    assert str(path) in str(caught.value)
    assert snapshot.holds_world(tmp_path)


def test_an_old_layout_without_its_arena_file_is_an_error(tmp_path: Path):
    """A chain saved in the three-file layout whose arena.json is gone is not a fresh world."""
    (tmp_path / "anvil-state.hex").write_text("0x00")
    with pytest.raises(SavedWorldError, match=r"arena.json is missing"):
        snapshot.read(tmp_path)


@pytest.mark.timeout(300)
def test_the_running_arena_saves_what_a_crash_would_leave(tmp_path: Path):
    """While the weather runs the world is saved every save interval; a second arena started
    from a copy of the state dir (what a kill -9 leaves) is that world: the same head block,
    the same weather step, not a fresh deployment."""
    live = arena_at(tmp_path / "live", weather_interval_s=0.1, save_interval_s=0.2)
    live.up()
    try:
        live.start_weather()
        saved = wait_for_snapshot(tmp_path / "live", steps=3)
        (tmp_path / "crashed").mkdir()
        shutil.copy(tmp_path / "live" / SNAPSHOT, tmp_path / "crashed" / SNAPSHOT)
    finally:
        live.down()
    restored = arena_at(tmp_path / "crashed")
    restored.up()
    try:
        assert restored.fresh is False and restored.weather is not None
        assert restored.weather.steps == saved.weather_step >= 3
        assert restored.anvil.head()[0] == saved.block
        assert restored.info is not None and restored.info.pool == saved.info.pool
    finally:
        restored.down()


@pytest.mark.timeout(300)
def test_a_damaged_snapshot_is_kept_and_refused_unless_a_new_world_is_allowed(tmp_path: Path):
    """A truncated world.json stops `up` before anything is deployed and is left byte for byte;
    with new_world it is renamed aside (kept) and a fresh world is deployed and saved."""
    state = tmp_path / "state"
    snapshot.write(state, Snapshot("0x00aa", 3, INFO, block=9))
    damaged = (state / SNAPSHOT).read_bytes()[:40]
    (state / SNAPSHOT).write_bytes(damaged)
    refused = arena_at(state)
    with pytest.raises(SavedWorldError, match=r"cannot be read.*move it aside"):
        refused.up()
    refused.down()
    assert (state / SNAPSHOT).read_bytes() == damaged
    renewed = arena_at(state, new_world=True)
    renewed.up()
    try:
        assert renewed.fresh is True
        (aside,) = state.glob(SNAPSHOT + ".unreadable-*")
        assert aside.read_bytes() == damaged
        saved = snapshot.read(state)
        assert saved is not None and saved.weather_step == 0
        assert renewed.info is not None and saved.info.pool == renewed.info.pool
    finally:
        renewed.down()


@pytest.mark.timeout(300)
def test_a_chain_anvil_cannot_load_is_refused_unless_a_new_world_is_allowed(tmp_path: Path):
    """A well-formed snapshot whose chain anvil rejects is refused the same way; with new_world
    the chain is restarted empty, the snapshot set aside and a fresh world deployed."""
    snapshot.write(tmp_path, Snapshot("0x00aa", 3, INFO, block=9))
    refused = arena_at(tmp_path)
    with pytest.raises(SavedWorldError, match="anvil cannot load its chain"):
        refused.up()
    refused.down()
    assert snapshot.read(tmp_path) == Snapshot("0x00aa", 3, INFO, block=9)
    renewed = arena_at(tmp_path, new_world=True)
    renewed.up()
    try:
        assert renewed.fresh is True and len(list(tmp_path.glob(SNAPSHOT + ".unreadable-*"))) == 1
        assert renewed.info is not None and renewed.info.pool != INFO.pool
    finally:
        renewed.down()


@pytest.mark.timeout(300)
def test_the_old_three_file_layout_still_restores(tmp_path: Path):
    """A state dir saved before snapshots (anvil-state.hex, arena.json, weather.json) restores
    the same chain and weather step; the first snapshot then takes the three files' place."""
    old = arena_at(None)
    info = old.up()
    try:
        assert old.weather is not None
        for _ in range(3):
            old.weather.step()
        head = old.anvil.head()[0]
        state = tmp_path / "state"
        state.mkdir()
        (state / "anvil-state.hex").write_text(old.anvil.dump_state())
        info.dump(state / "arena.json")
        (state / "weather.json").write_text(json.dumps({"step": 3}))
    finally:
        old.down()
    restored = arena_at(state)
    restored.up()
    try:
        assert restored.fresh is False and restored.weather is not None
        assert restored.weather.steps == 3 and restored.anvil.head()[0] == head
        assert restored.info is not None and restored.info.pool == info.pool
    finally:
        restored.down()
    assert sorted(p.name for p in state.iterdir()) == [SNAPSHOT]
    saved = snapshot.read(state)
    assert saved is not None and (saved.weather_step, saved.block) == (3, head)
