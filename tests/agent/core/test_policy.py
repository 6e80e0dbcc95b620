"""The guard: default-deny, caps, reserve floor, slippage bound — pure logic."""

from __future__ import annotations

import dataclasses

from agent.core.policy import Limits, Spent, guard, rent_sale, reprice
from agent.core.records import Action, Balances, Decision, Observation, RentStatus, Veto
from wallets.dex import amount_out

RENT = 5_000_000
LIMITS = Limits(
    max_swap_pct=50,
    max_swap_stable=100_000_000,
    reserve_stable=2 * RENT,
    max_slippage_bps=100,
    deadline_s=120,
)


def obs(
    stable: int = 500_000_000, risk: int = 0, native: int = 10**19, paid: int = 1
) -> Observation:
    return Observation(
        tick=3,
        block=10,
        timestamp=1_000,
        balances=Balances(native=native, stable=stable, risk=risk),
        reserve_stable=100_000 * 10**6,
        reserve_risk=50_000 * 10**18,
        price=2.0,
        gas_price=1,
        rent=RentStatus(amount=RENT, period_ticks=10, age=3, paid_periods=paid),
        stable_decimals=6,
        risk_decimals=18,
    )


def decide(action: str, pct: int = 50) -> Decision:
    return Decision(action=action, amount_pct=pct, reason="", valid=True)


def test_hold_is_allowed():
    """A hold decision becomes a hold action."""
    assert guard(decide("hold"), obs(), LIMITS) == Action(kind="hold")


def test_buy_is_capped_by_value_and_bounded_by_independent_min_out():
    """A buy is clamped to the per-action cap and carries min output and a deadline."""
    verdict = guard(decide("buy_risk", 100), obs(), LIMITS)
    assert isinstance(verdict, Action)
    assert verdict.kind == "swap" and (verdict.sell, verdict.buy) == ("stable", "risk")
    assert verdict.amount_in == 100_000_000  # 50 % of 500 = 250, capped at 100 stable
    expected = amount_out(100_000_000, 100_000 * 10**6, 50_000 * 10**18)
    assert verdict.min_out == expected * 9_900 // 10_000
    assert verdict.deadline == 1_000 + 120


def test_buy_never_spends_the_rent_reserve():
    """Buying stops at the reserve floor; at the floor it is vetoed."""
    near = guard(decide("buy_risk", 50), obs(stable=12 * 10**6), LIMITS)
    assert isinstance(near, Action) and near.amount_in == 2 * 10**6
    at_floor = guard(decide("buy_risk", 50), obs(stable=2 * RENT), LIMITS)
    assert isinstance(at_floor, Veto) and at_floor.rule == "reserve_floor"


def test_sell_of_nothing_is_vetoed():
    """Selling risk with no risk held is refused as zero amount."""
    verdict = guard(decide("sell_risk", 100), obs(risk=0), LIMITS)
    assert isinstance(verdict, Veto) and verdict.rule == "zero_amount"


def test_sell_is_capped_by_stable_value():
    """A sell is clamped so its value does not exceed the per-action cap."""
    verdict = guard(decide("sell_risk", 50), obs(risk=1_000 * 10**18), LIMITS)
    assert isinstance(verdict, Action)
    assert verdict.amount_in == 100_000_000 * (50_000 * 10**18) // (100_000 * 10**6)


def test_price_impact_beyond_bound_is_vetoed():
    """A trade that would move a shallow pool too far is refused."""
    shallow = dataclasses.replace(obs(), reserve_stable=1_000 * 10**6, reserve_risk=500 * 10**18)
    verdict = guard(decide("buy_risk", 50), shallow, LIMITS)
    assert isinstance(verdict, Veto) and verdict.rule == "price_impact"


def test_pay_rent_only_when_owed_and_affordable():
    """pay_rent pays exactly what is owed; nothing owed or too little stable is vetoed."""
    owed = guard(decide("pay_rent"), obs(paid=0), LIMITS)
    assert owed == Action(kind="pay_rent", amount_in=RENT)
    nothing = guard(decide("pay_rent"), obs(paid=1), LIMITS)
    assert isinstance(nothing, Veto) and nothing.rule == "no_rent_due"
    broke = guard(decide("pay_rent"), obs(stable=1, paid=0), LIMITS)
    assert isinstance(broke, Veto) and broke.rule == "insufficient_stable"


def test_no_gas_means_no_transaction():
    """Without gas money every transacting action is vetoed."""
    verdict = guard(decide("buy_risk"), obs(native=0), LIMITS)
    assert isinstance(verdict, Veto) and verdict.rule == "gas_floor"


def test_unknown_action_is_denied():
    """Anything the policy does not know is denied by default."""
    verdict = guard(decide("replicate"), obs(), LIMITS)
    assert isinstance(verdict, Veto) and verdict.rule == "unknown_action"


