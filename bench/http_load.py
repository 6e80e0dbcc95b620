"""HTTP under load while the agent ticks: requests/s, latency percentiles, tick jitter.

Runs one real agent (`forager run`, arena, real model) and measures its tick intervals first
without load, then while client threads in this process (a second process from the agent's
point of view) drive `/state` and `/healthz` on loopback for a bounded time.

    python -m bench.http_load [--seconds S] [--threads T]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

import httpx


def _events(lines: list[str], name: str) -> list[dict[str, object]]:
    found = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == name:
            found.append(event)
    return found


def _ticks(lines: list[str]) -> list[float]:
    return [
        datetime.fromisoformat(str(e["timestamp"])).timestamp()
        for e in _events(lines, "tick_started")
    ]


def _latencies(lines: list[str]) -> list[float]:
    return [float(str(e["latency_s"])) for e in _events(lines, "decision_made")]


def _hammer(url: str, until: float, latencies: list[float], errors: list[str]) -> None:
    with httpx.Client(timeout=10) as client:
        paths = ("/state", "/healthz")
        i = 0
        while time.monotonic() < until:
            started = time.perf_counter()
            response = client.get(url + paths[i % 2])
            latencies.append(time.perf_counter() - started)
            text = response.text
            if response.status_code != 200 or (
                "agent_id" not in text and "agent_alive" not in text
            ):
                errors.append(f"{response.status_code}")
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "agent.cli", "run", "--data-dir", tmp, "--port", "0"]
        cmd += ["--interval", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        while not any('"http_listening"' in line for line in lines):
            time.sleep(0.05)
        port = next(json.loads(x)["port"] for x in lines if '"http_listening"' in x)
        url = f"http://127.0.0.1:{port}"
        while len(_ticks(lines)) < 2:
            time.sleep(0.1)
        quiet_from, quiet_decisions = len(_ticks(lines)), len(_latencies(lines))
        time.sleep(args.seconds)
        quiet = _ticks(lines)[quiet_from - 1 :]
        decided_quiet = _latencies(lines)[quiet_decisions:]
        latencies: list[float] = []
        errors: list[str] = []
        until = time.monotonic() + args.seconds
        loaded_from, loaded_decisions = len(_ticks(lines)), len(_latencies(lines))
        workers = [
            threading.Thread(target=_hammer, args=(url, until, latencies, errors))
            for _ in range(args.threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        loaded = _ticks(lines)[loaded_from - 1 :]
        decided_loaded = _latencies(lines)[loaded_decisions:]
        proc.terminate()
        proc.wait(timeout=60)
    gaps_quiet = [b - a for a, b in itertools.pairwise(quiet)]
    gaps_loaded = [b - a for a, b in itertools.pairwise(loaded)]
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(
        f"requests: {len(latencies)} in {args.seconds:.0f} s from {args.threads} threads "
        f"= {len(latencies) / args.seconds:.0f} req/s; errors {len(errors)}"
    )
    print(f"latency ms: p50 {p(0.5):.1f}  p99 {p(0.99):.1f}  max {latencies[-1] * 1000:.1f}")
    for name, gaps, decided in (
        ("without load", gaps_quiet, decided_quiet),
        ("with load", gaps_loaded, decided_loaded),
    ):
        if len(gaps) >= 2 and decided:
            print(
                f"{name}: tick interval mean {statistics.mean(gaps):.3f} s, "
                f"stdev {statistics.stdev(gaps) * 1000:.0f} ms over {len(gaps)} ticks; "
                f"decision latency median {statistics.median(decided):.3f} s"
            )


if __name__ == "__main__":
    main()
