"""Labels from counterfactuals: what each possible answer was worth at a visited state.

A life's realized future is one draw of luck; labelling its decisions by it teaches luck. The
paper arena is an exact simulator, so at a visited state every candidate answer (each action
and size the grammar allows) is tried instead: the world is copied, the candidate acts through
the agent's own loop (guard, act-time pricing, rent, death), a fixed continuation policy lives
on for `horizon` ticks, over `futures` freshly drawn weather paths — the same draws for every
candidate (common random numbers), never the future that actually happened. A candidate's
value is its mean expected life over those paths (ticks lived, plus what the final net worth
still pays rent for; a death counts only the ticks lived), with its standard error.

States are visited by lives of the rule teachers (and whatever deciders the caller passes) on
training seeds only; the rows, one per state, are the (environment, action, fitness) table:
the prompt the model would see, and every candidate's answer, value and error.

Each visiting life is independent of the others (its own seeded world), so `visit` can live
them in `workers` processes at once; the rows are the same, in the same order, however many.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import os
import statistics
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from agent.config import Settings
from agent.core.decider import Decider
from agent.core.prompt import AMOUNTS, build_messages, decision_from_text, system_prompt
from agent.core.records import Action, Decision, Observation, TickRecord
from agent.core.strategies import RuleDecider
from agent.errors import ConfigError
from agent.lab.calibrate import Params, paper_agent
from agent.lab.paper_market import PaperWorld, open_world
from agent.lab.standin import Situation, policy, situation
from agent.reports.progress import Progress, Silent
from agent.runtime.loop import Agent
from agent.runtime.store import Store
from arena.weather import FlowParams, WeatherParams
from telemetry.logs import configure_logging

_TRADES = ("buy_risk", "sell_risk", "add_liquidity", "remove_liquidity")


@dataclass(frozen=True)
class Candidate:
    """One answer the grammar allows (hold and pay_rent have no size that matters)."""

    action: str
    amount_pct: int

    @property
    def answer(self) -> str:
        """What acts, and nothing else (the reason is optional)."""
        return json.dumps({"action": self.action, "amount_pct": self.amount_pct})


CANDIDATES = (
    Candidate("hold", 10),
    Candidate("pay_rent", 100),
    *(Candidate(action, pct) for action in _TRADES for pct in AMOUNTS),
)


@dataclass(frozen=True)
class LabelParams:
    """How states are visited and valued."""

    horizon: int = 40  # ticks each candidate's future lasts
    futures: int = 8  # weather paths per state (the same for every candidate)
    every: int = 7  # label every n-th tick of a visiting life (coprime with the rent period)
    # the policy that lives on after the candidate: a rule, or a generation's stand-in
    continuation: str = "mean_reversion"
    prompt: str = "plain"  # the system prompt the rows carry (`agent.core.prompt.PROMPTS`)


def check_every(every: int, rent_period: int) -> None:
    """Refuse a labelling stride that shares a factor with the rent period: every labelled
    state would then sit at the same few points of the rent cycle (with 10 and 10, always the
    tick rent falls due), and a model trained on them never sees the others."""
    if math.gcd(every, rent_period) > 1:
        raise ConfigError(
            f"--every {every} shares a factor with the rent period ({rent_period} ticks): the "
            f"labelled states would see only {rent_period // math.gcd(every, rent_period)} of "
            f"its {rent_period} phases (expected a stride coprime with it, such as 7)"
        )


@dataclass(frozen=True)
class Label:
    """One visited state and what every candidate answer was worth there."""

    seed: int
    tick: int
    visitor: str
    prompt: tuple[dict[str, str], ...]
    values: tuple[float, ...]  # per candidate, in CANDIDATES' order
    errors: tuple[float, ...]  # standard errors of those means
    situation: Situation | None = None  # what a stand-in sees there (`agent.lab.standin`)

    @property
    def best(self) -> int:
        return max(range(len(self.values)), key=self.values.__getitem__)

    @property
    def worst(self) -> int:
        return min(range(len(self.values)), key=self.values.__getitem__)

    def significant(self, z: float = 2.0) -> bool:
        """Whether some answer is better than another by more than `z` standard errors of the
        difference: the best against the worst (answers the guard turns into the same action
        are worth exactly the same, so the runner-up is often the best's twin)."""
        best, worst = self.best, self.worst
        gap = self.values[best] - self.values[worst]
        return gap > z * math.hypot(self.errors[best], self.errors[worst])

    def to_row(self) -> dict[str, Any]:
        """A JSON line: the prompt, and each candidate's completion, value and error."""
        return {
            "seed": self.seed,
            "tick": self.tick,
            "visitor": self.visitor,
            "prompt": [dict(m) for m in self.prompt],
            "candidates": [
                {"completion": c.answer, **asdict(c), "value": round(v, 4), "se": round(e, 4)}
                for c, v, e in zip(CANDIDATES, self.values, self.errors, strict=True)
            ],
            "best": CANDIDATES[self.best].answer,
            "significant": self.significant(),
            # all integers (the pool share 0 or 1), so that `datasets` reads one column type
            "situation": [int(x) for x in self.situation] if self.situation else None,
        }


class Scripted:
    """A decider that gives `first` (an answer text) once, then asks `then`."""

    def __init__(self, first: str, then: Decider) -> None:
        self._first: str | None = first
        self._then = then

    @property
    def name(self) -> str:
        return "counterfactual"

    def close(self) -> None:
        """Nothing to free."""

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        if self._first is None:
            return self._then.decide(obs, recent_prices)
        first, self._first = self._first, None
        return decision_from_text(first, self.name, obs, recent_prices)


def continuation(
    settings: Settings,
    world: PaperWorld,
    store: Store,
    params: Params,
    first: str,
    then: Decider,
) -> tuple[float, TickRecord | None]:
    """Live from `world` and `store` (a copy is made of neither): `first` now, then `then`,
    for up to the horizon's `params.ticks`; return the expected life over that horizon and
    the first tick's record (None if the agent was already dead)."""
    agent = paper_agent(settings, world, Scripted(first, then), store, agent_id="counterfactual")
    start = agent.age
    first_record: TickRecord | None = None
    last: TickRecord | None = None
    for i in range(params.ticks):
        if i:
            world.advance(start + i, params.steps_per_tick)
        record = agent.tick()
        if record is None:
            break
        first_record = first_record or record
        last = record
        if not record.alive:
            break
    return _expected_life(agent, last, agent.age - start), first_record


def _expected_life(agent: Agent, last: TickRecord | None, lived: int) -> float:
    """Ticks lived, plus the ticks of rent the final worth pays for (none for the dead)."""
    if last is None or not last.alive:
        return float(lived)
    rent = last.observation.rent
    per_tick = rent.amount / rent.period_ticks
    return lived + last.net_worth_after / per_tick


def label_state(
    settings: Settings,
    world: PaperWorld,
    store: Store,
    params: Params,
    label: LabelParams,
    key: str,
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[dict[str, str], ...]]:
    """Every candidate's mean value and standard error at this state, and the prompt there.

    `world` and `store` are left as they are: each future runs on copies, its weather drawn
    afresh from `key` and the future's number (the same for every candidate). Answers the
    guard turns into the same action here (every refused one, like a hold, does nothing) lead
    to the same futures, so each such group is lived once."""
    horizon = Params(**{**asdict(params), "ticks": label.horizon})
    groups = _same_action(settings, world, store)
    by_group: dict[int, tuple[float, float]] = {}
    prompt: tuple[dict[str, str], ...] = ()
    for index, candidate in enumerate(CANDIDATES):
        if groups[index] in by_group:
            continue
        outcomes = []
        for k in range(label.futures):
            twin = copy.deepcopy(world)
            twin.weather.reseed(f"{key}-{k}")
            then = policy(label.continuation, seed=k)
            value, first = continuation(
                settings, twin, store.copy(), horizon, candidate.answer, then
            )
            outcomes.append(value)
            if first is not None and not prompt:
                prompt = first.decision.prompt
        spread = statistics.stdev(outcomes) if len(outcomes) > 1 else 0.0
        by_group[groups[index]] = (statistics.fmean(outcomes), spread / math.sqrt(len(outcomes)))
    values = tuple(by_group[g][0] for g in groups)
    errors = tuple(by_group[g][1] for g in groups)
    return values, errors, prompt


def _same_action(settings: Settings, world: PaperWorld, store: Store) -> list[int]:
    """For each candidate, the number of the first candidate whose answer the guard turns into
    the same action at this state (nothing done counts as one action)."""
    probe = paper_agent(settings, world, RuleDecider("hold"), store, agent_id="probe")
    obs = world.market.sense(probe.age, probe.rent_status(), ())
    seen: dict[Any, int] = {}
    groups = []
    for index, candidate in enumerate(CANDIDATES):
        verdict = probe.would_allow(decision_from_text(candidate.answer, "probe", obs))
        effect = verdict if isinstance(verdict, Action) and verdict.kind != "hold" else None
        groups.append(seen.setdefault(effect, index))
    return groups


def visit(
    settings: Settings,
    params: Params,
    label: LabelParams,
    visitors: Sequence[str],
    progress: Progress | None = None,
    workers: int | None = None,
) -> Iterator[Label]:
    """Lives of each visitor (a rule strategy, or a generation's stand-in) on each of
    `params.seeds`; every `label.every`-th tick of each, the state is labelled before the
    visitor acts on it. With `workers` > 1 (default: one per CPU core) the lives are lived in
    that many processes at once and each life's labels come when it ends, in the same order."""
    progress = progress or Silent()
    states = sum(len(range(0, params.ticks, label.every)) for _ in params.seeds) * len(visitors)
    progress.phase("label", states)
    lives = [(seed, visitor) for seed in params.seeds for visitor in visitors]
    workers = min(len(lives), workers if workers is not None else default_workers())
    if workers < 2:
        for seed, visitor in lives:
            yield from _visit_life(settings, params, label, visitor, seed, progress)
        return
    # spawn, not fork: the caller may hold a model and its threads
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_quiet) as pool:
        futures = [
            pool.submit(_lived_labels, settings, params, label, visitor, seed)
            for seed, visitor in lives
        ]
        for (seed, visitor), future in zip(lives, futures, strict=True):
            for made in future.result():
                progress.step(f"seed {seed} {visitor} tick {made.tick}")
                yield made


