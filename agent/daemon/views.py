"""Typed shapes of every HTTP answer (they are the OpenAPI document's schemas)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Error(BaseModel):
    detail: str


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    """Liveness with reasons. `checks` names each one: start, model, alive, scheduler, ticks,
    chain, signer, journal, gas_funds, rent_funds (those that apply at the moment)."""

    is_healthy: bool
    ok: bool
    reasons: list[str]
    checks: dict[str, Check]
    agent_alive: bool | None
    paused: bool
    scheduler_running: bool
    signer_halted: bool
    has_required_funds: bool | None
    seconds_since_last_tick: float | None
    seconds_since_last_transition: float | None
    interval_s: float
    uptime_s: float


class Readiness(BaseModel):
    ready: bool
    reasons: list[str]
    model_loaded: bool
    chain_reachable: bool


class Balances(BaseModel):
    stable: float
    risk: float
    native: float
    lp_shares: float = Field(0.0, description="pool shares held (the pool's liquidity token)")
    lp_value: float = Field(0.0, description="what the pool shares would return, in STABLE")


class LastDecision(BaseModel):
    action: str
    amount_pct: int
    reason: str
    valid: bool
    error: str | None
    raw: str
    latency_s: float


class VetoView(BaseModel):
    rule: str
    detail: str


class OutcomeView(BaseModel):
    status: str
    tx_hashes: list[str]
    gas_used: int
    amount_in: int
    amount_out: int
    error: str | None


class Rent(BaseModel):
    landlord: str | None
    amount: str
    period_ticks: int
    grace_ticks: int
    paid_periods: int | None = None
    owed_periods: int | None = None
    overdue_ticks: int | None = None
    next_due_in_ticks: int | None = None
    amount_due: str | None = None


class Swaps(BaseModel):
    """The life's allowed swaps by fate (a swap refused at act time sent nothing)."""

    allowed: int
    landed: int
    refused_at_act: int
    failed: int
    failed_share: float | None  # failed / allowed
    gas_on_failures: int  # approvals, revocations and reverted swaps


class Action(BaseModel):
    tick: int
    at: float
    kind: str
    status: str
    tx_hashes: list[str]
    gas_used: int = 0
    amount_in: int = 0
    amount_out: int = 0
    error: str | None = None
    veto: str | None = None
    value_stable: int = 0
    rebuilt: bool = False


class State(BaseModel):
    agent_id: str | None
    generation: int
    parent_id: str | None
    children: list[str]
    address: str | None
    chain_id: int | None
    strategy: str | None
    persona: str | None
    model: str | None
    adapter: str | None
    alive: bool | None
    death_cause: str | None
    age_ticks: int | None
    paused: bool
    tick: int | None
    block: int | None
    balances: Balances | None
    price: float | None
    net_worth: float | None
    runway_periods: float | None
    recent_prices: list[float]
    price_change_pct: float | None
    last_decision: LastDecision | None
    policy_verdict: str | None
    last_veto: VetoView | None
    last_outcome: OutcomeView | None
    last_rent_outcome: OutcomeView | None
    recent_actions: list[Action]
    rent: Rent
    swaps: Swaps | None


class Actions(BaseModel):
    actions: list[Action]


class Series(BaseModel):
    """Per-tick columns for charts, oldest first from `since` (money in whole stable units)."""

    ticks: list[int]
    price: list[float]
    net_worth: list[float]
    runway: list[float]
    action: list[str]
    status: list[str]
    next_since: int | None


class Ticks(BaseModel):
    """Stored tick records (schema version 1), oldest first from `since`."""

    ticks: list[dict[str, Any]]
    next_since: int | None


class ControlAnswer(BaseModel):
    done: str
    paused: bool
