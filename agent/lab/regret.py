"""`forager regret`: what a generation's answers are worth where every answer's worth is known.

On labelled states (`forager label`, on seeds the generation never trained on) each candidate
answer has a value: the expected life it led to. A model's answer distribution there — the
softmax of each answer's log-likelihood after the prompt, as training sees it — gives:

- its **expected value**: the values weighted by that distribution;
- its **regret**: the best candidate's value minus that, in ticks of expected life;
- how often its **most likely answer** is a best one, and which answers it most likes;
- its **timing** where the rows carry their situation: on the states whose price stood well below
  its recent median, how often its most likely answer buys, and well above, how often it sells.

A uniform choice among the answers and the best answer are printed for scale, and the best
answer per situation: one answer for all the states of a situation (`agent.lab.standin`: the
price's gap bin, the RISK share, the pool share, the rent), the one worth most on them. It is
fitted on the very states it is scored on, so it is a bound no policy that sees only the
situation can beat there; what a chooser's regret exceeds it by is what the situation still
offers, and what lies below it needs more than the situation (or is the labels' noise). Only
states with a significantly best answer count (elsewhere every answer is worth the same, within
noise).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.core.prompt import WELL_OFF
from agent.errors import ConfigError
from agent.lab.standin import EDGES, gap_bin
from agent.lab.value_fit import State, answer_distributions, encode_states, read_labels
from agent.reports.progress import Progress, Silent
from agent.reports.tables import Table, table

MAX_TOKENS = 4096  # every labelled state of the bundled model's prompts fits
SCALE = ("uniform answer", "best answer", "best answer per situation")  # for_scale's names
TOP = 3  # most liked answers shown


@dataclass(frozen=True)
class Choice:
    """One chooser on the labelled states."""

    name: str
    states: int
    expected_value: float  # mean over states, ticks of expected life
    regret: float  # mean over states of the best value minus the expected value
    argmax_best: int  # states whose most likely answer is a best one
    liked: dict[str, int] = dataclasses.field(default_factory=dict)  # most likely answer: states
    below: int = 0  # states with the price well below its recent median (gap bins 0 and 1)
    buys_below: int = 0  # ... whose most likely answer buys RISK
    above: int = 0  # states with the price well above it (gap bins 5 and 6)
    sells_above: int = 0  # ... whose most likely answer sells RISK


# The situations' gap bins "well" below and above the recent median (the words the prompt shows).
_BELOW = range(gap_bin(-WELL_OFF))
_ABOVE = range(gap_bin(WELL_OFF), len(EDGES) + 1)


def measure(name: str, model: Any, states: Sequence[State], device: str = "cpu") -> Choice:
    """`model`'s answer distribution on each state, scored against the values."""
    qs = answer_distributions(model, states, device, Silent())
    return scored(name, states, [max(range(len(q)), key=q.__getitem__) for q in qs], qs)


def scored(
    name: str, states: Sequence[State], tops: Sequence[int], qs: Sequence[Sequence[float]]
) -> Choice:
    """A chooser's distribution `qs` on each state (its most likely answer `tops`), scored."""
    values, regrets, hits, liked = [], [], 0, Counter[str]()
    for state, top, q in zip(states, tops, qs, strict=True):
        expected = sum(p * v for p, v in zip(q, state.values, strict=True))
        values.append(expected)
        regrets.append(max(state.values) - expected)
        hits += state.values[top] == max(state.values)
        liked[state.names[top]] += 1
    n = len(values)
    answers = [(s.gap_bin, s.names[t].split()[0]) for s, t in zip(states, tops, strict=True)]
    return Choice(
        name=name,
        states=n,
        expected_value=round(sum(values) / n, 3),
        regret=round(sum(regrets) / n, 3),
        argmax_best=hits,
        liked=dict(liked.most_common(TOP)),
        below=sum(g in _BELOW for g, _ in answers),
        buys_below=sum(g in _BELOW and a == "buy_risk" for g, a in answers),
        above=sum(g in _ABOVE for g, _ in answers),
        sells_above=sum(g in _ABOVE and a == "sell_risk" for g, a in answers),
    )


