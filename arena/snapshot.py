"""The saved world: one file holding the chain, the weather's step and the arena's addresses.

`<state dir>/world.json` is one JSON object: `format`, `block` (the head when it was dumped),
`weather_step`, `info` (the connection file's fields) and `chain` (anvil_dumpState's hex), so
the three parts of a world can never disagree. It is written atomically: to `world.json.tmp`,
flushed and fsynced, renamed over the previous snapshot, then the directory is fsynced. A crash
mid-write leaves the previous snapshot whole; a leftover temp file is an unfinished save, never
read, and the next save overwrites it.

A snapshot that exists but cannot be read (truncated, not JSON, a field missing or of the wrong
kind) raises `SavedWorldError`: it is never taken for "no world". When an operator allows a
new world, `set_aside` renames it (`world.json.unreadable-<unix time>`), so nothing is
deleted. A write that fails (a full disk) raises `ArenaError`: the previous snapshot stays,
and the next save tries again.

State dirs saved before this file existed hold three files written at a clean stop
(anvil-state.hex, arena.json, weather.json). `read` restores them when world.json is absent, and
`write` removes them once a snapshot has taken their place.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from arena.errors import ArenaError, SavedWorldError
from arena.world import ArenaInfo

SNAPSHOT = "world.json"
TEMP = SNAPSHOT + ".tmp"
FORMAT = 1
_LEGACY_CHAIN, _LEGACY_INFO, _LEGACY_WEATHER = "anvil-state.hex", "arena.json", "weather.json"
_LEGACY = (_LEGACY_CHAIN, _LEGACY_INFO, _LEGACY_WEATHER)


@dataclass(frozen=True)
class Snapshot:
    """One saved world: the chain's dump, the weather steps taken on it, its addresses."""

    chain: str
    weather_step: int
    info: ArenaInfo
    block: int = 0


def holds_world(state_dir: Path) -> bool:
    """Whether `state_dir` holds a saved world (readable or not), in either layout."""
    return (state_dir / SNAPSHOT).exists() or (state_dir / _LEGACY_CHAIN).exists()


def read(state_dir: Path) -> Snapshot | None:
    """The saved world; None when there is none; `SavedWorldError` when it cannot be read."""
    if (state_dir / SNAPSHOT).exists():
        return _parse(state_dir / SNAPSHOT)
    if (state_dir / _LEGACY_CHAIN).exists():
        return _read_legacy(state_dir)
    return None


def write(state_dir: Path, snapshot: Snapshot) -> int:
    """Replace the saved world atomically (temp file, fsync, rename); return its size in bytes."""
    header: dict[str, Any] = {"format": FORMAT, "block": snapshot.block}
    header |= {"weather_step": snapshot.weather_step, "info": asdict(snapshot.info)}
    body = json.dumps({**header, "chain": snapshot.chain}).encode()  # the chain last: `head` reads
    path = state_dir / SNAPSHOT
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with (state_dir / TEMP).open("wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        (state_dir / TEMP).replace(path)
        _fsync_dir(state_dir)
        for name in _LEGACY:
            (state_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        raise ArenaError(f"could not save the world to {path}: {exc}") from exc
    return len(body)


def set_aside(state_dir: Path) -> list[Path]:
    """Rename an unreadable saved world out of the way (nothing is deleted); the new paths."""
    suffix = f".unreadable-{int(time.time())}"
    moved = []
    for name in (SNAPSHOT, *_LEGACY):
        path = state_dir / name
        if path.exists():
            moved.append(path.replace(path.with_name(path.name + suffix)))
    return moved


def _parse(path: Path) -> Snapshot:
    try:
        return _checked(json.loads(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SavedWorldError(f"saved world {path} cannot be read: {_reason(exc)}") from exc


def _checked(data: Any) -> Snapshot:
    """The snapshot in parsed JSON; ValueError (or KeyError) naming what is wrong."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a format-{FORMAT} world snapshot")
    chain, step, block = data["chain"], data["weather_step"], data["block"]
    if not (isinstance(chain, str) and chain.startswith("0x")):
        raise ValueError("its chain is not anvil_dumpState's hex")
    if not (isinstance(step, int) and step >= 0 and isinstance(block, int)):
        raise ValueError("its weather_step or block is not a whole number")
    return Snapshot(chain, step, ArenaInfo.from_dict(data["info"], "its info"), block)


def _read_legacy(state_dir: Path) -> Snapshot:
    weather = state_dir / _LEGACY_WEATHER
    try:
        chain = (state_dir / _LEGACY_CHAIN).read_text().strip()
        info = ArenaInfo.load(state_dir / _LEGACY_INFO)
        # Before snapshots the weather file was written last: without it, step 0 as then.
        step = int(json.loads(weather.read_text())["step"]) if weather.exists() else 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        files = ", ".join(_LEGACY)
        raise SavedWorldError(
            f"saved world in {state_dir} ({files}) cannot be read: {_reason(exc)}"
        ) from exc
    return Snapshot(chain, step, info)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"it lacks {exc}"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename} is missing"
    return str(exc)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
