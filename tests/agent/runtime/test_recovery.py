"""Finishing an interrupted tick from its journal row and its transactions — pure logic.

The kill storms in tests/agent/daemon/test_kill_storm.py prove it on a real chain; here each
stage a process can die in is laid out by hand."""

from __future__ import annotations

import dataclasses
from typing import Any

from agent.core.records import (
    Action,
    Balances,
    Decision,
    Observation,
    Outcome,
    RentStatus,
    SentTx,
    Veto,
    verdict_dict,
)
from agent.runtime.recovery import finish

RENT = 5_000_000
OBS = Observation(
    tick=7,
    block=40,
    timestamp=1_000,
    balances=Balances(native=10**18, stable=400 * 10**6, risk=0),
    reserve_stable=100_000 * 10**6,
    reserve_risk=50_000 * 10**18,
    price=2.0,
    gas_price=1,
    rent=RentStatus(amount=RENT, period_ticks=5, age=7, paid_periods=2),
    stable_decimals=6,
    risk_decimals=18,
    recent=("tick 6: hold held",),
)
BUY = Action("swap", "stable", "risk", amount_in=10**7, min_out=1, deadline=2_000)
DECISION = Decision(action="buy_risk", amount_pct=10, reason="cheap", valid=True)


def row(verdict: Action | Veto | None = None, **more: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {"mark": 10, "observation": dataclasses.asdict(OBS), **more}
    if verdict is not None:
        detail["decision"] = dataclasses.asdict(DECISION)
        detail["verdict"] = verdict_dict(verdict)
    return detail


def tx(nonce: int, purpose: str, mined: bool = True) -> SentTx:
    return SentTx(f"0x{nonce:064x}", nonce, purpose, mined, gas_used=21_000 + nonce)


def test_killed_before_deciding_is_interrupted_and_not_decided_again():
    """Only the observation was journalled: the record keeps it, with no action and an
    `interrupted` outcome; the decision says why it is not a real one."""
    done = finish(row(), [], RENT, set())
    assert done.observation == OBS
    assert done.verdict is None and not done.decision.valid
    assert done.outcome.status == "interrupted" and done.outcome.tx_hashes == ()
    assert done.rent is None and done.periods_paid == 0


def test_killed_after_the_swap_mined_records_the_swap_that_happened():
    """Approve and swap mined before the kill: the tick's outcome is that swap, ok, with both
    hashes and their gas."""
    sent = [tx(10, "approve"), tx(11, "swap")]
    done = finish(row(BUY), sent, RENT, set())
    assert done.verdict == BUY and done.decision == DECISION
    assert done.outcome.status == "ok"
    assert done.outcome.tx_hashes == (sent[0].tx_hash, sent[1].tx_hash)
    assert done.outcome.gas_used == sent[0].gas_used + sent[1].gas_used
    assert done.outcome.amount_in == BUY.amount_in


def test_killed_between_approval_and_swap_is_a_failed_swap_not_a_repeat():
    """Only the approval went out: the swap failed (never sent), and nothing is re-decided."""
    done = finish(row(BUY), [tx(10, "approve")], RENT, set())
    assert done.outcome.status == "failed" and "never sent" in (done.outcome.error or "")


def test_a_reverted_swap_is_failed():
    done = finish(row(BUY), [tx(10, "approve"), tx(11, "swap", mined=False)], RENT, set())
    assert done.outcome.status == "failed" and "reverted" in (done.outcome.error or "")


def test_a_decided_veto_or_hold_is_recorded_as_it_would_have_been():
    """Nothing to send: the stage's outcome follows from the verdict alone."""
    veto = finish(row(Veto("reserve_floor", "low")), [], RENT, set())
    assert veto.outcome == Outcome(status="vetoed", error="reserve_floor: low")
    held = finish(row(Action(kind="hold")), [], RENT, set())
    assert held.outcome == Outcome(status="held")


def test_rent_paid_before_the_kill_counts_its_periods():
    """The act stage finished (its outcome journalled), rent began at nonce 12 for two periods
    and its transfer mined: two periods paid, the action's outcome as journalled."""
    acted = Outcome("ok", ("0xaa",), 50_000, amount_in=BUY.amount_in, amount_out=5)
    detail = row(BUY, outcome=dataclasses.asdict(acted), rent_mark=12, arrears=2)
    sent = [tx(10, "approve"), tx(11, "swap"), tx(12, "rent")]
    done = finish(detail, sent, RENT, set())
    assert done.outcome == acted
    assert done.rent is not None and done.rent.status == "ok"
    assert done.rent.tx_hashes == (sent[2].tx_hash,) and done.rent.amount_in == 2 * RENT
    assert done.periods_paid == 2 and done.rent_sales == ()


def test_a_rent_sale_cut_short_is_recorded_and_rent_left_owed():
    """Killed after selling RISK for the rent but before paying it: the sale is recorded (it
    moved money), the rent is interrupted and no period is counted as paid."""
    detail = row(Action(kind="hold"), rent_mark=11, arrears=1)
    sent = [tx(11, "approve"), tx(12, "swap")]
    done = finish(detail, sent, RENT, set())
    assert done.rent is not None and done.rent.status == "interrupted"
    assert done.periods_paid == 0
    assert [s.status for s in done.rent_sales] == ["ok"]
    recorded = {sent[0].tx_hash, sent[1].tx_hash}
    assert finish(detail, sent, RENT, recorded).rent_sales == ()


def test_an_agent_chosen_rent_payment_counts_when_it_mined():
    pay = Action(kind="pay_rent", amount_in=2 * RENT)
    done = finish(row(pay), [tx(10, "rent")], RENT, set())
    assert done.outcome.status == "ok" and done.periods_paid == 2
