"""A paper arena: the pool and its weather in memory, with the contracts' own arithmetic.

`PaperPool` does what `Pool.vy` and `Router.vy` do — exact-input swaps with the 0.3 % fee,
deposits at the pool's ratio, shares minted and burned — with `wallets.dex`'s arithmetic (the
one copy of the contracts' rules) in the same integer base units, so a run on paper follows a
run on the chain to the unit (tests compare them). What it leaves out is what does not change a
net worth: gas, blocks and signatures. Calibration runs on it because thousands of ticks take
seconds instead of hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from arena.errors import PaperError
from arena.weather import Flow, FlowParams, PricePath, WeatherParams, pool_price, trade_to_target
from arena.world import RISK_DECIMALS, STABLE_DECIMALS
from wallets.dex import amount_out, deposit_amounts, shares_minted, shares_value
from wallets.tokens import to_base


@dataclass
class Holding:
    """One holder's tokens on paper, in base units (the pool's reserves are one too)."""

    stable: int = 0
    risk: int = 0
    lp: int = 0

    def of(self, side: str) -> int:
        return self.stable if side == "stable" else self.risk

    def add(self, side: str, amount: int) -> None:
        if side == "stable":
            self.stable += amount
        else:
            self.risk += amount

    def take(self, side: str, amount: int) -> None:
        """Spend `amount` of `side`, as an ERC-20 transfer would (refused past the balance)."""
        if self.of(side) < amount:
            raise PaperError("ERC20: insufficient balance")
        self.add(side, -amount)


class PaperPool:
    """A constant-product pair and its router, in memory."""

    def __init__(self, stable: Decimal, price: Decimal) -> None:
        self.reserves = Holding()  # `lp` unused: the shares are `supply`
        self.supply = 0
        self.holders: dict[str, Holding] = {}
        seed = self.holder("faucet")
        seed.stable = to_base(stable, STABLE_DECIMALS)
        seed.risk = to_base(stable / price, RISK_DECIMALS)
        self.add_liquidity("faucet", seed.stable, seed.risk, 0, 0)

    def holder(self, name: str) -> Holding:
        return self.holders.setdefault(name, Holding())

    @property
    def reserve_stable(self) -> int:
        return self.reserves.stable

    @property
    def reserve_risk(self) -> int:
        return self.reserves.risk

    @property
    def price(self) -> float:
        return pool_price(self.reserve_stable, self.reserve_risk)

    def swap(self, who: str, sell: str, amount_in: int, min_out: int) -> int:
        """swapExactTokensForTokens: sell `amount_in` of `sell`; return what came out."""
        holding, buy = self.holder(who), "risk" if sell == "stable" else "stable"
        if amount_in <= 0:
            raise PaperError("ROUTER: INSUFFICIENT_INPUT_AMOUNT")
        reserve_out = self.reserves.of(buy)
        out = amount_out(amount_in, self.reserves.of(sell), reserve_out)
        if out < min_out:
            raise PaperError("ROUTER: INSUFFICIENT_OUTPUT_AMOUNT")
        if out <= 0 or out >= reserve_out:
            raise PaperError("POOL: insufficient liquidity")
        holding.take(sell, amount_in)
        self.reserves.add(sell, amount_in)
        self.reserves.take(buy, out)
        holding.add(buy, out)
        return out

    def add_liquidity(
        self, who: str, stable: int, risk: int, min_stable: int, min_risk: int
    ) -> tuple[int, int, int]:
        """addLiquidity then mint: (stable, risk) taken at the pool's ratio, shares minted."""
        holding, r = self.holder(who), self.reserves
        stable, risk = deposit_amounts(stable, risk, r.stable, r.risk)
        if stable < min_stable or risk < min_risk:
            raise PaperError("ROUTER: INSUFFICIENT_AMOUNT")
        shares = shares_minted(stable, risk, r.stable, r.risk, self.supply)
        if shares <= 0:
            raise PaperError("POOL: insufficient liquidity minted")
        if holding.stable < stable or holding.risk < risk:
            raise PaperError("ERC20: insufficient balance")  # the whole deposit reverts
        holding.take("stable", stable)
        holding.take("risk", risk)
        r.add("stable", stable)
        r.add("risk", risk)
        self.supply += shares
        holding.lp += shares
        return stable, risk, shares

    def remove_liquidity(
        self, who: str, shares: int, min_stable: int, min_risk: int
    ) -> tuple[int, int]:
        """removeLiquidity then burn: the shares' part of both reserves."""
        holding, r = self.holder(who), self.reserves
        if shares <= 0 or holding.lp < shares:
            raise PaperError("POOL: insufficient balance")
        stable, risk = shares_value(shares, r.stable, r.risk, self.supply)
        if stable <= 0 or risk <= 0:
            raise PaperError("POOL: insufficient liquidity burned")
        if stable < min_stable:
            raise PaperError("ROUTER: INSUFFICIENT_A_AMOUNT")
        if risk < min_risk:
            raise PaperError("ROUTER: INSUFFICIENT_B_AMOUNT")
        holding.lp -= shares
        self.supply -= shares
        r.take("stable", stable)
        r.take("risk", risk)
        holding.add("stable", stable)
        holding.add("risk", risk)
        return stable, risk

    def transfer(self, who: str, to: str, stable: int) -> None:
        """A stable transfer (rent to the landlord)."""
        self.holder(who).take("stable", stable)
        self.holder(to).add("stable", stable)


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

    def reseed(self, key: str) -> None:
        """Another future from here: the fair value's walk and the noise drawn afresh from
        `key`, from the same price and regime."""
        self._path.reseed(key)
        self._flow.reseed(key)

    def step(self) -> float:
        self.fair = self._path.next()
        pool = self._pool
        for target in self._flow.targets(pool.price, self.fair):
            sell, amount = trade_to_target(pool.reserve_stable, pool.reserve_risk, target)
            if amount > 0:
                pool.holder(self.TRADER).add(sell, amount)
                pool.swap(self.TRADER, sell, amount, 0)
        return pool.price
