"""`forager regret`: what a generation's answers are worth where every answer's worth is known.

On labelled states (`forager label`, on seeds the generation never trained on) each candidate
answer has a value: the expected life it led to. A model's answer distribution there — the
softmax of each answer's log-likelihood after the prompt, as training sees it — gives:

- its **expected value**: the values weighted by that distribution;
- its **regret**: the best candidate's value minus that, in ticks of expected life;
- how often its **most likely answer** is a best one, and which answers it most likes.

A uniform choice among the answers and the best answer are printed for scale. Only states with a
significantly best answer count (elsewhere every answer is worth the same, within noise).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.lab.value_fit import State, answer_distributions, encode_states, read_labels
from agent.reports.progress import Progress, Silent
from agent.reports.tables import Table, table

MAX_TOKENS = 4096  # every labelled state of the bundled model's prompts fits
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


def measure(name: str, model: Any, states: Sequence[State], device: str = "cpu") -> Choice:
    """`model`'s answer distribution on each state, scored against the values."""
    values, regrets, hits, liked = [], [], 0, Counter[str]()
    for state, q in zip(states, answer_distributions(model, states, device, Silent()), strict=True):
        expected = sum(p * v for p, v in zip(q, state.values, strict=True))
        values.append(expected)
        regrets.append(max(state.values) - expected)
        top = max(range(len(q)), key=q.__getitem__)
        hits += state.values[top] == max(state.values)
        liked[state.names[top]] += 1
    return _choice(name, values, regrets, hits, liked)


def _choice(
    name: str, values: list[float], regrets: list[float], hits: int, liked: Counter[str]
) -> Choice:
    n = len(values)
    return Choice(
        name=name,
        states=n,
        expected_value=round(sum(values) / n, 3),
        regret=round(sum(regrets) / n, 3),
        argmax_best=hits,
        liked=dict(liked.most_common(TOP)),
    )


def for_scale(states: Sequence[State]) -> list[Choice]:
    """A uniform choice among the answers, and the best answer, on the same states."""
    uniform = [sum(s.values) / len(s.values) for s in states]
    best = [max(s.values) for s in states]
    ties = sum(s.values.count(max(s.values)) / len(s.values) for s in states)
    uniform_regret = [b - u for b, u in zip(best, uniform, strict=True)]
    return [
        _choice("uniform answer", uniform, uniform_regret, round(ties), Counter()),
        _choice("best answer", best, [0.0] * len(best), len(best), Counter()),
    ]


def regret_of(
    labels: Path, model_path: Path, adapters: Sequence[Path], progress: Progress = Silent()
) -> list[Choice]:
    """The base model, each adapter (its `peft/` folder beside `adapter.gguf`) and the scale,
    on the significant states of `labels`."""
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
        progress.phase("regret", 1 + len(adapters))
        out = [measure("base", base, states)]
        progress.step("base")
        for a in adapters:
            import peft

            tuned = peft.PeftModel.from_pretrained(base, str(a / "peft"))
            out.append(measure(a.name, tuned, states))
            base = tuned.unload()  # the base again, for the next adapter
            progress.step(a.name)
    return [*out, *for_scale(states)]


def regret_table(choices: Sequence[Choice]) -> Table:
    rows = [
        (
            c.name,
            str(c.states),
            f"{c.expected_value:.2f}",
            f"{c.regret:.2f}",
            f"{c.argmax_best}/{c.states}",
            ", ".join(f"{a} ({n})" for a, n in c.liked.items()),
        )
        for c in choices
    ]
    columns = ("chooser", "states", "expected value", "regret", "most likely is best", "likes")
    notes = ("Values and regret in ticks of expected life; states with a significant best answer.",)
    return table(columns, rows, title="Regret on labelled states", notes=notes)
