"""A local fleet's child processes: its agents and the model server they share.

Each process gets the supervisor's environment plus its own settings, appends its output to a
log file beside its data, and is stopped politely: SIGTERM (an agent finishes its tick and
closes its store), then SIGKILL if it has not stopped after a grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import structlog

from agent.errors import ConfigError

log = structlog.get_logger()

STOP_TIMEOUT_S = 60.0
_SERVER_START_S = 120.0


def start_process(
    cmd: list[str], log_file: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start `cmd` with `env` added to ours, its stdout and stderr appended to `log_file`."""
    with log_file.open("ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )


def interrupt(proc: subprocess.Popen[bytes]) -> None:
    """Ask a running process to stop (SIGTERM); one that has exited is left alone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)


def reap(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """The process's exit code once it has stopped; killed if it takes over `timeout_s`."""
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ModelServer:
    """One `forager model serve` for the members that run the model (one model in memory)."""

    def __init__(self, log_file: Path, engine: str = "forager") -> None:
        self.log_file = log_file
        self.engine = engine
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, slots: int, env: Mapping[str, str]) -> str:
        """Start the server with `slots` agents decoded together; returns its URL once up."""
        port = free_port()
        cmd = [
            sys.executable, "-m", "agent.cli", "model", "serve", "--engine", self.engine,
            "--port", str(port), "--slots", str(max(1, slots)),
        ]  # fmt: skip
        server_env = dict(env)
        server_env.pop("FORAGER_MODEL__N_THREADS", None)  # it takes the cores the agents would
        self._proc = start_process(cmd, self.log_file, server_env)
        url = f"http://127.0.0.1:{port}"
        self._wait_ready(self._proc, url)
        log.info("fleet_model_server_started", url=url, slots=slots, engine=self.engine)
        return url

    def _wait_ready(self, proc: subprocess.Popen[bytes], url: str) -> None:
        deadline = time.monotonic() + _SERVER_START_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ConfigError(
                    f"the fleet's model server exited with {proc.returncode} (see {self.log_file})"
                )
            if _healthy(url):
                return
            time.sleep(0.2)
        raise ConfigError(
            f"the fleet's model server did not answer at {url} in {_SERVER_START_S} s"
        )

    def stop(self) -> None:
        if self._proc is not None:
            interrupt(self._proc)
            reap(self._proc)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
