"""The HTTP surface (FastAPI): health, readiness, state, history and metrics, read-only.

The only writes are `POST /control/pause|resume|stop`, which need the bearer token from the
settings (compared in constant time) and are disabled when none is configured. Nothing here can
change the policy, its limits, the rent payee, the prompt or the model. Bodies over 64 KiB get
413; a method a path does not serve gets 405.
"""

from __future__ import annotations

import functools
import hmac
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from agent.core.records import TickRecord
from agent.daemon import views
from agent.daemon.parts import Runtime
from wallets.errors import ChainError

_STALE_INTERVALS = 3
_DECISION_SLACK_S = 30.0
MAX_BODY_BYTES = 64 * 1024
_RECENT_ACTIONS = 5
_MIN_FREE_BYTES = 64 * 2**20
_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Unhealthy or not ready; the body says why"}
}


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="OpenForager agent", version="0.1.0", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        if length is None and request.headers.get("transfer-encoding"):
            return JSONResponse({"detail": "chunked bodies are not accepted"}, status_code=411)
        return await call_next(request)

    @app.get("/healthz", response_model=views.Health, responses=_UNHEALTHY)
    def healthz() -> JSONResponse:
        """Liveness: the process and its scheduler are alive and ticks are not stale."""
        body = _health(runtime)  # the schema is views.Health (checked by the fuzz test)
        return JSONResponse(body, status_code=200 if body["is_healthy"] else 503)

    @app.get("/readyz", response_model=views.Readiness, responses=_UNHEALTHY)
    def readyz() -> JSONResponse:
        """Readiness: the model is loaded and the chain answers."""
        body = views.Readiness(**_readiness(runtime))
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    cache: dict[str, Any] = {"key": None, "body": b""}

    @app.get("/state", response_model=views.State)
    def state() -> Response:
        """The one document an operator needs about this agent."""
        # It changes only when a tick is recorded or the agent is paused, resumed, stopped or
        # dies: render it once per change, not once per request (dashboards poll it).
        agent = runtime.agent
        key = (
            id(agent),
            None if agent is None else agent.age,
            None if agent is None else agent.death_cause,
            runtime.paused,
            runtime.address,
        )
        if key != cache["key"]:
            body = views.State(**_state(runtime)).model_dump_json().encode()
            cache["key"], cache["body"] = key, body
        return Response(cache["body"], media_type="application/json")

    @app.get("/ticks", response_model=views.Ticks)
    def ticks(
        since: int = Query(0, ge=0, le=2**62), limit: int = Query(100, ge=1, le=1000)
    ) -> dict[str, Any]:
        """Stored tick records from tick `since`, oldest first; page with `next_since`."""
        records = runtime.store.records(limit=limit, since=since) if runtime.store else []
        following = records[-1]["tick"] + 1 if len(records) == limit else None
        return {"ticks": records, "next_since": following}

    @app.post("/control/{command}", response_model=views.ControlAnswer, responses=_CONTROL_ERRORS)
    def control(
        command: Literal["pause", "resume", "stop"], authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        """pause, resume or stop the agent; needs `Authorization: Bearer <control token>`."""
        _authorize(runtime, authorization)
        action = runtime.controls.get(command)
        if action is None:
            raise HTTPException(503, f"control {command!r} is not available yet: starting up")
        action()
        return {"done": command, "paused": runtime.paused}

    @app.get("/metrics", response_class=PlainTextResponse, responses=_METRICS)
    def prometheus() -> Response:
        """Metrics in Prometheus text format."""
        text = runtime.telemetry.prometheus_text() if runtime.telemetry else b""
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/series", response_model=views.Series)
    def series(
        since: int = Query(0, ge=0, le=2**62), limit: int = Query(1000, ge=1, le=5000)
    ) -> dict[str, Any]:
        """Per-tick columns for charts (price, net worth, runway, action, outcome)."""
        rows = runtime.store.series(since, limit) if runtime.store else []
        return {
            "ticks": [row[0] for row in rows],
            "price": [float(row[1]) for row in rows],
            "net_worth": [row[2] / 10 ** row[6] for row in rows],
            "runway": [float(row[3]) for row in rows],
            "action": [str(row[4]) for row in rows],
            "status": [str(row[5]) for row in rows],
            "next_since": rows[-1][0] + 1 if len(rows) == limit else None,
        }

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        """The live dashboard: this agent at a glance (no external resources)."""
        return HTMLResponse(_asset("index.html"), headers=_PAGE_HEADERS)

    @app.get("/dashboard/{name}", response_class=Response, responses=_ASSETS)
    def dashboard_asset(name: Literal["app.js", "style.css"]) -> Response:
        """The dashboard's script and style sheet."""
        kinds = {"app.js": "text/javascript", "style.css": "text/css"}
        return Response(_asset(name), media_type=kinds[name], headers=_PAGE_HEADERS)

    @app.get("/actions", response_model=views.Actions)
    def actions(limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
        """Recent actions (swaps, rent, vetoes) with their transaction hashes, newest first."""
        items = runtime.store.actions(limit) if runtime.store else []
        return {"actions": items}

    return app


_ERROR = {"application/json": {"schema": views.Error.model_json_schema()}}
_CONTROL_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or wrong bearer token", "content": _ERROR},
    403: {"description": "Control is disabled: no token is configured", "content": _ERROR},
    503: {"description": "The daemon is still starting", "content": _ERROR},
}
_METRICS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
}
_ASSETS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/javascript": {"schema": {"type": "string"}},
            "text/css": {"schema": {"type": "string"}},
        }
    },
}
_PAGE_HEADERS = {
    # Only this agent's own files and endpoints: no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@functools.cache
def _asset(name: str) -> bytes:
    return (resources.files("agent.daemon") / "dashboard" / name).read_bytes()


def _authorize(runtime: Runtime, authorization: str | None) -> None:
    token = runtime.settings.http.control_token
    if token is None:
        raise HTTPException(403, "control is disabled: no FORAGER_HTTP__CONTROL_TOKEN is set")
    given = (authorization or "").removeprefix("Bearer ").encode()
    if not authorization or not hmac.compare_digest(given, token.get_secret_value().encode()):
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


def _health(runtime: Runtime) -> dict[str, Any]:
    """Liveness with reasons: each check is named, and any failing one makes it unhealthy."""
    agent = runtime.agent
    interval = runtime.settings.interval_s
    since = None
    if agent is not None and agent.last_tick_at is not None:
        since = round(time.time() - agent.last_tick_at, 3)
    ticking = agent is not None and agent.alive and not runtime.paused and not runtime.stopping
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, detail: str) -> None:
        checks[name] = {"ok": ok, "detail": detail}

    if runtime.startup_error:
        check("start", False, f"start-up failed: {runtime.startup_error}")
    check(
        "model",
        agent is not None,
        f"{agent.model} loaded" if agent is not None else "model not loaded yet",
    )
    if agent is not None:
        check("alive", agent.alive, "alive" if agent.alive else f"died: {agent.death_cause}")
    if ticking:
        check(
            "scheduler",
            runtime.scheduler_running,
            "running" if runtime.scheduler_running else "scheduler is not running",
        )
        stale_after = _STALE_INTERVALS * interval + _DECISION_SLACK_S
        fresh = since is None or since <= stale_after
        check(
            "ticks",
            fresh,
            "no tick yet"
            if since is None
            else f"last tick {since:.1f} s ago (interval {interval} s, stale after "
            f"{stale_after:.0f} s)",
        )
    if runtime.chain is not None:
        check(
            "chain",
            runtime.chain_error is None,
            "reachable at the last tick"
            if runtime.chain_error is None
            else f"last tick held: {runtime.chain_error}",
        )
    if runtime.sender is not None:
        halted = runtime.sender.halted
        check("signer", halted is None, halted or "nonces are ours")
    check(*_journal_check(runtime))
    funds = _funds(runtime)
    for name, (ok, detail) in funds.items():
        check(name, ok, detail)
    reasons = [item["detail"] for item in checks.values() if not item["ok"]]
    has_funds = None if not funds else all(ok for ok, _ in funds.values())
    return {
        "is_healthy": not reasons,
        "ok": not reasons,
        "reasons": reasons,
        "checks": checks,
        "agent_alive": None if agent is None else agent.alive,
        "paused": runtime.paused,
        "scheduler_running": runtime.scheduler_running,
        "signer_halted": runtime.sender is not None and runtime.sender.halted is not None,
        "has_required_funds": has_funds,
        "seconds_since_last_tick": since,
        "seconds_since_last_transition": since,
        "interval_s": interval,
        "uptime_s": round(time.time() - runtime.started_at, 3),
    }


