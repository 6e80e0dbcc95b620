"""Density: how many model-driven agents one machine sustains at a tick interval.

N agents live on one shared arena for the same number of ticks, in each mode: as separate
processes each with its own model (one `Llama` per process, 1 thread each by default), sharing
one `forager model serve --engine forager` (our engine: their sequences decoded in one batch on
all the cores), and sharing one `forager model serve --engine llama-server` (llama.cpp's own
server, continuous batching, the same llama.cpp build). A tick is
*late* when it starts more than half an interval after it was due (the scheduler coalesces what
it cannot run on time); the machine sustains N when almost no tick is late. Also: aggregate
decisions per second against one agent deciding back to back (the single-process limit). The
fleet defaults (`agent.populations.fleet.DEFAULT_MODEL_SERVER` and `DEFAULT_MODEL_ENGINE`) are
the mode with more decisions per second at the largest fleet.

The agents' prompt is the default (advice: an answer with a reason, generated) unless `--prompt`
says otherwise: `compact` is the cheapest decision (an observation of ~25 new tokens a tick, an
answer walked among 24 in process and on our engine, generated under the grammar by
llama-server).

    python -m bench.density [--agents 1,2,4,8] [--modes processes,forager,llama-server]
                            [--interval 2] [--ticks 12] [--threads 1] [--prompt advice]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, get_args

from agent.config import ModelWeights
from bench.cpu import CpuByRole, shares
from bench.results import record


def lives(folder: Path) -> list[list[dict[str, Any]]]:
    """Each member's tick records (started_at, decision latency), in order."""
    from agent.runtime.store import Store

    out = []
    for data_dir in sorted(d.parent for d in folder.glob("agent-*/state.sqlite")):
        with Store.read(data_dir) as store:
            out.append(store.tick_records())
    return out


MODES = ("processes", "forager", "llama-server")


def measure(
    agents: int,
    interval: float,
    ticks: int,
    threads: int,
    mode: str,
    prompt: str = "advice",
    weights: str = "q4_1",
) -> dict[str, Any]:
    """One fleet of `agents` model agents, as processes or sharing a server, and its figures."""
    members, cpu = _live(agents, interval, ticks, threads, mode, prompt, weights)
    return {
        "agents": agents,
        "mode": mode,
        "weights": weights,
        **figures(members, interval),
        "wall_s": round(cpu.wall_s, 1),
        "cpu_s": cpu.seconds,
    }


def _live(
    agents: int, interval: float, ticks: int, threads: int, mode: str, prompt: str, weights: str
) -> tuple[list[list[dict[str, Any]]], CpuByRole]:
    """Run the fleet; every member's tick records, and the wall time and CPU time it took."""
    from agent.config import load_settings
    from agent.populations.fleet import run_fleet

    env = {
        "FORAGER_MODEL__N_THREADS": str(threads),
        "OTEL_SDK_DISABLED": "true",
        "FORAGER_TELEMETRY__LOG_LEVEL": "warning",
        "FORAGER_MODEL__PROMPT": prompt,
        "FORAGER_MODEL__WEIGHTS": weights,
    }
    with TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fleet"
        settings = load_settings(data_dir=Path(tmp) / "unused")
        with CpuByRole() as cpu:
            run_fleet(
                folder,
                agents=agents,
                strategies=["llm"],
                ticks=ticks,
                settings=settings,
                interval_s=interval,
                seed=5,
                stagger_s=interval / max(agents, 1),
                extra_env=env,
                model_server=mode != "processes",
                model_engine="forager" if mode == "processes" else mode,
            )
        return lives(folder), cpu


def figures(members: list[list[dict[str, Any]]], interval: float) -> dict[str, Any]:
    """Late ticks, decision latency, invalid decisions and throughput over all members. Late
    ticks are also counted once the fleet is *settled*: after every member's first tick, when
    none is still starting (a start costs a few CPU-seconds, taken from the others' ticks)."""
    late, gaps, invalid = 0, 0, 0
    late_settled, gaps_settled = 0, 0
    settled = max((r[0]["finished_at"] for r in members if r), default=0.0)
    decide: list[float] = []
    ratios: list[float | None] = []
    for records in members:
        # From the second tick: the first decision evaluates the whole prompt (a warm-up).
        starts = [r["started_at"] for r in records[1:]]
        for a, b in itertools.pairwise(starts):
            is_late = b - a > 1.5 * interval
            gaps, late = gaps + 1, late + is_late
            if a >= settled:
                gaps_settled, late_settled = gaps_settled + 1, late_settled + is_late
        decide.extend(r["decision"]["latency_s"] for r in records[1:])
        ratios.extend(_evaluated_per_new(r["decision"]) for r in records[1:])
        invalid += sum(not r["decision"]["valid"] for r in records)
    decided = sum(len(r) for r in members)
    busy = max((r[-1]["finished_at"] - r[0]["started_at"]) for r in members if r) if decided else 0
    return {
        "ticks_done": decided,
        "late_ticks": late,
        "late_share": round(late / gaps, 3) if gaps else None,
        "late_ticks_settled": late_settled,
        "late_share_settled": round(late_settled / gaps_settled, 3) if gaps_settled else None,
        "decision_median_s": round(statistics.median(decide), 3) if decide else None,
        "decision_p90_s": round(_p90(decide), 3) if decide else None,
        "invalid_decisions": invalid,
        # None where the new tokens are not counted (llama-server)
        "evaluated_per_new_median": _median([x for x in ratios if x is not None]),
        "decisions_per_s": round(decided / busy, 3) if busy else None,
    }


