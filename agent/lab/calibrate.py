"""`forager arena calibrate`: does skill pay in this arena? Measured, with intervals.

Each rule-based baseline lives on each seed's arena — the same fair value, noise and arbitrage
for every baseline on one seed — and we report how many survived and what they ended with.
The lives run on the paper arena (`arena.paper`: the pool's exact integer arithmetic, in
memory) through the agent's own loop, policy, rent and death rule: only the chain is left out.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.core.decider import Decider
from agent.core.records import Action, Balances, Observation, Outcome, RentStatus, TickRecord
from agent.core.strategies import RULE_STRATEGIES, RuleDecider
from agent.daemon.wiring import build_decider, limits_from
from agent.reports.charts import line_chart
from agent.runtime.loop import Agent, RentTerms
from agent.runtime.store import Store
from arena.paper import PaperError, PaperPool, PaperWeather
from arena.weather import FlowParams, WeatherParams
from arena.world import RISK_DECIMALS, STABLE_DECIMALS, to_base

BASELINES = ("hold", "random", "momentum", "mean_reversion", "liquidity")
SKILLED = ("momentum", "mean_reversion", "liquidity")
_START_TIME = 1_700_000_000.0
_NATIVE = 10 * 10**18  # gas money on paper: never spent, only checked by the gas floor
# Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


class PaperMarket:
    """One agent's wallet on a paper pool: the `Senses` and `Acts` of the loop."""

    LANDLORD = "landlord"

    def __init__(self, pool: PaperPool, who: str, clock: PaperClock) -> None:
        self._pool = pool
        self._who = who
        self._clock = clock

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
        pool, who = self._pool, self._who
        try:
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
        except PaperError as exc:
            return Outcome(status="failed", error=str(exc))

    def fund_child(self, child: str, stable_amount: int, native: int) -> Outcome:
        return Outcome(status="failed", error="the paper arena makes no children")


