"""`forager evaluate`: does generation N+1 survive better than generation N? Measured.

Every contestant lives the same held-out seeds for the same number of ticks on the paper arena
(`agent.lab.calibrate.live`: the agent's own loop, policy, rent and death rule, on the pool's exact
arithmetic): the parent generation (the bundled model, or it with an adapter), the child (with
its adapter), and rule-based baselines for scale. No seed may be one the child was trained on:
`forager evolve` records its population seeds in the adapter's manifest and they are checked.

Per contestant: survival rate, median lifetime, median final net worth, rent paid and the share
of invalid decisions, each with a 95 % bootstrap interval over seeds. The verdict compares child
and parent seed by seed (the same weather for both): the bootstrap interval of the mean paired
difference in *expected lifetime* — ticks lived plus the ticks its final net worth would still
pay rent for, so that a horizon everyone survives still tells the rich from the poor. Better when
the interval is above zero, worse when below, otherwise no measurable difference.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agent.config import Settings
from agent.core.decider import Decider
from agent.core.lives import Life
from agent.core.prompt import WELL_OFF
from agent.core.strategies import RULE_STRATEGIES
from agent.daemon.wiring import build_decider, prompt_style
from agent.errors import ConfigError
from agent.lab.book import LifeBook, who
from agent.lab.calibrate import (
    Params,
    life_note,
    live,
    lives_json,
    mean_worth,
    params_from,
    weather_steps_per_tick,
)
from agent.lab.report import Chart
from agent.lab.stats import Interval, bootstrap, mean, median
from agent.lab.timing import (
    CONSTANT_ANSWERS,
    Controls,
    Timing,
    best_constant,
    constant_lives,
    shuffled_lives,
    timing,
)
from agent.reports.progress import Progress, Silent
from agent.reports.tables import Table, table

HELD_OUT_FIRST_SEED = 1000  # populations (`forager evolve`) live on seeds below this
# Whole lives: in the default world `hold` dies near tick 206 and the best rule teacher
# (`mean_reversion`) is alive at 300 (docs/world.md), so both baselines end inside the horizon
# for what they are.
EVAL_TICKS = 300
BASELINES = ("hold", "mean_reversion")


@dataclass(frozen=True)
class Contestant:
    """Who lives the seeds: a generation of the model (`llm`, maybe with an adapter) or a rule."""

    name: str
    strategy: str = "llm"
    adapter: Path | None = None
    prompt: str | None = None  # the system prompt it lives with (default: the settings')


@dataclass(frozen=True)
class Scores:
    """One contestant's lives summed up, each figure with its 95 % bootstrap interval."""

    name: str
    strategy: str
    adapter: str | None
    lives: int
    survival: Interval  # share of lives alive at the end
    lifetime_median: Interval  # ticks lived
    worth_median: Interval  # final net worth, whole STABLE
    rent_paid_mean: Interval  # STABLE paid to the landlord per life
    invalid_rate: Interval  # invalid decisions / decisions
    expected_life_mean: Interval  # ticks lived + ticks the final net worth still pays for
    answers: dict[str, float] = dataclasses.field(default_factory=dict)  # share of each action


@dataclass(frozen=True)
class Evaluation:
    """Parent, child and baselines on the same seeds: their scores and the paired verdict."""

    params: Params
    parent: str
    child: str
    scores: tuple[Scores, ...]
    lives: tuple[Life, ...]
    differences: dict[str, Interval]  # child minus parent, paired by seed
    verdict: str  # "better", "worse" or "no measurable difference"
    # child minus each baseline, paired by seed: does it beat doing nothing and the best rule?
    against: dict[str, dict[str, Interval]] = dataclasses.field(default_factory=dict)
    controls: Controls | None = None  # did the child learn timing (agent.lab.timing)
    stem: ClassVar[str] = "evaluation"

    def to_json(self) -> dict[str, Any]:
        return {
            "params": dataclasses.asdict(self.params),
            "parent": self.parent,
            "child": self.child,
            "verdict": self.verdict,
            "differences": {k: dataclasses.asdict(v) for k, v in self.differences.items()},
            "against": {
                b: {k: dataclasses.asdict(v) for k, v in d.items()} for b, d in self.against.items()
            },
            "controls": dataclasses.asdict(self.controls) if self.controls else None,
            "scores": [dataclasses.asdict(s) for s in self.scores],
            "lives": lives_json(self.lives),
        }

    def table(self) -> Table:
        """Scores (95 % bootstrap intervals in brackets); the differences and verdict below."""
        rows = [_row(s) for s in self.scores]
        return table(_COLUMNS, rows, title="Evaluation", notes=_notes(self))

    def chart(self) -> Chart:
        """Mean net worth per tick of each contestant over the seeds."""
        series = {
            s.name: mean_worth([x for x in self.lives if x.name == s.name], self.params.ticks)
            for s in self.scores
        }
        seeds = len(self.params.seeds)
        return Chart(series, f"Mean net worth per tick over {seeds} held-out seeds")


