"""Keeps secrets out of every log line.

Two nets: values under secret-sounding keys are masked, and any registered secret (a private
key, a password, the parts of an RPC URL that may carry an API key) is masked wherever it
appears inside any string value, at any depth. URLs get a third: `redact_url` shows only an
endpoint's scheme, host and port, and `redact_urls` does that to every URL inside a text (an
upstream exception's message).
"""

from __future__ import annotations

import re
import threading
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

REDACTED = "[REDACTED]"
ELIDED = "…"  # what stands for a URL's userinfo, path, query and fragment

# An absolute URL inside free text: a scheme, `://`, then up to a space, quote or bracket.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>(){}]+")

_SECRET_KEY_PARTS = ("password", "passphrase", "private_key", "privatekey", "secret", "mnemonic")
_MIN_SECRET_LEN = 6


class SecretRegistry:
    """The set of secret strings this process must never print."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def register(self, secret: str) -> None:
        """Remember `secret` (and its forms with and without a 0x prefix)."""
        if len(secret) < _MIN_SECRET_LEN:
            return  # too short to mask without masking ordinary text
        forms = {secret, secret.lower()}
        if secret.lower().startswith("0x"):
            forms.add(secret[2:].lower())
        with self._lock:
            self._secrets = self._secrets | forms

    def register_url(self, url: str) -> None:
        """Remember the parts of `url` that may carry a credential: its userinfo and password
        (`https://KEY@host`, `https://user:KEY@host`), its fragment, and its path and query
        together (`/v2/KEY`, `/rpc?apikey=KEY`) as requests' and web3's messages show them."""
        try:
            parts = urlsplit(url)
        except ValueError:  # malformed (an unclosed IPv6 bracket): mask all of it
            self.register(url)
            return
        userinfo, _, _ = parts.netloc.rpartition("@")
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        for part in (userinfo, parts.password or "", parts.fragment):
            self.register(part)
        if tail.strip("/"):
            self.register(tail)

    def scrub(self, text: str) -> str:
        """Return `text` with every registered secret masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub_value(self, value: Any) -> Any:
        """Scrub strings inside nested dicts, lists and tuples."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_value(v) for v in value)
        return value


secrets = SecretRegistry()


def is_secret_key(key: str) -> bool:
    """True when a field's name says it holds a secret."""
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def redact_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret keys and registered secret values."""
    for key in list(event_dict):
        if is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = secrets.scrub_value(event_dict[key])
    return event_dict


def redact_url(url: str) -> str:
    """`url` as it may be shown: scheme, host and port; userinfo, path, query and fragment,
    where present, become `…` (`https://eth-mainnet.g.alchemy.com/…`). Not a URL: `…`."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return ELIDED
    _, at, host = parts.netloc.rpartition("@")
    if not parts.scheme or not host:
        return ELIDED  # a mistyped URL may still hold a key
    shown = f"{parts.scheme}://" + (f"{ELIDED}@" if at else "") + host
    if parts.path.strip("/") or parts.query or parts.fragment:
        shown += "/" + ELIDED
    return shown


def redact_urls(text: str) -> str:
    """`text` with every absolute URL in it shown as `redact_url` shows it."""
    return _URL_IN_TEXT.sub(_redact_found, text)


def _redact_found(found: re.Match[str]) -> str:
    url = found.group(0).rstrip(".,;:!")  # the sentence's punctuation, not the URL's
    return redact_url(url) + found.group(0)[len(url) :]
