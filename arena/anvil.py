"""Runs an anvil node on a free loopback port; its state can be dumped and loaded back."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from arena.errors import AnvilError, AnvilMissing

_START_TIMEOUT_S = 20.0


def locate(binary: str) -> str | None:
    """`binary` on PATH, else beside the running interpreter, else None.

    Set-up links anvil and cast into the virtualenv's bin, next to its python: so
    `.venv/bin/forager` finds them even when `.tools/bin` is not on PATH.
    """
    found = shutil.which(binary)
    if found is None and Path(binary).name == binary:  # a bare name, not a path
        found = shutil.which(binary, path=str(Path(sys.executable).parent))
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Anvil:
    """One anvil process. `start` returns once it answers JSON-RPC."""

    def __init__(
        self,
        binary: str = "anvil",
        chain_id: int = 31337,
        port: int | None = None,
    ) -> None:
        self.binary = binary
        self.chain_id = chain_id
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        path = locate(self.binary)
        if path is None:
            raise AnvilMissing(
                f"anvil binary {self.binary!r} not found on PATH nor in "
                f"{Path(sys.executable).parent}; run `make setup` "
                "or set FORAGER_ARENA__ANVIL to its path"
            )
        args = [path, "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--chain-id", str(self.chain_id), "--silent"]
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise AnvilError(f"anvil exited at start (code {self._proc.returncode}): {err}")
            try:
                self.rpc("eth_chainId", [])
            except AnvilError:
                time.sleep(0.05)
                continue
            return
        self.stop()
        raise AnvilError(f"anvil did not answer on {self.url} within {_START_TIMEOUT_S:.0f} s")

    def rpc(self, method: str, params: list[object]) -> object:
        """One raw JSON-RPC call (used for anvil_* methods web3 does not wrap)."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            reply = requests.post(self.url, json=body, timeout=30).json()
        except (requests.RequestException, ValueError) as exc:
            raise AnvilError(f"{method} on {self.url} failed: {exc}") from exc
        if "error" in reply:
            raise AnvilError(f"{method} on {self.url} failed: {reply['error']}")
        return reply.get("result")

    def dump_state(self) -> str:
        """The chain's whole state (accounts, blocks, transactions), as anvil's hex."""
        return str(self.rpc("anvil_dumpState", []))

    def load_state(self, state: str) -> None:
        """Load a `dump_state` into this (freshly started) node."""
        self.rpc("anvil_loadState", [state])

    def head(self) -> tuple[int, str]:
        """The latest block's number and hash."""
        block = self.rpc("eth_getBlockByNumber", ["latest", False])
        if not isinstance(block, dict):
            raise AnvilError(f"eth_getBlockByNumber on {self.url} answered {block!r}")
        return int(block["number"], 16), str(block["hash"])

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