class PaperClock:
    """Simulated Unix time: `interval_s` per tick, so the policy's hourly caps mean the same."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.tick = 0

    def __call__(self) -> float:
        return _START_TIME + self.tick * self.interval_s


@dataclass(frozen=True)
class Params:
    """Everything that shaped a calibration, as reported with it."""

    seeds: tuple[int, ...]
    ticks: int
    steps_per_tick: int
    weather: dict[str, Any]
    flow: dict[str, Any]
    liquidity_stable: float
    start_price: float
    agent_stable: float
    agent_risk: float
    rent: dict[str, Any]
    policy: dict[str, Any]
    interval_s: float


@dataclass(frozen=True)
class Life:
    """One baseline on one seed."""

    strategy: str
    seed: int
    ticks_lived: int
    alive: bool
    final_worth: float  # whole stable units, at the end (or at death)
    worth: tuple[float, ...]  # per tick lived
    trades: int  # actions that went through (rent excluded)
    expected_life: float  # ticks lived, plus what the final net worth would still pay rent for
    rent_paid: float = 0.0  # whole stable units paid to the landlord
    invalid: int = 0  # decisions the model got wrong (forced holds)
    name: str = ""  # who lived it, when not just the strategy (a generation of the model)
    actions: dict[str, int] = dataclasses.field(default_factory=dict)  # proposed, by kind


@dataclass(frozen=True)
class Summary:
    """One baseline over all seeds: survival and final net worth, with 95 % intervals."""

    strategy: str
    lives: int
    survived: int
    survival_ci: tuple[float, float]
    worth_mean: float
    worth_ci: tuple[float, float]
    worth_median: float
    worth_min: float
    worth_max: float
    trades_mean: float
    life_mean: float


def params_from(settings: Settings, seeds: Sequence[int], ticks: int, steps: int) -> Params:
    a = settings.arena
    weather = WeatherParams(
        a.seed, a.drift, a.volatility, a.regime_switch, a.storm_factor, a.shock_prob, a.shock_size
    )
    return Params(
        seeds=tuple(seeds),
        ticks=ticks,
        steps_per_tick=steps,
        weather={k: v for k, v in dataclasses.asdict(weather).items() if k != "seed"},
        flow=dataclasses.asdict(FlowParams(a.noise, a.arb_strength)),
        liquidity_stable=float(a.liquidity_stable),
        start_price=float(a.start_price),
        agent_stable=float(a.agent_stable),
        agent_risk=float(a.agent_risk),
        rent=settings.rent.model_dump(mode="json"),
        policy=settings.policy.model_dump(mode="json"),
        interval_s=settings.interval_s,
    )


def live(
    settings: Settings,
    params: Params,
    strategy: str,
    seed: int,
    model: Decider | None = None,
    keep: Path | None = None,
    name: str | None = None,
) -> Life:
    """One life of `strategy` on seed `seed`'s paper arena, to `params.ticks` or death.

    With `keep`, the life's store is written to `keep/<strategy>-seed<seed>/state.sqlite`, an
    agent data dir that `forager dataset export` reads like any other.

    `model` decides for the `llm` strategy (loaded once for all its lives); `name` labels the
    life (and its kept dir) when several models live as `llm`."""
    label = name or strategy
    a = settings.arena
    pool = PaperPool(a.liquidity_stable, a.start_price)
    weather = PaperWeather(
        pool,
        a.start_price,
        WeatherParams(seed, **params.weather),
        FlowParams(**params.flow),
    )
    clock = PaperClock(settings.interval_s)
    market = PaperMarket(pool, "agent", clock)
    wallet = pool.holder("agent")
    wallet.stable = to_base(a.agent_stable, STABLE_DECIMALS)
    wallet.risk = to_base(a.agent_risk, RISK_DECIMALS)
    rent = to_base(settings.rent.amount, STABLE_DECIMALS)
    worth: list[float] = []
    agent = Agent(
        agent_id=f"paper-{label}-{seed}",
        generation=0,
        sensor=market,
        decider=model if strategy == "llm" and model else RuleDecider(strategy, seed=seed),
        limits=limits_from(settings, STABLE_DECIMALS),
        executor=market,
        rent=RentTerms(
            rent, settings.rent.period_ticks, settings.rent.grace_ticks, settings.rent.sell_for_rent
        ),
        store=Store(keep / f"{label}-seed{seed}" / "state.sqlite" if keep else Path(":memory:")),
        strategy=strategy,
        persona=settings.persona if strategy == "llm" else None,
        adapter=getattr(model, "adapter", None) if strategy == "llm" else None,
        clock=clock,
    )
    trades, rent_paid, invalid, last = 0, 0, 0, None
    actions: dict[str, int] = {}
    for tick in range(params.ticks):
        for _ in range(params.steps_per_tick):
            weather.step()
        clock.tick = tick
        record = agent.tick()
        if record is None:
            break
        last = record
        worth.append(record.net_worth_after / 10**STABLE_DECIMALS)
        trades += _traded(record)
        rent_paid += _rent_paid(record)
        invalid += not record.decision.valid
        actions[record.decision.action] = actions.get(record.decision.action, 0) + 1
        if not record.alive:
            break
    alive = last is not None and last.alive
    final = worth[-1] if worth else float(a.agent_stable)
    per_tick = float(settings.rent.amount) / settings.rent.period_ticks
    return Life(
        strategy=strategy,
        seed=seed,
        ticks_lived=len(worth),
        alive=alive,
        final_worth=final,
        worth=tuple(worth),
        trades=trades,
        expected_life=len(worth) + (final / per_tick if alive else 0.0),
        rent_paid=rent_paid / 10**STABLE_DECIMALS,
        invalid=invalid,
        name=label,
        actions=actions,
    )


def _rent_paid(record: TickRecord) -> int:
    paid = 0
    if record.rent_outcome is not None and record.rent_outcome.status == "ok":
        paid += record.rent_outcome.amount_in
    if record.action is not None and record.action.kind == "pay_rent":
        paid += record.outcome.amount_in if record.outcome.status == "ok" else 0
    return paid


def _traded(record: TickRecord) -> int:
    kind = record.action.kind if record.action else None
    return int(kind not in (None, "hold", "pay_rent") and record.outcome.status == "ok")


def summarize(strategy: str, lives: Sequence[Life]) -> Summary:
    finals = [life.final_worth for life in lives]
    n = len(finals)
    mean = statistics.fmean(finals)
    half = _t975(n - 1) * statistics.stdev(finals) / math.sqrt(n) if n > 1 else 0.0
    survived = sum(life.alive for life in lives)
    return Summary(
        strategy=strategy,
        lives=n,
        survived=survived,
        survival_ci=wilson(survived, n),
        worth_mean=mean,
        worth_ci=(mean - half, mean + half),
        worth_median=statistics.median(finals),
        worth_min=min(finals),
        worth_max=max(finals),
        trades_mean=statistics.fmean(life.trades for life in lives),
        life_mean=statistics.fmean(life.expected_life for life in lives),
    )


def _t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (sound at 0 % and 100 %)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Report:
    params: Params
    summaries: tuple[Summary, ...]
    lives: tuple[Life, ...]

    def summary(self, strategy: str) -> Summary:
        return next(s for s in self.summaries if s.strategy == strategy)

    def verdict(self) -> dict[str, Any]:
        """Does skill pay? The issue's two conditions, each with what decided it."""
        present = {x.strategy for x in self.summaries}
        if "hold" not in present:
            return {"skilled_beating_hold": [], "skill_pays": None, "random_below_hold": None}
        hold = self.summary("hold")
        skilled = [self.summary(s) for s in (*SKILLED, "llm") if s in present]
        beats = [s.strategy for s in skilled if s.worth_ci[0] > hold.worth_ci[1]]
        rand = self.summary("random") if "random" in present else None
        return {
            "skilled_beating_hold": beats,
            "skill_pays": bool(beats),
            "random_below_hold": rand is not None and rand.worth_mean < hold.worth_mean,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "params": dataclasses.asdict(self.params),
            "summaries": [dataclasses.asdict(s) for s in self.summaries],
            "verdict": self.verdict(),
            "lives": [
                {k: v for k, v in dataclasses.asdict(life).items() if k != "worth"}
                for life in self.lives
            ],
        }


