"""Finishing a tick the process died in, from its journal row and the transactions it sent.

The store's open-tick row says how far the tick got (what it saw, what it decided and the guard
allowed, whether the rent stage began, and the nonce where each stage's transactions start);
the transaction journal, settled against the chain at start, says what each of those
transactions became. From both the tick's record is written as it happened: a swap that
mined is a swap that happened, one interrupted before anything was signed is recorded as
interrupted, and nothing is decided again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.core.records import (
    Action,
    Decision,
    Observation,
    Outcome,
    SentTx,
    Veto,
    decision_from,
    observation_from,
    outcome_from,
    verdict_from,
)

# The transaction that carries an action out (approvals and revocations only prepare it).
_MAIN = frozenset({"swap", "add_liquidity", "remove_liquidity", "rent"})
_UNDECIDED = Decision(
    action="hold",
    amount_pct=0,
    reason="",
    valid=False,
    error="interrupted: the process stopped before a decision was recorded",
)


@dataclass(frozen=True)
class Finished:
    """An interrupted tick, completed: the parts of its record and what it paid."""

    observation: Observation
    decision: Decision
    verdict: Action | Veto | None
    outcome: Outcome
    rent: Outcome | None
    rent_sales: tuple[Outcome, ...]  # sales of RISK for rent the store has not recorded yet
    periods_paid: int  # rent periods its transactions paid


def finish(
    detail: dict[str, Any], sent: list[SentTx], rent_amount: int, recorded: set[str]
) -> Finished:
    """The interrupted tick that `detail` journalled, given every transaction sent since it
    opened (`sent`) and the hashes the store already records (`recorded`)."""
    verdict = verdict_from(detail["verdict"]) if "verdict" in detail else None
    rent_mark = detail.get("rent_mark")
    acting = [t for t in sent if rent_mark is None or t.nonce < rent_mark]
    if "outcome" in detail:
        outcome = outcome_from(detail["outcome"])
    else:
        outcome = _action_outcome(verdict, acting)
    periods = 0
    if isinstance(verdict, Action) and verdict.kind == "pay_rent" and outcome.status == "ok":
        periods += verdict.amount_in // rent_amount
    rent: Outcome | None = None
    sales: tuple[Outcome, ...] = ()
    if rent_mark is not None:
        paying = [t for t in sent if t.nonce >= rent_mark]
        arrears = int(detail.get("arrears", 0))
        rent = _rent_outcome(paying, arrears * rent_amount)
        if rent.status == "ok":
            periods += arrears
        sales = _rent_sale(paying, recorded)
    return Finished(
        observation=observation_from(detail["observation"]),
        decision=decision_from(detail["decision"]) if "decision" in detail else _UNDECIDED,
        verdict=verdict,
        outcome=outcome,
        rent=rent,
        rent_sales=sales,
        periods_paid=periods,
    )


def _action_outcome(verdict: Action | Veto | None, sent: list[SentTx]) -> Outcome:
    """What the action stage did, read from its transactions."""
    if isinstance(verdict, Veto):
        return Outcome(status="vetoed", error=f"{verdict.rule}: {verdict.detail}")
    if isinstance(verdict, Action) and verdict.kind == "hold":
        return Outcome(status="held")
    if not sent:
        return Outcome(
            status="interrupted",
            error="interrupted: the process stopped before anything was signed",
        )
    amount_in = verdict.amount_in if verdict is not None else 0
    return _settled(sent, amount_in, "the action")


def _rent_outcome(sent: list[SentTx], due: int) -> Outcome:
    paid = [t for t in sent if t.purpose == "rent"]
    if not paid:
        return Outcome(
            status="interrupted", error="interrupted: the process stopped before rent was paid"
        )
    return _settled(paid, due, "the rent")


def _rent_sale(sent: list[SentTx], recorded: set[str]) -> tuple[Outcome, ...]:
    """A sale of RISK for rent whose record the process did not live to write."""
    sale = [t for t in sent if t.purpose != "rent" and t.tx_hash not in recorded]
    return (_settled(sale, 0, "the rent sale"),) if sale else ()


def _settled(sent: list[SentTx], amount_in: int, what: str) -> Outcome:
    """ok when the transaction that carries it out mined; failed otherwise."""
    main = [t for t in sent if t.purpose in _MAIN]
    hashes, gas = tuple(t.tx_hash for t in sent), sum(t.gas_used for t in sent)
    if main and main[-1].mined:
        return Outcome("ok", hashes, gas, amount_in=amount_in)
    why = "reverted" if main else "was never sent (only its approvals were)"
    return Outcome("failed", hashes, gas, error=f"interrupted: {what} {why}")
