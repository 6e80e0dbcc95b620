"""Errors raised by the Akash tooling, split by what the operator should do.

    AkashError                  base class
    ├── SdlError                an SDL document cannot be read, or fails validation: fix it
    ├── SchemaMissing           the SDL JSON schema file cannot be found: point to it
    ├── ConsoleError            the Console API refused a request or did not answer (`status`)
    │   ├── NotAuthorized       the API key is missing, wrong or revoked: set another
    │   ├── InsufficientFunds   the managed wallet cannot pay the deposit: top it up
    │   └── NoBids              no acceptable bid in time: the deployment was closed
    └── LeaseLogError           a provider's log stream could not be opened or broke off

Foreign exceptions (httpx, websockets) are translated where they are caught, with
`raise ... from exc`. Messages never contain the API key or a lease token.
"""

from __future__ import annotations


class AkashError(Exception):
    """Base class of the Akash tooling's errors."""


class SdlError(AkashError):
    """An SDL document is unreadable or invalid; `problems` lists each one by path."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class SchemaMissing(AkashError):
    """The official SDL JSON schema was not found where it was looked for."""


class ConsoleError(AkashError):
    """The Console API refused a request; `status` is the HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotAuthorized(ConsoleError):
    """The API key is missing, wrong or revoked (HTTP 401)."""


class InsufficientFunds(ConsoleError):
    """The managed wallet cannot pay the deposit."""


class NoBids(ConsoleError):
    """No acceptable bid arrived before the timeout."""


class LeaseLogError(AkashError):
    """The provider's log stream could not be opened or broke off."""
