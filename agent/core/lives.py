"""One life, summed up: how long it lasted, what it ended with, what it paid and did.

The lab's paper lives (calibrate, evaluate, evolve) and a population's leaderboard (a fleet's
stores, or running agents asked over HTTP) describe a life with this one record. `life_from`
builds it from what a store holds: the life's tick records, as stored, and the store's meta.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.core.prompt import RECENT_TICKS, price_gap

Record = Mapping[str, Any]  # one tick record as stored (`TickRecord.to_dict()`)

# What a population knows of a life and a paper life does not: left out of the lab's reports.
_POPULATION_FIELDS = ("agent_id", "generation", "death_cause", "parent_id")
_PER_TICK_FIELDS = ("worth", "answers", "gaps")


@dataclass(frozen=True, kw_only=True)
class Life:
    """One agent's life; amounts in whole stable units."""

    strategy: str
    seed: int = 0  # the paper arena's seed (a fleet's members share their fleet's world)
    ticks_lived: int
    alive: bool
    final_worth: float  # at the end (or at death)
    worth: tuple[float, ...] = ()  # per tick lived
    trades: int = 0  # actions that went through (rent excluded)
    expected_life: float = 0.0  # ticks lived, plus the ticks the final net worth pays rent for
    rent_paid: float = 0.0  # paid to the landlord
    invalid: int = 0  # decisions the model got wrong (forced holds)
    name: str = ""  # who lived it: a fleet member, or a paper life's label (a model generation)
    actions: dict[str, int] = field(default_factory=dict)  # proposed, by kind
    # Per tick lived: the answer proposed ("buy_risk 25") and how far the price it saw was from
    # its recent median (None before there were recent prices): what timing is measured on.
    answers: tuple[str, ...] = ()
    gaps: tuple[float | None, ...] = ()
    agent_id: str = ""
    generation: int = 0
    death_cause: str | None = None
    parent_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The life as the lab's reports carry it: no per-tick series, no population fields."""
        data = dataclasses.asdict(self)
        for key in (*_PER_TICK_FIELDS, *_POPULATION_FIELDS):
            data.pop(key)
        return data


def life_from(records: Sequence[Record], meta: Mapping[str, str], name: str = "") -> Life | None:
    """The life a store holds (tick records oldest first, and its meta); None with no ticks."""
    if not records:
        return None
    last, cause = records[-1], meta.get("death_cause")
    scale = 10 ** int(last["observation"]["stable_decimals"])
    worth = tuple(float(r["net_worth_after"]) / scale for r in records)
    return Life(
        name=name,
        agent_id=str(meta.get("agent_id", "")),
        strategy=str(last["strategy"]),
        generation=int(last["generation"]),
        ticks_lived=len(records),
        alive=cause is None,
        final_worth=worth[-1],
        worth=worth,
        trades=sum(_traded(r) for r in records),
        expected_life=_expected_life(last, len(records), worth[-1], alive=cause is None),
        rent_paid=float(sum(_rent_paid(r) for r in records)) / scale,
        invalid=sum(not r["decision"]["valid"] for r in records),
        actions=dict(Counter(str(r["decision"]["action"]) for r in records)),
        answers=tuple(f"{r['decision']['action']} {r['decision']['amount_pct']}" for r in records),
        gaps=_gaps([float(r["observation"]["price"]) for r in records]),
        death_cause=cause,
        parent_id=meta.get("parent_id"),
    )


def _gaps(prices: Sequence[float]) -> tuple[float | None, ...]:
    """Each tick's price against the median of the ones before it, as the agent was shown it."""
    return tuple(
        price_gap(p, tuple(prices[max(0, t - RECENT_TICKS) : t])) if t else None
        for t, p in enumerate(prices)
    )


def _traded(record: Record) -> bool:
    """Whether the tick's action went through (a hold or the rent is not a trade)."""
    action = record["action"]
    kind = None if action is None else action["kind"]
    return kind not in (None, "hold", "pay_rent") and record["outcome"]["status"] == "ok"


def _rent_paid(record: Record) -> int:
    """Rent paid at this tick, in stable base units: the tick's own rent, or a pay_rent action."""
    paid, rent, action = 0, record["rent_outcome"], record["action"]
    if rent is not None and rent["status"] == "ok":
        paid += int(rent["amount_in"])
    if action is not None and action["kind"] == "pay_rent" and record["outcome"]["status"] == "ok":
        paid += int(record["outcome"]["amount_in"])
    return paid


def _expected_life(last: Record, ticks: int, final: float, *, alive: bool) -> float:
    """Ticks lived, plus the ticks of rent the final net worth would still pay for."""
    rent = last["observation"]["rent"]
    scale = 10 ** int(last["observation"]["stable_decimals"])
    per_tick = int(rent["amount"]) / scale / int(rent["period_ticks"])
    return ticks + (final / per_tick if alive and per_tick > 0 else 0.0)
