"""A lease's container logs, streamed from its provider.

Logs never pass through the Console API: the provider serves them on a WebSocket at
`{hostUri}/lease/{dseq}/{gseq}/{oseq}/logs`, to a bearer of a JWT with the `logs` scope (minted
by the Console for a managed wallet). Each frame is a JSON object `{"name": <pod>, "message":
<one line>}`. Providers serve TLS with a self-signed certificate: as Akash documents, the JWT is
the authentication and the certificate is not verified (for this connection only).
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from akash.errors import LeaseLogError

_REFUSED = (401, 403)


@dataclass(frozen=True)
class LogLine:
    pod: str
    message: str


def logs_url(
    host_uri: str, dseq: str, gseq: int, oseq: int, *, follow: bool, tail: int, service: str | None
) -> str:
    """The WebSocket URL of a lease's logs, from the provider's `hostUri` (https://host:8443)."""
    parts = urlsplit(host_uri if "://" in host_uri else f"https://{host_uri}")
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise LeaseLogError(f"provider hostUri {host_uri!r}: expected https://host[:port]")
    scheme = "wss" if parts.scheme == "https" else "ws"
    query: dict[str, str] = {"follow": "true" if follow else "false", "tail": str(tail)}
    if service:
        query["service"] = service
    return f"{scheme}://{parts.netloc}/lease/{dseq}/{gseq}/{oseq}/logs?{urlencode(query)}"


_CONNECT_ATTEMPTS = 3
_RETRY_S = 0.5
_NORMAL_CLOSE = (1000, 1001)


def stream(url: str, token: str, *, open_timeout_s: float = 20.0) -> Iterator[LogLine]:
    """The lines of a lease's log stream, as the provider sends them, until it closes."""
    where = url.split("?", 1)[0]
    with _connect(url, token, where, open_timeout_s) as socket:
        try:
            for frame in socket:
                yield _line(frame)
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code not in _NORMAL_CLOSE:
                raise LeaseLogError(f"{where}: the log stream broke off: {exc}") from exc


def _connect(url: str, token: str, where: str, open_timeout_s: float) -> ClientConnection:
    """The open WebSocket, after a few tries: a provider's gateway drops a handshake now and
    then. A refusal (bad token) or a bad URL is not retried."""
    attempt = 1
    while True:
        try:
            return _open(url, token, open_timeout_s)
        except InvalidStatus as exc:
            status = exc.response.status_code
            hint = " (the token expired or lacks the 'logs' scope)" if status in _REFUSED else ""
            raise LeaseLogError(f"{where}: the provider answered {status}{hint}") from exc
        except InvalidURI as exc:
            raise LeaseLogError(f"{where}: provider unreachable: {exc}") from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            if attempt == _CONNECT_ATTEMPTS:
                raise LeaseLogError(f"{where}: provider unreachable: {exc}") from exc
            time.sleep(_RETRY_S * attempt)
            attempt += 1


def _open(url: str, token: str, open_timeout_s: float) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"}
    return connect(
        url, additional_headers=headers, ssl=_tls(url), open_timeout=open_timeout_s, max_size=2**20
    )


def _tls(url: str) -> ssl.SSLContext | None:
    """TLS without certificate checks for `wss://`: providers' certificates are self-signed."""
    if not url.startswith("wss://"):
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _line(frame: str | bytes) -> LogLine:
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    try:
        record = json.loads(text)
    except ValueError:
        return LogLine("", text.rstrip("\n"))
    if isinstance(record, dict) and "message" in record:
        return LogLine(str(record.get("name", "")), str(record["message"]).rstrip("\n"))
    return LogLine("", text.rstrip("\n"))
