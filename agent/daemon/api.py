"""The HTTP surface (FastAPI): health, readiness, state, history and metrics, read-only.

The only writes are `POST /control/pause|resume|stop`, which need the bearer token from the
settings (compared in constant time) and are disabled when none is configured. Nothing here can
change the policy, its limits, the rent payee, the prompt or the model. Bodies over 64 KiB get
413; a method a path does not serve gets 405.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from agent.daemon import views
from agent.daemon.health import health_view, readiness_view
from agent.daemon.parts import Runtime
from agent.daemon.state import state_view

MAX_BODY_BYTES = 64 * 1024
_UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Unhealthy or not ready; the body says why"}
}


def create_app(runtime: Runtime) -> FastAPI:
    """The agent's HTTP app; every route only reads `runtime` (control calls its actions)."""
    app = FastAPI(title="OpenForager agent", version="0.1.0", docs_url=None, redoc_url=None)
    _limit_bodies(app)
    # Registered in this order so that the OpenAPI document lists the paths as it always has.
    _add_health_routes(app, runtime)
    _add_state_route(app, runtime)
    _add_ticks_route(app, runtime)
    _add_control_route(app, runtime)
    _add_metrics_route(app, runtime)
    _add_series_route(app, runtime)
    _add_dashboard_routes(app)
    _add_actions_route(app, runtime)
    return app


def _limit_bodies(app: FastAPI) -> None:
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


def _add_health_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/healthz", response_model=views.Health, responses=_UNHEALTHY)
    def healthz() -> JSONResponse:
        """Liveness: the process and its scheduler are alive and ticks are not stale."""
        body = health_view(runtime)
        return JSONResponse(body.model_dump(), status_code=200 if body.is_healthy else 503)

    @app.get("/readyz", response_model=views.Readiness, responses=_UNHEALTHY)
    def readyz() -> JSONResponse:
        """Readiness: the model is loaded and the chain answers."""
        body = readiness_view(runtime)
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


def _add_state_route(app: FastAPI, runtime: Runtime) -> None:
    cache: dict[str, Any] = {"key": None, "body": b""}

    @app.get("/state", response_model=views.State)
    def state() -> Response:
        """The one document an operator needs about this agent."""
        # It changes only when a tick is recorded or the agent is paused, resumed, stopped or
        # dies: render it once per change, not once per request (dashboards poll it).
        key = _state_key(runtime)
        if key != cache["key"]:
            cache["key"], cache["body"] = key, state_view(runtime).model_dump_json().encode()
        return Response(cache["body"], media_type="application/json")


def _state_key(runtime: Runtime) -> tuple[Any, ...]:
    agent = runtime.agent
    return (
        id(agent),
        None if agent is None else agent.age,
        None if agent is None else agent.death_cause,
        runtime.paused,
        runtime.address,
    )


def _add_ticks_route(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/ticks", response_model=views.Ticks)
    def ticks(
        since: int = Query(0, ge=0, le=2**62), limit: int = Query(100, ge=1, le=1000)
    ) -> dict[str, Any]:
        """Stored tick records from tick `since`, oldest first; page with `next_since`."""
        records = runtime.store.records(limit=limit, since=since) if runtime.store else []
        following = records[-1]["tick"] + 1 if len(records) == limit else None
        return {"ticks": records, "next_since": following}


def _add_control_route(app: FastAPI, runtime: Runtime) -> None:
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


def _add_metrics_route(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/metrics", response_class=PlainTextResponse, responses=_METRICS)
    def prometheus() -> Response:
        """Metrics in Prometheus text format."""
        text = runtime.telemetry.prometheus_text() if runtime.telemetry else b""
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _add_series_route(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/series", response_model=views.Series)
    def series(
        since: int = Query(0, ge=0, le=2**62), limit: int = Query(1000, ge=1, le=5000)
    ) -> dict[str, Any]:
        """Per-tick columns for charts (price, net worth, runway, action, outcome)."""
        rows = runtime.store.series(since, limit) if runtime.store else []
        return _columns(rows, limit)


def _columns(rows: list[tuple[Any, ...]], limit: int) -> dict[str, Any]:
    """The store's series rows as chart columns (net worth in whole stable units)."""
    return {
        "ticks": [row[0] for row in rows],
        "price": [float(row[1]) for row in rows],
        "net_worth": [row[2] / 10 ** row[6] for row in rows],
        "runway": [float(row[3]) for row in rows],
        "action": [str(row[4]) for row in rows],
        "status": [str(row[5]) for row in rows],
        "next_since": rows[-1][0] + 1 if len(rows) == limit else None,
    }


def _add_dashboard_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        """The live dashboard: this agent at a glance (no external resources)."""
        return HTMLResponse(_asset("index.html"), headers=_PAGE_HEADERS)

    @app.get("/dashboard/{name}", response_class=Response, responses=_ASSETS)
    def dashboard_asset(name: Literal["app.js", "style.css"]) -> Response:
        """The dashboard's script and style sheet."""
        kinds = {"app.js": "text/javascript", "style.css": "text/css"}
        return Response(_asset(name), media_type=kinds[name], headers=_PAGE_HEADERS)


def _add_actions_route(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/actions", response_model=views.Actions)
    def actions(limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
        """Recent actions (swaps, rent, vetoes) with their transaction hashes, newest first."""
        items = runtime.store.actions(limit) if runtime.store else []
        return {"actions": items}


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
