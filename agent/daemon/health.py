"""The health and readiness answers: a list of small named checks, each a `views.Check`.

Any failing check makes the agent unhealthy, and its detail is one of the reasons given.
"""

from __future__ import annotations

import os
import shutil
import time

from agent.daemon import views
from agent.daemon.parts import Runtime
from agent.runtime.loop import Agent
from wallets.errors import ChainError

_STALE_INTERVALS = 3
_DECISION_SLACK_S = 30.0
_MIN_FREE_BYTES = 64 * 2**20
_FUNDS_CHECKS = ("gas_funds", "rent_funds")
_Named = tuple[str, views.Check]


def health_view(runtime: Runtime) -> views.Health:
    """Liveness with reasons: each check is named, and any failing one makes it unhealthy."""
    agent = runtime.agent
    since = _seconds_since_tick(agent)
    checks = dict(_health_checks(runtime, since))
    reasons = [check.detail for check in checks.values() if not check.ok]
    funds = [checks[name].ok for name in _FUNDS_CHECKS if name in checks]
    return views.Health(
        is_healthy=not reasons,
        ok=not reasons,
        reasons=reasons,
        checks=checks,
        agent_alive=None if agent is None else agent.alive,
        paused=runtime.paused,
        scheduler_running=runtime.scheduler_running,
        signer_halted=runtime.sender is not None and runtime.sender.halted is not None,
        has_required_funds=all(funds) if funds else None,
        seconds_since_last_tick=since,
        seconds_since_last_transition=since,
        interval_s=runtime.settings.interval_s,
        uptime_s=round(time.time() - runtime.started_at, 3),
    )


def _seconds_since_tick(agent: Agent | None) -> float | None:
    if agent is None or agent.last_tick_at is None:
        return None
    return round(time.time() - agent.last_tick_at, 3)


def _health_checks(runtime: Runtime, since: float | None) -> list[_Named]:
    """The checks that apply at the moment, in the order `views.Health` documents."""
    found = [
        _start_check(runtime),
        _model_check(runtime.agent),
        _alive_check(runtime.agent),
        *_ticking_checks(runtime, since),
        _chain_check(runtime),
        _signer_check(runtime),
        _journal_check(runtime),
        *_funds_checks(runtime.agent),
    ]
    return [named for named in found if named is not None]


def _check(name: str, ok: bool, detail: str) -> _Named:
    return name, views.Check(ok=ok, detail=detail)


def _start_check(runtime: Runtime) -> _Named | None:
    if not runtime.startup_error:
        return None
    return _check("start", False, f"start-up failed: {runtime.startup_error}")


def _model_check(agent: Agent | None) -> _Named:
    if agent is None:
        return _check("model", False, "model not loaded yet")
    return _check("model", True, f"{agent.model} loaded")


def _alive_check(agent: Agent | None) -> _Named | None:
    if agent is None:
        return None
    return _check("alive", agent.alive, "alive" if agent.alive else f"died: {agent.death_cause}")


def _ticking_checks(runtime: Runtime, since: float | None) -> list[_Named]:
    """While the agent should be ticking: the scheduler runs and the last tick is recent."""
    agent = runtime.agent
    if agent is None or not agent.alive or runtime.paused or runtime.stopping:
        return []
    running = runtime.scheduler_running
    interval = runtime.settings.interval_s
    stale_after = _STALE_INTERVALS * interval + _DECISION_SLACK_S
    if since is None:
        ticks = _check("ticks", True, "no tick yet")
    else:
        detail = (
            f"last tick {since:.1f} s ago (interval {interval} s, stale after {stale_after:.0f} s)"
        )
        ticks = _check("ticks", since <= stale_after, detail)
    return [
        _check("scheduler", running, "running" if running else "scheduler is not running"),
        ticks,
    ]


def _chain_check(runtime: Runtime) -> _Named | None:
    if runtime.chain is None:
        return None
    if runtime.chain_error is None:
        return _check("chain", True, "reachable at the last tick")
    return _check("chain", False, f"last tick held: {runtime.chain_error}")


def _signer_check(runtime: Runtime) -> _Named | None:
    if runtime.sender is None:
        return None
    halted = runtime.sender.halted
    return _check("signer", halted is None, halted or "nonces are ours")


def _journal_check(runtime: Runtime) -> _Named:
    """The data dir (state store and transaction journal) must be writable, with room."""
    folder = runtime.settings.data_dir
    if folder.exists() and not folder.is_dir():
        return _check("journal", False, f"data dir {folder} is not a folder")
    if not folder.is_dir():
        return _check("journal", runtime.agent is None, f"data dir {folder} does not exist yet")
    if not os.access(folder, os.W_OK):
        return _check("journal", False, f"data dir {folder} is not writable")
    free = shutil.disk_usage(folder).free
    if free < _MIN_FREE_BYTES:
        return _check("journal", False, f"data dir {folder} has {free // 2**20} MiB free")
    return _check("journal", True, f"writable, {free // 2**20} MiB free")


def _funds_checks(agent: Agent | None) -> list[_Named]:
    """Gas money above the policy's floor, and stable for the rent now due or next due."""
    record = None if agent is None else agent.last_record
    if agent is None or record is None or not agent.alive:
        return []
    native, stable = record.balances_after.native, record.balances_after.stable
    floor = agent.limits.min_native
    status = agent.rent_status()
    rent_needed = status.amount_due or status.amount
    unit = 10**record.observation.stable_decimals
    return [
        _check(
            "gas_funds", native >= floor, f"native {native / 1e18:.6g} vs floor {floor / 1e18:.6g}"
        ),
        _check(
            "rent_funds",
            stable >= rent_needed,
            f"stable {stable / unit:.6g} vs next rent {rent_needed / unit:.6g}",
        ),
    ]


def readiness_view(runtime: Runtime) -> views.Readiness:
    """Ready when the agent is built and the chain answers now."""
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
    return views.Readiness(
        ready=not reasons and chain_ok,
        reasons=reasons,
        model_loaded=runtime.agent is not None,
        chain_reachable=chain_ok,
    )
