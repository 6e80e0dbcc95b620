"""Act: carry out a policy-approved Action with real signed transactions."""

from __future__ import annotations

import structlog

from agent.core.records import Action, Outcome, Token
from wallets.chain import Receipt
from wallets.dex import UniswapV2
from wallets.errors import TxError, WalletError
from wallets.tokens import Erc20
from wallets.transactions import Sender

log = structlog.get_logger()


class Executor:
    """Sends the transactions an Action needs; every failure becomes a failed Outcome."""

    def __init__(
        self, sender: Sender, dex: UniswapV2, tokens: dict[Token, Erc20], landlord: str
    ) -> None:
        self._sender = sender
        self._dex = dex
        self._tokens = tokens
        self._landlord = landlord

    def execute(self, action: Action) -> Outcome:
        if action.kind == "hold":
            return Outcome(status="held")
        hashes: list[str] = []
        try:
            if action.kind == "pay_rent":
                return self._pay_rent(action.amount_in, hashes)
            if action.kind == "add_liquidity":
                return self._add_liquidity(action, hashes)
            if action.kind == "remove_liquidity":
                return self._remove_liquidity(action, hashes)
            return self._swap(action, hashes)
        except WalletError as exc:
            if isinstance(exc, TxError) and exc.tx_hash and exc.tx_hash not in hashes:
                hashes.append(exc.tx_hash)
            log.warning("action_failed", kind=action.kind, error=str(exc), tx_hashes=hashes)
            return Outcome(status="failed", tx_hashes=tuple(hashes), error=str(exc))

    def _pay_rent(self, amount: int, hashes: list[str]) -> Outcome:
        """Transfer `amount` of the stable token to the landlord."""
        stable = self._tokens["stable"]
        receipt = self._send(
            stable.address, stable.transfer_data(self._landlord, amount), "rent", hashes
        )
        log.info("rent_paid", amount=amount, tx_hash=receipt.tx_hash, landlord=self._landlord)
        return Outcome("ok", tuple(hashes), receipt.gas_used, amount_in=amount)

    def fund_child(self, child: str, stable_amount: int, native: int) -> Outcome:
        """A child's start: stable to its wallet, then its gas money.

        Not an Action: the address is the agent's own new child wallet (made by its nursery),
        never something a decision named; the amounts come from `replication_guard`.
        """
        hashes: list[str] = []
        stable = self._tokens["stable"]
        try:
            first = self._send(stable.address, stable.transfer_data(child, stable_amount),
                               "child_stable", hashes)  # fmt: skip
            gas = first.gas_used
            if native:
                gas += self._send(child, b"", "child_native", hashes, value=native).gas_used
        except WalletError as exc:
            log.warning("child_funding_failed", child=child, error=str(exc), tx_hashes=hashes)
            return Outcome(status="failed", tx_hashes=tuple(hashes), error=str(exc))
        return Outcome("ok", tuple(hashes), gas, amount_in=stable_amount)

    def _swap(self, action: Action, hashes: list[str]) -> Outcome:
        assert action.sell is not None and action.buy is not None, "a swap names both tokens"
        sell, buy = self._tokens[action.sell], self._tokens[action.buy]
        owner = self._sender.address
        before = buy.balance_of(owner)
        approve = self._send(
            sell.address, sell.approve_data(self._dex.router, action.amount_in), "approve", hashes
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
        swap = self._send_or_revoke(data, "swap", hashes, (sell,))
        received = buy.balance_of(owner) - before
        log.info("swap_confirmed", tx_hash=swap.tx_hash, amount_out=received)
        gas = approve.gas_used + swap.gas_used
        return Outcome("ok", tuple(hashes), gas, action.amount_in, received)

    def _add_liquidity(self, action: Action, hashes: list[str]) -> Outcome:
        """Approve both tokens, deposit through the router; the outcome counts the shares."""
        stable, risk, shares = self._tokens["stable"], self._tokens["risk"], self._dex.shares
        owner, router = self._sender.address, self._dex.router
        before = shares.balance_of(owner)
        spent_before = stable.balance_of(owner)
        gas = 0
        for token, amount in ((stable, action.amount_in), (risk, action.amount_risk)):
            gas += self._send(
                token.address, token.approve_data(router, amount), "approve", hashes
            ).gas_used
        data = self._deposit_data(action, owner)
        receipt = self._send_or_revoke(data, "add_liquidity", hashes, (stable, risk))
        minted = shares.balance_of(owner) - before
        used = spent_before - stable.balance_of(owner)
        log.info("liquidity_added", tx_hash=receipt.tx_hash, shares=minted, stable=used)
        return Outcome("ok", tuple(hashes), gas + receipt.gas_used, used, minted)

    def _remove_liquidity(self, action: Action, hashes: list[str]) -> Outcome:
        """Approve the shares to the router and burn them; the outcome counts the stable."""
        stable, shares = self._tokens["stable"], self._dex.shares
        owner, router = self._sender.address, self._dex.router
        before = stable.balance_of(owner)
        approve = self._send(
            shares.address, shares.approve_data(router, action.amount_in), "approve", hashes
        )
        data = self._withdrawal_data(action, owner)
        receipt = self._send_or_revoke(data, "remove_liquidity", hashes, (shares,))
        received = stable.balance_of(owner) - before
        log.info("liquidity_removed", tx_hash=receipt.tx_hash, stable=received)
        return Outcome(
            "ok", tuple(hashes), approve.gas_used + receipt.gas_used, action.amount_in, received
        )

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
        self, data: bytes, purpose: str, hashes: list[str], approved: tuple[Erc20, ...]
    ) -> Receipt:
        """Send a router call; if it fails, take back the approvals it was given."""
        try:
            return self._send(self._dex.router, data, purpose, hashes)
        except TxError:
            for token in approved:
                self._revoke(token, hashes)
            raise

    def _revoke(self, token: Erc20, hashes: list[str]) -> None:
        """After a failed swap, take back the approval it left behind."""
        try:
            self._send(token.address, token.approve_data(self._dex.router, 0), "revoke", hashes)
        except WalletError as exc:
            log.warning("approval_revoke_failed", token=token.address, error=str(exc))

    def _send(
        self, to: str, data: bytes, purpose: str, hashes: list[str], value: int = 0
    ) -> Receipt:
        receipt = self._sender.send(to, data, purpose, value=value)
        hashes.append(receipt.tx_hash)
        return receipt