def _invalid_share(lives: Sequence[Life]) -> float:
    decisions = sum(x.ticks_lived for x in lives)  # one decision a tick
    return sum(x.invalid for x in lives) / decisions if decisions else 0.0


def score(contestant: Contestant, lives: Sequence[Life], resamples: int, seed: int) -> Scores:
    rng = np.random.default_rng(seed)
    return Scores(
        name=contestant.name,
        strategy=contestant.strategy,
        adapter=str(contestant.adapter) if contestant.adapter else None,
        lives=len(lives),
        survival=bootstrap([float(x.alive) for x in lives], mean, resamples, rng),
        lifetime_median=bootstrap([float(x.ticks_lived) for x in lives], median, resamples, rng),
        worth_median=bootstrap([x.final_worth for x in lives], median, resamples, rng),
        rent_paid_mean=bootstrap([x.rent_paid for x in lives], mean, resamples, rng),
        invalid_rate=bootstrap(lives, _invalid_share, resamples, rng),
        expected_life_mean=bootstrap([x.expected_life for x in lives], mean, resamples, rng),
        answers=_answers(lives),
    )


def _answers(lives: Sequence[Life]) -> dict[str, float]:
    """What it proposed, most frequent first: a collapse to one answer shows here."""
    counts: dict[str, int] = {}
    for x in lives:
        for action, n in x.actions.items():
            counts[action] = counts.get(action, 0) + n
    total = sum(counts.values()) or 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {action: round(n / total, 4) for action, n in ordered}


_COMPARED: dict[str, Callable[[Life], float]] = {
    "expected_life": lambda x: x.expected_life,
    "final_worth": lambda x: x.final_worth,
    "ticks_lived": lambda x: float(x.ticks_lived),
    "survived": lambda x: float(x.alive),
}


def paired(
    child: Sequence[Life], parent: Sequence[Life], resamples: int, seed: int
) -> dict[str, Interval]:
    """Child minus parent on each seed, mean over seeds with its bootstrap interval."""
    by_seed = {x.seed: x for x in parent}
    rng = np.random.default_rng(seed)
    out = {}
    for name, metric in _COMPARED.items():
        diffs = [metric(c) - metric(by_seed[c.seed]) for c in child]
        out[name] = bootstrap(diffs, mean, resamples, rng)
    return out


def verdict_of(difference: Interval) -> str:
    if difference.low > 0:
        return "better"
    if difference.high < 0:
        return "worse"
    return "no measurable difference"


def held_out_check(contestants: Sequence[Contestant], seeds: Sequence[int]) -> None:
    """Refuse seeds an adapter's training population lived on (from its manifest.json)."""
    for c in contestants:
        if c.adapter is None:
            continue
        manifest = c.adapter.parent / "manifest.json"
        if not manifest.is_file():
            continue
        trained = set(json.loads(manifest.read_text()).get("population_seeds") or ())
        overlap = sorted(trained & set(seeds))
        if overlap:
            raise ConfigError(
                f"seeds {overlap} are not held out: {c.name}'s adapter {c.adapter} was trained "
                f"on lives of seeds {sorted(trained)} (expected evaluation seeds outside them)"
            )


def evaluate(
    settings: Settings,
    parent: Contestant,
    child: Contestant,
    seeds: Sequence[int],
    ticks: int,
    baselines: Sequence[str] = BASELINES,
    resamples: int = 2000,
    steps_per_tick: int | None = None,
    known: dict[str, tuple[Life, ...]] | None = None,
    progress: Progress = Silent(),
    controls: bool = True,
    book: LifeBook | None = None,
) -> Evaluation:
    """Parent, child and baselines on `seeds`; scores, paired differences and the verdict.

    `known` holds lives already measured (by name, on these seeds and ticks): not run again;
    so are the lives in `book`, where each new one is written as it ends.
    `progress` gets one phase of the lives still to live, a step per life, then (with
    `controls`) one of the timing controls' lives.
    """
    _check(parent, child, seeds, ticks, baselines)
    held_out_check((parent, child), seeds)
    contestants = [parent, child, *(Contestant(b, b) for b in baselines)]
    steps = steps_per_tick or weather_steps_per_tick(settings)
    params = params_from(settings, seeds, ticks, steps)
    lives = _lives(settings, params, contestants, known or {}, progress, book)
    evaluation = judge(params, contestants, lives, resamples)
    if not controls:
        return evaluation
    return dataclasses.replace(
        evaluation, controls=_controls(settings, params, contestants, lives, resamples, progress)
    )


