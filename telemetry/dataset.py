"""Experience records → training data in the Hugging Face TRL formats.

Reads the tick records agents stored (each data dir's `state.sqlite`, schema version 1), one
life at a time, and writes JSON lines:

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
of a step is the discounted sum of rewards over the rest of the life. Output is deterministic:
data dirs are read in sorted order and ticks in order. Everything but `dpo` streams one life at a
time; `dpo` keeps a compact row per step to pair across lives.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

FORMATS = ("sft", "kto", "dpo", "curated", "trajectories")
SCHEMA_VERSION = 2
# Versions this reader understands: 2 added liquidity (pool shares) beside the same fields.
READABLE_VERSIONS = (1, 2)


class DatasetError(ValueError):
    """A data dir or record cannot be turned into training data."""


@dataclass(frozen=True)
class Step:
    """One decision of one life, with what came of it."""

    tick: int
    prompt: list[dict[str, str]]
    completion: str
    action: str
    valid: bool
    reward: float
    ret: float
    bucket: tuple[int, int, int]
    refused: bool = False  # the guard vetoed it: what followed is not the decision's doing


@dataclass(frozen=True)
class Life:
    """One agent's whole recorded life."""

    agent_id: str
    generation: int
    strategy: str
    steps: list[Step]
    died: bool
    final_net_worth: int

    @property
    def total_return(self) -> float:
        return sum(step.reward for step in self.steps)


def _records(data_dir: Path) -> Iterator[dict[str, Any]]:
    path = data_dir / "state.sqlite"
    if not path.is_file():
        raise DatasetError(
            f"data dir {data_dir} has no state.sqlite (expected an agent's data dir)"
        )
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        for (text,) in db.execute("SELECT record FROM ticks ORDER BY tick"):
            record = json.loads(text)
            if record.get("schema_version") not in READABLE_VERSIONS:
                raise DatasetError(
                    f"{path}: tick {record.get('tick')} has schema version "
                    f"{record.get('schema_version')}, expected one of {READABLE_VERSIONS}"
                )
            yield record


