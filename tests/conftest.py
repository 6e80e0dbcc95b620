"""Shared fixtures: a real anvil arena, the real bundled model, and helpers to run the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Settings, default_cache_dir, load_settings
from agent.model.cache import locate_default
from agent.model.deciders import LlamaDecider
from arena.local import ArenaConfig, LocalArena

REPO = Path(__file__).resolve().parent.parent


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: run the tests through `make test` (it installs it)")
    return path


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The verified default GGUF (installed by `make setup`)."""
    return locate_default(default_cache_dir())


@pytest.fixture(scope="session")
def decider(model_path: Path) -> Iterator[LlamaDecider]:
    """One real model per test process (a Llama object is not thread-safe; load it once)."""
    model = LlamaDecider(model_path, n_ctx=2048, n_threads=2, temperature=0.3, max_tokens=96)
    yield model
    model.close()


@pytest.fixture
def arena(tmp_path: Path) -> Iterator[LocalArena]:
    """A fresh local arena with the weather stopped (tests step it by hand)."""
    require_binary("anvil")
    world = LocalArena(
        ArenaConfig(weather_interval_s=0, cache_dir=default_cache_dir() / "contracts")
    )
    world.up()
    yield world
    world.down()


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an in-process agent under `tmp_path`."""
    return load_settings(data_dir=tmp_path / "data", **overrides)


def cast(*args: str) -> str:
    """Run Foundry's `cast` (an independent client) and return its output."""
    result = subprocess.run(
        [require_binary("cast"), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout.strip()


def cast_balance(rpc_url: str, token: str, owner: str) -> int:
    out = cast("call", token, "balanceOf(address)(uint256)", owner, "--rpc-url", rpc_url)
    return int(out.split()[0])


class ForagerProcess:
    """`forager run` as a real subprocess, with its JSON log lines collected."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir), "--port", "0"]
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            [*cmd, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
            cwd=REPO,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    # 300 s: a first decision took 322 s with eight suites sharing two cores (llama.cpp's
    # threads spin while they wait); one agent takes seconds on an idle machine.
    def wait_event(self, name: str, timeout: float = 300.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == name and all(event.get(k) == v for k, v in match.items()):
                    return event
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {name} event; output:\n" + "\n".join(self.lines[-40:]))

    @property
    def url(self) -> str:
        port = self.wait_event("http_listening")["port"]
        return f"http://127.0.0.1:{port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = 300.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(timeout=10)


@pytest.fixture
def forager() -> Iterator[list[ForagerProcess]]:
    """Start `forager run` subprocesses; any left running are killed at the end."""
    started: list[ForagerProcess] = []
    yield started
    for process in started:
        process.kill()