def for_scale(states: Sequence[State]) -> list[Choice]:
    """A uniform choice among the answers, the best answer and the best answer per situation,
    on the same states (the uniform chooser's "most likely" answer is the first; its hits count
    ties in expectation)."""
    uniform = [[1 / len(s.values)] * len(s.values) for s in states]
    firsts = [0] * len(states)
    ties = sum(s.values.count(max(s.values)) / len(s.values) for s in states)
    best = [s.values.index(max(s.values)) for s in states]
    plain = scored(SCALE[0], states, firsts, uniform)
    return [
        dataclasses.replace(
            plain, argmax_best=round(ties), liked={}, below=0, buys_below=0, above=0, sells_above=0
        ),
        scored(SCALE[1], states, best, _onehot(states, best)),
        per_situation(states),
    ]


def per_situation(states: Sequence[State]) -> Choice:
    """One answer per situation (rows without theirs are one group), the one with the highest
    total value over that situation's states: fitted on the states it is scored on."""
    groups: dict[tuple[int, ...] | None, list[State]] = {}
    for s in states:
        groups.setdefault(s.situation, []).append(s)
    chosen = {
        key: max(range(len(group[0].values)), key=lambda i: sum(s.values[i] for s in group))
        for key, group in groups.items()
    }
    tops = [chosen[s.situation] for s in states]
    return scored(SCALE[2], states, tops, _onehot(states, tops))


def _onehot(states: Sequence[State], tops: Sequence[int]) -> list[list[float]]:
    """A chooser that always gives `tops` (one answer per state), as distributions."""
    return [
        [float(i == t) for i in range(len(s.values))] for s, t in zip(states, tops, strict=True)
    ]


def regret_of(
    labels: Path,
    model_path: Path,
    adapters: Sequence[Path],
    progress: Progress = Silent(),
    with_base: bool = True,
) -> list[Choice]:
    """The base model (unless `with_base` is False), each adapter (its `peft/` folder beside
    `adapter.gguf`) and the scale, on the significant states of `labels`. An adapter is named
    by its folder, or by the folder above where that is `adapter` (`gen2/adapter`: gen2)."""
    from agent.lab.train import library_notes_hidden, load_base, require_train_extra

    require_train_extra()
    for a in adapters:
        if not (a / "peft").is_dir():
            raise ConfigError(f"adapter {a} has no peft/ folder (expected a forager train --out)")
    rows = read_labels(labels)
    with library_notes_hidden():
        tokenizer, base = load_base(model_path)
        states = encode_states(tokenizer, rows, 1.0, MAX_TOKENS)
        if not states:
            raise ConfigError(f"labels {labels} have no state with a significant best answer")
        progress.phase("regret", int(with_base) + len(adapters))
        out = []
        if with_base:
            out.append(measure("base", base, states))
            progress.step("base")
        for a in adapters:
            import peft

            tuned = peft.PeftModel.from_pretrained(base, str(a / "peft"))
            out.append(measure(adapter_name(a), tuned, states))
            base = tuned.unload()  # the base again, for the next adapter
            progress.step(adapter_name(a))
    return [*out, *for_scale(states)]


def adapter_name(folder: Path) -> str:
    """How a `forager train --out` folder is shown: its name, or its parent's for `adapter`."""
    return folder.parent.name if folder.name == "adapter" else folder.name


def _timing(c: Choice) -> str:
    if not (c.below or c.above):
        return ""
    return f"buys {c.buys_below}/{c.below} below, sells {c.sells_above}/{c.above} above"


def regret_table(choices: Sequence[Choice]) -> Table:
    rows = [
        (
            c.name,
            str(c.states),
            f"{c.expected_value:.2f}",
            f"{c.regret:.2f}",
            f"{c.argmax_best}/{c.states}",
            ", ".join(f"{a} ({n})" for a, n in c.liked.items()),
            _timing(c),
        )
        for c in choices
    ]
    columns = (
        "chooser", "states", "expected value", "regret", "most likely is best", "likes", "timing"
    )  # fmt: skip
    notes = (
        "Values and regret in ticks of expected life; states with a significant best answer.",
        "Timing: the most likely answer buys where the price stood 2 % or more below its recent "
        "median, sells where 2 % or more above (rows with their situation only).",
    )
    return table(columns, rows, title="Regret on labelled states", notes=notes)