def _bucket(record: dict[str, Any], previous_price: float | None) -> tuple[int, int, int]:
    """A coarse state: rent owed?, share of wealth in risk (0, <50 %, >=50 %), price direction."""
    obs = record["observation"]
    owed = int(obs["rent"]["paid_periods"] <= obs["rent"]["age"] // obs["rent"]["period_ticks"])
    stable, risk = obs["balances"]["stable"], obs["balances"]["risk"]
    risk_value = risk * obs["reserve_stable"] // max(1, obs["reserve_risk"])
    worth = stable + risk_value
    share = 0 if risk_value == 0 else (1 if 2 * risk_value < worth else 2)
    price = obs["price"]
    trend = 0 if previous_price is None else (price > previous_price) - (price < previous_price)
    return owed, share, trend


def read_life(data_dir: Path, gamma: float = 0.9) -> Life | None:
    """The life stored in `data_dir`, with discounted returns; None if it has no ticks."""
    records = list(_records(data_dir))
    if not records:
        return None
    returns = [0.0] * len(records)
    following = 0.0
    for i in range(len(records) - 1, -1, -1):
        following = float(records[i]["fitness_delta"]) + gamma * following
        returns[i] = following
    steps, previous = [], None
    for record, ret in zip(records, returns, strict=True):
        decision = record["decision"]
        steps.append(
            Step(
                tick=int(record["tick"]),
                prompt=[dict(m) for m in decision.get("prompt", [])],
                completion=str(decision.get("raw", "")),
                action=str(decision["action"]),
                valid=bool(decision["valid"]),
                reward=float(record["fitness_delta"]),
                ret=ret,
                bucket=_bucket(record, previous),
                refused=record.get("veto") is not None,
            )
        )
        previous = float(record["observation"]["price"])
    last = records[-1]
    return Life(
        agent_id=str(last["agent_id"]),
        generation=int(last["generation"]),
        strategy=str(last.get("strategy", "llm")),
        steps=steps,
        died=not last["alive"],
        final_net_worth=int(last["net_worth_after"]),
    )


def select_lives(
    data_dirs: Sequence[Path],
    *,
    gamma: float = 0.9,
    top_k: int | None = None,
    min_return: float | None = None,
    generation: int | None = None,
    strategy: str | None = None,
) -> Iterator[Life]:
    """Lives in sorted order, filtered; `top_k` keeps the longest-lived, then the richest."""
    dirs = sorted(set(data_dirs))
    if top_k is not None:
        ranked = sorted(dirs, key=_rank, reverse=True)[:top_k]
        dirs = sorted(ranked)
    for data_dir in dirs:
        life = read_life(data_dir, gamma)
        if life is None:
            continue
        if generation is not None and life.generation != generation:
            continue
        if strategy is not None and life.strategy != strategy:
            continue
        if min_return is not None and life.total_return < min_return:
            continue
        yield life


def _rank(data_dir: Path) -> tuple[int, int]:
    path = data_dir / "state.sqlite"
    if not path.is_file():
        raise DatasetError(
            f"data dir {data_dir} has no state.sqlite (expected an agent's data dir)"
        )
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        count, last = db.execute(
            "SELECT COUNT(*), (SELECT record FROM ticks ORDER BY tick DESC LIMIT 1) FROM ticks"
        ).fetchone()
    worth = int(json.loads(last)["net_worth_after"]) if last else 0
    return int(count), worth


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def sft_rows(lives: Iterable[Life]) -> Iterator[dict[str, Any]]:
    for life in lives:
        for step in life.steps:
            if step.valid and step.prompt:
                yield {"prompt": step.prompt, "completion": _assistant(step.completion)}


def curated_rows(lives: Iterable[Life], hold_share: float = 1 / 3) -> Iterator[dict[str, Any]]:
    """The decisions that did better than the others made at the same tick; holds capped.

    The baseline of a step is the mean return of every step at its tick among `lives`, so the
    lives passed together should share one market (one fleet, or one seed of a population):
    rent and the market's own moves then cancel, and what is left is what the decision did.
    A decision the guard refused did nothing, so it teaches nothing and is left out. Holds are
    kept evenly spread, at most `hold_share` of the rows.
    """
    lives = list(lives)
    at_tick: dict[int, list[float]] = defaultdict(list)
    for life in lives:
        for step in life.steps:
            at_tick[step.tick].append(step.ret)
    baseline = {tick: sum(rets) / len(rets) for tick, rets in at_tick.items()}
    paid = [
        step
        for life in lives
        for step in life.steps
        if step.valid and not step.refused and step.prompt and step.ret > baseline[step.tick] + 1e-9
    ]
    holds = [s for s in paid if s.action == "hold"]
    others = len(paid) - len(holds)
    room = int(others * hold_share / (1 - hold_share)) if others else len(holds)
    keep = {id(s) for s in holds[:: max(1, -(-len(holds) // room))]} if room else set()
    for step in paid:
        if step.action != "hold" or id(step) in keep:
            yield {"prompt": step.prompt, "completion": _assistant(step.completion)}


def kto_rows(lives: Iterable[Life]) -> Iterator[dict[str, Any]]:
    for life in lives:
        for step in life.steps:
            if step.prompt:
                label = step.valid and step.ret > 0
                yield {
                    "prompt": step.prompt,
                    "completion": _assistant(step.completion),
                    "label": label,
                }


def dpo_rows(lives: Iterable[Life]) -> Iterator[dict[str, Any]]:
    """Pair the best-returning action against the worst in each comparable state bucket."""
    buckets: dict[tuple[int, int, int], dict[str, list[Step]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for life in lives:
        for step in life.steps:
            if step.valid and step.prompt:
                buckets[step.bucket][step.action].append(step)
    for bucket in sorted(buckets):
        by_action = buckets[bucket]
        if len(by_action) < 2:
            continue
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


def trajectory_rows(lives: Iterable[Life]) -> Iterator[dict[str, Any]]:
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


def export(lives: Iterable[Life], fmt: str, out: TextIO) -> int:
    """Write `fmt` rows for `lives` as JSON lines; return how many."""
    if fmt not in _ROWS:
        raise DatasetError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    count = 0
    for row in _ROWS[fmt](lives):
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
