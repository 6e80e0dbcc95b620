"""A small loopback JSON-RPC fault proxy for tests (toxiproxy is not available here).

It forwards to an upstream node and can, per request: pass, drop the connection, delay,
answer HTTP 429 or 502, answer a rate-limit error inside HTTP 200, or claim another chain id.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests

from tests.loopback import LoopbackServer


class FaultProxy:
    """Listens on 127.0.0.1; `mode` and `faults_left` may be changed while it runs."""

    def __init__(self, upstream: str, mode: str = "pass", faults_left: int | None = None) -> None:
        self.upstream = upstream
        self.mode = mode
        self.faults_left = faults_left  # None: fault forever; N: fault N times, then pass
        self.methods: list[str] = []
        self.posts = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy.handle(self)

            def log_message(self, *_: Any) -> None:
                return

        self.loopback = LoopbackServer(Handler)

    @property
    def url(self) -> str:
        return self.loopback.url

    def _mode_now(self) -> str:
        with self._lock:
            if self.faults_left is None:
                return self.mode
            if self.faults_left <= 0:
                return "pass"
            self.faults_left -= 1
            return self.mode

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        body = req.rfile.read(int(req.headers.get("Content-Length", 0)))
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        self.methods.extend(str(c.get("method")) for c in calls)
        self.posts += 1
        mode = self._mode_now()
        if mode == "drop":
            req.close_connection = True
            return
        if mode in ("429", "502"):
            self._reply(req, int(mode), b"{}")
            return
        if mode == "rpc_limit":
            error = {"code": -32005, "message": "rate limit exceeded, try again later"}
            reply = {"jsonrpc": "2.0", "id": calls[0].get("id"), "error": error}
            self._reply(req, 200, json.dumps(reply).encode())
            return
        if mode.startswith("delay:"):
            time.sleep(float(mode.split(":", 1)[1]))
        answer = requests.post(
            self.upstream, data=body, timeout=30, headers={"Content-Type": "application/json"}
        ).content
        if mode.startswith("chain:") and calls[0].get("method") == "eth_chainId":
            fake = {"jsonrpc": "2.0", "id": calls[0].get("id"), "result": hex(int(mode[6:]))}
            answer = json.dumps(fake).encode()
        self._reply(req, 200, answer)

    @staticmethod
    def _reply(req: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def close(self) -> None:
        self.loopback.close()
