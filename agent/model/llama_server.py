"""llama.cpp's own `llama-server` as a node's model server, started and kept alive.

Set-up builds the binary from the llama.cpp inside the pinned llama-cpp-python sdist (the same
llama.cpp as the in-process engine and the LoRA converter). `SupervisedServer` runs it on
loopback with the node's model and adapters, answers only once `/health` does, and restarts it
when it dies: the agents' decisions in flight at the crash come back as invalid `hold`s naming
the failed request (`ServedDecider`), and the next tick is answered by the new process.

Adapters are loaded without being applied: each request names its own (`"lora": [{"id", "scale"}]`),
so agents of different generations share one model in memory.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import structlog

from agent.errors import ConfigError, ModelError

log = structlog.get_logger()

BINARY = "llama-server"
START_TIMEOUT_S = 120.0
# Each slot holds one agent's prompt (~1 100 tokens with the advice prompt) and its answer.
CTX_PER_SLOT = 2048
# Waits before each restart while restarts keep failing (the last one repeats).
RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def find_binary(given: Path | None = None) -> Path:
    """The `llama-server` set-up built (on PATH in the virtual environment), or `given`."""
    found = str(given) if given else shutil.which(BINARY)
    if not found or not Path(found).is_file():
        where = f"{given}" if given else f"{BINARY} on PATH"
        raise ConfigError(
            f"{where} was not found: `make setup` builds it from the pinned llama.cpp "
            "(deploy/setup.sh, step 2b)"
        )
    return Path(found)


@dataclass(frozen=True)
class ServerSpec:
    """What one llama-server runs: its model, adapters, slots and threads, on loopback."""

    model: Path
    port: int
    adapters: tuple[Path, ...] = ()
    host: str = "127.0.0.1"
    slots: int = 4
    threads: int | None = None
    gpu_layers: int = 0
    binary: Path | None = None
    extra: tuple[str, ...] = field(default=())

    def command(self) -> list[str]:
        """The command line: one context shared by `slots` agents, cache reuse on, no web UI."""
        cmd = [
            str(find_binary(self.binary)),
            "--model", str(self.model),
            "--alias", self.model.name,
            "--host", self.host,
            "--port", str(self.port),
            "--parallel", str(self.slots),
            "--ctx-size", str(self.slots * CTX_PER_SLOT),
            "--n-gpu-layers", str(self.gpu_layers),
            "--no-webui",
            "--metrics",
        ]  # fmt: skip
        if self.threads:
            cmd += ["--threads", str(self.threads), "--threads-batch", str(self.threads)]
        for adapter in self.adapters:  # absolute: agents match their adapter by its path
            cmd += ["--lora", str(adapter.resolve())]
        if self.adapters:
            cmd.append("--lora-init-without-apply")  # each request names its own
        return cmd + list(self.extra)


class SupervisedServer:
    """A llama-server kept running: started, awaited on `/health`, restarted when it dies.

    `restarts` counts the restarts; `stop()` ends the process and the supervision. The server's
    own output goes to `log_to` (a file the operator can tail).
    """

    def __init__(
        self,
        spec: ServerSpec,
        log_to: IO[bytes] | None = None,
        restart_delays_s: Sequence[float] = RESTART_DELAYS_S,
    ) -> None:
        for path in (spec.model, *spec.adapters):
            if not path.is_file():
                raise ConfigError(f"{path} does not exist (llama-server needs a GGUF file)")
        self.spec = spec
        self.url = f"http://{spec.host}:{spec.port}"
        self.restarts = 0
        self._delays = tuple(restart_delays_s)
        self._log_to = log_to
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Start the server and its watcher; returns the URL once `/health` answers."""
        self._spawn()
        self.wait_healthy(timeout_s)
        self._watcher = threading.Thread(target=self._watch, name="llama-server-watch", daemon=True)
        self._watcher.start()
        log.info("llama_server_started", url=self.url, pid=self.pid, slots=self.spec.slots)
        return self.url

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once `/health` answers 200 (the model is loaded); ModelError if it never does."""
        deadline = time.monotonic() + timeout_s
        while not self._stop.is_set():
            with self._lock:
                proc = self._proc
            if proc is not None and proc.poll() is not None:
                raise ModelError(f"llama-server exited with {proc.returncode} while starting")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ModelError(f"llama-server at {self.url} was not healthy in {timeout_s:.0f} s")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=timeout_s)

    def wait(self) -> None:
        """Block until `stop()` (the foreground of `forager model serve`)."""
        self._stop.wait()

    def _spawn(self) -> None:
        out = self._log_to if self._log_to is not None else subprocess.DEVNULL
        with self._lock:  # never after stop(): it would outlive its supervisor
            if self._stop.is_set():
                return
            self._proc = subprocess.Popen(self.spec.command(), stdout=out, stderr=subprocess.STDOUT)

    def _watch(self) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stop.is_set():
                return
            delay = self._delays[min(failures, len(self._delays) - 1)]
            log.warning("llama_server_died", code=code, restart_in_s=delay, url=self.url)
            if self._stop.wait(delay):
                return
            self._spawn()
            self.restarts += 1
            try:
                self.wait_healthy()
                failures = 0
                log.info("llama_server_restarted", url=self.url, pid=self.pid)
            except ModelError as exc:
                failures += 1
                log.error("llama_server_restart_failed", error=str(exc), url=self.url)
                with self._lock:
                    if self._proc is not None and self._proc.poll() is None:
                        self._proc.kill()  # alive but not serving: start afresh


def start_supervised(
    model: Path,
    port: int,
    *,
    adapters: Sequence[Path] = (),
    slots: int = 4,
    threads: int | None = None,
    log_to: IO[bytes] | None = None,
) -> SupervisedServer:
    """A started `SupervisedServer` (healthy) for `model` with `adapters` on loopback `port`."""
    server = SupervisedServer(
        ServerSpec(model, port, tuple(adapters), slots=slots, threads=threads), log_to
    )
    server.start()
    return server
