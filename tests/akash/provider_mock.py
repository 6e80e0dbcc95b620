"""A provider's lease-log WebSocket on loopback, over TLS with a self-signed certificate.

It serves `/lease/{dseq}/{gseq}/{oseq}/logs` as Akash providers do: a bearer JWT in the upgrade
request, one JSON frame `{"name": pod, "message": line}` per log line, `tail` honoured, and a
normal close at the end unless `follow=true` (then it waits for `release`).
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response
from websockets.sync.server import ServerConnection, serve


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1, made by the openssl CLI."""
    cert, key = folder / "provider.crt", folder / "provider.key"
    openssl = shutil.which("openssl")
    assert openssl, "the openssl CLI is needed to make the provider's certificate"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=provider.test",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class ProviderMock:
    """Knobs: `lines` (the container's log), `accepts` (which tokens), `status` (force one)."""

    def __init__(self, folder: Path, accepts: Callable[[str], bool]) -> None:
        self.accepts = accepts
        self.lines: list[str] = []
        self.status: int | None = None
        self.requests: list[str] = []
        self.release = threading.Event()
        cert, key = self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = serve(self._handle, "127.0.0.1", 0, ssl=context, process_request=self._check)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host_uri(self) -> str:
        return f"https://127.0.0.1:{self.server.socket.getsockname()[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.thread.join(timeout=10)

    def _check(self, _connection: ServerConnection, request: Any) -> Response | None:
        self.requests.append(request.path)
        if not re.fullmatch(r"/lease/\d+/\d+/\d+/logs", urlsplit(request.path).path):
            return _refuse(404, "not found")
        if self.status is not None:
            return _refuse(self.status, "refused")
        scheme, _, token = str(request.headers.get("Authorization", "")).partition(" ")
        if scheme != "Bearer" or not self.accepts(token):
            return _refuse(401, "unauthorized")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        query = parse_qs(urlsplit(connection.request.path).query)  # type: ignore[union-attr]
        tail = int(query.get("tail", ["100"])[0])
        for line in self.lines[-tail:]:
            connection.send(json_frame("agent-5d9f-abcde", line))
        if query.get("follow") == ["true"]:
            self.release.wait(timeout=30)
        connection.close()


def json_frame(pod: str, line: str) -> str:
    import json

    return json.dumps({"name": pod, "message": line})


def _refuse(status: int, text: str) -> Response:
    body = text.encode()
    headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return Response(status, text, headers, body)