def _evaluated_per_new(decision: dict[str, Any]) -> float | None:
    """Prompt tokens evaluated over those new since the agent's previous prompt; None where
    nothing counted the new ones."""
    new = decision.get("new_tokens", 0)
    return (decision["prompt_tokens"] - decision["cached_tokens"]) / new if new else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def single_limit(
    threads: int, prompt: str = "advice", decisions: int = 10, weights: str = "q4_1"
) -> float:
    """Decisions per second of one agent deciding back to back (no interval)."""
    from agent.config import load_settings
    from agent.daemon.wiring import build_decider
    from bench.decision import observations

    settings = load_settings(model={"n_threads": threads, "prompt": prompt, "weights": weights})
    decider = build_decider(settings)
    try:
        samples = observations(decisions + 2)
        for obs, recent in samples[:2]:
            decider.decide(obs, recent)  # warm: the fixed prefix is cached
        started = time.perf_counter()
        for obs, recent in samples[2:]:
            decider.decide(obs, recent)
        return decisions / (time.perf_counter() - started)
    finally:
        decider.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="1,2,4,8", help="fleet sizes to try")
    parser.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(MODES)}")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between ticks")
    parser.add_argument("--ticks", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per agent")
    parser.add_argument(
        "--prompt", default="advice", choices=("advice", "plain", "compact"), help="the agents'"
    )
    parser.add_argument(
        "--weights",
        default="q4_1",
        choices=get_args(ModelWeights),
        help="the bundled model's encoding (q8_0: re-encoded, faster prompts on CPUs without "
        "Q4_1's fast kernels)",
    )
    args = parser.parse_args(argv)
    from telemetry.logs import configure_logging

    configure_logging("warning")  # the fleet's arena runs in this process: its weather is chatty
    cores = os.cpu_count() or 1
    limit = single_limit(args.threads, args.prompt, weights=args.weights)
    print(
        f"density: {cores} cores, tick every {args.interval:g} s, {args.ticks} ticks per agent, "
        f"{args.threads} thread(s) per agent, {args.prompt} prompt, {args.weights} weights; one "
        f"agent back to back: {limit:.2f} decisions/s"
    )
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"--modes {unknown} are not among {MODES}")
    rows = []
    for n in (int(x) for x in args.agents.split(",")):
        fleets = [
            measure(n, args.interval, args.ticks, args.threads, mode, args.prompt, args.weights)
            for mode in modes
        ]
        rows += fleets
        for row in fleets:
            print(
                f"  {n} agents, {row['mode']:>12}: {row['ticks_done']} ticks, late "
                f"{row['late_ticks']} ({(row['late_share'] or 0):.0%}; once all had started "
                f"{row['late_ticks_settled']} ({(row['late_share_settled'] or 0):.0%})), "
                f"decision median "
                f"{row['decision_median_s']} s p90 {row['decision_p90_s']} s, "
                f"{row['invalid_decisions']} invalid, evaluated / new "
                f"{row['evaluated_per_new_median']}, {row['decisions_per_s']} decisions/s "
                f"({(row['decisions_per_s'] or 0) / limit:.2f}x the single-process limit)\n"
                f"    CPU: {shares(row['cpu_s'], row['wall_s'])}",
                flush=True,
            )
        base = fleets[0]["decisions_per_s"] or 1
        ratios = ", ".join(
            f"{r['mode']} {(r['decisions_per_s'] or 0) / base:.2f}x" for r in fleets[1:]
        )
        if ratios:
            print(f"  {n} agents: decisions/s against {fleets[0]['mode']}: {ratios}")
    sustained = {
        mode: max(
            (r["agents"] for r in rows if r["mode"] == mode and (r["late_share"] or 0) <= 0.05),
            default=0,
        )
        for mode in modes
    }
    largest = max(r["agents"] for r in rows)
    rate = {r["mode"]: r["decisions_per_s"] or 0 for r in rows if r["agents"] == largest}
    faster = max(modes, key=lambda m: rate[m])  # at the largest fleet
    print(
        "  sustained without late ticks (<= 5 %): "
        + ", ".join(f"{m} {sustained[m]} agents" for m in modes)
        + f"; faster at {largest} agents: {faster}"
    )
    section = "density" if args.prompt == "advice" else f"density-{args.prompt}"
    record(
        section if args.weights == "q4_1" else f"{section}-{args.weights}",
        {
            "interval_s": args.interval,
            "prompt": args.prompt,
            "weights": args.weights,
            "threads_per_agent": args.threads,
            "single_process_decisions_per_s": round(limit, 3),
            "fleets": rows,
            "sustained_agents": sustained,
            "faster": faster,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
