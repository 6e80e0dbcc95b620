"""The paper market: the loop's `Senses` and `Acts` on an in-memory pool, for the lab's lives.

`arena.paper` keeps the pool's exact integer arithmetic (the contracts', to the base unit);
this adapter gives one agent a wallet on it, so a life runs through the agent's own loop,
policy, rent and death rule with only the chain left out. `open_world` lays out one seed's
arena: the pool, its weather, a simulated clock, and the agent's funded wallet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.config import Settings
from agent.core.records import Action, Balances, Observation, Outcome, RentStatus, SentTx
from arena.errors import PaperError
from arena.paper import PaperPool, PaperWeather
from arena.weather import FlowParams, WeatherParams
from arena.world import RISK_DECIMALS, STABLE_DECIMALS
from wallets.tokens import to_base

_START_TIME = 1_700_000_000.0
_NATIVE = 10 * 10**18  # gas money on paper: never spent, only checked by the gas floor


class PaperClock:
    """Simulated Unix time: `interval_s` per tick, so the policy's hourly caps mean the same."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.tick = 0

    def __call__(self) -> float:
        return _START_TIME + self.tick * self.interval_s


class PaperMarket:
    """One agent's wallet on a paper pool: the `Senses` and `Acts` of the loop."""

    LANDLORD = "landlord"

    def __init__(
        self,
        pool: PaperPool,
        who: str,
        clock: PaperClock,
        on_thought: Callable[[float], None] | None = None,
    ) -> None:
        self._pool = pool
        self._who = who
        self._clock = clock
        self._on_thought = on_thought

    def thought_for(self, seconds: float) -> None:
        """The decision took `seconds`: the world's weather moves meanwhile."""
        if self._on_thought is not None:
            self._on_thought(seconds)

    def mark(self) -> int:
        return 0  # nothing is signed on paper, and a paper life is never interrupted

    def sent_since(self, mark: int) -> list[SentTx]:
        return []

    def balances(self) -> Balances:
        h = self._pool.holder(self._who)
        return Balances(native=_NATIVE, stable=h.stable, risk=h.risk, lp=h.lp)

    def snapshot(self) -> tuple[Balances, int, int, int]:
        p = self._pool
        return self.balances(), p.reserve_stable, p.reserve_risk, p.supply

    def sense(self, tick: int, rent: RentStatus, recent: tuple[str, ...]) -> Observation:
        p = self._pool
        return Observation(
            tick=tick,
            block=tick,
            timestamp=int(self._clock()),
            balances=self.balances(),
            reserve_stable=p.reserve_stable,
            reserve_risk=p.reserve_risk,
            price=p.price,
            gas_price=0,
            rent=rent,
            stable_decimals=STABLE_DECIMALS,
            risk_decimals=RISK_DECIMALS,
            recent=recent,
            lp_supply=p.supply,
        )

    def execute(self, action: Action) -> Outcome:
        try:
            return self._act(action)
        except PaperError as exc:
            return Outcome(status="failed", error=str(exc))

    def fund_child(self, child: str, stable_amount: int, native: int) -> Outcome:
        return Outcome(status="failed", error="the paper arena makes no children")

    def _act(self, action: Action) -> Outcome:
        pool, who = self._pool, self._who
        if action.kind == "hold":
            return Outcome(status="held")
        if action.kind == "pay_rent":
            pool.transfer(who, self.LANDLORD, action.amount_in)
            return Outcome("ok", amount_in=action.amount_in)
        if action.kind == "swap":
            assert action.sell is not None, "a swap names what it sells"
            out = pool.swap(who, action.sell, action.amount_in, action.min_out)
            return Outcome("ok", amount_in=action.amount_in, amount_out=out)
        if action.kind == "add_liquidity":
            stable, _, shares = pool.add_liquidity(
                who, action.amount_in, action.amount_risk, action.min_out, action.min_out_risk
            )
            return Outcome("ok", amount_in=stable, amount_out=shares)
        stable, _ = pool.remove_liquidity(
            who, action.amount_in, action.min_out, action.min_out_risk
        )
        return Outcome("ok", amount_in=action.amount_in, amount_out=stable)


@dataclass
class PaperWorld:
    """One seed's paper arena: its pool and weather, the clock, and the agent's market.

    Time is counted in weather steps, as on the chain where the weather runs on its own clock:
    a tick starts on its schedule (`advance`), and the seconds a decision takes move the
    weather before the action executes (`think`), out of the same budget — a slow decision
    leaves fewer steps before the next tick, never more steps in all.
    """

    pool: PaperPool
    weather: PaperWeather
    clock: PaperClock
    market: PaperMarket
    step_s: float = 1.0  # simulated seconds per weather step
    think_s: float | None = None  # seconds per decision; None: the decision's own latency
    _now: float = field(default=0.0, init=False)  # in weather steps
    _scheduled: float = field(default=0.0, init=False)

    def advance(self, tick: int, steps: int) -> None:
        """Tick `tick` starts `steps` weather steps after the previous one was due."""
        self._scheduled += steps
        self._now = max(self._now, self._scheduled)
        self._catch_up()
        self.clock.tick = tick

    def think(self, seconds: float) -> None:
        """A decision took `seconds` (or the fixed `think_s`): the weather moves meanwhile."""
        spent = seconds if self.think_s is None else self.think_s
        if self.step_s > 0 and spent > 0:
            self._now += spent / self.step_s
            self._catch_up()

    def _catch_up(self) -> None:
        for _ in range(math.floor(self._now + 1e-9) - self.weather.steps):
            self.weather.step()


def open_world(
    settings: Settings,
    weather: WeatherParams,
    flow: FlowParams,
    steps_per_tick: int = 1,
) -> PaperWorld:
    """The arena of `weather`'s seed in the settings' shape, the agent's wallet funded.

    `steps_per_tick` weather steps pass between two ticks, so one step lasts
    `interval_s / steps_per_tick` simulated seconds; decisions take `arena.paper_think_s`
    seconds each (unset: their measured latency)."""
    a = settings.arena
    pool = PaperPool(a.liquidity_stable, a.start_price)
    paper_weather = PaperWeather(pool, a.start_price, weather, flow)
    clock = PaperClock(settings.interval_s)
    market = PaperMarket(pool, "agent", clock)
    wallet = pool.holder("agent")
    wallet.stable = to_base(a.agent_stable, STABLE_DECIMALS)
    wallet.risk = to_base(a.agent_risk, RISK_DECIMALS)
    world = PaperWorld(
        pool,
        paper_weather,
        clock,
        market,
        step_s=settings.interval_s / max(1, steps_per_tick),
        think_s=a.paper_think_s,
    )
    market._on_thought = world.think
    return world
