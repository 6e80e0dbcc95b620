"""Experience → training data in the Hugging Face TRL formats.

Takes lives as `telemetry.experience.Experience` (a life's tick records, read back by whoever
stored them) and writes JSON lines:

- `sft`: `{"prompt": [messages], "completion": [assistant message]}` for valid decisions;
- `kto`: the same plus `"label"`: whether the step's discounted return was positive;
- `dpo`: `{"prompt", "chosen", "rejected"}` pairs of different actions taken in comparable
  states (same bucket of rent status, risk share and price direction) whose returns differed;
- `curated`: SFT rows of only the decisions whose return beat the mean of all decisions at the
  same tick (pass lives that shared a market), refused ones left out, with `hold` capped at a
  third of the rows so that a model does not learn to answer `hold` to everything;
- `trajectories`: one row per life, `{"messages", "rewards", "reward", ...}` with the reward of
  every step (ART / verifiers style).

Rewards are each tick's fitness delta (change in runway, with the death penalty), and the return
of a step is the discounted sum of rewards over the rest of the life. Output is deterministic
for lives given in a deterministic order. Everything but `dpo` and `curated` streams one life at
a time; `dpo` keeps a compact row per step to pair across lives, `curated` the lives it judges
together.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from telemetry.errors import DatasetError
from telemetry.experience import Experience, Step

FORMATS = ("sft", "kto", "dpo", "curated", "trajectories")


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def sft_rows(lives: Iterable[Experience]) -> Iterator[dict[str, Any]]:
    for life in lives:
        for step in life.steps:
            if step.valid and step.prompt:
                yield {"prompt": step.prompt, "completion": _assistant(step.completion)}


def curated_rows(
    lives: Iterable[Experience], hold_share: float = 1 / 3
) -> Iterator[dict[str, Any]]:
    """The decisions that did better than the others made at the same tick; holds capped.

    The baseline of a step is the mean return of every step at its tick among `lives`, so the
    lives passed together should share one market (one fleet, or one seed of a population):
    rent and the market's own moves then cancel, and what is left is what the decision did.
    A decision the guard refused did nothing, so it teaches nothing and is left out. Holds are
    kept evenly spread, at most `hold_share` of the rows.
    """
    lives = list(lives)
    baseline = _tick_baselines(lives)
    paid = [
        step
        for life in lives
        for step in life.steps
        if step.valid and not step.refused and step.prompt and step.ret > baseline[step.tick] + 1e-9
    ]
    keep = _holds_kept(paid, hold_share)
    for step in paid:
        if step.action != "hold" or id(step) in keep:
            yield {"prompt": step.prompt, "completion": _assistant(step.completion)}


def _tick_baselines(lives: list[Experience]) -> dict[int, float]:
    """The mean return of every step taken at each tick."""
    at_tick: dict[int, list[float]] = defaultdict(list)
    for life in lives:
        for step in life.steps:
            at_tick[step.tick].append(step.ret)
    return {tick: sum(rets) / len(rets) for tick, rets in at_tick.items()}


def _holds_kept(paid: list[Step], hold_share: float) -> set[int]:
    """The ids of the holds to keep: evenly spread, at most `hold_share` of all rows."""
    holds = [s for s in paid if s.action == "hold"]
    others = len(paid) - len(holds)
    room = int(others * hold_share / (1 - hold_share)) if others else len(holds)
    return {id(s) for s in holds[:: max(1, -(-len(holds) // room))]} if room else set()


def kto_rows(lives: Iterable[Experience]) -> Iterator[dict[str, Any]]:
    for life in lives:
        for step in life.steps:
            if step.prompt:
                label = step.valid and step.ret > 0
                yield {
                    "prompt": step.prompt,
                    "completion": _assistant(step.completion),
                    "label": label,
                }


def dpo_rows(lives: Iterable[Experience]) -> Iterator[dict[str, Any]]:
    """Pair the best-returning action against the worst in each comparable state bucket."""
    buckets: dict[tuple[int, int, int], dict[str, list[Step]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for life in lives:
        for step in life.steps:
            if step.valid and step.prompt:
                buckets[step.bucket][step.action].append(step)
    for bucket in sorted(buckets):
        yield from _pairs(buckets[bucket])


def _pairs(by_action: dict[str, list[Step]]) -> Iterator[dict[str, Any]]:
    """One bucket's pairs: the best action's steps against the worst's, best first."""
    if len(by_action) < 2:
        return
    means = {a: sum(s.ret for s in steps) / len(steps) for a, steps in by_action.items()}
    ordered = sorted(means, key=lambda a: (means[a], a))
    worst, best = ordered[0], ordered[-1]
    chosen = sorted(by_action[best], key=lambda s: (-s.ret, s.tick))
    rejected = sorted(by_action[worst], key=lambda s: (s.ret, s.tick))
    for good, bad in zip(chosen, rejected, strict=False):
        if good.ret > bad.ret:
            yield {
                "prompt": good.prompt,
                "chosen": _assistant(good.completion),
                "rejected": _assistant(bad.completion),
            }


def trajectory_rows(lives: Iterable[Experience]) -> Iterator[dict[str, Any]]:
    for life in lives:
        steps = [s for s in life.steps if s.prompt]
        if not steps:
            continue
        messages = [m for m in steps[0].prompt if m["role"] == "system"]
        for step in steps:
            messages.extend(m for m in step.prompt if m["role"] != "system")
            messages.extend(_assistant(step.completion))
        yield {
            "messages": messages,
            "rewards": [s.reward for s in steps],
            "reward": life.total_return,
            "agent_id": life.agent_id,
            "generation": life.generation,
            "strategy": life.strategy,
            "lifetime": len(life.steps),
            "died": life.died,
        }


_ROWS = {
    "sft": sft_rows,
    "kto": kto_rows,
    "dpo": dpo_rows,
    "curated": curated_rows,
    "trajectories": trajectory_rows,
}


def export(lives: Iterable[Experience], fmt: str, out: TextIO) -> int:
    """Write `fmt` rows for `lives` as JSON lines; return how many."""
    if fmt not in _ROWS:
        raise DatasetError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    count = 0
    for row in _ROWS[fmt](lives):
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
