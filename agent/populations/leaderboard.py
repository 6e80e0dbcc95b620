"""The leaderboard: a population's lives, ranked, from their stores or from the agents themselves.

`leaderboard` reads each data dir of a fleet folder (its store, read-only); `remote_leaderboard`
asks each deployed agent for its `/state` and `/series`. Both rank the same way: the longest
life first, then the richest at the end, then the most rent paid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog

from agent.core.lives import Life, life_from
from agent.errors import ConfigError
from agent.reports.charts import line_chart
from agent.reports.tables import Table, table
from agent.runtime.store import Store, holds_agent

log = structlog.get_logger()


def row(life: Life) -> dict[str, Any]:
    """A life as `forager fleet leaderboard --json` writes it."""
    return {
        "name": life.name,
        "agent_id": life.agent_id,
        "strategy": life.strategy,
        "generation": life.generation,
        "lifetime": life.ticks_lived,
        "net_worth": life.final_worth,
        "rent_paid": life.rent_paid,
        "alive": life.alive,
        "death_cause": life.death_cause,
        "parent_id": life.parent_id,
    }


def lifetime(data_dir: Path) -> int:
    """Ticks an agent has lived, from its store (0 for a new one)."""
    if not holds_agent(data_dir):
        return 0
    with Store.read(data_dir) as store:
        return store.tick_count()


def read_life(data_dir: Path) -> Life | None:
    """A life from its state store, or None when the folder holds no agent."""
    if not holds_agent(data_dir):
        return None
    with Store.read(data_dir) as store:
        return life_from(store.tick_records(), store.meta(), name=data_dir.name)


def _ranked(lives: list[Life]) -> list[Life]:
    return sorted(lives, key=lambda x: (-x.ticks_lived, -x.final_worth, -x.rent_paid, x.name))


def leaderboard(folder: Path) -> list[Life]:
    """Every life under `folder` (one data dir per agent), best first."""
    dirs = sorted(d for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
    lives = [life for d in dirs if (life := read_life(d))]
    if not lives:
        raise ConfigError(f"{folder} holds no agent data dirs (each with a state.sqlite)")
    return _ranked(lives)


def render_table(lives: Sequence[Life]) -> str:
    head = f"{'#':>2}  {'agent':12} {'strategy':15} {'gen':>3} {'ticks':>6} "
    head += f"{'net worth':>10} {'rent paid':>9}  fate"
    lines = [head]
    for rank, life in enumerate(lives, 1):
        fate = "alive" if life.alive else f"died: {life.death_cause}"
        lines.append(
            f"{rank:>2}  {life.name:12} {life.strategy:15} {life.generation:>3} "
            f"{life.ticks_lived:>6} {life.final_worth:>10.2f} {life.rent_paid:>9.2f}  {fate}"
        )
    return "\n".join(lines)


def ranking(lives: Sequence[Life]) -> Table:
    """The ranking as a `Table`, for a terminal (`render_table` is the plain-text form)."""
    columns = ("#", "agent", "strategy", "gen", "ticks", "net worth", "rent paid", "fate")
    rows = [
        (str(rank), life.name, life.strategy, str(life.generation), str(life.ticks_lived),
         f"{life.final_worth:.2f}", f"{life.rent_paid:.2f}",
         "alive" if life.alive else f"died: {life.death_cause}")
        for rank, life in enumerate(lives, 1)
    ]  # fmt: skip
    return table(columns, rows, title="leaderboard")


def write_chart(lives: Sequence[Life], out: Path) -> Path:
    """A PNG of net worth over ticks, one line per life (colours in the legend order)."""
    line_chart({f"{x.name} {x.strategy}": list(x.worth) for x in lives}, out)
    return out


def _worth_series(http: httpx.Client) -> list[float]:
    """Every net worth a running agent serves, page by page (`/series`)."""
    worth: list[float] = []
    since: int | None = 0
    while since is not None:
        page = http.get("/series", params={"since": since}).raise_for_status().json()
        worth.extend(page["net_worth"])
        since = page["next_since"]
    return worth


def read_remote_life(name: str, state_url: str, timeout_s: float = 10.0) -> Life:
    """A life from a running agent's own HTTP surface (`/state` and `/series`)."""
    base = state_url.removesuffix("/state").rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout_s) as http:
        state = http.get("/state").raise_for_status().json()
        worth = _worth_series(http)
    rent = state["rent"]
    lifetime = int(state["age_ticks"] or 0)
    return Life(
        name=name,
        agent_id=str(state["agent_id"]),
        strategy=str(state["strategy"]),
        generation=int(state["generation"]),
        ticks_lived=lifetime,
        final_worth=float(state["net_worth"] or 0.0),
        rent_paid=float(Decimal(rent["amount"]) * int(rent.get("paid_periods") or 0)),
        alive=bool(state["alive"]),
        death_cause=state["death_cause"],
        parent_id=state.get("parent_id"),
        # A running agent may tick between the two reads: the series is cut at the state's age,
        # so the life is one consistent snapshot.
        worth=tuple(worth[:lifetime]),
    )


def _deployments(deployments: Path) -> list[dict[str, Any]]:
    try:
        entries: list[dict[str, Any]] = json.loads(deployments.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"deployments file {deployments} cannot be read: {exc}") from exc
    return entries


def remote_leaderboard(deployments: Path) -> list[Life]:
    """Rank the lives of deployed agents from their own answers; unreachable ones are named."""
    lives, missing = [], []
    for entry in _deployments(deployments):
        url = entry.get("state_url")
        if not url:
            missing.append(f"{entry.get('name')}: not deployed")
            continue
        try:
            lives.append(read_remote_life(str(entry["name"]), str(url)))
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            missing.append(f"{entry['name']}: {url} did not answer ({exc})")
    for line in missing:
        log.warning("fleet_member_unreachable", detail=line)
    if not lives:
        raise ConfigError(f"no agent in {deployments} answered: {'; '.join(missing)}")
    return _ranked(lives)
