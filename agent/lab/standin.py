"""A cheap stand-in for a generation: its answers as a table of what it saw, measured to match.

Labelling values every answer by living a continuation policy on for a horizon, tens of
thousands of decisions per state batch: the model itself is far too slow to be that policy on
a CPU. The stand-in is a table fitted to the model's own decisions: each decision's situation
(where the price stood against its recent median, how much of its worth was RISK, whether it
had a pool share, whether it owed rent and could pay it) maps to the answer the model gave
most often there. Where a situation was never seen: the most frequent answer in the same
situation without the pool share, else with the same gap, else overall. How well it stands in
is measured on decisions of lives it was not fitted to: the share it answers the same
(`agreement`).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.core.decider import Decider
from agent.core.prompt import RECENT_TICKS, WELL_OFF, decision_from_text, price_gap
from agent.core.records import Decision, Observation, observation_from
from agent.core.strategies import RULE_STRATEGIES, RuleDecider
from agent.errors import ConfigError

# The gap's edges (a fraction of the recent median): below -4 %, -4..-2, -2..-1, -1..+1, ...
EDGES = (-0.04, -WELL_OFF, -0.01, 0.01, WELL_OFF, 0.04)
PREFIX = "standin:"  # a stand-in named as a strategy: "standin:PATH"

# gap bin (-1: no gap yet), RISK's share of the worth (0: under 1 %, 1: to 60 %, 2: more),
# holds a pool share, rent (0: none owed, 1: owed and the STABLE covers it, 2: owed, it does not)
Situation = tuple[int, int, bool, int]


def gap_bin(gap: float | None) -> int:
    if gap is None:
        return -1
    return sum(gap >= edge for edge in EDGES)


def situation(obs: Observation, recent_prices: Sequence[float]) -> Situation:
    """What the table looks at, from what the model was shown."""
    gap = price_gap(obs.price, tuple(recent_prices)) if recent_prices else None
    worth_risk = obs.balances.risk / 10**obs.risk_decimals * obs.price
    worth_stable = obs.balances.stable / 10**obs.stable_decimals
    share = worth_risk / max(worth_stable + worth_risk, 1e-9)
    risk = 0 if share < 0.01 else 1 if share <= 0.6 else 2
    rent = 0 if not obs.rent.arrears else 1 if obs.balances.stable >= obs.rent.amount_due else 2
    return gap_bin(gap), risk, obs.balances.lp > 0, rent


def decisions(records: Sequence[Mapping[str, Any]]) -> list[tuple[Situation, str]]:
    """Each tick of a life (its records, oldest first): the situation and the answer given."""
    prices: list[float] = []
    out = []
    for r in records:
        obs = observation_from(dict(r["observation"]))
        out.append((situation(obs, prices[-RECENT_TICKS:]), _answer(r["decision"])))
        prices.append(obs.price)
    return out


def lived_decisions(lives: Sequence[Path]) -> list[list[tuple[Situation, str]]]:
    """Each kept life's decisions (its data dir's store), in the order of the sorted dirs."""
    from agent.runtime.store import Store

    out = []
    for life in sorted(lives):
        path = life / "state.sqlite"
        if not path.is_file():
            raise ConfigError(f"--lives {life} has no state.sqlite (expected an agent data dir)")
        with Store(path, durable=False) as store:
            out.append(decisions(store.tick_records()))
    return out


def labelled_decisions(labels: Path) -> list[list[tuple[Situation, str]]]:
    """Each significant labelled state's situation and best answer (one group per state)."""
    from agent.lab.value_fit import read_labels

    out = []
    for row in read_labels(labels):
        if not row["significant"]:
            continue
        if not row.get("situation"):
            raise ConfigError(
                f"labels {labels}: a row without a situation (expected labels written by this "
                "version of forager label)"
            )
        bin_, risk, pool, rent = row["situation"]
        values = [c["value"] for c in row["candidates"]]
        best = row["candidates"][values.index(max(values))]
        where: Situation = (int(bin_), int(risk), bool(pool), int(rent))
        out.append([(where, f"{best['action']} {best['amount_pct']}")])
    if not out:
        raise ConfigError(f"labels {labels} have no state with a significant best answer")
    return out


def _answer(decision: Mapping[str, Any]) -> str:
    return f"{decision['action']} {decision['amount_pct']}"


