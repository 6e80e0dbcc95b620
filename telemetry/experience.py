"""Experience: a life's tick records as the steps a model can learn from.

A tick record is the experience record of one decision: what the agent saw, what it was asked
and answered, what the guard allowed and what came of it, with the tick's reward
(`fitness_delta`: the change in runway, with the death penalty). The agent writes these records
(`agent.core.records.TickRecord`, in this schema version) and stores them; `experience` reads one
life's records back, checks their version, and gives every step its discounted return: the
reward plus `gamma` times the next step's return, to the end of the life.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from telemetry.errors import DatasetError

# 2: liquidity (Balances.lp, Observation.lp_supply, liquidity actions) beside the same fields.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # what `experience` understands

Record = Mapping[str, Any]  # one tick record as stored


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
class Experience:
    """One agent's whole recorded life, as steps."""

    agent_id: str
    generation: int
    strategy: str
    steps: list[Step]
    died: bool
    final_net_worth: int

    @property
    def total_return(self) -> float:
        return sum(step.reward for step in self.steps)


def check_version(record: Record, source: str) -> None:
    """Refuse a record written in a schema this reader does not know (`source` names it)."""
    version = record.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise DatasetError(
            f"{source}: tick {record.get('tick')} has schema version {version}, "
            f"expected one of {READABLE_VERSIONS}"
        )


def experience(
    records: Iterable[Record], gamma: float = 0.9, source: str = ""
) -> Experience | None:
    """One life's experience from its tick records, oldest first; None if it has no ticks."""
    records = list(records)
    for record in records:
        check_version(record, source)
    if not records:
        return None
    returns = _returns([float(r["fitness_delta"]) for r in records], gamma)
    prices = [None, *(float(r["observation"]["price"]) for r in records[:-1])]
    steps = [
        _step(record, ret, previous)
        for record, ret, previous in zip(records, returns, prices, strict=True)
    ]
    last = records[-1]
    return Experience(
        agent_id=str(last["agent_id"]),
        generation=int(last["generation"]),
        strategy=str(last.get("strategy", "llm")),
        steps=steps,
        died=not last["alive"],
        final_net_worth=int(last["net_worth_after"]),
    )


def _returns(rewards: list[float], gamma: float) -> list[float]:
    """Each step's discounted return: its reward plus gamma times the next step's return."""
    returns = [0.0] * len(rewards)
    following = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        following = rewards[i] + gamma * following
        returns[i] = following
    return returns


def _step(record: Record, ret: float, previous_price: float | None) -> Step:
    decision = record["decision"]
    return Step(
        tick=int(record["tick"]),
        prompt=[dict(m) for m in decision.get("prompt", [])],
        completion=str(decision.get("raw", "")),
        action=str(decision["action"]),
        valid=bool(decision["valid"]),
        reward=float(record["fitness_delta"]),
        ret=ret,
        bucket=_bucket(record, previous_price),
        refused=record.get("veto") is not None,
    )


def _bucket(record: Record, previous_price: float | None) -> tuple[int, int, int]:
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
