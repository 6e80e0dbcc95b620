"""Errors raised by the wallet layer, split by what the caller should do.

    WalletError                     base class
    ├── KeystoreError               the key cannot be loaded: fail closed at start
    ├── ChainError
    │   ├── ChainUnavailable        RPC unreachable or timing out: transient, try next tick
    │   │   └── RateLimited         an endpoint answered "rate limited": try the next one
    │   ├── WrongChain              the RPC serves another chain id: halt
    │   └── ContractMissing         no code at a configured address: halt
    └── TxError
        ├── TxReverted              mined with status 0: this action failed, carry on
        ├── TxNotMined              no receipt in time: transient, reconcile later
        ├── FeeCeilingReached       a replacement would pay more than the fee ceiling
        └── SigningHalted           a nonce was used by a transaction we do not know: halt

Foreign exceptions are translated only at the boundary (`wallets.chain.rpc_errors`), always
with `raise ... from exc`. Messages never contain key material.
"""

from __future__ import annotations


class WalletError(Exception):
    """Base class of every wallet-layer error."""


class KeystoreError(WalletError):
    """The keystore is missing, unreadable, tampered with, or the password is wrong."""


class ChainError(WalletError):
    """Talking to the chain failed."""


class ChainUnavailable(ChainError):
    """The RPC endpoint did not answer; worth trying again later."""


class RateLimited(ChainUnavailable):
    """An endpoint answered with a rate-limit error inside a normal response.

    `wallets.rpc` records it as the reason an endpoint failed and moves on to the next one.
    """


class WrongChain(ChainError):
    """The RPC endpoint serves a different chain than configured."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"RPC serves chain id {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class ContractMissing(ChainError):
    """A configured contract address has no code."""

    def __init__(self, name: str, address: str) -> None:
        super().__init__(f"{name} at {address} has no contract code")
        self.name = name
        self.address = address


class TxError(WalletError):
    """A transaction did not do what was asked."""

    def __init__(self, message: str, tx_hash: str | None = None, gas_used: int = 0) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash
        self.gas_used = gas_used  # what the chain charged for it (a mined revert), if anything


class TxReverted(TxError):
    """The transaction was mined and reverted."""


class TxNotMined(TxError):
    """No receipt arrived in time; the journal still holds the signed bytes."""


class FeeCeilingReached(TxError):
    """Replacing a stuck transaction would pay more than the configured fee ceiling."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SigningHalted(TxError):
    """Signing stopped: the chain's nonce moved past ours without a transaction we know."""
