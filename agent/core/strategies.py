"""Rule-based deciders: the baselines a model must beat, and fast deciders for soaks.

They need no model and answer at once. Like the model they only propose: the policy guard
decides what is allowed. Each answer goes through the same parser as the model's output, so
a baseline's decision is recorded exactly like a model's.
"""

from __future__ import annotations

import json
import random
import statistics

from agent.core.prompt import decision_from_text
from agent.core.records import Decision, Observation
from agent.core.survival import lp_worth, net_worth

RULE_STRATEGIES = ("hold", "momentum", "mean_reversion", "random", "liquidity")
_TREND = 0.01  # a 1 % move over the recent window counts as a trend
_STRETCH = 0.02  # mean reversion trades a 2 % gap between the price and its recent median
_MR_PCT = 25
_TOO_RICH_IN_RISK = 0.6  # share of net worth in RISK above which mean reversion trims it
_POOLED = 0.5  # share of net worth a passive liquidity provider keeps in the pool
_RENT_CUSHION = 3  # periods of rent a liquidity provider keeps in STABLE


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
            return _raise_rent(obs)
        if self.strategy == "hold":
            return "hold", 10, "hold and pay rent"
        if self.strategy == "random":
            action = self._rng.choice(("hold", "buy_risk", "sell_risk"))
            return action, self._rng.choice((10, 25)), "coin flip"
        if self.strategy == "liquidity":
            return _provide_liquidity(obs)
        if not prices:
            return "hold", 10, "no history yet"
        if self.strategy == "momentum":
            return _follow_trend(obs, prices)
        return _revert_to_median(obs, prices)


def _raise_rent(obs: Observation) -> tuple[str, int, str]:
    """Rent is owed: pay it, or raise the STABLE from RISK, then from the pool."""
    b = obs.balances
    if b.stable >= obs.rent.amount_due:
        return "pay_rent", 100, "rent is owed"
    if b.risk:
        return "sell_risk", 100, "sell RISK to pay the rent"
    if b.lp:
        return "remove_liquidity", 25, "take back a slice of the pool to pay the rent"
    return "pay_rent", 100, "rent is owed"


def _provide_liquidity(obs: Observation) -> tuple[str, int, str]:
    """A passive liquidity provider: half its worth in the pool, a few rents in STABLE.

    Adding takes both tokens, so it buys RISK first; when STABLE runs short of the rent it
    takes a slice of the pool back and sells the RISK that comes with it.
    """
    b, rent = obs.balances, obs.rent.amount
    worth = net_worth(b, obs.reserve_stable, obs.reserve_risk, obs.lp_supply)
    pooled = lp_worth(b, obs.reserve_stable, obs.reserve_risk, obs.lp_supply)
    risk_value = b.risk * obs.reserve_stable // obs.reserve_risk if obs.reserve_risk else 0
    if b.stable < _RENT_CUSHION * rent:
        if risk_value >= rent:
            return "sell_risk", 100, "raise STABLE for the rent"
        if b.lp:
            return "remove_liquidity", 25, "take back a slice for the rent"
        return "hold", 10, "nothing to raise the rent from"
    if worth <= 0 or pooled >= _POOLED * worth:
        return "hold", 10, "the pool earns the fees"
    if 2 * risk_value < b.stable - _RENT_CUSHION * rent:
        return "buy_risk", 50, "RISK to pair with STABLE"
    return "add_liquidity", 100, "earn the pool's fee"


def _follow_trend(obs: Observation, prices: tuple[float, ...]) -> tuple[str, int, str]:
    move = obs.price / prices[0] - 1
    if move > _TREND:
        return "buy_risk", 10, f"price up {move:.1%}"
    if move < -_TREND:
        return "sell_risk", 25, f"price down {move:.1%}"
    return "hold", 10, "no trend"


def _revert_to_median(obs: Observation, prices: tuple[float, ...]) -> tuple[str, int, str]:
    """Buy below the recent median, sell above it, and keep RISK a minority of the worth."""
    median = statistics.median(prices)
    worth = net_worth(obs.balances, obs.reserve_stable, obs.reserve_risk)
    risk_value = worth - obs.balances.stable
    if worth > 0 and risk_value / worth > _TOO_RICH_IN_RISK:
        return "sell_risk", 25, "too much RISK"
    if obs.price < median * (1 - _STRETCH):
        return "buy_risk", _MR_PCT, "below the median"
    if obs.price > median * (1 + _STRETCH):
        return "sell_risk", _MR_PCT, "above the median"
    return "hold", 10, "near the median"
