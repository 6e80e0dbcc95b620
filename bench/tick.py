"""The tick without the model: sense + guard + act + record on a real arena.

A scripted decider answers at once (buy, sell, hold in turn), so what is timed is the runtime
and the chain: each stage's time, the whole tick's, and the JSON-RPC round trips each stage
makes (counted at the provider: a batch is one round trip). Target: median tick with a swap
≤ 50 ms, and sensing in at most two round trips.

    python -m bench.tick [--ticks N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench.results import record
from bench.scripted import scripted_agent

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
    per_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counter = Counter()
    uninstall = counter.install()
    try:
        with scripted_agent(ANSWERS, ticks + 6) as agent:
            sensor: Any = agent._sensor
            sensor.sense = counter.timed("sense", sensor.sense)
            decider: Any = agent._decider
            decider.decide = counter.timed("decide", decider.decide)
            agent._act = counter.timed("guard+act", agent._act)
            agent._record = counter.timed("record", agent._record)
            for _ in range(6):
                agent.tick()  # warm-up: caches, first approvals
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
    finally:
        uninstall()
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