def test_rolling_windows_clamp_then_veto():
    """Spend already in the hour or day window shrinks the next swap, then refuses it."""
    limits = dataclasses.replace(LIMITS, window_hour_stable=150_000_000, window_day_stable=10**12)
    clamped = guard(decide("buy_risk", 50), obs(), limits, Spent(hour=120_000_000))
    assert isinstance(clamped, Action) and clamped.amount_in == 30_000_000
    assert clamped.value_stable == 30_000_000
    full = guard(decide("buy_risk", 50), obs(), limits, Spent(hour=150_000_000))
    assert isinstance(full, Veto) and full.rule == "window_cap"
    day = dataclasses.replace(LIMITS, window_day_stable=50_000_000)
    by_day = guard(decide("buy_risk", 50), obs(), day, Spent(hour=0, day=50_000_000))
    assert isinstance(by_day, Veto) and by_day.rule == "window_cap"


def test_pool_far_from_the_agents_own_reference_is_refused():
    """A pool price 10 % off the agent's recent median is vetoed (manipulation guard)."""
    verdict = guard(decide("buy_risk", 50), obs(), LIMITS, reference_price=2.2)
    assert isinstance(verdict, Veto) and verdict.rule == "price_deviation"


def test_min_out_is_the_stricter_of_pool_and_reference_bounds():
    """With a reference, min_out never falls below what the reference price implies."""
    verdict = guard(decide("sell_risk", 10), obs(risk=10 * 10**18), LIMITS, reference_price=2.09)
    assert isinstance(verdict, Action)
    keep = 10_000 - 30 - LIMITS.max_slippage_bps - LIMITS.max_deviation_bps
    by_reference = int(verdict.amount_in * (2.09 / 10**12) * keep / 10_000)
    expected = amount_out(verdict.amount_in, 50_000 * 10**18, 100_000 * 10**6)
    assert verdict.min_out == max(by_reference, expected * 9_900 // 10_000)
    assert verdict.min_out >= by_reference > 0


def pooled(
    stable: int = 500_000_000, risk: int = 100 * 10**18, lp: int = 0, **rent: int
) -> Observation:
    base = obs(stable=stable, risk=risk, **rent)
    return dataclasses.replace(
        base,
        balances=dataclasses.replace(base.balances, lp=lp),
        lp_supply=70_710 * 10**18,
    )


def test_a_deposit_is_paired_at_the_pool_ratio_and_capped_as_a_spend():
    """Adding liquidity takes stable and RISK of equal value; the pair together stays under
    the per-action cap, and both minimums allow only the configured slippage."""
    verdict = guard(decide("add_liquidity", 100), pooled(), LIMITS)
    assert isinstance(verdict, Action) and verdict.kind == "add_liquidity"
    assert verdict.amount_in == 50_000_000  # half of the 100 stable cap: the other half is RISK
    assert verdict.amount_risk == 50_000_000 * 50_000 * 10**18 // (100_000 * 10**6)
    assert verdict.value_stable == 100_000_000
    assert verdict.min_out == 50_000_000 * 9_900 // 10_000
    assert verdict.min_out_risk == verdict.amount_risk * 9_900 // 10_000
    assert verdict.deadline == 1_000 + 120


def test_a_deposit_is_limited_by_the_risk_held_and_the_windows():
    few = guard(decide("add_liquidity", 100), pooled(risk=10 * 10**18), LIMITS)
    assert isinstance(few, Action) and few.amount_risk <= 10 * 10**18
    assert few.amount_in == 20_000_000  # what 10 RISK pairs with at a price of 2
    none = guard(decide("add_liquidity", 100), pooled(risk=0), LIMITS)
    assert isinstance(none, Veto) and none.rule == "no_risk"
    windowed = dataclasses.replace(LIMITS, window_hour_stable=150_000_000)
    spent = guard(decide("add_liquidity", 100), pooled(), windowed, Spent(hour=150_000_000))
    assert isinstance(spent, Veto) and spent.rule == "window_cap"
    floor = guard(decide("add_liquidity", 100), pooled(stable=2 * RENT), LIMITS)
    assert isinstance(floor, Veto) and floor.rule == "reserve_floor"


def test_removal_burns_a_share_of_the_position_for_bounded_minimums():
    lp = 1_000 * 10**18
    verdict = guard(decide("remove_liquidity", 100), pooled(lp=lp), LIMITS)
    assert isinstance(verdict, Action) and verdict.kind == "remove_liquidity"
    assert verdict.amount_in == lp and verdict.value_stable == 0  # not a spend
    supply = 70_710 * 10**18
    assert verdict.min_out == (lp * 100_000 * 10**6 // supply) * 9_900 // 10_000
    assert verdict.min_out_risk == (lp * 50_000 * 10**18 // supply) * 9_900 // 10_000
    half = guard(decide("remove_liquidity", 50), pooled(lp=lp), LIMITS)
    assert isinstance(half, Action) and half.amount_in == lp // 2
    nothing = guard(decide("remove_liquidity", 100), pooled(lp=0), LIMITS)
    assert isinstance(nothing, Veto) and nothing.rule == "no_liquidity"


def test_liquidity_is_refused_when_the_pool_is_far_from_recent_prices():
    for action in ("add_liquidity", "remove_liquidity"):
        verdict = guard(decide(action), pooled(lp=10**18), LIMITS, reference_price=1.5)
        assert isinstance(verdict, Veto) and verdict.rule == "price_deviation"


def test_the_windows_never_stop_the_sale_that_pays_the_rent_owed():
    """With the hourly window spent and rent owed beyond the stable held, selling RISK is
    still allowed, but only for the shortfall plus a margin."""
    windowed = dataclasses.replace(LIMITS, window_hour_stable=150_000_000)
    spent = Spent(hour=150_000_000)
    owing = obs(stable=1_000_000, risk=100 * 10**18, paid=0)
    assert owing.rent.amount_due == RENT
    verdict = guard(decide("sell_risk", 100), owing, windowed, spent)
    assert isinstance(verdict, Action) and verdict.sell == "risk"
    shortfall_value = (RENT - 1_000_000) * 110 // 100
    assert verdict.value_stable <= shortfall_value
    assert amount_out(verdict.amount_in, 50_000 * 10**18, 100_000 * 10**6) >= RENT - 1_000_000
    buying = guard(decide("buy_risk", 100), owing, windowed, spent)
    assert isinstance(buying, Veto) and buying.rule == "window_cap"
    paid_up = guard(decide("sell_risk", 100), obs(risk=100 * 10**18), windowed, spent)
    assert isinstance(paid_up, Veto) and paid_up.rule == "window_cap"


def test_a_rent_sale_raises_the_shortfall_and_no_more():
    owing = obs(stable=1_000_000, risk=100 * 10**18, paid=0)
    sale = rent_sale(owing, LIMITS, Spent())
    assert isinstance(sale, Action) and sale.sell == "risk"
    assert sale.value_stable <= (RENT - 1_000_000) * 110 // 100
    covered = rent_sale(obs(stable=RENT, risk=100 * 10**18, paid=0), LIMITS, Spent())
    assert isinstance(covered, Veto) and covered.rule == "no_shortfall"
    empty = rent_sale(obs(stable=1_000_000, risk=0, paid=0), LIMITS, Spent())
    assert isinstance(empty, Veto)


def moved(o: Observation, price_factor: float) -> Observation:
    """`o` after the pool moved: risk priced `price_factor` times what it was."""
    risk = int(o.reserve_risk / price_factor)
    return dataclasses.replace(o, reserve_risk=risk, price=o.price * price_factor)


def test_a_swap_whose_market_moved_past_its_bound_is_refused_at_act_time():
    """The pool rose 2 % against a buy while deciding: the quote is below the decided minimum
    (1 % slippage), so the action is refused as `market_moved`."""
    decided = guard(decide("buy_risk", 10), obs(), LIMITS)
    assert isinstance(decided, Action)
    verdict = reprice(decide("buy_risk", 10), decided, moved(obs(), 1.02), LIMITS)
    assert isinstance(verdict, Veto) and verdict.rule == "market_moved"
    assert "below the" in verdict.detail


def test_a_swap_within_its_bound_keeps_its_size_and_never_accepts_less():
    """A small move against the buy (0.3 %) passes: same amount, the decided minimum kept; a
    move in its favour raises the minimum to what the rules give now."""
    decision = decide("buy_risk", 10)
    decided = guard(decision, obs(), LIMITS)
    assert isinstance(decided, Action)
    worse = reprice(decision, decided, moved(obs(), 1.003), LIMITS)
    assert isinstance(worse, Action) and worse.amount_in == decided.amount_in
    assert worse.min_out == decided.min_out
    better = moved(obs(), 0.98)
    repriced = reprice(decision, decided, better, LIMITS)
    assert isinstance(repriced, Action) and repriced.min_out > decided.min_out
    fresh = guard(decision, better, LIMITS)
    assert isinstance(fresh, Action) and repriced.min_out == fresh.min_out


def test_a_deviation_reached_while_deciding_is_refused_at_act_time():
    """The agent's reference is 2.0; the pool moved 6 % (past the 5 % deviation bound) in a
    sell's favour: refused at act time, naming the deviation."""
    decision = decide("sell_risk", 10)
    decided = guard(decision, obs(risk=100 * 10**18), LIMITS, reference_price=2.0)
    assert isinstance(decided, Action)
    now = moved(obs(risk=100 * 10**18), 1.06)
    verdict = reprice(decision, decided, now, LIMITS, reference_price=2.0)
    assert isinstance(verdict, Veto) and verdict.rule == "market_moved"
    assert "price_deviation" in verdict.detail


def test_holds_and_rent_are_not_repriced():
    """Only priced actions are checked again."""
    for decided in (Action(kind="hold"), Action(kind="pay_rent", amount_in=RENT)):
        assert reprice(decide("hold"), decided, moved(obs(), 1.5), LIMITS) == decided
