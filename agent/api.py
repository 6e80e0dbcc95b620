"""The HTTP surface (FastAPI): health, readiness, state and recent actions. Read-only."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from agent.records import TickRecord
from agent.runtime import Runtime
from wallets.errors import ChainError

_STALE_INTERVALS = 3
_DECISION_SLACK_S = 30.0


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="OpenForager agent", version="0.1.0", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness: the process and its scheduler are alive and ticks are not stale."""
        body = _health(runtime)
        return JSONResponse(body, status_code=200 if body["ok"] else 503)

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: the model is loaded and the chain answers."""
        body = _readiness(runtime)
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/state")
    def state() -> dict[str, Any]:
        """The one document an operator needs about this agent."""
        return _state(runtime)

    @app.get("/metrics")
    def prometheus() -> Response:
        """Metrics in Prometheus text format."""
        text = runtime.telemetry.prometheus_text() if runtime.telemetry else b""
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/actions")
    def actions(limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
        """Recent actions (swaps, rent, vetoes) with their transaction hashes, newest first."""
        items = runtime.store.actions(limit) if runtime.store else []
        return {"actions": items}

    return app


def _health(runtime: Runtime) -> dict[str, Any]:
    agent = runtime.agent
    interval = runtime.settings.interval_s
    since = None
    if agent is not None and agent.last_tick_at is not None:
        since = round(time.time() - agent.last_tick_at, 3)
    reasons = []
    if runtime.startup_error:
        reasons.append(f"start-up failed: {runtime.startup_error}")
    if runtime.sender is not None and runtime.sender.halted:
        reasons.append(runtime.sender.halted)
    if agent is not None and agent.alive and not runtime.scheduler_running and not runtime.stopping:
        reasons.append("scheduler is not running")
    stale_after = _STALE_INTERVALS * interval + _DECISION_SLACK_S
    if agent is not None and agent.alive and since is not None and since > stale_after:
        reasons.append(f"last tick was {since:.0f} s ago (interval {interval} s)")
    return {
        "ok": not reasons,
        "reasons": reasons,
        "agent_alive": None if agent is None else agent.alive,
        "scheduler_running": runtime.scheduler_running,
        "signer_halted": runtime.sender is not None and runtime.sender.halted is not None,
        "seconds_since_last_tick": since,
        "interval_s": interval,
        "uptime_s": round(time.time() - runtime.started_at, 3),
    }


def _readiness(runtime: Runtime) -> dict[str, Any]:
    reasons = []
    if runtime.agent is None:
        reasons.append(runtime.startup_error or "starting: model or chain not loaded yet")
    chain_ok = False
    if runtime.chain is not None:
        try:
            runtime.chain.head()
            chain_ok = True
        except ChainError as exc:
            reasons.append(f"chain unreachable: {exc}")
    if runtime.chain_error and not chain_ok:
        reasons.append(f"last tick held: {runtime.chain_error}")
    return {
        "ready": not reasons and chain_ok,
        "reasons": reasons,
        "model_loaded": runtime.agent is not None,
        "chain_reachable": chain_ok,
    }


def _state(runtime: Runtime) -> dict[str, Any]:
    agent = runtime.agent
    rent_cfg = runtime.settings.rent
    doc: dict[str, Any] = {
        "agent_id": None if agent is None else agent.agent_id,
        "generation": runtime.settings.generation,
        "address": runtime.address,
        "chain_id": runtime.chain_id,
        "model": None if agent is None else agent.model,
        "alive": None if agent is None else agent.alive,
        "death_cause": None if agent is None else agent.death_cause,
        "age_ticks": None if agent is None else agent.age,
        "tick": None,
        "block": None,
        "balances": None,
        "price": None,
        "net_worth": None,
        "runway_periods": None,
        "last_decision": None,
        "last_veto": None,
        "last_outcome": None,
        "last_rent_outcome": None,
        "rent": {
            "landlord": runtime.landlord,
            "amount": str(rent_cfg.amount),
            "period_ticks": rent_cfg.period_ticks,
            "grace_ticks": rent_cfg.grace_ticks,
        },
    }
    if agent is None:
        return doc
    status = agent.rent_status()
    doc["rent"].update(
        paid_periods=status.paid_periods,
        owed_periods=status.arrears,
        overdue_ticks=status.overdue_ticks,
        next_due_in_ticks=status.ticks_until_due,
    )
    record = agent.last_record
    if record is not None:
        doc.update(_from_record(record))
    return doc


def _from_record(record: TickRecord) -> dict[str, Any]:
    obs = record.observation
    sd, rd = obs.stable_decimals, obs.risk_decimals
    decision = record.decision
    return {
        "tick": record.tick,
        "block": obs.block,
        "balances": {
            "stable": record.balances_after.stable / 10**sd,
            "risk": record.balances_after.risk / 10**rd,
            "native": record.balances_after.native / 10**18,
        },
        "price": obs.price,
        "net_worth": record.net_worth_after / 10**sd,
        "runway_periods": round(record.runway_after, 4),
        "last_decision": {
            "action": decision.action,
            "amount_pct": decision.amount_pct,
            "reason": decision.reason,
            "valid": decision.valid,
            "error": decision.error,
            "raw": decision.raw,
            "latency_s": round(decision.latency_s, 4),
        },
        "last_veto": (
            None
            if record.veto is None
            else {"rule": record.veto.rule, "detail": record.veto.detail}
        ),
        "last_outcome": _outcome(record.outcome),
        "last_rent_outcome": None if record.rent_outcome is None else _outcome(record.rent_outcome),
    }


def _outcome(outcome: Any) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "tx_hashes": list(outcome.tx_hashes),
        "gas_used": outcome.gas_used,
        "amount_in": outcome.amount_in,
        "amount_out": outcome.amount_out,
        "error": outcome.error,
    }
