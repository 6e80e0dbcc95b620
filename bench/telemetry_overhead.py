"""Telemetry overhead per tick, measured side by side in one run.

Each configuration runs in its own child process (OpenTelemetry providers are process-wide):
`off` has no SDK (spans, metrics and events are the API's no-ops), `on` has the full SDK with
OTLP/HTTP export of traces, metrics and logs to a loopback receiver, plus the tick reporter.
Both run the same ticks on a fresh arena with a scripted decider, so the model's time does not
hide the runtime's. The children alternate (on, off, on, off) to spread machine noise.

    python -m bench.telemetry_overhead [--ticks N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.results import record
from bench.scripted import scripted_agent

ANSWERS = [
    '{"action": "hold", "amount_pct": 10, "reason": "wait"}',
    '{"action": "buy_risk", "amount_pct": 10, "reason": "buy"}',
    '{"action": "sell_risk", "amount_pct": 25, "reason": "sell"}',
]


def child(mode: str, ticks: int) -> None:
    from agent.runtime.reporting import Reporter
    from telemetry.otel import configure_telemetry
    from tests.telemetry.otlp_receiver import OtlpReceiver

    receiver = None
    if mode == "on":
        receiver = OtlpReceiver()
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        telemetry = configure_telemetry("bench", {"forager.agent.id": "bench"}, env)
    with scripted_agent(ANSWERS, ticks + 5) as agent:
        if mode == "on":
            agent.on_record = Reporter(agent.agent_id).report
        for _ in range(5):
            agent.tick()  # warm-up
        times = []
        for _ in range(ticks):
            started = time.perf_counter()
            agent.tick()
            times.append(time.perf_counter() - started)
    if mode == "on":
        telemetry.shutdown()
    if receiver is not None:
        receiver.close()
    print(json.dumps({"mode": mode, "times": times}))


def parent(ticks: int, rounds: int) -> None:
    results: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for mode in ("on", "off"):
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.telemetry_overhead",
                    "--child",
                    mode,
                    "--ticks",
                    str(ticks),
                ],
                capture_output=True,
                text=True,
                check=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            )
            line = [x for x in out.stdout.splitlines() if x.startswith('{"mode"')][-1]
            results[mode].extend(json.loads(line)["times"])
    on, off = statistics.median(results["on"]), statistics.median(results["off"])
    print(f"ticks measured per mode: {len(results['on'])} (scripted decider, arena, swaps)")
    print(f"median tick, telemetry off: {off * 1000:.2f} ms")
    print(f"median tick, telemetry on (OTLP traces+metrics+logs, snapshots): {on * 1000:.2f} ms")
    print(f"telemetry overhead per tick: {(on - off) * 1000:.2f} ms ({on / off:.3f}x)")
    record(
        "telemetry_overhead",
        {
            "ticks_per_mode": len(results["on"]),
            "median_tick_off_ms": round(off * 1000, 2),
            "median_tick_on_ms": round(on * 1000, 2),
            "ratio": round(on / off, 4),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["on", "off"])
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.ticks)
    else:
        parent(args.ticks, args.rounds)


if __name__ == "__main__":
    main()
