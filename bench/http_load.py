"""HTTP under load while the agent ticks: requests/s, latency percentiles, tick jitter.

Runs one real agent (`forager run`, arena, real model) and measures its tick intervals and
decision latency without load, then while a second process drives `/state` and `/healthz` on
loopback as fast as it can for a bounded time: once at normal priority (a co-located client
competing for the same cores) and once at nice 10 (the server's own cost, mostly).

    python -m bench.http_load [--seconds S] [--threads T]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

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


def client(url: str, seconds: float, threads: int, nice: int) -> None:
    """The load: `threads` connections hammering for `seconds`; prints one JSON summary."""
    os.nice(nice)
    latencies: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    workers = [
        threading.Thread(target=_hammer, args=(url, until, latencies, errors))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"latencies": latencies, "errors": errors[:20], "error_count": len(errors)}))


def _phase(lines: list[str], run: Callable[[], None]) -> tuple[list[float], list[float]]:
    ticks_from, decisions_from = len(_ticks(lines)), len(_latencies(lines))
    run()
    return _ticks(lines)[ticks_from - 1 :], _latencies(lines)[decisions_from:]


def _report(name: str, ticks: list[float], decided: list[float]) -> None:
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    if len(gaps) >= 2 and decided:
        print(
            f"  {name:28} tick interval mean {statistics.mean(gaps):.3f} s, stdev "
            f"{statistics.stdev(gaps) * 1000:4.0f} ms over {len(gaps):2} ticks; decision median "
            f"{statistics.median(decided):.3f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run as the load process
    parser.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.seconds, args.threads, args.nice)
        return
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
        results: dict[str, dict[str, Any]] = {}

        def load(nice: int) -> Callable[[], None]:
            def run() -> None:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.http_load",
                        "--client",
                        url,
                        "--seconds",
                        str(args.seconds),
                        "--threads",
                        str(args.threads),
                        "--nice",
                        str(nice),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[f"nice {nice}"] = json.loads(out.stdout)

            return run

        phases = {
            "without load": _phase(lines, lambda: time.sleep(args.seconds)),
            "with load (client nice 0)": _phase(lines, load(0)),
            "with load (client nice 10)": _phase(lines, load(10)),
        }
        proc.terminate()
        proc.wait(timeout=60)
    print(f"http_load: {args.threads} connections from a second process, {args.seconds:.0f} s each")
    for nice, result in results.items():
        lat = sorted(result["latencies"])
        p = lambda q, lat=lat: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        print(
            f"  client {nice}: {len(lat) / args.seconds:.0f} req/s, p50 {p(0.5):.1f} ms, "
            f"p99 {p(0.99):.1f} ms, max {lat[-1] * 1000:.1f} ms; errors {result['error_count']}"
        )
    for name, (ticks, decided) in phases.items():
        _report(name, ticks, decided)


if __name__ == "__main__":
    main()
