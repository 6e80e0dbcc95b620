"""A JSON-RPC provider over several endpoints: failover, chain-id checks, bounded retries.

Every web3 call (contracts included) goes through `FailoverProvider.make_request`:
- connection errors, timeouts, HTTP 429 and 5xx, and rate-limit errors inside an HTTP 200 body
  are retried with exponential backoff and jitter, moving to the next endpoint each time;
- an endpoint is checked for the expected chain id whenever the provider switches to it; one
  on the wrong chain is excluded for good and never signed for;
- when every attempt fails, a `requests.ConnectionError` goes up, which `rpc_errors`
  translates into `ChainUnavailable`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests
import structlog
from web3.providers import HTTPProvider
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from telemetry.redaction import redact_url, redact_urls, secrets
from wallets.errors import RateLimited

log = structlog.get_logger()

T = TypeVar("T")

_RATE_LIMIT_CODES = frozenset({-32005, -32029, 429})
_RETRYABLE_TEXT = ("rate limit", "too many requests", "limit exceeded", "try again later")
_HTTP_TOO_MANY = 429
_HTTP_SERVER_ERROR = 500


def is_rate_limited(response: object) -> bool:
    error = response.get("error") if isinstance(response, dict) else None
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("code") in _RATE_LIMIT_CODES or any(t in message for t in _RETRYABLE_TEXT)


def _transient_http(exc: requests.HTTPError) -> bool:
    status = exc.response.status_code if exc.response is not None else 0
    return status == _HTTP_TOO_MANY or status >= _HTTP_SERVER_ERROR


class FailoverProvider(JSONBaseProvider):
    """Several RPC endpoints behind one web3 provider."""

    def __init__(
        self,
        urls: Sequence[str],
        chain_id: int | None = None,
        *,
        timeout_s: float = 10.0,
        attempts: int | None = None,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
    ) -> None:
        super().__init__()
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self.urls = list(urls)
        for url in self.urls:
            secrets.register_url(url)  # an API key in a URL is masked wherever it shows
        self._endpoints = [
            HTTPProvider(
                u, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
            )
            for u in self.urls
        ]
        self.expected_chain_id = chain_id
        self.excluded: dict[str, str] = {}
        self._attempts = attempts or max(3, 2 * len(urls))
        self._backoff, self._max_backoff = backoff_s, max_backoff_s
        self._active = 0
        self._verified: set[int] = set()
        self._lock = threading.Lock()
        self._rng = random.Random()  # noqa: S311 -- jitter, not cryptography

    @property
    def active_url(self) -> str:
        return self.urls[self._active]

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_chainId" and self.expected_chain_id is not None:
            # web3 asks before every contract call; a verified endpoint's answer is known.
            with self._lock:
                verified = self._active in self._verified
            if verified:
                return {"jsonrpc": "2.0", "id": 0, "result": hex(self.expected_chain_id)}
        return self._with_failover(method, lambda p: p.make_request(method, params))

    def make_batch_request(self, batch_requests: list[tuple[RPCEndpoint, Any]]) -> Any:
        return self._with_failover(
            RPCEndpoint("batch"), lambda p: p.make_batch_request(batch_requests)
        )

    def _with_failover(self, method: str, call: Callable[[HTTPProvider], T]) -> T:
        last: Exception | None = None
        for attempt in range(self._attempts):
            index = self._pick()
            if index is None:
                if len(self.excluded) == len(self.urls):
                    break
                last = requests.ConnectionError("no endpoint answered the chain-id check")
                self._sleep(attempt)
                continue
            try:
                response = call(self._endpoints[index])
            except requests.HTTPError as exc:
                if not _transient_http(exc):
                    raise
                last = exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = exc
            else:
                if not (isinstance(response, dict) and is_rate_limited(response)):
                    return response
                last = RateLimited(str(response.get("error")))
            self._failed(index, method, last)
            self._sleep(attempt)
        raise requests.ConnectionError(
            f"{method}: every RPC endpoint failed ({len(self.urls)} configured, "
            f"{len(self.excluded)} excluded); last error: {type(last).__name__}: {last}"
        )

    def _pick(self) -> int | None:
        """The endpoint to use now: the active one, or the next usable one (chain-checked)."""
        with self._lock:
            for step in range(len(self.urls)):
                index = (self._active + step) % len(self.urls)
                if self.urls[index] in self.excluded:
                    continue
                if index not in self._verified and not self._verify(index):
                    continue
                if index != self._active:
                    log.warning(
                        "rpc_switched",
                        to=redact_url(self.urls[index]),
                        previous=redact_url(self.active_url),
                    )
                    self._active = index
                return index
        return None

    def _verify(self, index: int) -> bool:
        if self.expected_chain_id is None:
            self._verified.add(index)
            return True
        try:
            reply = self._endpoints[index].make_request(RPCEndpoint("eth_chainId"), [])
            actual = int(str(reply["result"]), 16)
        except (requests.RequestException, KeyError, ValueError):
            return False  # unreachable for now; it may come back
        if actual != self.expected_chain_id:
            reason = f"serves chain id {actual}, expected {self.expected_chain_id}"
            self.excluded[self.urls[index]] = reason
            log.error("rpc_excluded", url=redact_url(self.urls[index]), reason=reason)
            return False
        self._verified.add(index)
        return True

    def _failed(self, index: int, method: str, exc: Exception | None) -> None:
        with self._lock:
            self._verified.discard(index)  # re-checked before it is used again
            if index == self._active:
                self._active = (index + 1) % len(self.urls)
        log.warning(
            "rpc_failed",
            url=redact_url(self.urls[index]),
            method=method,
            error=secrets.scrub(redact_urls(str(exc)))[:200],
        )

    def _sleep(self, attempt: int) -> None:
        delay = min(self._max_backoff, self._backoff * 2**attempt)
        time.sleep(delay * self._rng.uniform(0.5, 1.0))
