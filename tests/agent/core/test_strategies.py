"""Rule-based baselines: what each proposes (pure logic; the guard still decides)."""

from __future__ import annotations

import dataclasses

import pytest

from agent.core.records import Balances, Observation, RentStatus
from agent.core.strategies import RULE_STRATEGIES, RuleDecider


def obs(price: float = 2.0, paid: int = 1, tick: int = 5, risk: int = 10 * 10**18) -> Observation:
    return Observation(
        tick=tick,
        block=10 + tick,
        timestamp=1_700_000_000,
        balances=Balances(native=10**18, stable=400 * 10**6, risk=risk),
        reserve_stable=int(100_000 * 10**6 * price),
        reserve_risk=100_000 * 10**18,
        price=price,
        gas_price=10**9,
        rent=RentStatus(amount=5 * 10**6, period_ticks=10, age=tick, paid_periods=paid),
        stable_decimals=6,
        risk_decimals=18,
    )


@pytest.mark.parametrize("strategy", RULE_STRATEGIES)
def test_every_rule_pays_rent_that_is_owed(strategy: str):
    decision = RuleDecider(strategy).decide(obs(paid=0), (2.0, 2.0))
    assert (decision.action, decision.valid) == ("pay_rent", True)
    assert decision.model == f"rule:{strategy}" and decision.prompt  # recorded like a model's


def test_momentum_follows_the_trend():
    rule = RuleDecider("momentum")
    assert rule.decide(obs(price=2.2), (2.0, 2.1)).action == "buy_risk"
    assert rule.decide(obs(price=1.8), (2.0, 1.9)).action == "sell_risk"
    assert rule.decide(obs(price=2.0), (2.0, 2.0)).action == "hold"
    assert rule.decide(obs(price=2.0), ()).action == "hold"


def test_mean_reversion_buys_low_sells_high_and_trims_a_heavy_risk_bag():
    rule = RuleDecider("mean_reversion")
    assert rule.decide(obs(price=1.8), (2.0, 2.0, 2.0)).action == "buy_risk"
    assert rule.decide(obs(price=2.2), (2.0, 2.0, 2.0)).action == "sell_risk"
    heavy = rule.decide(obs(price=2.0, risk=1000 * 10**18), (2.0, 2.0, 2.0))
    assert (heavy.action, heavy.reason) == ("sell_risk", "too much RISK")


def test_random_is_reproducible_by_seed_and_hold_holds():
    first = [RuleDecider("random", seed=7).decide(obs(tick=t), ()).action for t in range(1)]
    runs = [
        [d.decide(obs(), ()).action for _ in range(20)]
        for d in (RuleDecider("random", 7), RuleDecider("random", 7))
    ]
    assert runs[0] == runs[1] and len(set(runs[0])) > 1 and first[0] == runs[0][0]
    assert RuleDecider("hold").decide(obs(), (1.0,)).action == "hold"


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="'yolo' is not known"):
        RuleDecider("yolo")


def test_rent_owed_beyond_the_stable_held_is_raised_from_risk_then_the_pool():
    broke = obs(paid=0)
    broke = dataclasses.replace(broke, balances=Balances(native=10**18, stable=10**6, risk=10**18))
    assert RuleDecider("hold").decide(broke, ()).action == "sell_risk"
    pooled = dataclasses.replace(
        broke, balances=Balances(native=10**18, stable=10**6, risk=0, lp=10**18)
    )
    assert RuleDecider("momentum").decide(pooled, ()).action == "remove_liquidity"


def test_the_liquidity_provider_buys_risk_then_deposits_then_rests():
    rule = RuleDecider("liquidity")
    cash_only = obs(risk=0)
    assert rule.decide(cash_only, ()).action == "buy_risk"
    assert rule.decide(obs(risk=100 * 10**18), ()).action == "add_liquidity"
    supply = 10**24
    invested = dataclasses.replace(
        obs(risk=0),
        balances=Balances(native=10**18, stable=100 * 10**6, risk=0, lp=supply // 100),
        lp_supply=supply,
    )  # a 1 % share of a pool worth 400 000: far more than the wallet
    assert rule.decide(invested, ()).action == "hold"
    short = dataclasses.replace(
        invested, balances=dataclasses.replace(invested.balances, stable=5 * 10**6)
    )
    assert rule.decide(short, ()).action == "remove_liquidity"
