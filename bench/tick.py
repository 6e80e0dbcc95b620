"""The tick without the model: sense + guard + act + record on a real arena.

A scripted decider answers at once (buy, sell, hold in turn), so what is timed is the runtime
and the chain: each stage's time, the whole tick's, and the JSON-RPC round trips each stage
makes (counted at the provider: a batch is one round trip). Target: median tick with a swap
≤ 50 ms, and sensing in at most two round trips.

    python -m bench.tick [--ticks N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.results import record

ANSWERS = [
    '{"action": "buy_risk", "amount_pct": 10, "reason": "buy"}',
    '{"action": "sell_risk", "amount_pct": 25, "reason": "sell"}',
    '{"action": "hold", "amount_pct": 10, "reason": "wait"}',
]
STAGES = ("sense", "decide", "guard+act", "record")


class Counter:
    """Wall time and provider round trips, per stage, for the tick being measured."""

    def __init__(self) -> None:
        self.stage = "other"
        self.round_trips: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    def count(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.round_trips[self.stage] += 1
            return call(*args, **kwargs)

        return counted

    def install(self) -> Callable[[], None]:
        """Count every request the agent's provider makes (a batch is one); return the undo."""
        from wallets.rpc import FailoverProvider

        provider: Any = FailoverProvider
        original = provider._with_failover
        provider._with_failover = self.count(original)

        def restore() -> None:
            provider._with_failover = original

        return restore

    def timed(self, stage: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            previous, self.stage = self.stage, stage
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started
                self.stage = previous

        return wrapped


def run(ticks: int) -> dict[str, Any]:
    from eth_account import Account

    from agent.config import default_cache_dir, load_settings
    from agent.store import Store
    from agent.testing import FakeDecider
    from agent.wiring import build_agent, market_from_arena
    from arena.local import ArenaConfig, LocalArena
    from telemetry.logs import configure_logging

    configure_logging("info", io.StringIO())  # log lines are rendered, as in production
    arena = LocalArena(
        ArenaConfig(weather_interval_s=0, cache_dir=default_cache_dir() / "contracts")
    )
    info = arena.up()
    account = Account.create()
    arena.fund(account.address, native_wei=10**19, stable=10**12, risk=10**21)
    per_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counter = Counter()
    uninstall = counter.install()
    try:
        with TemporaryDirectory() as tmp:
            settings = load_settings(data_dir=Path(tmp), rent={"period_ticks": 10_000})
            store = Store(settings.data_dir / "state.sqlite")
            answers = [ANSWERS[i % len(ANSWERS)] for i in range(ticks + 6)]
            agent, _, _ = build_agent(
                settings, market_from_arena(info), account, FakeDecider(answers), store
            )
            sensor: Any = agent._sensor
            sensor.sense = counter.timed("sense", sensor.sense)
            decider: Any = agent._decider
            decider.decide = counter.timed("decide", decider.decide)
            act: Any = agent
            act._act = counter.timed("guard+act", act._act)
            act._record = counter.timed("record", act._record)
            for _ in range(6):
                agent.tick()  # warm-up: caches, first approvals, the JIT of nothing
            for _ in range(ticks):
                counter.round_trips.clear()
                counter.seconds.clear()
                started = time.perf_counter()
                result = agent.tick()
                total = time.perf_counter() - started
                assert result is not None
                kind = result.action.kind if result.action else "vetoed"
                per_kind[kind].append(
                    {
                        "total": total,
                        "seconds": dict(counter.seconds),
                        "round_trips": dict(counter.round_trips),
                    }
                )
            store.close()
    finally:
        uninstall()
        arena.down()
    return summarize(per_kind)


def summarize(per_kind: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, samples in sorted(per_kind.items()):
        out[kind] = {
            "ticks": len(samples),
            "median_ms": round(statistics.median(s["total"] for s in samples) * 1000, 2),
            "stage_median_ms": {
                stage: round(
                    statistics.median(s["seconds"].get(stage, 0.0) for s in samples) * 1000, 2
                )
                for stage in STAGES
            },
            "round_trips_median": {
                stage: statistics.median(s["round_trips"].get(stage, 0) for s in samples)
                for stage in (*STAGES, "other")
            },
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args(argv)
    figures = run(args.ticks)
    print(f"tick without the model: {args.ticks} ticks on a local arena (scripted decider)")
    for kind, f in figures.items():
        stages = ", ".join(f"{k} {v:.2f}" for k, v in f["stage_median_ms"].items())
        trips = ", ".join(f"{k} {v:g}" for k, v in f["round_trips_median"].items() if v)
        print(f"  {kind:>5}: median {f['median_ms']:.2f} ms ({f['ticks']} ticks); {stages} ms")
        print(f"         round trips: {trips}")
    swap = figures.get("swap")
    if swap:
        verdict = "met" if swap["median_ms"] <= 50 else "missed"
        print(f"  target: median tick with a swap <= 50 ms: {verdict}")
        sense = swap["round_trips_median"]["sense"]
        met = "met" if sense <= 2 else "missed"
        print(f"  target: sensing in <= 2 round trips: {met} ({sense:g})")
    record("tick_without_model", {"ticks": args.ticks, "by_action": figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
