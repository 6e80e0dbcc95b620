"""The shared arena: one local world kept up for many agents, and a clean stop on a signal.

`serve_arena` runs the world (`forager arena up`) and writes its connection file while it runs;
`ArenaThread` does the same in the background for a local fleet; `stop_on_signals` turns
SIGINT/SIGTERM into a stop event so every long-running command shuts down the same way.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from agent.errors import ConfigError
from arena.local import ArenaConfig, LocalArena

log = structlog.get_logger()

_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 60.0


def serve_arena(config: ArenaConfig, out: Path, stop: threading.Event) -> None:
    """Run a shared arena until `stop` is set; its connection file exists while it runs."""
    arena = LocalArena(config)
    try:
        info = arena.up()
        info.dump(out)
        arena.start_weather()
        log.info("arena_ready", file=str(out), rpc_url=info.rpc_url, seed=config.seed)
        stop.wait()
    finally:
        out.unlink(missing_ok=True)
        arena.down()
        log.info("arena_stopped")


class ArenaThread:
    """A fleet's arena, served from a background thread while the fleet lives."""

    def __init__(self, config: ArenaConfig, out: Path) -> None:
        self.config = config
        self.file = out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the arena; returns once its connection file exists."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=serve_arena, args=(self.config, self.file, self._stop), name="arena", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self.file.exists():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the fleet's arena did not start (see the log)")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_STOP_TIMEOUT_S)


def stop_on_signals(event: threading.Event) -> Callable[[], None]:
    """Set `event` on SIGINT/SIGTERM; returns a function that restores the old handlers."""
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in old:
        signal.signal(sig, lambda *_: event.set())

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore
