"""Errors raised by the Akash tooling.

AkashError              base class
├── SdlError            an SDL document cannot be read, or fails validation
└── SchemaMissing       the SDL JSON schema file cannot be found
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
