"""Survival arithmetic: net worth, runway, fitness and the death rule. Pure functions."""

from __future__ import annotations

from agent.core.records import Balances, RentStatus
from wallets.dex import shares_value

DEATH_PENALTY = 10.0  # runway periods lost at death, so dying is never a good trade


def net_worth(
    balances: Balances, reserve_stable: int, reserve_risk: int, lp_supply: int = 0
) -> int:
    """Holdings valued in stable base units at the pool's mid price (gas money excluded).

    Pool shares count at what burning them would return now, the risk part at the mid price.
    """
    if reserve_risk <= 0:
        return balances.stable
    lp_stable, lp_risk = shares_value(balances.lp, reserve_stable, reserve_risk, lp_supply)
    risk = balances.risk + lp_risk
    return balances.stable + lp_stable + risk * reserve_stable // reserve_risk


def lp_worth(balances: Balances, reserve_stable: int, reserve_risk: int, lp_supply: int) -> int:
    """The pool position alone, valued like `net_worth`."""
    lp_stable, lp_risk = shares_value(balances.lp, reserve_stable, reserve_risk, lp_supply)
    return lp_stable + (lp_risk * reserve_stable // reserve_risk if reserve_risk > 0 else 0)


def runway(worth: int, rent_amount: int) -> float:
    """How many rent periods the agent's net worth would pay for."""
    return worth / rent_amount if rent_amount > 0 else float("inf")


def fitness_delta(runway_before: float, runway_after: float, died: bool) -> float:
    """The per-tick reward: change in runway, with a terminal penalty at death."""
    return runway_after - runway_before - (DEATH_PENALTY if died else 0.0)


def is_past_grace(rent: RentStatus, grace_ticks: int) -> bool:
    """True when the oldest unpaid rent has been overdue for the whole grace period."""
    return rent.arrears > 0 and rent.overdue_ticks >= grace_ticks


def death_cause(rent: RentStatus, grace_ticks: int) -> str:
    return (
        f"rent unpaid for {rent.overdue_ticks} ticks (grace {grace_ticks}); "
        f"owed {rent.amount_due} stable base units"
    )
