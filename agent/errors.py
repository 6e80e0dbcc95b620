"""Errors raised by the agent (runtime, model, lab, populations, command line), split by what
the caller should do.

    AgentError                  base class
    ├── ConfigError             a setting or flag is wrong: name it, exit 2 at start
    ├── ModelError              the model is missing, corrupt, or failed to load: halt (at
    │                           start the daemon retries: a model server may still be coming)
    └── StoreError              the local state store cannot be opened or written: halt

Chain and key errors come from `wallets.errors`, the local world's from `arena.errors`; the loop
treats `ChainUnavailable` as transient (the tick is recorded as skipped) and everything else as
a failed action. `forager` turns each package's base (`AgentError`, `WalletError`, `ArenaError`,
`AkashError`, `TelemetryError`) into one line, `forager: <message>`, and exit code 2.
"""


class AgentError(Exception):
    """Base class of every runtime error."""


class ConfigError(AgentError):
    """A setting is missing or invalid; the message names it and what was expected."""


class ModelError(AgentError):
    """The model could not be found, verified or loaded."""


class StoreError(AgentError):
    """The state store cannot be used."""
