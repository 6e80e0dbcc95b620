"""A paper arena: the pool and its weather in memory, with the contracts' own arithmetic.

`PaperPool` does what `Pool.vy` and `Router.vy` do — exact-input swaps with the 0.3 % fee,
deposits at the pool's ratio, shares minted and burned — in the same integer base units, so a
run on paper follows a run on the chain to the unit (tests compare them). What it leaves out is
what does not change a net worth: gas, blocks and signatures. Calibration runs on it because
thousands of ticks take seconds instead of hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from math import isqrt

from arena.weather import Flow, FlowParams, PricePath, WeatherParams, pool_price, trade_to_target
from arena.world import RISK_DECIMALS, STABLE_DECIMALS, to_base

_FEE_NUM, _FEE_DEN = 997, 1000


class PaperError(Exception):
    """What would have reverted on the chain (the message names the contract's check)."""


@dataclass
class Holding:
    """One holder's tokens on paper, in base units."""

    stable: int = 0
    risk: int = 0
    lp: int = 0


class PaperPool:
    """A constant-product pair and its router, in memory."""

    def __init__(self, stable: Decimal, price: Decimal) -> None:
        self.reserve_stable = 0
        self.reserve_risk = 0
        self.supply = 0
        self.holders: dict[str, Holding] = {}
        seed = self.holder("faucet")
        seed.stable = to_base(stable, STABLE_DECIMALS)
        seed.risk = to_base(stable / price, RISK_DECIMALS)
        self.add_liquidity("faucet", seed.stable, seed.risk, 0, 0)

    def holder(self, name: str) -> Holding:
        return self.holders.setdefault(name, Holding())

    @property
    def price(self) -> float:
        return pool_price(self.reserve_stable, self.reserve_risk)

    def swap(self, who: str, sell: str, amount_in: int, min_out: int) -> int:
        """swapExactTokensForTokens: sell `amount_in` of `sell`; return what came out."""
        holding = self.holder(who)
        if amount_in <= 0:
            raise PaperError("ROUTER: INSUFFICIENT_INPUT_AMOUNT")
        reserve_in, reserve_out = (
            (self.reserve_stable, self.reserve_risk)
            if sell == "stable"
            else (self.reserve_risk, self.reserve_stable)
        )
        with_fee = amount_in * _FEE_NUM
        out = with_fee * reserve_out // (reserve_in * _FEE_DEN + with_fee)
        if out < min_out:
            raise PaperError("ROUTER: INSUFFICIENT_OUTPUT_AMOUNT")
        if out <= 0 or out >= reserve_out:
            raise PaperError("POOL: insufficient liquidity")
        self._take(holding, sell, amount_in)
        if sell == "stable":
            self.reserve_stable += amount_in
            self.reserve_risk -= out
            holding.risk += out
        else:
            self.reserve_risk += amount_in
            self.reserve_stable -= out
            holding.stable += out
        return out

    def add_liquidity(
        self, who: str, stable: int, risk: int, min_stable: int, min_risk: int
    ) -> tuple[int, int, int]:
        """addLiquidity then mint: (stable, risk) taken at the pool's ratio, shares minted."""
        holding = self.holder(who)
        if self.reserve_stable or self.reserve_risk:
            optimal_risk = stable * self.reserve_risk // self.reserve_stable
            if optimal_risk <= risk:
                risk = optimal_risk
            else:
                stable = risk * self.reserve_stable // self.reserve_risk
        if stable < min_stable or risk < min_risk:
            raise PaperError("ROUTER: INSUFFICIENT_AMOUNT")
        if self.supply == 0:
            shares = isqrt(stable * risk)
        else:
            shares = min(
                stable * self.supply // self.reserve_stable, risk * self.supply // self.reserve_risk
            )
        if shares <= 0:
            raise PaperError("POOL: insufficient liquidity minted")
        self._take(holding, "stable", stable)
        self._take(holding, "risk", risk)
        self.reserve_stable += stable
        self.reserve_risk += risk
        self.supply += shares
        holding.lp += shares
        return stable, risk, shares

    def remove_liquidity(
        self, who: str, shares: int, min_stable: int, min_risk: int
    ) -> tuple[int, int]:
        """removeLiquidity then burn: the shares' part of both reserves."""
        holding = self.holder(who)
        if shares <= 0 or holding.lp < shares:
            raise PaperError("POOL: insufficient balance")
        stable = shares * self.reserve_stable // self.supply
        risk = shares * self.reserve_risk // self.supply
        if stable <= 0 or risk <= 0:
            raise PaperError("POOL: insufficient liquidity burned")
        if stable < min_stable:
            raise PaperError("ROUTER: INSUFFICIENT_A_AMOUNT")
        if risk < min_risk:
            raise PaperError("ROUTER: INSUFFICIENT_B_AMOUNT")
        holding.lp -= shares
        self.supply -= shares
        self.reserve_stable -= stable
        self.reserve_risk -= risk
        holding.stable += stable
        holding.risk += risk
        return stable, risk

    def transfer(self, who: str, to: str, stable: int) -> None:
        """A stable transfer (rent to the landlord)."""
        self._take(self.holder(who), "stable", stable)
        self.holder(to).stable += stable

    @staticmethod
    def _take(holding: Holding, side: str, amount: int) -> None:
        have = holding.stable if side == "stable" else holding.risk
        if have < amount:
            raise PaperError("ERC20: insufficient balance")
        if side == "stable":
            holding.stable -= amount
        else:
            holding.risk -= amount


class PaperWeather:
    """The arena's weather (`arena.weather.Weather`'s steps) on a paper pool.

    The weather trader has pockets as deep as it needs: on paper it is given what it sells.
    """

    TRADER = "weather"

    def __init__(
        self, pool: PaperPool, start: Decimal, weather: WeatherParams, flow: FlowParams
    ) -> None:
        self._pool = pool
        self._path = PricePath(start, weather)
        self._flow = Flow(weather.seed, flow)
        self.fair: float | None = None

    @property
    def steps(self) -> int:
        return self._path.step

    def step(self) -> float:
        self.fair = self._path.next()
        pool = self._pool
        for target in self._flow.targets(pool.price, self.fair):
            sell, amount = trade_to_target(pool.reserve_stable, pool.reserve_risk, target)
            if amount > 0:
                trader = pool.holder(self.TRADER)
                if sell == "stable":
                    trader.stable += amount
                else:
                    trader.risk += amount
                pool.swap(self.TRADER, sell, amount, 0)
        return pool.price