def default_workers() -> int:
    """Processes that label at once: one per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def _quiet() -> None:
    """A worker's logging: warnings and errors only. A spawned process starts with structlog's
    own default (every paper tick's lines, on the console): a generation's labels printed ~28 MB
    and spent about a fifth of their time on it. The labels are the output."""
    configure_logging("warning")


def _lived_labels(
    settings: Settings, params: Params, label: LabelParams, visitor: str, seed: int
) -> list[Label]:
    """One visiting life's labels, in a worker process."""
    return list(_visit_life(settings, params, label, visitor, seed, Silent()))


def _visit_life(
    settings: Settings,
    params: Params,
    label: LabelParams,
    visitor: str,
    seed: int,
    progress: Progress,
) -> Iterator[Label]:
    world = open_world(
        settings,
        WeatherParams(seed, **params.weather),
        FlowParams(**params.flow),
        params.steps_per_tick,
    )
    with Store(Path(":memory:"), durable=False) as store:
        agent = paper_agent(
            settings, world, policy(visitor, seed=seed), store, f"visit-{visitor}-{seed}"
        )
        for tick in range(params.ticks):
            world.advance(tick, params.steps_per_tick)
            if tick % label.every == 0:
                key = f"cf-{seed}-{visitor}-{tick}"
                values, errors, seen = label_state(settings, world, store, params, label, key)
                obs = world.market.sense(agent.age, agent.rent_status(), ())
                prompt = _as_style(seen, label.prompt, obs, agent.recent_prices)
                where = situation(obs, agent.recent_prices)
                progress.step(f"seed {seed} {visitor} tick {tick}")
                yield Label(seed, tick, visitor, prompt, values, errors, where)
            record = agent.tick()
            if record is None or not record.alive:
                return


def _as_style(
    seen: tuple[dict[str, str], ...],
    style: str,
    obs: Observation,
    recent_prices: tuple[float, ...],
) -> tuple[dict[str, str], ...]:
    """The prompt a model under `style` would have seen at this state: the seen messages with
    the style's system prompt, or (the compact style writes its own observation) built anew."""
    if style == "compact":
        return tuple(build_messages(obs, system_prompt(style=style), recent_prices, style))
    return _with_system(seen, system_prompt(style=style))


def _with_system(prompt: tuple[dict[str, str], ...], system: str) -> tuple[dict[str, str], ...]:
    """The same messages, with `system` as the system prompt."""
    rest = (m for m in prompt if m["role"] != "system")
    return ({"role": "system", "content": system}, *rest)


def write_rows(labels: Sequence[Label], out: TextIO, significant_only: bool = False) -> int:
    """The labels as JSON lines (loadable with `datasets.load_dataset("json", ...)`)."""
    rows = 0
    for label in labels:
        if significant_only and not label.significant():
            continue
        out.write(json.dumps(label.to_row()) + "\n")
        rows += 1
    return rows
