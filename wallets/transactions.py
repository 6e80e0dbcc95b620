"""Sending transactions: sign → journal (durable) → broadcast → reconcile.

One `TxSender` per key and process. The local nonce is authoritative; if the chain shows a
nonce we did not sign, signing halts until an operator looks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from wallets.chain import Chain, Head, Receipt
from wallets.errors import (
    ChainError,
    ChainUnavailable,
    FeeCeilingReached,
    SigningHalted,
    TxNotMined,
    TxReverted,
)
from wallets.journal import Journal, JournalEntry

log = structlog.get_logger()

_PRIORITY_FEE = 1_000_000_000  # 1 gwei
_GAS_HEADROOM = 1.25
_POLL_S = 0.05
_MAX_RESENDS = 3
_BUMP_BPS = 11_250  # replacements raise both fees by 12.5 %
_MIN_BUMP_BPS = 11_000  # geth refuses a replacement that raises either fee by less than 10 %
_BPS = 10_000


def bumped_fees(max_fee: int, priority_fee: int, ceiling: int, floor: int = 0) -> tuple[int, int]:
    """Fees for a replacement: both raised by at least 10 %, at least `floor` (what the
    current base fee needs), never above `ceiling`."""
    new_max = max(-(-max_fee * _BUMP_BPS // _BPS), floor)
    new_priority = -(-priority_fee * _BUMP_BPS // _BPS)
    new_max = min(new_max, ceiling)
    new_priority = min(new_priority, new_max)
    for old, new in ((max_fee, new_max), (priority_fee, new_priority)):
        if new * _BPS < old * _MIN_BUMP_BPS:
            raise FeeCeilingReached(
                f"raising fee {old} by 10 % would pass the ceiling of {ceiling} wei"
            )
    return new_max, new_priority


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


class Sender(Protocol):
    """What acting needs from a transaction sender."""

    @property
    def address(self) -> str: ...

    def send(self, to: str, data: bytes, purpose: str, value: int = 0) -> Receipt: ...

    def next_nonce(self) -> int: ...

    def sent_from(self, nonce: int) -> list[JournalEntry]: ...


@dataclass
class _Sent:
    """One nonce's delivery so far: every signed version, and whether a node took one."""

    nonce: int
    hashes: list[str] = field(default_factory=list)
    raws: dict[str, bytes] = field(default_factory=dict)
    accepted: bool = False
    resends: int = 0


