"""The leaderboard: a population's lives, ranked, from their stores or from the agents themselves.

`leaderboard` reads each data dir of a fleet folder (its store, read-only); `remote_leaderboard`
asks each deployed agent for its `/state` and `/series` (and, given a landlord's folder, reads a
closed agent's from what the landlord kept). Both rank the same way: the longest life first,
then the richest at the end, then the most rent paid. `landlord_fates` says, per deployed life,
what the landlord's book recorded: alive, died on tick N, lease closed at block M.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog

from agent.core.lives import Life, life_from
from agent.errors import ConfigError
from agent.populations.landlord import final_dir
from agent.populations.landlord_book import Book, fate_of
from agent.reports.charts import line_chart
from agent.reports.tables import Table, table
from agent.runtime.store import Store, holds_agent

log = structlog.get_logger()


def row(life: Life, fates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A life as `forager fleet leaderboard --json` writes it (`landlord`: its fate in the
    landlord's book, when one was read)."""
    landlord = {} if fates is None else {"landlord": fates.get(life.name, fate_of(None))}
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
        **landlord,
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


def render_table(lives: Sequence[Life], fates: Mapping[str, str] | None = None) -> str:
    """The ranking as aligned plain text; with `fates`, a last column of the landlord's."""
    head = f"{'#':>2}  {'agent':12} {'strategy':15} {'gen':>3} {'ticks':>6} "
    head += f"{'net worth':>10} {'rent paid':>9}  fate"
    width = max((len(_fate(life)) for life in lives), default=4)
    lines = [head if fates is None else f"{head:{len(head) - 4 + width}}  landlord"]
    for rank, life in enumerate(lives, 1):
        line = (
            f"{rank:>2}  {life.name:12} {life.strategy:15} {life.generation:>3} "
            f"{life.ticks_lived:>6} {life.final_worth:>10.2f} {life.rent_paid:>9.2f}  "
        )
        if fates is None:
            lines.append(line + _fate(life))
        else:
            lines.append(f"{line}{_fate(life):{width}}  {_landlord(life, fates)}")
    return "\n".join(lines)


def ranking(lives: Sequence[Life], fates: Mapping[str, str] | None = None) -> Table:
    """The ranking as a `Table`, for a terminal (`render_table` is the plain-text form)."""
    columns = ("#", "agent", "strategy", "gen", "ticks", "net worth", "rent paid", "fate")
    rows = [
        (str(rank), life.name, life.strategy, str(life.generation), str(life.ticks_lived),
         f"{life.final_worth:.2f}", f"{life.rent_paid:.2f}", _fate(life))
        + (() if fates is None else (_landlord(life, fates),))
        for rank, life in enumerate(lives, 1)
    ]  # fmt: skip
    return table(columns + (() if fates is None else ("landlord",)), rows, title="leaderboard")


def _fate(life: Life) -> str:
    return "alive" if life.alive else f"died: {life.death_cause}"


def _landlord(life: Life, fates: Mapping[str, str]) -> str:
    return fates.get(life.name, fate_of(None))


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
    return _life(name, state, worth)


def read_kept_life(name: str, kept: Path) -> Life:
    """A life from the last `/state` and `/series` a landlord kept when it closed the lease
    (the series as far as its first page went)."""
    state = json.loads((kept / "state.json").read_text())
    series = json.loads((kept / "series.json").read_text())
    return _life(name, state, list(series["net_worth"]))


def _life(name: str, state: dict[str, Any], worth: list[float]) -> Life:
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


def remote_leaderboard(deployments: Path, landlord: Path | None = None) -> list[Life]:
    """Rank the lives of deployed agents from their own answers; unreachable ones are named.

    With a landlord's folder, an agent that no longer answers (its lease closed) is read from
    the final state the landlord kept, when it kept one.
    """
    lives, missing = [], []
    for entry in _deployments(deployments):
        url = entry.get("state_url")
        if not url:
            missing.append(f"{entry.get('name')}: not deployed")
            continue
        try:
            lives.append(read_remote_life(str(entry["name"]), str(url)))
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            kept = _kept_life(entry, landlord)
            if kept is None:
                missing.append(f"{entry['name']}: {url} did not answer ({exc})")
            else:
                lives.append(kept)
    for line in missing:
        log.warning("fleet_member_unreachable", detail=line)
    if not lives:
        raise ConfigError(f"no agent in {deployments} answered: {'; '.join(missing)}")
    return _ranked(lives)


def _kept_life(entry: dict[str, Any], landlord: Path | None) -> Life | None:
    if landlord is None or not entry.get("dseq"):
        return None
    try:
        return read_kept_life(str(entry["name"]), final_dir(landlord, str(entry["dseq"])))
    except (OSError, KeyError, TypeError, ValueError):
        return None


def landlord_fates(deployments: Path, book: Book) -> dict[str, str]:
    """Each deployed life's fate as the landlord's book recorded it, by the life's name."""
    tenants = {tenant.dseq: tenant for tenant in book.tenants()}
    return {
        str(entry["name"]): fate_of(tenants.get(str(entry["dseq"])))
        for entry in _deployments(deployments)
        if entry.get("dseq")
    }