def _controls(
    settings: Settings,
    params: Params,
    contestants: Sequence[Contestant],
    lives: Sequence[Life],
    resamples: int,
    progress: Progress,
) -> Controls:
    """The child against its own answers shuffled in time and against every constant answer,
    and every contestant's timing (and the shuffled answers')."""
    child = [x for x in lives if x.name == contestants[1].name]
    progress.phase("controls", len(child) + len(CONSTANT_ANSWERS))
    shuffled = shuffled_lives(settings, params, child, progress)
    constants = constant_lives(settings, params, progress)
    best = best_constant(constants)
    seed = 2 * len(contestants)
    return Controls(
        shuffled=paired(child, shuffled, resamples, seed),
        best_constant=best,
        constant=paired(child, constants[best], resamples, seed + 1),
        constants={a: round(mean([x.expected_life for x in ls]), 1) for a, ls in constants.items()},
        timing=tuple(
            [timing(c.name, [x for x in lives if x.name == c.name]) for c in contestants]
            + [timing(shuffled[0].name, shuffled)]
        ),
    )


def _check(
    parent: Contestant,
    child: Contestant,
    seeds: Sequence[int],
    ticks: int,
    baselines: Sequence[str],
) -> None:
    unknown = [b for b in baselines if b not in RULE_STRATEGIES]
    if unknown:
        raise ConfigError(f"baselines {unknown} are not rule strategies {RULE_STRATEGIES}")
    if parent.name == child.name:
        raise ConfigError(f"parent and child are both named {parent.name!r}")
    if not seeds or ticks < 1:
        raise ConfigError("evaluation needs at least one seed and one tick")


def _lives(
    settings: Settings,
    params: Params,
    contestants: Sequence[Contestant],
    known: dict[str, tuple[Life, ...]],
    progress: Progress,
    book: LifeBook | None = None,
) -> tuple[Life, ...]:
    """Every contestant's lives, in contestant order: known ones reused, the rest lived."""
    todo = [c.name for c in contestants if not _reusable(known.get(c.name, ()), params)]
    booked = {c.name: _booked(settings, params, c, book) for c in contestants if c.name in todo}
    progress.phase("evaluate", sum(len(params.seeds) - len(b) for b in booked.values()))
    lives: list[Life] = []
    for c in contestants:
        if c.name in todo:
            lives += _live_contestant(settings, params, c, progress, booked[c.name], book)
        else:
            lives += known[c.name]
    return tuple(lives)


def _identity(settings: Settings, c: Contestant) -> dict[str, Any]:
    if c.strategy != "llm":
        return who(c.name, c.strategy, None, None)
    m = _model_for_settings(settings, c).model
    sampling = {"temperature": m.temperature, "seed": m.seed, "decode": m.decode}
    return who(c.name, c.strategy, prompt_style(m), c.adapter, model=str(m.path), **sampling)


def _world(params: Params) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(params).items() if k != "seeds"}


def _booked(
    settings: Settings, params: Params, c: Contestant, book: LifeBook | None
) -> dict[int, Life]:
    """The contestant's lives on these seeds that the book already has."""
    if book is None:
        return {}
    me, world = _identity(settings, c), _world(params)
    return {s: x for s in params.seeds if (x := book.get(me, s, world)) is not None}


def _reusable(lives: Sequence[Life], params: Params) -> bool:
    """Lives measured on exactly these seeds, each to these ticks or to its death."""
    return sorted(x.seed for x in lives) == sorted(params.seeds) and all(
        x.ticks_lived == params.ticks or not x.alive for x in lives
    )


def _live_contestant(
    settings: Settings,
    params: Params,
    contestant: Contestant,
    progress: Progress,
    booked: dict[int, Life] | None = None,
    book: LifeBook | None = None,
) -> list[Life]:
    booked = booked or {}
    if all(seed in booked for seed in params.seeds):
        return [booked[seed] for seed in params.seeds]
    model = _model_for(settings, contestant) if contestant.strategy == "llm" else None
    me, world = _identity(settings, contestant), _world(params)
    lives: list[Life] = []
    try:
        for seed in params.seeds:
            if seed in booked:
                lives.append(booked[seed])
                continue
            lives.append(
                live(settings, params, contestant.strategy, seed, model, name=contestant.name)
            )
            if book is not None:
                book.add(me, seed, world, lives[-1])
            progress.step(life_note(lives[-1]))
    finally:
        if model is not None:
            model.close()
    return lives