class TxSender:
    """Signs, journals, broadcasts and waits for transactions from one signer."""

    def __init__(
        self,
        chain: Chain,
        signer: Signer,
        journal: Journal,
        chain_id: int,
        receipt_timeout_s: float = 30.0,
        *,
        confirmations: int = 1,
        fee_cap_wei: int = 500 * 10**9,
    ) -> None:
        self._chain = chain
        self._signer = signer
        self._journal = journal
        self._chain_id = chain_id
        self._timeout = receipt_timeout_s
        self._confirmations = confirmations
        self._fee_cap = fee_cap_wei
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
        The same signed bytes go out again, so an intent is never re-decided. Of several
        entries for one nonce (replacements), the one that mined, else the newest, is re-sent.
        """
        with self._lock:
            return self._reconcile()

    def _reconcile(self) -> list[Receipt]:
        receipts = []
        chain_next = self._chain.nonce(self.address, "latest")
        groups: dict[int, list[JournalEntry]] = {}
        for entry in self._journal.entries(self.address):
            if entry.status == "dropped":
                continue
            groups.setdefault(entry.nonce, []).append(entry)
        for nonce, group in sorted(groups.items()):
            final = [e for e in group if e.status in ("mined", "reverted")]
            if final and nonce < chain_next:
                continue
            receipt = self._first_receipt([e.tx_hash for e in group])
            if receipt is None:
                chosen = final[0] if final else group[-1]
                self._broadcast(chosen.raw, chosen.tx_hash)
                receipt = self._wait_mined([e.tx_hash for e in group])
            if receipt is None:
                raise TxNotMined(f"journalled nonce {nonce} not mined after re-sending")
            self._settle(receipt, nonce)
            receipts.append(receipt)
            log.info("tx_reconciled", tx_hash=receipt.tx_hash, nonce=nonce)
        self._nonce = self._aligned_nonce()
        return receipts

    def next_nonce(self) -> int:
        """The nonce the next transaction will use: a mark before a run of sends."""
        with self._lock:
            if self._nonce is None:
                self._nonce = self._aligned_nonce()
            return self._nonce

    def sent_from(self, nonce: int) -> list[JournalEntry]:
        """What became of each nonce from `nonce` on: the journal's final entry per nonce
        (mined or reverted; still-signed ones once `reconcile` has settled them), in order."""
        with self._lock:
            entries = self._journal.entries(self.address)
        final: dict[int, JournalEntry] = {}
        for entry in entries:
            if entry.nonce < nonce or entry.status not in ("mined", "reverted", "signed"):
                continue
            if entry.nonce not in final or entry.status != "signed":
                final[entry.nonce] = entry
        return [final[n] for n in sorted(final)]

    def send(self, to: str, data: bytes, purpose: str, value: int = 0) -> Receipt:
        """Send one transaction and wait until it is confirmed; raise `TxReverted` if it reverts.

        A transaction not mined within the receipt timeout is replaced (same nonce, both fees
        raised by at least 10 %) until it mines or the fee ceiling is reached.
        """
        with self._lock:
            if self.halted:
                raise SigningHalted(self.halted)
            if self._journal.has_unsettled(self.address):
                self._reconcile()  # an earlier send was cut short: settle it first
            nonce, head = self._next_nonce()
            tx = self._build(to, data, value, nonce, head)
            receipt = self._deliver(tx, purpose)
        if receipt.status != 1:
            raise TxReverted(
                f"{purpose} reverted", tx_hash=receipt.tx_hash, gas_used=receipt.gas_used
            )
        return receipt

    def _deliver(self, tx: dict[str, Any], purpose: str) -> Receipt:
        """Sign, journal and broadcast `tx`, replacing it with higher fees until it mines."""
        sent = _Sent(nonce=int(tx["nonce"]))
        while True:
            raw, tx_hash = self._sign(tx, purpose, sent)
            receipt = self._until_mined(raw, tx_hash, sent)
            if receipt is not None:
                break
            tx = self._replacement(tx, purpose, tx_hash, sent)
        receipt = self._confirmed(receipt, sent.raws)
        self._settle(receipt, sent.nonce)
        return receipt

    def _sign(self, tx: dict[str, Any], purpose: str, sent: _Sent) -> tuple[bytes, str]:
        """Sign `tx` and journal its bytes before they leave: a crash can only re-send them."""
        signed = self._signer.sign_transaction(tx)
        tx_hash = "0x" + bytes(signed.hash).hex()
        self._journal.record(tx_hash, sent.nonce, self.address, purpose, signed.raw_transaction)
        self._nonce = sent.nonce + 1
        sent.hashes.append(tx_hash)
        sent.raws[tx_hash] = signed.raw_transaction
        return signed.raw_transaction, tx_hash

    def _until_mined(self, raw: bytes, tx_hash: str, sent: _Sent) -> Receipt | None:
        """Offer the transaction and wait; re-send the same bytes if the pool forgets it."""
        offered = self._offer(raw, tx_hash, sent.nonce, sent.accepted)
        sent.accepted = sent.accepted or offered
        receipt = self._wait_mined(sent.hashes) if sent.accepted else None
        while receipt is None and offered and sent.resends < _MAX_RESENDS:
            if self._chain.transaction_known(tx_hash):
                break
            # Gone from the pool: the journal's bytes go out again, unchanged.
            sent.resends += 1
            log.warning("tx_dropped_resent", tx_hash=tx_hash, attempt=sent.resends)
            offered = self._offer(raw, tx_hash, sent.nonce, sent.accepted)
            receipt = self._wait_mined(sent.hashes)
        return receipt

    def _replacement(
        self, tx: dict[str, Any], purpose: str, tx_hash: str, sent: _Sent
    ) -> dict[str, Any]:
        """`tx` with both fees raised, or `TxNotMined` once the fee ceiling is reached."""
        floor = 2 * self._chain.head().base_fee + tx["maxPriorityFeePerGas"]
        try:
            fees = bumped_fees(tx["maxFeePerGas"], tx["maxPriorityFeePerGas"], self._fee_cap, floor)
        except FeeCeilingReached as exc:
            self._abandon(sent.nonce, sent.accepted)
            raise TxNotMined(f"{purpose} not mined: {exc}", tx_hash=tx_hash) from exc
        log.warning("tx_replaced", nonce=sent.nonce, tx_hash=tx_hash, max_fee=fees[0])
        return {**tx, "maxFeePerGas": fees[0], "maxPriorityFeePerGas": fees[1]}

    def _offer(self, raw: bytes, tx_hash: str, nonce: int, accepted: bool) -> bool:
        """Broadcast; True when a node may now hold the transaction."""
        try:
            self._broadcast(raw, tx_hash)
        except ChainUnavailable as exc:
            # The request may have arrived even though the answer did not: look for it.
            log.warning("tx_broadcast_unanswered", tx_hash=tx_hash, error=str(exc))
            return True
        except ChainError as exc:
            if not _is_fee_rejection(exc):
                self._abandon(nonce, accepted)
                raise
            log.warning("tx_fee_rejected", tx_hash=tx_hash, error=str(exc))
            return False
        return True

    def _abandon(self, nonce: int, accepted: bool) -> None:
        """Give a nonce back if no node ever accepted a transaction for it."""
        if not accepted:
            self._journal.drop(self.address, nonce)
            self._nonce = nonce

    def _confirmed(self, receipt: Receipt, raws: dict[str, bytes]) -> Receipt:
        """Wait for the configured confirmations; re-send the same bytes if a reorg drops it."""
        deadline = time.monotonic() + self._timeout * 4
        while self._confirmations > 1 and time.monotonic() < deadline:
            if self._chain.head().number < receipt.block_number + self._confirmations - 1:
                time.sleep(_POLL_S)
                continue
            again = self._chain.receipt(receipt.tx_hash)
            if again is not None and again.block_number == receipt.block_number:
                return again
            log.warning("tx_reorged", tx_hash=receipt.tx_hash, block=receipt.block_number)
            self._broadcast(raws[receipt.tx_hash], receipt.tx_hash)
            mined = self._wait_mined([receipt.tx_hash])
            if mined is None:
                raise TxNotMined("re-sent after a reorg, not mined", tx_hash=receipt.tx_hash)
            receipt = mined
        if self._confirmations > 1 and time.monotonic() >= deadline:
            raise TxNotMined("not confirmed in time", tx_hash=receipt.tx_hash)
        return receipt

    def _first_receipt(self, hashes: list[str]) -> Receipt | None:
        for tx_hash in hashes:
            receipt = self._chain.receipt(tx_hash)
            if receipt is not None:
                return receipt
        return None

    def _wait_mined(self, hashes: list[str]) -> Receipt | None:
        """The receipt of whichever of `hashes` mines first, or None at the timeout."""
        deadline = time.monotonic() + self._timeout
        while True:
            receipt = self._first_receipt(hashes)
            if receipt is not None or time.monotonic() >= deadline:
                return receipt
            time.sleep(_POLL_S)

    def _build(self, to: str, data: bytes, value: int, nonce: int, head: Head) -> dict[str, Any]:
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

    def _settle(self, receipt: Receipt, nonce: int) -> None:
        status = "mined" if receipt.status == 1 else "reverted"
        self._journal.settle(receipt.tx_hash, status, receipt.gas_used)
        self._journal.mark_replaced(self.address, nonce, keep=receipt.tx_hash)

    def audit(self) -> str | None:
        """Check the chain for a nonce this signer did not use; return why signing halted."""
        with self._lock:
            if self.halted is None and self._nonce is not None:
                self._check_foreign(self._chain.nonce(self.address, "latest"), self._nonce)
        return self.halted

    def _next_nonce(self) -> tuple[int, Head]:
        """The nonce to sign with, and the head to price it at (one round trip when warm)."""
        if self._nonce is None:
            self._nonce = self._aligned_nonce()
        chain_nonce, head = self._chain.nonce_and_head(self.address)
        self._check_foreign(chain_nonce, self._nonce)
        if self.halted:
            raise SigningHalted(self.halted)
        return self._nonce, head

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


def _is_fee_rejection(exc: ChainError) -> bool:
    """True when a node refused a transaction only because its fees are too low."""
    text = str(exc).lower()
    return any(part in text for part in ("base fee", "underpriced", "fee too low"))
