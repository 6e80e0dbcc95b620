"""`forager arena calibrate`: does skill pay in this arena? Measured, with intervals.

Each rule-based baseline lives on each seed's arena — the same fair value, noise and arbitrage
for every baseline on one seed — and we report how many survived and what they ended with.
The lives run on the paper arena (`agent.lab.paper_market`: the pool's exact integer
arithmetic, in memory) through the agent's own loop, policy, rent and death rule: only the
chain is left out.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from agent.config import Settings
from agent.core.decider import Decider
from agent.core.lives import Life, life_from
from agent.core.strategies import RULE_STRATEGIES, RuleDecider
from agent.daemon.wiring import Ports, assemble_agent, build_decider
from agent.errors import ConfigError
from agent.lab.paper_market import PaperWorld, open_world
from agent.lab.report import Chart
from agent.lab.stats import mean_interval, wilson
from agent.reports.progress import Progress, Silent
from agent.reports.tables import Table, table
from agent.runtime.loop import Agent
from agent.runtime.store import Store
from arena.weather import FlowParams, WeatherParams
from arena.world import STABLE_DECIMALS

BASELINES = ("hold", "random", "momentum", "mean_reversion", "liquidity")
SKILLED = ("momentum", "mean_reversion", "liquidity")
STRATEGIES = ("llm", *RULE_STRATEGIES)  # what a life may be lived by
_VERDICT_KEYS = (
    "skilled_outliving_hold", "skill_pays", "hold_dies", "random_dies_sooner", "best_rule",
    "best_rule_lives",
)  # fmt: skip


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
    life_mean: float  # expected life: ticks lived, plus the ticks the final worth pays rent for
    life_ci: tuple[float, float]
    lived_mean: float  # ticks lived


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
    world = open_world(
        settings,
        WeatherParams(seed, **params.weather),
        FlowParams(**params.flow),
        params.steps_per_tick,
    )
    path = keep / f"{label}-seed{seed}" / "state.sqlite" if keep else Path(":memory:")
    with Store(path, durable=False) as store:
        _run(_paper_agent(settings, world, strategy, seed, model, store, label), world, params)
        return _summed_up(settings, store, strategy, seed, label)


def _paper_agent(
    settings: Settings,
    world: PaperWorld,
    strategy: str,
    seed: int,
    model: Decider | None,
    store: Store,
    label: str,
) -> Agent:
    decider = model if strategy == "llm" and model else RuleDecider(strategy, seed=seed)
    return paper_agent(
        settings.model_copy(update={"strategy": strategy}),
        world,
        decider,
        store,
        agent_id=f"paper-{label}-{seed}",
    )


def paper_agent(
    settings: Settings, world: PaperWorld, decider: Decider, store: Store, agent_id: str
) -> Agent:
    """An agent on `world`'s paper market, made the one way every agent is made."""
    ports = Ports(world.market, world.market, decider, store, STABLE_DECIMALS, world.clock)
    return assemble_agent(settings, ports, agent_id=agent_id, generation=0)


def _run(agent: Agent, world: PaperWorld, params: Params) -> None:
    """Tick until `params.ticks` or death; the weather moves between ticks."""
    for tick in range(params.ticks):
        world.advance(tick, params.steps_per_tick)
        record = agent.tick()
        if record is None or not record.alive:
            break


def _summed_up(settings: Settings, store: Store, strategy: str, seed: int, label: str) -> Life:
    """The life its store holds, on its seed (or, with no tick lived, the starting wallet)."""
    life = life_from(store.tick_records(), store.meta(), name=label)
    if life is None:
        final = float(settings.arena.agent_stable)
        return Life(
            strategy=strategy, seed=seed, ticks_lived=0, alive=False, final_worth=final, name=label
        )
    return dataclasses.replace(life, seed=seed)


def life_note(life: Life) -> str:
    """One line on how a life ended, for progress."""
    return (
        f"{life.name or life.strategy} seed {life.seed}: "
        f"{'alive' if life.alive else 'dead'} after {life.ticks_lived} ticks, "
        f"net worth {life.final_worth:.2f}"
    )


def summarize(strategy: str, lives: Sequence[Life]) -> Summary:
    finals = [life.final_worth for life in lives]
    survived = sum(life.alive for life in lives)
    return Summary(
        strategy=strategy,
        lives=len(finals),
        survived=survived,
        survival_ci=wilson(survived, len(finals)),
        worth_mean=statistics.fmean(finals),
        worth_ci=mean_interval(finals),
        worth_median=statistics.median(finals),
        worth_min=min(finals),
        worth_max=max(finals),
        trades_mean=statistics.fmean(life.trades for life in lives),
        life_mean=statistics.fmean(life.expected_life for life in lives),
        life_ci=mean_interval([life.expected_life for life in lives]),
        lived_mean=statistics.fmean(life.ticks_lived for life in lives),
    )


_COLUMNS = (
    "baseline", "survived", "survival 95 % CI", "final net worth, mean", "95 % CI", "median",
    "min to max", "trades/life", "ticks lived, mean", "expected life (ticks)", "95 % CI",
)  # fmt: skip


