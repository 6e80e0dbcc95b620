"""Properties of the guard over any sequence of proposals (hypothesis)."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.policy import Limits, Spent, guard
from agent.core.records import Action, Balances, Decision, Observation, RentStatus
from wallets.dex import amount_out

RENT = 5_000_000
LIMITS = Limits(
    max_swap_pct=50,
    max_swap_stable=40_000_000,
    reserve_stable=2 * RENT,
    max_slippage_bps=100,
    deadline_s=120,
    window_hour_stable=90_000_000,
    window_day_stable=200_000_000,
)
ACTIONS = st.sampled_from(["hold", "buy_risk", "sell_risk", "pay_rent", "replicate", "drain"])
PROPOSAL = st.tuples(ACTIONS, st.integers(min_value=-50, max_value=500))
PRICE_MOVE = st.floats(min_value=0.8, max_value=1.25)


def start() -> Observation:
    return Observation(
        tick=0,
        block=1,
        timestamp=1_000,
        balances=Balances(native=10**19, stable=300_000_000, risk=40 * 10**18),
        reserve_stable=100_000 * 10**6,
        reserve_risk=50_000 * 10**18,
        price=2.0,
        gas_price=1,
        rent=RentStatus(amount=RENT, period_ticks=10, age=0, paid_periods=1),
        stable_decimals=6,
        risk_decimals=18,
    )


def apply(obs: Observation, action: Action, move: float) -> Observation:
    """Execute an approved action against a simulated pool and wallet."""
    b, rs, rr = obs.balances, obs.reserve_stable, obs.reserve_risk
    if action.kind == "swap" and action.sell == "stable":
        out = amount_out(action.amount_in, rs, rr)
        b = dataclasses.replace(b, stable=b.stable - action.amount_in, risk=b.risk + out)
        rs, rr = rs + action.amount_in, rr - out
    elif action.kind == "swap":
        out = amount_out(action.amount_in, rr, rs)
        b = dataclasses.replace(b, risk=b.risk - action.amount_in, stable=b.stable + out)
        rs, rr = rs - out, rr + action.amount_in
    elif action.kind == "pay_rent":
        b = dataclasses.replace(b, stable=b.stable - action.amount_in)
    rs = int(rs * move)  # the weather moves the price between ticks
    return dataclasses.replace(
        obs, tick=obs.tick + 1, balances=b, reserve_stable=rs, reserve_risk=rr
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(PROPOSAL, PRICE_MOVE), min_size=1, max_size=40))
def test_no_sequence_of_proposals_breaks_the_limits(steps):
    """Whatever is proposed: caps hold, the reserve stands, only known actions act."""
    obs, spent_total = start(), 0
    for (action, pct), move in steps:
        proposal = Decision(action=action, amount_pct=pct, reason="", valid=True)
        verdict = guard(proposal, obs, LIMITS, Spent(hour=spent_total, day=spent_total))
        if not isinstance(verdict, Action):
            continue
        assert verdict.kind in ("hold", "swap", "pay_rent")
        assert verdict.sell in (None, "stable", "risk") and verdict.buy in (None, "stable", "risk")
        assert 0 <= verdict.value_stable <= LIMITS.max_swap_stable
        if verdict.kind == "swap":
            held = obs.balances.stable if verdict.sell == "stable" else obs.balances.risk
            assert 0 < verdict.amount_in <= held * LIMITS.max_swap_pct // 100
            assert verdict.min_out > 0 and verdict.deadline > obs.timestamp
        if verdict.kind == "swap" and verdict.sell == "stable":
            assert obs.balances.stable - verdict.amount_in >= LIMITS.reserve_stable
        spent_total += verdict.value_stable
        assert spent_total <= LIMITS.window_hour_stable
        obs = apply(obs, verdict, move)
        assert obs.balances.stable >= 0 and obs.balances.risk >= 0


def test_actions_carry_no_addresses():
    """An Action has no field that could hold a destination: addresses come from settings."""
    names = {f.name for f in dataclasses.fields(Action)}
    assert names == {
        "kind",
        "sell",
        "buy",
        "amount_in",
        "min_out",
        "deadline",
        "value_stable",
        "amount_risk",
        "min_out_risk",
    }
