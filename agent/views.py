"""Typed shapes of every HTTP answer (they are the OpenAPI document's schemas)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Health(BaseModel):
    ok: bool
    reasons: list[str]
    agent_alive: bool | None
    paused: bool
    scheduler_running: bool
    signer_halted: bool
    seconds_since_last_tick: float | None
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


class State(BaseModel):
    agent_id: str | None
    generation: int
    address: str | None
    chain_id: int | None
    model: str | None
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
    last_decision: LastDecision | None
    last_veto: VetoView | None
    last_outcome: OutcomeView | None
    last_rent_outcome: OutcomeView | None
    rent: Rent


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


class Actions(BaseModel):
    actions: list[Action]


class Ticks(BaseModel):
    """Stored tick records (schema version 1), oldest first from `since`."""

    ticks: list[dict[str, Any]]
    next_since: int | None


class ControlAnswer(BaseModel):
    done: str
    paused: bool
