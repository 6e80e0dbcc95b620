"""Act: carry out a policy-approved Action with real signed transactions."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from agent.core.records import Action, Outcome, SentTx, Token
from wallets.chain import Receipt
from wallets.dex import UniswapV2
from wallets.errors import TxError, WalletError
from wallets.tokens import Erc20
from wallets.transactions import Sender

log = structlog.get_logger()


@dataclass
class _Trail:
    """The transactions one action sent so far, and the gas they used."""

    hashes: list[str] = field(default_factory=list)
    gas: int = 0

    def outcome(self, status: str, **more: int) -> Outcome:
        return Outcome(status, tuple(self.hashes), self.gas, **more)  # type: ignore[arg-type]


class Executor:
    """Sends the transactions an Action needs; every failure becomes a failed Outcome."""

    def __init__(
        self, sender: Sender, dex: UniswapV2, tokens: dict[Token, Erc20], landlord: str
    ) -> None:
        self._sender = sender
        self._dex = dex
        self._tokens = tokens
        self._landlord = landlord

    def mark(self) -> int:
        """Where the next transaction starts (its nonce): `sent_since` reads from here."""
        return self._sender.next_nonce()

    def sent_since(self, mark: int) -> list[SentTx]:
        """Every transaction sent from `mark` on, as the journal settled it."""
        return [
            SentTx(e.tx_hash, e.nonce, e.purpose, e.status == "mined", e.gas_used or 0)
            for e in self._sender.sent_from(mark)
        ]

    def execute(self, action: Action) -> Outcome:
        if action.kind == "hold":
            return Outcome(status="held")
        trail = _Trail()
        try:
            if action.kind == "pay_rent":
                return self._pay_rent(action.amount_in, trail)
            if action.kind == "add_liquidity":
                return self._add_liquidity(action, trail)
            if action.kind == "remove_liquidity":
                return self._remove_liquidity(action, trail)
            return self._swap(action, trail)
        except WalletError as exc:
            if isinstance(exc, TxError) and exc.tx_hash and exc.tx_hash not in trail.hashes:
                trail.hashes.append(exc.tx_hash)
                trail.gas += exc.gas_used
            log.warning(
                "action_failed",
                kind=action.kind,
                error=str(exc),
                tx_hashes=trail.hashes,
                gas_used=trail.gas,
            )
            return Outcome("failed", tuple(trail.hashes), trail.gas, error=str(exc))

    def _pay_rent(self, amount: int, trail: _Trail) -> Outcome:
        """Transfer `amount` of the stable token to the landlord."""
        stable = self._tokens["stable"]
        receipt = self._send(
            stable.address, stable.transfer_data(self._landlord, amount), "rent", trail
        )
        log.info("rent_paid", amount=amount, tx_hash=receipt.tx_hash, landlord=self._landlord)
        return trail.outcome("ok", amount_in=amount)

    def fund_child(self, child: str, stable_amount: int, native: int) -> Outcome:
        """A child's start: stable to its wallet, then its gas money.

        Not an Action: the address is the agent's own new child wallet (made by its nursery),
        never something a decision named; the amounts come from `replication_guard`.
        """
        trail = _Trail()
        stable = self._tokens["stable"]
        try:
            self._send(stable.address, stable.transfer_data(child, stable_amount),
                       "child_stable", trail)  # fmt: skip
            if native:
                self._send(child, b"", "child_native", trail, value=native)
        except WalletError as exc:
            log.warning("child_funding_failed", child=child, error=str(exc), tx_hashes=trail.hashes)
            return Outcome("failed", tuple(trail.hashes), trail.gas, error=str(exc))
        return trail.outcome("ok", amount_in=stable_amount)

    def _swap(self, action: Action, trail: _Trail) -> Outcome:
        assert action.sell is not None and action.buy is not None, "a swap names both tokens"
        sell, buy = self._tokens[action.sell], self._tokens[action.buy]
        owner = self._sender.address
        before = buy.balance_of(owner)
        self._send(
            sell.address, sell.approve_data(self._dex.router, action.amount_in), "approve", trail
        )
        data = self._dex.swap_data(
            action.amount_in, action.min_out, sell.address, buy.address, owner, action.deadline
        )
        log.info(
            "swap_submitted",
            sell=action.sell,
            buy=action.buy,
            amount_in=action.amount_in,
            min_out=action.min_out,
        )
        swap = self._send_or_revoke(data, "swap", trail, (sell,))
        received = buy.balance_of(owner) - before
        log.info("swap_confirmed", tx_hash=swap.tx_hash, amount_out=received)
        return trail.outcome("ok", amount_in=action.amount_in, amount_out=received)

    def _add_liquidity(self, action: Action, trail: _Trail) -> Outcome:
        """Approve both tokens, deposit through the router; the outcome counts the shares."""
        stable, risk, shares = self._tokens["stable"], self._tokens["risk"], self._dex.shares
        owner, router = self._sender.address, self._dex.router
        before = shares.balance_of(owner)
        spent_before = stable.balance_of(owner)
        for token, amount in ((stable, action.amount_in), (risk, action.amount_risk)):
            self._send(token.address, token.approve_data(router, amount), "approve", trail)
        data = self._deposit_data(action, owner)
        receipt = self._send_or_revoke(data, "add_liquidity", trail, (stable, risk))
        minted = shares.balance_of(owner) - before
        used = spent_before - stable.balance_of(owner)
        log.info("liquidity_added", tx_hash=receipt.tx_hash, shares=minted, stable=used)
        return trail.outcome("ok", amount_in=used, amount_out=minted)

    def _remove_liquidity(self, action: Action, trail: _Trail) -> Outcome:
        """Approve the shares to the router and burn them; the outcome counts the stable."""
        stable, shares = self._tokens["stable"], self._dex.shares
        owner, router = self._sender.address, self._dex.router
        before = stable.balance_of(owner)
        self._send(shares.address, shares.approve_data(router, action.amount_in), "approve", trail)
        data = self._withdrawal_data(action, owner)
        receipt = self._send_or_revoke(data, "remove_liquidity", trail, (shares,))
        received = stable.balance_of(owner) - before
        log.info("liquidity_removed", tx_hash=receipt.tx_hash, stable=received)
        return trail.outcome("ok", amount_in=action.amount_in, amount_out=received)

    def _deposit_data(self, action: Action, owner: str) -> bytes:
        stable, risk = self._tokens["stable"], self._tokens["risk"]
        log.info(
            "liquidity_add_submitted",
            stable=action.amount_in,
            risk=action.amount_risk,
            min_stable=action.min_out,
            min_risk=action.min_out_risk,
        )
        return self._dex.add_liquidity_data(
            stable.address,
            risk.address,
            (action.amount_in, action.amount_risk),
            (action.min_out, action.min_out_risk),
            owner,
            action.deadline,
        )

    def _withdrawal_data(self, action: Action, owner: str) -> bytes:
        stable, risk = self._tokens["stable"], self._tokens["risk"]
        log.info(
            "liquidity_remove_submitted",
            shares=action.amount_in,
            min_stable=action.min_out,
            min_risk=action.min_out_risk,
        )
        return self._dex.remove_liquidity_data(
            stable.address,
            risk.address,
            action.amount_in,
            (action.min_out, action.min_out_risk),
            owner,
            action.deadline,
        )

    def _send_or_revoke(
        self, data: bytes, purpose: str, trail: _Trail, approved: tuple[Erc20, ...]
    ) -> Receipt:
        """Send a router call; if it fails, take back the approvals it was given."""
        try:
            return self._send(self._dex.router, data, purpose, trail)
        except TxError as exc:
            if exc.tx_hash and exc.tx_hash not in trail.hashes:  # mined, and reverted
                trail.hashes.append(exc.tx_hash)
                trail.gas += exc.gas_used
            for token in approved:
                self._revoke(token, trail)
            raise

    def _revoke(self, token: Erc20, trail: _Trail) -> None:
        """After a failed swap, take back the approval it left behind."""
        try:
            self._send(token.address, token.approve_data(self._dex.router, 0), "revoke", trail)
        except WalletError as exc:
            log.warning("approval_revoke_failed", token=token.address, error=str(exc))

    def _send(self, to: str, data: bytes, purpose: str, trail: _Trail, value: int = 0) -> Receipt:
        receipt = self._sender.send(to, data, purpose, value=value)
        trail.hashes.append(receipt.tx_hash)
        trail.gas += receipt.gas_used
        return receipt
