"""The tick without the model: sense + guard + act + record on a real arena.

A scripted decider answers at once (buy, sell, hold in turn), so what is timed is the runtime
and the chain: each stage's time, the whole tick's, and the JSON-RPC round trips each stage
makes (counted at the provider: a batch is one round trip). Target: median tick with a swap
≤ 50 ms, and sensing in at most two round trips.

Then two of the tick's costs, each against what it replaced, alternating in one run: the state
read (the agent's encoded calls as raw JSON-RPC, against the same batch through web3's contract
functions) and one signature (libsecp256k1 through coincurve, against eth-keys' pure-Python
curve). CPU of this process only: anvil's share is the same either way.

    python -m bench.tick [--ticks N] [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
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


def side_by_side(agent: Any, repeats: int) -> dict[str, Any]:
    """CPU milliseconds (median) of a state read and of a signature, each two ways."""
    sensor: Any = agent._sensor
    chain, owner = sensor._chain, sensor._owner
    w3 = chain.w3
    functions = [
        sensor._stable._contract.functions.balanceOf(owner),
        sensor._risk._contract.functions.balanceOf(owner),
        sensor._dex._pair.functions.getReserves(),
        sensor._dex.shares._contract.functions.balanceOf(owner),
        sensor._dex.shares._contract.functions.totalSupply(),
    ]

    def through_web3() -> None:
        with w3.batch_requests() as batch:
            batch.add(w3.eth.get_block("latest"))
            batch.add(w3.eth.gas_price)
            batch.add(w3.eth.get_balance(owner))
            for function in functions:
                batch.add(function)
            batch.execute()

    def encoded() -> None:
        chain.read_state(owner, sensor._calls)

    reads = _alternate({"web3 contract functions": through_web3, "encoded calls": encoded}, repeats)
    return {"state_read_cpu_ms": reads, "signature_cpu_ms": _signatures(max(3, repeats // 10))}


def _signatures(repeats: int) -> dict[str, float | None]:
    """One transaction signature's curve work (the key parsed, as eth-account does each time)."""
    from eth_keys.backends.coincurve import CoinCurveECCBackend
    from eth_keys.backends.native.main import NativeECCBackend
    from eth_keys.datatypes import PrivateKey
    from eth_utils.crypto import keccak

    key, digest = bytes(range(1, 33)), keccak(b"a transaction")

    def signer(backend_class: Any) -> Callable[[], None]:
        backend = backend_class()  # coincurve's raises ImportError when it is not installed

        def sign() -> None:
            PrivateKey(key, backend=backend).sign_msg_hash(digest)

        return sign

    ways: dict[str, Callable[[], None]] = {"pure Python": signer(NativeECCBackend)}
    with contextlib.suppress(ImportError):  # reported as not installed
        ways["coincurve"] = signer(CoinCurveECCBackend)
    out: dict[str, float | None] = {"coincurve": None, **_alternate(ways, repeats)}
    return out


def _alternate(ways: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median CPU ms of each way, called in turn so both see the same machine."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, way in ways.items():
            started = time.process_time()
            way()
            seconds[name].append(time.process_time() - started)
    return {name: round(statistics.median(s) * 1000, 3) for name, s in seconds.items()}


def run(ticks: int, repeats: int = 0) -> dict[str, Any]:
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
            costs = side_by_side(agent, repeats) if repeats else {}
    finally:
        uninstall()
    return {**summarize(per_kind), **costs}


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
    parser.add_argument("--repeats", type=int, default=200, help="of each side-by-side cost")
    args = parser.parse_args(argv)
    figures = run(args.ticks, args.repeats)
    costs: dict[str, Any] = {
        k: figures.pop(k) for k in ("state_read_cpu_ms", "signature_cpu_ms") if k in figures
    }
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
    for what, ways in costs.items():
        shown = ", ".join(
            f"{k} {v:.3f}" if v is not None else f"{k} not installed" for k, v in ways.items()
        )
        values = [v for v in ways.values() if v]
        ratio = f"; {max(values) / min(values):.1f}x" if len(values) == 2 else ""
        print(f"  {what.replace('_cpu_ms', '').replace('_', ' ')} (CPU ms, median): {shown}{ratio}")
    record("tick_without_model", {"ticks": args.ticks, "by_action": figures, **costs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
