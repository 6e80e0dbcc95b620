"""`forager status [URL]`: an agent's state at a glance, in the terminal."""

from __future__ import annotations

from typing import Any

import httpx

from agent.errors import ConfigError


def fetch(url: str, timeout_s: float = 5.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The agent's /state and /healthz documents."""
    base = url.rstrip("/")
    try:
        state = httpx.get(f"{base}/state", timeout=timeout_s).json()
        health = httpx.get(f"{base}/healthz", timeout=timeout_s).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError(f"no agent answered at {base}: {exc}") from exc
    return state, health


def render(state: dict[str, Any], health: dict[str, Any]) -> str:
    """A few lines a person reads in two seconds."""
    problems = "; ".join(health.get("reasons", []))
    lines = [
        f"{state.get('agent_id') or '?'}  {_life(state)}  age {state.get('age_ticks')} ticks  "
        f"model {state.get('model')}",
        f"health: {'ok' if health.get('ok') else 'NOT OK: ' + problems}",
    ]
    if state.get("death_cause"):
        lines.append(f"died: {state['death_cause']}")
    if state.get("balances"):
        lines += _money(state)
    rent = state.get("rent") or {}
    if rent.get("paid_periods") is not None:
        lines.append(_rent(rent))
    if state.get("last_decision"):
        lines.append(_last(state))
    return "\n".join(lines)


def _life(state: dict[str, Any]) -> str:
    alive = state.get("alive")
    life = "ALIVE" if alive else ("DEAD" if alive is False else "STARTING")
    return life + (" (paused)" if state.get("paused") else "")


def _money(state: dict[str, Any]) -> list[str]:
    b = state["balances"]
    return [
        f"net worth {state['net_worth']:.2f}  runway {state['runway_periods']:.1f} periods  "
        f"price {state['price']:.4f}",
        f"wallet {b['stable']:.2f} stable, {b['risk']:.4f} risk, {b['native']:.4f} ETH",
    ]


def _rent(rent: dict[str, Any]) -> str:
    owed = rent.get("owed_periods") or 0
    due = f"OWED {owed} period(s)" if owed else f"next due in {rent.get('next_due_in_ticks')} ticks"
    return f"rent {rent['amount']} every {rent['period_ticks']} ticks: {due}"


def _last(state: dict[str, Any]) -> str:
    decision, outcome = state["last_decision"], state.get("last_outcome")
    verdict = state.get("last_veto")
    result = f"vetoed ({verdict['rule']})" if verdict else (outcome or {}).get("status", "?")
    return (
        f"last: tick {state.get('tick')} {decision['action']} {decision['amount_pct']}% -> {result}"
    )
