"""Swaps that land: the share of allowed swaps that fail live, and the gas the failures cost.

A real `forager run` on the embedded arena (its weather moving the pool once a second while the
decider thinks), for a bounded number of ticks; then the store and the transaction journal are
read back. An allowed swap is one the guard built at decision time: it either landed, was
refused at act time because the market had moved past its bounds (no approval sent), or
failed (reverted, or refused by gas estimation after its approval was sent). Target: under
5 % of allowed swaps fail with the model.

    python -m bench.swaps [--ticks N] [--interval S] [--strategy llm|random|...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent.runtime.store import Store
from bench.results import record

REPO = Path(__file__).resolve().parent.parent


def live_run(data_dir: Path, ticks: int, interval: float, strategy: str) -> None:
    """One agent's bounded life on the embedded arena, as an operator would start it."""
    env = {**os.environ, "FORAGER_STRATEGY": strategy}
    cmd = [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir)]
    cmd += ["--port", "0", "--ticks", str(ticks), "--interval", str(interval)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"forager run exited {done.returncode}:\n{done.stdout[-4000:]}")


def tally(data_dir: Path) -> dict[str, Any]:
    """Allowed swaps by fate and the gas the failures cost (the store's own tally, as `/state`
    shows it), with the failures' errors."""
    with Store.read(data_dir) as store:
        t = store.swap_tally()
        records = store.tick_records()
    errors = [
        str(r["outcome"].get("error"))[:120]
        for r in records
        if (r.get("action") or {}).get("kind") == "swap" and r["outcome"]["status"] != "ok"
    ]
    allowed = t["landed"] + t["refused"] + t["failed"]
    return {
        "ticks": len(records),
        "allowed_swaps": allowed,
        "landed": t["landed"],
        "refused_at_act": t["refused"],
        "failed": t["failed"],
        "failed_share": round(t["failed"] / allowed, 4) if allowed else None,
        "gas_on_failures": t["failed_gas"],
        "failure_errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--strategy", default="llm")
    parser.add_argument("--keep", type=Path, help="run in this data dir and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="forager-swaps-") as tmp:
        data_dir = args.keep or Path(tmp) / "agent"
        live_run(data_dir, args.ticks, args.interval, args.strategy)
        figures = tally(data_dir)
    print(f"swaps that land: {figures['ticks']} ticks of {args.strategy} on the embedded arena")
    print(
        f"  allowed swaps {figures['allowed_swaps']}: landed {figures['landed']}, "
        f"refused at act time {figures['refused_at_act']}, failed {figures['failed']}"
    )
    share = figures["failed_share"]
    if share is not None:
        verdict = "met" if share < 0.05 else "missed"
        print(f"  failed share {share:.1%} (target < 5 %: {verdict}); ", end="")
    print(f"gas on failures {figures['gas_on_failures']}")
    for error in figures["failure_errors"]:
        print(f"    {error}")
    record(f"swaps_{args.strategy}", {"interval_s": args.interval, **figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
