"""A scripted agent on a fresh local arena: what the model-less benchmarks tick."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any


@contextlib.contextmanager
def scripted_agent(answers: Sequence[str], count: int) -> Iterator[Any]:
    """An `Agent` on its own arena that answers `answers` in turn for `count` ticks, with
    rent far away and its log lines rendered (as in production) into a buffer."""
    from eth_account import Account

    from agent.config import default_cache_dir, load_settings
    from agent.core.testing import FakeDecider
    from agent.daemon.wiring import build_agent, market_from_arena
    from agent.runtime.store import Store
    from arena.local import ArenaConfig, LocalArena
    from telemetry.logs import configure_logging

    configure_logging("info", io.StringIO())
    arena = LocalArena(
        ArenaConfig(weather_interval_s=0, cache_dir=default_cache_dir() / "contracts")
    )
    info = arena.up()
    try:
        account = Account.create()
        arena.fund(account.address, native_wei=10**19, stable=10**12, risk=10**21)
        with TemporaryDirectory() as tmp:
            settings = load_settings(data_dir=Path(tmp), rent={"period_ticks": 10_000})
            store = Store(settings.data_dir / "state.sqlite")
            script = FakeDecider(answers[i % len(answers)] for i in range(count))
            agent, _, _ = build_agent(settings, market_from_arena(info), account, script, store)
            try:
                yield agent
            finally:
                store.close()
    finally:
        arena.down()
