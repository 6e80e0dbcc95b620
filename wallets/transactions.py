"""Sending transactions: sign → journal (durable) → broadcast → reconcile.

One `TxSender` per key and process. The local nonce is authoritative; if the chain shows a
nonce we did not sign, signing halts until an operator looks.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import structlog

from wallets.chain import Chain, Receipt
from wallets.errors import ChainError, SigningHalted, TxReverted
from wallets.journal import Journal

log = structlog.get_logger()

_PRIORITY_FEE = 1_000_000_000  # 1 gwei
_GAS_HEADROOM = 1.25


class SignedTx(Protocol):
    """What signing returns (eth-account's SignedTransaction has these)."""

    @property
    def raw_transaction(self) -> bytes: ...

    @property
    def hash(self) -> bytes: ...


class Signer(Protocol):
    """Anything that can sign for one address (a local key, later a remote signer)."""

    @property
    def address(self) -> str: ...

    def sign_transaction(self, transaction_dict: dict[str, Any]) -> SignedTx: ...


class TxSender:
    """Signs, journals, broadcasts and waits for transactions from one signer."""

    def __init__(
        self,
        chain: Chain,
        signer: Signer,
        journal: Journal,
        chain_id: int,
        receipt_timeout_s: float = 30.0,
    ) -> None:
        self._chain = chain
        self._signer = signer
        self._journal = journal
        self._chain_id = chain_id
        self._timeout = receipt_timeout_s
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self.halted: str | None = None

    @property
    def address(self) -> str:
        return self._signer.address

    def reconcile(self) -> list[Receipt]:
        """Re-send journalled transactions the chain does not have; then align the nonce.

        Run at start. That covers a crash between journal and broadcast, and a chain that
        forgot mined transactions (a reorg, or a local arena restored from an older state).
        The same signed bytes go out again, so an intent is never re-decided.
        """
        receipts = []
        with self._lock:
            chain_next = self._chain.nonce(self.address, "latest")
            for entry in self._journal.entries(self.address):
                if entry.status != "signed" and entry.nonce < chain_next:
                    continue
                receipt = self._chain.receipt(entry.tx_hash)
                if receipt is None:
                    self._broadcast(entry.raw, entry.tx_hash)
                    receipt = self._chain.wait_receipt(entry.tx_hash, self._timeout)
                self._settle(receipt)
                receipts.append(receipt)
                log.info("tx_reconciled", tx_hash=entry.tx_hash, nonce=entry.nonce)
            self._nonce = self._aligned_nonce()
        return receipts

    def send(self, to: str, data: bytes, purpose: str, value: int = 0) -> Receipt:
        """Send one transaction and wait for it; raise `TxReverted` if it reverts."""
        with self._lock:
            if self.halted:
                raise SigningHalted(self.halted)
            nonce = self._next_nonce()
            tx = self._build(to, data, value, nonce)
            signed = self._signer.sign_transaction(tx)
            tx_hash = "0x" + bytes(signed.hash).hex()
            self._journal.record(tx_hash, nonce, self.address, purpose, signed.raw_transaction)
            self._nonce = nonce + 1
            self._broadcast(signed.raw_transaction, tx_hash)
            receipt = self._chain.wait_receipt(tx_hash, self._timeout)
            self._settle(receipt)
        if receipt.status != 1:
            raise TxReverted(f"{purpose} reverted", tx_hash=tx_hash)
        return receipt

    def _build(self, to: str, data: bytes, value: int, nonce: int) -> dict[str, Any]:
        head = self._chain.head()
        tx: dict[str, Any] = {
            "chainId": self._chain_id,
            "from": self.address,
            "to": to,
            "data": data,
            "value": value,
            "nonce": nonce,
            "maxPriorityFeePerGas": _PRIORITY_FEE,
            "maxFeePerGas": 2 * head.base_fee + _PRIORITY_FEE,
            "type": 2,
        }
        tx["gas"] = int(self._chain.estimate_gas(tx) * _GAS_HEADROOM)
        del tx["from"]
        return tx

    def _broadcast(self, raw: bytes, tx_hash: str) -> None:
        try:
            self._chain.send_raw(raw)
        except ChainError as exc:
            text = str(exc).lower()
            # Our own bytes already reached the pool or the chain: that is success.
            if "already known" in text or "nonce too low" in text:
                log.info("tx_already_known", tx_hash=tx_hash)
                return
            raise
        log.info("tx_broadcast", tx_hash=tx_hash)

    def _settle(self, receipt: Receipt) -> None:
        status = "mined" if receipt.status == 1 else "reverted"
        self._journal.settle(receipt.tx_hash, status, receipt.gas_used)

    def audit(self) -> str | None:
        """Check the chain for a nonce this signer did not use; return why signing halted."""
        with self._lock:
            if self.halted is None and self._nonce is not None:
                self._check_foreign(self._chain.nonce(self.address, "latest"), self._nonce)
        return self.halted

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self._aligned_nonce()
        self._check_foreign(self._chain.nonce(self.address, "latest"), self._nonce)
        if self.halted:
            raise SigningHalted(self.halted)
        return self._nonce

    def _check_foreign(self, chain_nonce: int, ours: int) -> None:
        if chain_nonce > ours:
            self._halt(
                f"nonce {ours} of {self.address} was used by a transaction "
                f"this agent did not sign (chain is at {chain_nonce}); signing halted"
            )

    def _halt(self, reason: str) -> None:
        self.halted = reason
        log.error("signing_halted", reason=reason)

    def _aligned_nonce(self) -> int:
        journal_next = self._journal.next_nonce(self.address)
        chain_next = self._chain.nonce(self.address, "pending")
        if journal_next is None:
            return chain_next
        if chain_next > journal_next:
            self._halt(
                f"chain nonce {chain_next} of {self.address} is past the journal's "
                f"{journal_next}: a foreign transaction used this key; signing halted"
            )
        return journal_next
