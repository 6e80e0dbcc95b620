"""Keeps secrets out of every log line.

Two nets: values under secret-sounding keys are masked, and any registered secret (a private
key, a password) is masked wherever it appears inside any string value, at any depth.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from typing import Any

REDACTED = "[REDACTED]"

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
