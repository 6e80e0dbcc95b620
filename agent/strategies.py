"""Rule-based deciders: the baselines a model must beat, and fast deciders for soaks.

They need no model and answer at once. Like the model they only propose: the policy guard
decides what is allowed. Each answer goes through the same parser as the model's output, so
a baseline's decision is recorded exactly like a model's.
"""

from __future__ import annotations

import json
import random
import statistics

from agent.prompt import decision_from_text
from agent.records import Decision, Observation
from agent.survival import net_worth

RULE_STRATEGIES = ("hold", "momentum", "mean_reversion", "random")
_TREND = 0.01  # a 1 % move over the recent window counts as a trend
_TOO_RICH_IN_RISK = 0.6  # share of net worth in RISK above which mean reversion trims it


class RuleDecider:
    """One of `RULE_STRATEGIES`; `seed` makes `random` reproducible."""

    def __init__(self, strategy: str, seed: int = 0) -> None:
        if strategy not in RULE_STRATEGIES:
            expected = ", ".join(("llm", *RULE_STRATEGIES))
            raise ValueError(f"strategy {strategy!r} is not known (expected one of: {expected})")
        self.strategy = strategy
        self._rng = random.Random(seed)  # noqa: S311 -- a reproducible baseline, not a secret

    @property
    def name(self) -> str:
        return f"rule:{self.strategy}"

    def close(self) -> None:
        """Nothing to free."""

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        action, pct, reason = self._choose(obs, recent_prices)
        raw = json.dumps({"action": action, "amount_pct": pct, "reason": reason})
        return decision_from_text(raw, self.name, obs, recent_prices)

    def _choose(self, obs: Observation, prices: tuple[float, ...]) -> tuple[str, int, str]:
        if obs.rent.arrears:
            return "pay_rent", 100, "rent is owed"
        if self.strategy == "hold":
            return "hold", 10, "hold and pay rent"
        if self.strategy == "random":
            action = self._rng.choice(("hold", "buy_risk", "sell_risk"))
            return action, self._rng.choice((10, 25)), "coin flip"
        if not prices:
            return "hold", 10, "no history yet"
        if self.strategy == "momentum":
            move = obs.price / prices[0] - 1
            if move > _TREND:
                return "buy_risk", 10, f"price up {move:.1%}"
            if move < -_TREND:
                return "sell_risk", 25, f"price down {move:.1%}"
            return "hold", 10, "no trend"
        # mean reversion: buy below the recent median, sell above it, keep RISK a minority
        median = statistics.median(prices)
        worth = net_worth(obs.balances, obs.reserve_stable, obs.reserve_risk)
        risk_value = worth - obs.balances.stable
        if worth > 0 and risk_value / worth > _TOO_RICH_IN_RISK:
            return "sell_risk", 25, "too much RISK"
        if obs.price < median * (1 - _TREND):
            return "buy_risk", 10, "below the median"
        if obs.price > median * (1 + _TREND):
            return "sell_risk", 10, "above the median"
        return "hold", 10, "near the median"
