"""Market weather: a seeded fair value, an arbitrageur that follows it, noise traders.

The fair value is a geometric random walk (drift and volatility, with calm/storm regimes and
jumps) drawn from `random.Random(seed)`. Each step an arbitrageur trades the pool part of the
way to it and noise traders push it off again, both through the router. Same seed, same plan:
the agents' own trades move the pool, never the fair value or the noise.
"""

from __future__ import annotations

import csv
import math
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from math import isqrt
from pathlib import Path

import structlog
from web3 import Web3

from arena.compiler import Artefact
from arena.errors import PriceSeriesError
from arena.world import RISK_DECIMALS, STABLE_DECIMALS, ArenaInfo
from wallets.dex import gross_of_fee

log = structlog.get_logger()

_SCALE = 10 ** (RISK_DECIMALS - STABLE_DECIMALS)


@dataclass(frozen=True)
class WeatherParams:
    """The shape of the random walk of the log price, per step.

    `drift` and `volatility` shape calm weather. With `regime_switch` > 0 the market flips
    between calm and storm with that probability each step; a storm multiplies the volatility
    by `storm_factor` and reverses the drift. With `shock_prob` > 0 a step jumps by
    `shock_size` (up or down, in log price) with that probability.
    """

    seed: int = 0
    drift: float = 0.0
    volatility: float = 0.01
    regime_switch: float = 0.0
    storm_factor: float = 3.0
    shock_prob: float = 0.0
    shock_size: float = 0.1


@dataclass(frozen=True)
class FlowParams:
    """How the pool follows the fair value: the market's structure around the walk.

    Each step an arbitrageur closes `arb_strength` of the gap between the pool's log price and
    the fair value (1: at once, as a pure random walk; below 1: with a lag), and noise traders
    push the pool by a seeded shock of `noise` (log price). With a lag and noise the pool's
    deviation from fair value reverts (an AR(1) with coefficient 1 - arb_strength), so mean
    reversion and momentum have real, seeded expected value.
    """

    noise: float = 0.0
    arb_strength: float = 1.0


class Flow:
    """The seeded noise draws and the arbitrage rule: where each step's two trades aim.

    Each step the arbitrageur trades first, closing `arb_strength` of the gap between the
    pool and the fair value; then the noise traders push the pool by their seeded shock. Two
    trades, each paying the pool fee (what liquidity providers earn).
    """

    def __init__(self, seed: int, params: FlowParams) -> None:
        # A stream of its own: the fair-value path is the same whatever the flow's settings.
        self._rng = random.Random(f"flow-{seed}")  # noqa: S311 -- a simulation
        self._params = params

    def reseed(self, key: str) -> None:
        """Draw the rest of the noise from a fresh generator (`key`): another future from here."""
        self._rng = random.Random(f"flow-{key}")  # noqa: S311 -- a simulation

    def skip(self, steps: int) -> None:
        """Fast-forward the noise draws, so a restarted arena continues the same flow."""
        for _ in range(steps if self._params.noise > 0 else 0):
            self._rng.gauss(0.0, 1.0)

    def targets(self, pool: float, fair: float) -> tuple[float, ...]:
        """The arbitrageur's target price, then the noise traders' (when there is noise)."""
        p = self._params
        log_pool = math.log(pool)
        arb = log_pool + p.arb_strength * (math.log(fair) - log_pool)
        if p.noise <= 0:
            return (math.exp(arb),)
        return math.exp(arb), math.exp(arb + p.noise * self._rng.gauss(0.0, 1.0))


def simulate(
    start: Decimal, weather: WeatherParams, flow: FlowParams, steps: int
) -> list[tuple[float, float]]:
    """(fair value, pool price) per step when no agent trades: the weather's plan, off-chain."""
    path, market = PricePath(start, weather), Flow(weather.seed, flow)
    pool, out = float(start), []
    for _ in range(steps):
        fair = path.next()
        pool = market.targets(pool, fair)[-1]
        out.append((fair, pool))
    return out


class PricePath:
    """The seeded sequence of target prices (stable per risk)."""

    def __init__(self, start: Decimal, params: WeatherParams) -> None:
        self._rng = random.Random(params.seed)  # noqa: S311 -- a simulation, not cryptography
        self._log_price = math.log(float(start))
        self._params = params
        self.step = 0
        self.storm = False
        self.shocks = 0

    def next(self) -> float:
        p = self._params
        if p.regime_switch > 0 and self._rng.random() < p.regime_switch:
            self.storm = not self.storm
        drift, volatility = (
            (-p.drift, p.volatility * p.storm_factor)
            if self.storm
            else (
                p.drift,
                p.volatility,
            )
        )
        self._log_price += self._rng.gauss(drift, volatility)
        if p.shock_prob > 0 and self._rng.random() < p.shock_prob:
            self._log_price += p.shock_size if self._rng.random() < 0.5 else -p.shock_size
            self.shocks += 1
        self.step += 1
        return math.exp(self._log_price)

    def skip(self, steps: int) -> None:
        """Fast-forward, so a restarted arena continues the same path."""
        for _ in range(steps):
            self.next()

    def reseed(self, key: str) -> None:
        """Draw the rest of the walk from a fresh generator (`key`): another future from here,
        from the same price and regime."""
        self._rng = random.Random(f"path-{key}")  # noqa: S311 -- a simulation