def calibrate(
    settings: Settings,
    seeds: Sequence[int],
    ticks: int,
    steps_per_tick: int | None = None,
    strategies: Sequence[str] = BASELINES,
    keep: Path | None = None,
) -> Report:
    """Every baseline on every seed; the report of who survived with how much."""
    unknown = [s for s in strategies if s not in ("llm", *RULE_STRATEGIES)]
    if unknown:
        expected = ("llm", *RULE_STRATEGIES)
        raise ValueError(f"unknown strategies {unknown} (expected some of {expected})")
    if steps_per_tick is None:
        steps_per_tick = weather_steps_per_tick(settings)
    params = params_from(settings, seeds, ticks, steps_per_tick)
    model = (
        build_decider(settings.model_copy(update={"strategy": "llm"}))
        if "llm" in strategies
        else None
    )
    try:
        lives = tuple(
            live(settings, params, s, seed, model, keep) for s in strategies for seed in seeds
        )
    finally:
        if model is not None:
            model.close()
    summaries = tuple(summarize(s, [x for x in lives if x.strategy == s]) for s in strategies)
    return Report(params, summaries, lives)


def weather_steps_per_tick(settings: Settings) -> int:
    """How many weather steps a live agent sees between two ticks (at least one)."""
    interval = settings.arena.weather_interval_s
    return max(1, round(settings.interval_s / interval)) if interval > 0 else 1


def render_table(report: Report) -> str:
    """The report as a Markdown table (it goes in the README as printed)."""
    rows = [
        "| baseline | survived | survival 95 % CI | final net worth, mean | 95 % CI | median | "
        "min to max | trades/life | expected life (ticks) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.summaries:
        rows.append(
            f"| {s.strategy} | {s.survived}/{s.lives} | {s.survival_ci[0]:.0%} to "
            f"{s.survival_ci[1]:.0%} | {s.worth_mean:.2f} | {s.worth_ci[0]:.2f} to "
            f"{s.worth_ci[1]:.2f} | {s.worth_median:.2f} | {s.worth_min:.2f} to "
            f"{s.worth_max:.2f} | {s.trades_mean:.1f} | {s.life_mean:.0f} |"
        )
    return "\n".join(rows)


def mean_worth(lives: Sequence[Life], ticks: int) -> list[float]:
    """Mean net worth at each tick over `lives` (a dead life keeps its last)."""
    return [
        statistics.fmean(x.worth[min(t, len(x.worth) - 1)] if x.worth else 0.0 for x in lives)
        for t in range(ticks)
    ]


def write_chart(report: Report, out: Path) -> Path:
    """Mean net worth per tick of each baseline over the seeds (dead lives keep their last)."""
    series = {
        s.strategy: mean_worth(
            [x for x in report.lives if x.strategy == s.strategy], report.params.ticks
        )
        for s in report.summaries
    }
    seeds = len(report.params.seeds)
    return line_chart(
        series,
        out,
        title=f"Mean net worth of each baseline over {seeds} seeds (paper arena)",
    )


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path, Path]:
    """calibration.json, calibration.md and calibration.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    as_json = out_dir / "calibration.json"
    as_json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    table = out_dir / "calibration.md"
    table.write_text(render_table(report) + "\n")
    return as_json, table, write_chart(report, out_dir / "calibration.png")