@dataclass(frozen=True)
class StandIn:
    """The table, its fallbacks, and what it was fitted to."""

    name: str
    table: dict[str, str]  # situation (as "bin,risk,pool,rent") -> answer
    by_holding: dict[str, str]  # situation without the pool ("bin,risk,rent") -> answer
    by_gap: dict[str, str]  # gap bin -> answer
    default: str
    fitted_on: int  # decisions

    def answer(self, where: Situation) -> str:
        return (
            self.table.get(_key(where))
            or self.by_holding.get(_holding(where))
            or self.by_gap.get(str(where[0]))
            or self.default
        )

    def agreement(self, pairs: Sequence[tuple[Situation, str]], action_only: bool = False) -> float:
        """The share of `pairs` it answers the same as the model did (with `action_only`: the
        same action, whatever the size)."""
        if not pairs:
            raise ConfigError("agreement needs decisions to compare with")
        if action_only:
            return sum(_action(self.answer(s)) == _action(a) for s, a in pairs) / len(pairs)
        return sum(self.answer(s) == a for s, a in pairs) / len(pairs)

    def save(self, path: Path) -> None:
        data = {k: getattr(self, k) for k in _FIELDS}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> StandIn:
        try:
            data = json.loads(path.read_text())
            return cls(
                name=str(data["name"]),
                table={str(k): str(v) for k, v in data["table"].items()},
                by_holding={str(k): str(v) for k, v in data["by_holding"].items()},
                by_gap={str(k): str(v) for k, v in data["by_gap"].items()},
                default=str(data["default"]),
                fitted_on=int(data["fitted_on"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"stand-in {path} is not readable (expected the JSON `fit` writes): {exc}"
            ) from exc


_FIELDS = ("name", "table", "by_holding", "by_gap", "default", "fitted_on")


def _key(where: Situation) -> str:
    return ",".join(str(int(x)) for x in where)


def _holding(where: Situation) -> str:
    """The situation without the pool share: what a policy never seen in the pool falls back on."""
    return _key((where[0], where[1], where[3]))  # type: ignore[arg-type]


def _action(answer: str) -> str:
    return answer.split(maxsplit=1)[0]


def ceiling(pairs: Sequence[tuple[Situation, str]]) -> float:
    """The most of `pairs` any table of situations agrees with: each situation's most frequent
    answer, counted on the very decisions it is taken from. Where a model gives several answers
    in one situation (a size that varies, sampled or led by what the situation does not show),
    no stand-in of this kind matches it more often."""
    if not pairs:
        raise ConfigError("a ceiling needs decisions")
    cells: dict[Situation, Counter[str]] = {}
    for where, answer in pairs:
        cells.setdefault(where, Counter())[answer] += 1
    return sum(max(c.values()) for c in cells.values()) / len(pairs)


def _mode(answers: Iterable[str]) -> str:
    counts = Counter(answers)
    return min(counts, key=lambda a: (-counts[a], a))  # ties: alphabetical, reproducible


def fit(name: str, pairs: Sequence[tuple[Situation, str]]) -> StandIn:
    """The table of the most frequent answer per situation (and per gap, and overall)."""
    if not pairs:
        raise ConfigError(f"no decisions to fit a stand-in for {name} to")
    cells: dict[str, list[str]] = {}
    holdings: dict[str, list[str]] = {}
    gaps: dict[str, list[str]] = {}
    for where, answer in pairs:
        cells.setdefault(_key(where), []).append(answer)
        holdings.setdefault(_holding(where), []).append(answer)
        gaps.setdefault(str(where[0]), []).append(answer)
    return StandIn(
        name=name,
        table={k: _mode(v) for k, v in sorted(cells.items())},
        by_holding={k: _mode(v) for k, v in sorted(holdings.items())},
        by_gap={k: _mode(v) for k, v in sorted(gaps.items())},
        default=_mode(a for _, a in pairs),
        fitted_on=len(pairs),
    )


class StandInDecider:
    """The stand-in as a decider: the table's answer to what it is shown."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.standin.name}"

    def close(self) -> None:
        """Nothing to free."""

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        action, pct = self.standin.answer(situation(obs, recent_prices)).split()
        raw = json.dumps({"action": action, "amount_pct": int(pct)})
        return decision_from_text(raw, self.name, obs, recent_prices)


@functools.cache
def _loaded(path: str) -> StandIn:
    return StandIn.load(Path(path))


def policy(name: str, seed: int = 0) -> Decider:
    """A rule strategy by its name, or a stand-in as `standin:PATH` (the JSON `fit` wrote)."""
    if name.startswith(PREFIX):
        return StandInDecider(_loaded(name[len(PREFIX) :]))
    return RuleDecider(name, seed=seed)


def check_policy(name: str) -> None:
    """Refuse a name that is neither a rule strategy nor a readable stand-in."""
    if name.startswith(PREFIX):
        _loaded(name[len(PREFIX) :])
    elif name not in RULE_STRATEGIES:
        raise ConfigError(
            f"{name!r} is not a rule strategy (expected one of {RULE_STRATEGIES}, or "
            f"{PREFIX}PATH for a generation's stand-in)"
        )
