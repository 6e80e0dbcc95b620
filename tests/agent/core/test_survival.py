"""Rent accounting, net worth, runway, fitness and the death rule — pure logic."""

from __future__ import annotations

import pytest

from agent.core.records import Balances, RentStatus
from agent.core.survival import DEATH_PENALTY, fitness_delta, is_past_grace, net_worth, runway


def rent(age: int, paid: int) -> RentStatus:
    return RentStatus(amount=5, period_ticks=10, age=age, paid_periods=paid)


def test_rent_falls_due_at_the_start_of_each_period():
    """Period k is due at tick k*period: one owed at tick 0, a second at tick 10."""
    assert rent(0, 0).arrears == 1
    assert rent(9, 1).arrears == 0 and rent(9, 1).ticks_until_due == 1
    assert rent(10, 1).arrears == 1 and rent(10, 1).amount_due == 5


def test_overdue_counts_from_the_oldest_unpaid_period():
    """Overdue ticks measure how long the oldest unpaid rent has waited."""
    assert rent(13, 1).overdue_ticks == 3
    assert rent(13, 0).overdue_ticks == 13
    assert rent(13, 2).overdue_ticks == 0


@pytest.mark.parametrize(("age", "paid", "dead"), [(4, 0, False), (5, 0, True), (30, 3, False)])
def test_death_comes_only_after_the_grace_period(age: int, paid: int, dead: bool):
    """Unpaid rent kills only once it has been overdue for the whole grace period."""
    assert is_past_grace(rent(age, paid), grace_ticks=5) is dead


def test_net_worth_values_risk_at_the_pool_mid_price():
    """Net worth is stable plus risk valued at reserves' ratio (gas excluded)."""
    balances = Balances(native=10**18, stable=100, risk=3 * 10**18)
    assert net_worth(balances, reserve_stable=2_000, reserve_risk=10**21) == 106


def test_runway_and_fitness():
    """Runway is worth over rent; fitness is its change, with a penalty at death."""
    assert runway(50, 5) == 10.0
    assert fitness_delta(10.0, 9.0, died=False) == -1.0
    assert fitness_delta(1.0, 1.0, died=True) == -DEATH_PENALTY
