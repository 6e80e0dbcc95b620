"""Errors raised by the runtime, split by what the caller should do.

    AgentError                  base class
    ├── ConfigError             a setting is wrong: name it, exit non-zero at start
    ├── ModelError              the model file is missing, corrupt, or failed to load: halt
    └── StoreError              the local state store cannot be opened or written: halt

Chain and key errors come from `wallets.errors`; the loop treats `ChainUnavailable` as
transient (the tick is recorded as skipped) and everything else as a failed action.
"""


class AgentError(Exception):
    """Base class of every runtime error."""


class ConfigError(AgentError):
    """A setting is missing or invalid; the message names it and what was expected."""


class ModelError(AgentError):
    """The model could not be found, verified or loaded."""


class StoreError(AgentError):
    """The state store cannot be used."""
