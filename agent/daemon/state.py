"""The `/state` document: the agent, its last tick record and its rent, as one `views.State`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agent.core.records import Decision, Outcome, TickRecord
from agent.daemon import views
from agent.daemon.parts import Runtime
from agent.runtime.loop import Agent

_RECENT_ACTIONS = 5

_NO_TICK: dict[str, Any] = dict.fromkeys(
    (
        "tick",
        "block",
        "balances",
        "price",
        "net_worth",
        "runway_periods",
        "last_decision",
        "policy_verdict",
        "last_veto",
        "last_outcome",
        "last_rent_outcome",
    )
)


def state_view(runtime: Runtime) -> views.State:
    """The one document an operator needs about this agent."""
    agent = runtime.agent
    record = None if agent is None else agent.last_record
    return views.State(
        **_identity(runtime),
        **_life(agent),
        **(_NO_TICK if record is None else from_record(record)),
        **_prices(agent),
        paused=runtime.paused,
        recent_actions=_recent_actions(runtime),
        rent=_rent(runtime),
        swaps=_swaps(runtime),
    )


def _swaps(runtime: Runtime) -> views.Swaps | None:
    """How the life's allowed swaps went, from the store."""
    if runtime.store is None:
        return None
    t = runtime.store.swap_tally()
    allowed = t["landed"] + t["refused"] + t["failed"]
    return views.Swaps(
        allowed=allowed,
        landed=t["landed"],
        refused_at_act=t["refused"],
        failed=t["failed"],
        failed_share=round(t["failed"] / allowed, 4) if allowed else None,
        gas_on_failures=t["failed_gas"],
    )


def _identity(runtime: Runtime) -> dict[str, Any]:
    agent = runtime.agent
    replication = None if agent is None else agent.replication
    return {
        "agent_id": None if agent is None else agent.agent_id,
        "generation": runtime.settings.generation,
        "address": runtime.address,
        "chain_id": runtime.chain_id,
        "parent_id": None if runtime.store is None else runtime.store.get("parent_id"),
        "children": [] if replication is None else [r.name for r in replication.nursery.funded()],
    }


_LIFE = ("strategy", "persona", "model", "adapter", "alive", "death_cause", "age_ticks")


def _life(agent: Agent | None) -> dict[str, Any]:
    if agent is None:
        return dict.fromkeys(_LIFE)
    return {
        "strategy": agent.strategy,
        "persona": agent.persona,
        "model": agent.model,
        "adapter": agent.adapter,
        "alive": agent.alive,
        "death_cause": agent.death_cause,
        "age_ticks": agent.age,
    }


def _prices(agent: Agent | None) -> dict[str, Any]:
    prices = [] if agent is None else list(agent.recent_prices)
    change = None
    if len(prices) >= 2 and prices[0] > 0:
        change = round((prices[-1] / prices[0] - 1) * 100, 4)
    return {"recent_prices": prices, "price_change_pct": change}


def _recent_actions(runtime: Runtime) -> list[dict[str, Any]]:
    if runtime.agent is None or runtime.store is None:
        return []
    return runtime.store.actions(_RECENT_ACTIONS)


def _rent(runtime: Runtime) -> views.Rent:
    """The rent terms from the settings and, once the agent runs, where it stands."""
    rent_cfg = runtime.settings.rent
    return views.Rent(
        landlord=runtime.landlord,
        amount=str(rent_cfg.amount),
        period_ticks=rent_cfg.period_ticks,
        grace_ticks=rent_cfg.grace_ticks,
        **_rent_standing(runtime.agent),
    )


def _rent_standing(agent: Agent | None) -> dict[str, Any]:
    if agent is None:
        return {}
    status = agent.rent_status()
    return {
        "paid_periods": status.paid_periods,
        "owed_periods": status.arrears,
        "overdue_ticks": status.overdue_ticks,
        "next_due_in_ticks": status.ticks_until_due,
        "amount_due": str(Decimal(status.amount_due) / 10 ** _stable_decimals(agent)),
    }


def _stable_decimals(agent: Agent) -> int:
    record = agent.last_record
    return 6 if record is None else int(record.observation.stable_decimals)


def from_record(record: TickRecord) -> dict[str, Any]:
    """The state fields one tick record gives (money in whole units)."""
    obs = record.observation
    return {
        "tick": record.tick,
        "block": obs.block,
        "balances": _balances(record),
        "price": obs.price,
        "net_worth": record.net_worth_after / 10**obs.stable_decimals,
        "runway_periods": round(record.runway_after, 4),
        "last_decision": _decision(record.decision),
        "last_veto": (
            None
            if record.veto is None
            else {"rule": record.veto.rule, "detail": record.veto.detail}
        ),
        "policy_verdict": _verdict(record),
        "last_outcome": _outcome(record.outcome),
        "last_rent_outcome": None if record.rent_outcome is None else _outcome(record.rent_outcome),
    }


def _balances(record: TickRecord) -> dict[str, float]:
    sd, rd = record.observation.stable_decimals, record.observation.risk_decimals
    after = record.balances_after
    return {
        "stable": after.stable / 10**sd,
        "risk": after.risk / 10**rd,
        "native": after.native / 10**18,
        "lp_shares": after.lp / 10**18,
        "lp_value": record.lp_worth_after / 10**sd,
    }


def _decision(decision: Decision) -> dict[str, Any]:
    return {
        "action": decision.action,
        "amount_pct": decision.amount_pct,
        "reason": decision.reason,
        "valid": decision.valid,
        "error": decision.error,
        "raw": decision.raw,
        "latency_s": round(decision.latency_s, 4),
    }


def _verdict(record: TickRecord) -> str:
    if record.veto is not None:
        return f"vetoed: {record.veto.rule}"
    return "allowed" if record.action is not None else "nothing to do"


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "tx_hashes": list(outcome.tx_hashes),
        "gas_used": outcome.gas_used,
        "amount_in": outcome.amount_in,
        "amount_out": outcome.amount_out,
        "error": outcome.error,
    }
