"""Errors raised while building or running the arena, on the chain or on paper.

ArenaError                  base class: the local world could not be built or run
├── AnvilError              the anvil binary is missing or the node did not start (may pass)
│   └── AnvilMissing        no anvil binary where it was looked for: fix set-up, no retry
├── CompileError            a Vyper contract did not compile
├── SetupReverted           a deploy, mint or seeding transaction of the world reverted
├── ArenaFileError          an arena connection file is unreadable or lacks fields (ValueError)
├── SavedWorldError         a saved world is unreadable, or missing where an agent lived in it:
│                           nothing is deployed over it, no retry (an operator decides)
├── PriceSeriesError        a replayed price series is unreadable or holds a bad row (ValueError)
└── PaperError              a paper action the contracts would have reverted (names the check)

The two file errors are also `ValueError`s: they are bad input, named, and callers that check
input catch them as such.
"""


class ArenaError(Exception):
    """The arena could not be built or run."""


class AnvilError(ArenaError):
    """anvil is missing, failed to start, or stopped answering."""


class AnvilMissing(AnvilError):
    """No anvil binary on PATH, beside the interpreter, or at FORAGER_ARENA__ANVIL's path."""


class CompileError(ArenaError):
    """A contract failed to compile."""


class SetupReverted(ArenaError):
    """A transaction that builds or funds the world reverted (the message names its hash)."""


class ArenaFileError(ArenaError, ValueError):
    """An arena connection file cannot be read as one (the message names the file)."""


class SavedWorldError(ArenaError):
    """A saved world cannot be restored (the message names the file and what allows a new one)."""


class PriceSeriesError(ArenaError, ValueError):
    """A replayed price series cannot be used (the message names the file and row)."""


class PaperError(ArenaError):
    """What would have reverted on the chain (the message names the contract's check)."""
