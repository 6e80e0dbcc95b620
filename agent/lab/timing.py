"""Did a generation learn *when* to act, or only *what* to answer? Controls for timing.

A policy that beats `hold` might do it with a good constant answer (say, always a little
liquidity), or by answering well for the moment. Three measures tell them apart, all on the same
held-out seeds as the evaluation:

- its own answers **shuffled in time**: each life's answers, in a random order, lived again on
  the same seed (past its death the answers are drawn again in a fresh order). Same answers, no
  timing: a policy that learned timing outlives them.
- every **constant answer** (each action at each size, the same every tick): the best of them is
  the bar a policy of one answer would reach.
- what it answered **where the price stood**: the share of buys and of sells when the price it
  saw was well below its recent median (the gap the prompt shows) and when well above, and the
  mutual information between its action and that gap (below, inside, above), in bits. The
  plug-in estimate; its bias is about (actions - 1) x 2 / (2 N ln 2), 0.004 bits for 2,000
  decisions.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from agent.config import Settings
from agent.core.lives import Life
from agent.core.prompt import ACTIONS, AMOUNTS, WELL_OFF, decision_from_text
from agent.core.records import Decision, Observation
from agent.lab.calibrate import Params, live
from agent.lab.stats import Interval
from agent.reports.progress import Progress, Silent

SHUFFLED = "shuffled"  # a shuffled control is named "<who> shuffled"
# One of each answer that acts differently: every action at every size; hold and pay_rent
# once (their size does nothing).
CONSTANT_ANSWERS = (
    "hold 10",
    "pay_rent 100",
    *(f"{a} {pct}" for a in ACTIONS if a not in ("hold", "pay_rent") for pct in AMOUNTS),
)


class ScriptDecider:
    """Answers from a script, one answer a tick, in order; past its end, the script again in a
    fresh random order (`rng`), so a life that outlasts it keeps the same mix of answers."""

    def __init__(self, answers: Sequence[str], rng: random.Random, name: str) -> None:
        if not answers:
            raise ValueError("a script needs at least one answer")
        self._script, self._rng, self._name = list(answers), rng, name
        self._queue = list(answers)

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Nothing to free."""

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        if not self._queue:
            self._queue = self._rng.sample(self._script, len(self._script))
        action, pct = self._queue.pop(0).split()
        raw = json.dumps({"action": action, "amount_pct": int(pct)})
        return decision_from_text(raw, self._name, obs, recent_prices)


def shuffled_lives(
    settings: Settings, params: Params, lives: Sequence[Life], progress: Progress = Silent()
) -> list[Life]:
    """Each life's answers in a random order (seeded by the life's seed), lived on its seed."""
    out = []
    for x in lives:
        rng = random.Random(x.seed)  # noqa: S311 -- a reproducible shuffle, not a secret
        script = rng.sample(list(x.answers), len(x.answers)) if x.answers else ["hold 10"]
        name = f"{x.name} {SHUFFLED}"
        decider = ScriptDecider(script, rng, name)
        out.append(live(settings, params, "llm", x.seed, decider, name=name))
        progress.step(f"{name} seed {x.seed}: {out[-1].ticks_lived} ticks")
    return out


def constant_lives(
    settings: Settings, params: Params, progress: Progress = Silent()
) -> dict[str, list[Life]]:
    """Every constant answer's lives on the seeds, by answer."""
    out: dict[str, list[Life]] = {}
    for answer in CONSTANT_ANSWERS:
        rng = random.Random(0)  # noqa: S311 -- never drawn: a script of one answer
        out[answer] = [
            live(settings, params, "llm", seed, ScriptDecider([answer], rng, answer), name=answer)
            for seed in params.seeds
        ]
        progress.step(f"constant {answer}")
    return out


def best_constant(constants: dict[str, list[Life]]) -> str:
    """The constant answer with the longest mean expected life (ties: the first listed)."""
    return max(constants, key=lambda a: sum(x.expected_life for x in constants[a]))


@dataclass(frozen=True)
class Timing:
    """Where a contestant's answers fell against the price's gap to its recent median."""

    name: str
    decisions: int  # with a gap shown (the first tick of a life has none)
    below: int  # decisions with the price well below its recent median
    above: int
    buy_below: float  # share of buys among the decisions well below
    buy_above: float
    sell_below: float
    sell_above: float
    mutual_information_bits: float  # between the action and the gap (below, inside, above)


def _bucket(gap: float) -> str:
    if gap <= -WELL_OFF:
        return "below"
    if gap >= WELL_OFF:
        return "above"
    return "inside"


def timing(name: str, lives: Sequence[Life]) -> Timing:
    """The timing measures of `lives` (their answers and the gaps they saw)."""
    pairs = [
        (answer.split()[0], _bucket(gap))
        for x in lives
        for answer, gap in zip(x.answers, x.gaps, strict=True)
        if gap is not None
    ]
    below = [a for a, b in pairs if b == "below"]
    above = [a for a, b in pairs if b == "above"]
    return Timing(
        name=name,
        decisions=len(pairs),
        below=len(below),
        above=len(above),
        buy_below=_share(below, "buy_risk"),
        buy_above=_share(above, "buy_risk"),
        sell_below=_share(below, "sell_risk"),
        sell_above=_share(above, "sell_risk"),
        mutual_information_bits=mutual_information(pairs),
    )


def _share(actions: Sequence[str], action: str) -> float:
    return actions.count(action) / len(actions) if actions else 0.0


def mutual_information(pairs: Sequence[tuple[str, str]]) -> float:
    """I(X; Y) in bits of the empirical joint distribution of `pairs` (0 with none)."""
    n = len(pairs)
    if not n:
        return 0.0
    joint, xs, ys = Counter(pairs), Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    return sum(c / n * math.log2(c * n / (xs[x] * ys[y])) for (x, y), c in joint.items())


@dataclass(frozen=True)
class Controls:
    """The child against its shuffled answers and the best constant answer, and every
    contestant's timing."""

    shuffled: dict[str, Interval]  # child minus its shuffled answers, paired by seed
    best_constant: str
    constant: dict[str, Interval]  # child minus the best constant answer, paired by seed
    constants: dict[str, float]  # every constant answer's mean expected life
    timing: tuple[Timing, ...]