class ReplayPath:
    """A recorded price series, one price per step; it stays at the last price at the end."""

    def __init__(self, prices: list[float]) -> None:
        if not prices:
            raise PriceSeriesError("a replayed price series needs at least one price")
        self._prices = prices
        self.step = 0

    @classmethod
    def from_csv(cls, path: Path) -> ReplayPath:
        """Prices from a CSV file: a `price` column (with a header) or the first column."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise PriceSeriesError(f"price series {path} cannot be read: {exc.strerror}") from exc
        rows = [row for row in csv.reader(text.splitlines()) if row and row[0].strip()]
        column, first_line = 0, 1
        if rows and not _is_number(rows[0][0]):
            header = [cell.strip().lower() for cell in rows[0]]
            column = header.index("price") if "price" in header else 0
            rows, first_line = rows[1:], 2
        prices = []
        for line, row in enumerate(rows, first_line):
            cell = row[column].strip() if column < len(row) else ""
            if not _is_number(cell) or float(cell) <= 0:
                raise PriceSeriesError(
                    f"price series {path}, row {line}: {cell!r} is not a price > 0"
                )
            prices.append(float(cell))
        return cls(prices)

    def next(self) -> float:
        price = self._prices[min(self.step, len(self._prices) - 1)]
        self.step += 1
        return price

    def skip(self, steps: int) -> None:
        self.step += steps


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return math.isfinite(float(text))


def trade_to_target(reserve_stable: int, reserve_risk: int, target: float) -> tuple[str, int]:
    """Which token to sell, and how much, to move the pool's price to `target`."""
    k = reserve_stable * reserve_risk
    ratio = Decimal(target) / _SCALE  # stable base units per risk base unit
    want_stable = isqrt(int(Decimal(k) * ratio))
    if want_stable > reserve_stable:
        return "stable", gross_of_fee(want_stable - reserve_stable)
    want_risk = isqrt(int(Decimal(k) / ratio))
    return "risk", gross_of_fee(max(0, want_risk - reserve_risk))


def pool_price(reserve_stable: int, reserve_risk: int) -> float:
    """Mid price in whole stable units per whole risk unit."""
    return float(reserve_stable * _SCALE / reserve_risk)


class Weather:
    """Runs the market weather against a pool: each step, the fair value moves and the
    arbitrageur and the noise traders trade the pool towards their targets.

    This class trades the arena's on-chain pool through its router; `arena.paper` gives the
    same steps to an in-memory pool with the contracts' integer arithmetic. A step holds a
    lock, so a save (`between_steps`) sees the chain and the step count agree.
    """

    def __init__(
        self,
        w3: Web3,
        info: ArenaInfo,
        path: PricePath | ReplayPath,
        artefacts: dict[str, Artefact],
        flow: Flow | None = None,
    ) -> None:
        self._w3 = w3
        self._info = info
        self._path = path
        self._flow = flow or Flow(0, FlowParams())
        self.fair: float | None = None
        router, pool = Web3.to_checksum_address(info.router), Web3.to_checksum_address(info.pool)
        self._router = w3.eth.contract(address=router, abi=artefacts["Router"].abi)
        self._pool = w3.eth.contract(address=pool, abi=artefacts["Pool"].abi)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def steps(self) -> int:
        return self._path.step

    def reserves(self) -> tuple[int, int]:
        """(stable, risk) reserves of the pool."""
        r0, r1, _ = self._pool.functions.getReserves().call()
        # The pool orders tokens as deployed: token0 is the stable token in the arena.
        return (int(r0), int(r1))

    def step(self) -> float:
        """Draw the next fair value and make the step's trades; return the new price."""
        with self._lock:
            self.fair = self._path.next()
            for target in self._flow.targets(pool_price(*self.reserves()), self.fair):
                sell, amount = trade_to_target(*self.reserves(), target)
                if amount > 0:
                    self._swap(sell, amount)
            return pool_price(*self.reserves())

    @contextmanager
    def between_steps(self) -> Iterator[int]:
        """Hold the weather between two steps; yields the steps done (what a save records)."""
        with self._lock:
            yield self._path.step

    def _swap(self, sell: str, amount: int) -> None:
        sell_token, buy_token = (
            (self._info.stable_token, self._info.risk_token)
            if sell == "stable"
            else (self._info.risk_token, self._info.stable_token)
        )
        deadline = int(self._w3.eth.get_block("latest")["timestamp"]) + 600
        fn = self._router.functions.swapExactTokensForTokens(
            amount, 0, [sell_token, buy_token], self._info.weather_trader, deadline
        )
        tx_hash = fn.transact({"from": self._info.weather_trader})
        self._w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.02)

    def start(self, interval_s: float) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="market-weather", daemon=True
        )
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                price = self.step()
            except Exception as exc:
                log.warning("weather_step_failed", error=str(exc))
                continue
            fair = None if self.fair is None else round(self.fair, 6)
            log.debug("weather_stepped", step=self._path.step, price=round(price, 6), fair=fair)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