def _row(s: Summary) -> tuple[str, ...]:
    return (
        s.strategy,
        f"{s.survived}/{s.lives}",
        f"{s.survival_ci[0]:.0%} to {s.survival_ci[1]:.0%}",
        f"{s.worth_mean:.2f}",
        f"{s.worth_ci[0]:.2f} to {s.worth_ci[1]:.2f}",
        f"{s.worth_median:.2f}",
        f"{s.worth_min:.2f} to {s.worth_max:.2f}",
        f"{s.trades_mean:.1f}",
        f"{s.lived_mean:.0f}",
        f"{s.life_mean:.0f}",
        f"{s.life_ci[0]:.0f} to {s.life_ci[1]:.0f}",
    )


@dataclass(frozen=True)
class Report:
    """A calibration: what shaped it, each baseline's summary, and every life."""

    params: Params
    summaries: tuple[Summary, ...]
    lives: tuple[Life, ...]
    stem: ClassVar[str] = "calibration"

    def summary(self, strategy: str) -> Summary:
        return next(s for s in self.summaries if s.strategy == strategy)

    def verdict(self) -> dict[str, Any]:
        """Does skill buy life? Judged by expected life (ticks lived, plus the ticks the final
        net worth still pays rent for; the dead get only what they lived), never by the
        crumbs the dead leave: a world worth learning in has `hold` dying within the horizon,
        `random` dying sooner and the best rule teacher alive at its end."""
        present = {x.strategy for x in self.summaries}
        if "hold" not in present:
            return dict.fromkeys(_VERDICT_KEYS)
        hold = self.summary("hold")
        skilled = [self.summary(s) for s in (*SKILLED, "llm") if s in present]
        rules = [s for s in self.summaries if s.strategy in BASELINES]
        best = max(rules, key=lambda s: s.life_mean)
        rand = self.summary("random") if "random" in present else None
        beats = [s.strategy for s in skilled if s.life_ci[0] > hold.life_ci[1]]
        return {
            "skilled_outliving_hold": beats,
            "skill_pays": bool(beats),
            "hold_dies": hold.survived == 0,
            "random_dies_sooner": rand is not None and rand.lived_mean < hold.lived_mean,
            "best_rule": best.strategy,
            "best_rule_lives": best.survived == best.lives,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "params": dataclasses.asdict(self.params),
            "summaries": [dataclasses.asdict(s) for s in self.summaries],
            "verdict": self.verdict(),
            "lives": lives_json(self.lives),
        }

    def table(self) -> Table:
        """One row per baseline (it goes in the docs as printed)."""
        return table(_COLUMNS, [_row(s) for s in self.summaries], title="Calibration")

    def chart(self) -> Chart:
        """Mean net worth per tick of each baseline over the seeds."""
        series = {
            s.strategy: mean_worth(
                [x for x in self.lives if x.strategy == s.strategy], self.params.ticks
            )
            for s in self.summaries
        }
        seeds = len(self.params.seeds)
        return Chart(series, f"Mean net worth of each baseline over {seeds} seeds (paper arena)")


def lives_json(lives: Sequence[Life]) -> list[dict[str, Any]]:
    """Every life as JSON, without its per-tick worth (the chart shows that)."""
    return [x.to_json() for x in lives]


def check_strategies(strategies: Sequence[str]) -> None:
    """Refuse a strategy no life can be lived by, naming what is expected."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ConfigError(f"unknown strategies {unknown} (expected some of {STRATEGIES})")


def calibrate(
    settings: Settings,
    seeds: Sequence[int],
    ticks: int,
    steps_per_tick: int | None = None,
    strategies: Sequence[str] = BASELINES,
    keep: Path | None = None,
    progress: Progress = Silent(),
) -> Report:
    """Every baseline on every seed; the report of who survived with how much.

    `progress` gets one phase of `len(strategies) * len(seeds)` lives, a step per life."""
    check_strategies(strategies)
    if steps_per_tick is None:
        steps_per_tick = weather_steps_per_tick(settings)
    params = params_from(settings, seeds, ticks, steps_per_tick)
    lives = _live_all(settings, params, strategies, keep, progress)
    summaries = tuple(summarize(s, [x for x in lives if x.strategy == s]) for s in strategies)
    return Report(params, summaries, lives)


def _live_all(
    settings: Settings,
    params: Params,
    strategies: Sequence[str],
    keep: Path | None,
    progress: Progress,
) -> tuple[Life, ...]:
    """Each strategy on each seed; the model, if one lives, loaded once for all its lives."""
    llm = settings.model_copy(update={"strategy": "llm"})
    model = build_decider(llm) if "llm" in strategies else None
    progress.phase("calibrate", len(strategies) * len(params.seeds))
    lives: list[Life] = []
    try:
        for strategy in strategies:
            for seed in params.seeds:
                lives.append(live(settings, params, strategy, seed, model, keep))
                progress.step(life_note(lives[-1]))
    finally:
        if model is not None:
            model.close()
    return tuple(lives)


def weather_steps_per_tick(settings: Settings) -> int:
    """How many weather steps a live agent sees between two ticks (at least one)."""
    interval = settings.arena.weather_interval_s
    return max(1, round(settings.interval_s / interval)) if interval > 0 else 1


def mean_worth(lives: Sequence[Life], ticks: int) -> list[float]:
    """Mean net worth at each tick over `lives` (a dead life keeps its last)."""
    return [
        statistics.fmean(x.worth[min(t, len(x.worth) - 1)] if x.worth else 0.0 for x in lives)
        for t in range(ticks)
    ]
