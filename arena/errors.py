"""Errors raised while building or running the arena.

ArenaError                  base class: the local world could not be built or run
├── AnvilError              the anvil binary is missing or the node did not start
└── CompileError            a Vyper contract did not compile
"""


class ArenaError(Exception):
    """The arena could not be built or run."""


class AnvilError(ArenaError):
    """anvil is missing, failed to start, or stopped answering."""


class CompileError(ArenaError):
    """A contract failed to compile."""
