"""The paper pool: `wallets.dex`'s arithmetic gives what Router.vy and Pool.vy give, to the unit,
and what the contracts would revert is refused on paper with their message."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract

from arena.errors import ArenaError, PaperError
from arena.local import ArenaConfig, LocalArena
from arena.paper import PaperPool

TRADER = "weather"


class _OnChain:
    """The weather trader's hand on the arena's router (an unlocked anvil account)."""

    def __init__(self, arena: LocalArena) -> None:
        assert arena.w3 is not None and arena.info is not None
        self.w3, self.info, art = arena.w3, arena.info, arena.artefacts
        self.who = self.info.weather_trader
        self.router = self._contract(self.info.router, art["Router"].abi)
        self.pool = self._contract(self.info.pool, art["Pool"].abi)
        self.stable = self._contract(self.info.stable_token, art["Token"].abi)
        self.risk = self._contract(self.info.risk_token, art["Token"].abi)

    def _contract(self, address: str, abi: list[dict[str, Any]]) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def send(self, fn: Any) -> None:
        tx_hash = fn.transact({"from": self.who})
        assert self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1

    def deadline(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"]) + 600

    def swap(self, sell: str, amount: int) -> None:
        tokens = [self.info.stable_token, self.info.risk_token]
        path = tokens if sell == "stable" else tokens[::-1]
        self.send(
            self.router.functions.swapExactTokensForTokens(
                amount, 0, path, self.who, self.deadline()
            )
        )

    def add(self, stable: int, risk: int) -> None:
        args = [self.info.stable_token, self.info.risk_token, stable, risk, 0, 0, self.who]
        self.send(self.router.functions.addLiquidity(*args, self.deadline()))

    def remove(self, shares: int) -> None:
        self.send(self.pool.functions.approve(self.info.router, shares))
        args = [self.info.stable_token, self.info.risk_token, shares, 0, 0, self.who]
        self.send(self.router.functions.removeLiquidity(*args, self.deadline()))

    def state(self) -> tuple[int, ...]:
        """The trader's stable, risk and shares; the reserves; the share supply."""
        r_stable, r_risk, _ = self.pool.functions.getReserves().call()
        mine = (self.stable, self.risk, self.pool)
        return (
            *(token.functions.balanceOf(self.who).call() for token in mine),
            r_stable,
            r_risk,
            self.pool.functions.totalSupply().call(),
        )


def _paper_state(paper: PaperPool) -> tuple[int, ...]:
    h = paper.holder(TRADER)
    return h.stable, h.risk, h.lp, paper.reserve_stable, paper.reserve_risk, paper.supply


def test_the_paper_pool_matches_the_contracts_to_the_base_unit(arena: LocalArena):
    """Swaps each way, a deposit off the pool's ratio and a part withdrawal leave the same
    balances, reserves and share supply on paper as on the chain, to the base unit."""
    chain, config = _OnChain(arena), ArenaConfig()
    paper = PaperPool(config.liquidity_stable, config.start_price)
    start = chain.state()
    paper.holder(TRADER).stable, paper.holder(TRADER).risk = start[0], start[1]
    assert _paper_state(paper) == start
    for sell, amount in (("stable", 1_234_567_891), ("risk", 321 * 10**15 + 7)):
        chain.swap(sell, amount)
        paper.swap(TRADER, sell, amount, 0)
        assert _paper_state(paper) == chain.state(), sell
    stable, risk = 5_000 * 10**6 + 3, 10**21 + 11  # off the pool's ratio: part is left
    chain.add(stable, risk)
    paper.add_liquidity(TRADER, stable, risk, 0, 0)
    assert _paper_state(paper) == chain.state()
    half = paper.holder(TRADER).lp // 2
    chain.remove(half)
    paper.remove_liquidity(TRADER, half, 0, 0)
    assert _paper_state(paper) == chain.state() and half > 0


def test_what_would_revert_is_refused_on_paper_and_moves_nothing():
    """A swap below its minimum, a deposit past the balance and a burn of shares not held
    raise PaperError (an ArenaError) with the contract's message; no balance or reserve moves."""
    paper = PaperPool(ArenaConfig().liquidity_stable, ArenaConfig().start_price)
    paper.holder(TRADER).stable = 10**9
    before = _paper_state(paper)
    with pytest.raises(PaperError, match="ROUTER: INSUFFICIENT_OUTPUT_AMOUNT"):
        paper.swap(TRADER, "stable", 10**9, 10**30)
    with pytest.raises(PaperError, match="ERC20: insufficient balance"):
        paper.add_liquidity(TRADER, 10**9, 10**21, 0, 0)  # holds no risk at all
    with pytest.raises(ArenaError, match="POOL: insufficient balance"):
        paper.remove_liquidity(TRADER, 1, 0, 0)
    assert _paper_state(paper) == before