def _model_for(settings: Settings, contestant: Contestant) -> Decider:
    """The model in this process (not a server's), with the contestant's adapter, if any,
    and its prompt."""
    return build_decider(_model_for_settings(settings, contestant))


def _model_for_settings(settings: Settings, contestant: Contestant) -> Settings:
    update: dict[str, Any] = {"lora": contestant.adapter, "server_url": None}
    if contestant.prompt:
        update["prompt"] = contestant.prompt
    model = settings.model.model_copy(update=update)
    return settings.model_copy(update={"strategy": "llm", "model": model})


def judge(
    params: Params, contestants: Sequence[Contestant], lives: Sequence[Life], resamples: int
) -> Evaluation:
    """Scores per contestant, child minus parent by seed, and the verdict on expected life."""
    parent, child = contestants[0], contestants[1]
    of = {c.name: [x for x in lives if x.name == c.name] for c in contestants}
    scores = tuple(score(c, of[c.name], resamples, i) for i, c in enumerate(contestants))
    differences = paired(of[child.name], of[parent.name], resamples, seed=len(contestants))
    against = {
        c.name: paired(of[child.name], of[c.name], resamples, seed=len(contestants) + i)
        for i, c in enumerate(contestants[2:], 1)
    }
    return Evaluation(
        params=params,
        parent=parent.name,
        child=child.name,
        scores=scores,
        lives=tuple(lives),
        differences=differences,
        verdict=verdict_of(differences["expected_life"]),
        against=against,
    )


def _iv(x: Interval, fmt: str = ".1f") -> str:
    return f"{x.value:{fmt}} [{x.low:{fmt}}, {x.high:{fmt}}]"


_COLUMNS = (
    "contestant", "survived", "median lifetime", "median final net worth", "rent paid",
    "invalid decisions", "expected lifetime", "answers",
)  # fmt: skip


def _row(s: Scores) -> tuple[str, ...]:
    return (
        s.name,
        _iv(s.survival, ".0%"),
        _iv(s.lifetime_median, ".0f"),
        _iv(s.worth_median, ".2f"),
        _iv(s.rent_paid_mean, ".1f"),
        _iv(s.invalid_rate, ".1%"),
        _iv(s.expected_life_mean, ".0f"),
        ", ".join(f"{a} {share:.0%}" for a, share in list(s.answers.items())[:3]),
    )


def _difference(child: str, other: str, d: dict[str, Interval]) -> str:
    return (
        f"{child} minus {other}, paired by seed (mean [95 % CI]): expected lifetime "
        f"{_iv(d['expected_life'])} ticks, final net worth {_iv(d['final_worth'], '.2f')}, "
        f"ticks lived {_iv(d['ticks_lived'])}, survival {_iv(d['survived'], '.2f')}."
    )


def _notes(ev: Evaluation) -> tuple[str, ...]:
    differences = _difference(ev.child, ev.parent, ev.differences)
    baselines = tuple(
        f"{_difference(ev.child, b, d)} {_judged(ev.child, verdict_of(d['expected_life']), b)}."
        for b, d in ev.against.items()
    )
    controls = _control_notes(ev.child, ev.controls) if ev.controls else ()
    verdict = f"Verdict: {_judged(ev.child, ev.verdict, ev.parent)}"
    return (differences, *baselines, *controls, verdict)


def _control_notes(child: str, c: Controls) -> tuple[str, ...]:
    shuffled = f"{child} shuffled"
    constant = f"the best constant answer ({c.best_constant})"
    return (
        f"{_difference(child, 'its answers shuffled in time', c.shuffled)} "
        f"{_judged(child, verdict_of(c.shuffled['expected_life']), shuffled)}.",
        f"{_difference(child, constant, c.constant)} "
        f"{_judged(child, verdict_of(c.constant['expected_life']), constant)}.",
        *(_timing_note(t) for t in c.timing),
    )


def _timing_note(t: Timing) -> str:
    return (
        f"Timing of {t.name}: with the price {WELL_OFF:.0%} or more below its recent median "
        f"({t.below} of {t.decisions} decisions) it bought {t.buy_below:.0%} and sold "
        f"{t.sell_below:.0%} of the time; {WELL_OFF:.0%} or more above ({t.above}) it bought "
        f"{t.buy_above:.0%} and sold {t.sell_above:.0%}; mutual information between its action "
        f"and the gap {t.mutual_information_bits:.3f} bits."
    )


def _judged(child: str, verdict: str, other: str) -> str:
    if verdict == "no measurable difference":
        return f"**no measurable difference** between {child} and {other}"
    return f"{child} is **{verdict}** than {other}"
