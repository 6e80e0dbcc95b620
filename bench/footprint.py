"""Cold start and memory of a real agent process (`forager run` on its own local arena).

Cold start: from spawning the process to its first decision, with the default model, split at
the milestones its JSON log reports (HTTP listening, arena up, agent assembled, first decision).
Target: ≤ 5 s. Memory: the agent process's resident set (VmRSS; anvil is a separate process)
right after its first tick and after many more, for the model and for a rule-based baseline
(a leak shows as growth with ticks), against the model file's size. Target: RSS ≤ model size +
200 MB, and no growth beyond noise. And a *served* model agent (`FORAGER_MODEL__SERVER_URL`, the
compact prompt), which holds no model: its requests go to a scripted OpenAI-compatible server
in this process that answers at once (what is measured is the agent, not a model). Target:
≤ 120 MiB and no growth over 1 000 ticks.

    python -m bench.footprint [--model-ticks N] [--rule-ticks N] [--served-ticks N]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.results import record

MILESTONES = ("http_listening", "arena_started", "agent_started", "decision_made")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_agent(
    strategy: str,
    ticks: int,
    interval: float,
    sample_at: tuple[int, ...],
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start `forager run`, note when each milestone's log line arrives, sample RSS after the
    given ticks; return the timings (s from spawn) and the samples (MiB)."""
    with TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FORAGER_"))}
        env["OTEL_SDK_DISABLED"] = "true"
        env.update(extra_env or {})
        started = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.cli",
                "run",
                "--data-dir",
                str(Path(tmp) / "agent"),
                "--port",
                "0",
                "--strategy",
                strategy,
                "--ticks",
                str(ticks),
                "--interval",
                str(interval),
                "--linger",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        seen: dict[str, float] = {}
        rss: dict[int, float] = {}
        finished = 0
        for line in proc.stdout:
            try:
                event = json.loads(line).get("event")
            except ValueError:
                continue
            now = time.perf_counter() - started
            if event in MILESTONES and event not in seen:
                seen[event] = now
            if event == "tick_finished":
                finished += 1
                if finished in sample_at:
                    rss[finished] = rss_mib(proc.pid)
            if event in ("ticks_completed", "agent_died"):
                break
        proc.terminate()
        proc.wait(timeout=60)
    return {"milestones_s": {k: round(v, 3) for k, v in seen.items()}, "rss_mib": rss}


# What the scripted server answers, in turn: trades as well as holds, so the agent acts.
SCRIPT = (
    '{"action": "hold", "amount_pct": 10}',
    '{"action": "buy_risk", "amount_pct": 10}',
    '{"action": "hold", "amount_pct": 10}',
    '{"action": "sell_risk", "amount_pct": 10}',
)


@contextlib.contextmanager
def scripted_server() -> Iterator[str]:
    """An OpenAI-compatible chat-completions server on loopback that answers `SCRIPT` in turn
    at once; its URL."""
    answers = itertools.cycle(SCRIPT)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object | None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, None)
            elif self.path == "/v1/models":
                self._send(200, {"data": [{"id": "scripted"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            choice = {"message": {"content": next(answers)}, "finish_reason": "stop"}
            usage = {"prompt_tokens": 1, "completion_tokens": 1}
            self._send(200, {"choices": [choice], "usage": usage})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-ticks", type=int, default=100)
    parser.add_argument("--rule-ticks", type=int, default=1000)
    parser.add_argument("--served-ticks", type=int, default=1000)
    args = parser.parse_args(argv)
    from agent.config import default_cache_dir
    from agent.model.cache import locate_default

    model_mib = locate_default(default_cache_dir()).stat().st_size / 2**20
    cold = run_agent("llm", 1, 1.0, (1,))
    first = cold["milestones_s"].get("decision_made")
    print(
        "cold start (spawn to milestone, s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in cold["milestones_s"].items())
    )
    if first is not None:
        print(
            f"  target: first decision <= 5 s: {'met' if first <= 5 else 'missed'} ({first:.2f} s)"
        )
    model = run_agent("llm", args.model_ticks, 0.1, (1, args.model_ticks // 2, args.model_ticks))
    rich = {"FORAGER_ARENA__AGENT_STABLE": "100000"}  # lives all its ticks
    rule = run_agent(
        "momentum", args.rule_ticks, 0.02, (10, args.rule_ticks // 2, args.rule_ticks), rich
    )
    with scripted_server() as url:
        env = {**rich, "FORAGER_MODEL__SERVER_URL": url, "FORAGER_MODEL__PROMPT": "compact"}
        n = args.served_ticks
        served = run_agent("llm", n, 0.02, (10, n // 2, n), env)
    runs = (("model", model), ("rule (momentum)", rule), ("served model agent", served))
    for name, run in runs:
        samples = ", ".join(f"tick {t}: {m:.0f} MiB" for t, m in sorted(run["rss_mib"].items()))
        print(f"memory, {name}: {samples}")
    model_rss = max(model["rss_mib"].values(), default=0.0)
    print(
        f"  model file {model_mib:.0f} MiB; agent RSS {model_rss:.0f} MiB = model + "
        f"{model_rss - model_mib:.0f} MiB (target: model + 200 MiB: "
        f"{'met' if model_rss <= model_mib + 200 else 'missed'})"
    )
    served_rss = served["rss_mib"]
    if served_rss:
        first, last = served_rss[min(served_rss)], served_rss[max(served_rss)]
        print(
            f"  served model agent: {max(served_rss.values()):.0f} MiB at most (target <= 120: "
            f"{'met' if max(served_rss.values()) <= 120 else 'missed'}), {last - first:+.1f} MiB "
            f"from tick {min(served_rss)} to {max(served_rss)}"
        )
    record(
        "footprint",
        {
            "cold_start_s": cold["milestones_s"],
            "model_file_mib": round(model_mib, 1),
            "rss_mib_model": model["rss_mib"],
            "rss_mib_rule": rule["rss_mib"],
            "rss_mib_served": served["rss_mib"],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