def _journal_check(runtime: Runtime) -> tuple[str, bool, str]:
    """The data dir (state store and transaction journal) must be writable, with room."""
    folder = runtime.settings.data_dir
    if folder.exists() and not folder.is_dir():
        return "journal", False, f"data dir {folder} is not a folder"
    if not folder.is_dir():
        return "journal", runtime.agent is None, f"data dir {folder} does not exist yet"
    if not os.access(folder, os.W_OK):
        return "journal", False, f"data dir {folder} is not writable"
    free = shutil.disk_usage(folder).free
    if free < _MIN_FREE_BYTES:
        return "journal", False, f"data dir {folder} has {free // 2**20} MiB free"
    return "journal", True, f"writable, {free // 2**20} MiB free"


def _funds(runtime: Runtime) -> dict[str, tuple[bool, str]]:
    """Gas money above the policy's floor, and stable for the rent now due or next due."""
    agent = runtime.agent
    record = None if agent is None else agent.last_record
    if agent is None or record is None or not agent.alive:
        return {}
    balances = record.balances_after
    floor = agent.limits.min_native
    status = agent.rent_status()
    rent_needed = status.amount_due or status.amount
    decimals = record.observation.stable_decimals
    return {
        "gas_funds": (
            balances.native >= floor,
            f"native {balances.native / 1e18:.6g} vs floor {floor / 1e18:.6g}",
        ),
        "rent_funds": (
            balances.stable >= rent_needed,
            f"stable {balances.stable / 10**decimals:.6g} vs next rent "
            f"{rent_needed / 10**decimals:.6g}",
        ),
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
        "parent_id": None if runtime.store is None else runtime.store.get("parent_id"),
        "children": []
        if agent is None or agent.replication is None
        else [r.name for r in agent.replication.nursery.funded()],
        "strategy": None if agent is None else agent.strategy,
        "persona": None if agent is None else agent.persona,
        "model": None if agent is None else agent.model,
        "adapter": None if agent is None else agent.adapter,
        "alive": None if agent is None else agent.alive,
        "death_cause": None if agent is None else agent.death_cause,
        "age_ticks": None if agent is None else agent.age,
        "paused": runtime.paused,
        "tick": None,
        "block": None,
        "balances": None,
        "price": None,
        "net_worth": None,
        "runway_periods": None,
        "recent_prices": [],
        "price_change_pct": None,
        "last_decision": None,
        "policy_verdict": None,
        "last_veto": None,
        "last_outcome": None,
        "last_rent_outcome": None,
        "recent_actions": [],
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
        amount_due=str(Decimal(status.amount_due) / 10 ** _stable_decimals(agent)),
    )
    prices = list(agent.recent_prices)
    doc["recent_prices"] = prices
    if len(prices) >= 2 and prices[0] > 0:
        doc["price_change_pct"] = round((prices[-1] / prices[0] - 1) * 100, 4)
    if runtime.store is not None:
        doc["recent_actions"] = runtime.store.actions(_RECENT_ACTIONS)
    record = agent.last_record
    if record is not None:
        doc.update(_from_record(record))
    return doc


def _stable_decimals(agent: Any) -> int:
    record = agent.last_record
    return 6 if record is None else int(record.observation.stable_decimals)


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
            "lp_shares": record.balances_after.lp / 10**18,
            "lp_value": record.lp_worth_after / 10**sd,
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
        "policy_verdict": (
            f"vetoed: {record.veto.rule}"
            if record.veto is not None
            else "allowed"
            if record.action is not None
            else "nothing to do"
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
