"""The leaderboard read from stores: each life as its records and actions tell it, ranked,
printed and written as JSON with the keys it always had."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_settings
from agent.errors import ConfigError
from agent.lab.calibrate import calibrate
from agent.populations.leaderboard import (
    leaderboard,
    lifetime,
    ranking,
    read_life,
    render_table,
    row,
)
from agent.reports.tables import markdown

ROW_KEYS = [
    "name", "agent_id", "strategy", "generation", "lifetime", "net_worth", "rent_paid", "alive",
    "death_cause", "parent_id",
]  # fmt: skip


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three paper lives kept as data dirs; the poor one dies of unpaid rent."""
    folder = tmp_path_factory.mktemp("population")
    rich = load_settings(rent={"period_ticks": 4, "grace_ticks": 1})
    calibrate(rich, [1], 12, strategies=("hold", "momentum"), keep=folder)
    poor = rich.model_copy(update={"arena": rich.arena.model_copy(update={"agent_stable": 1})})
    calibrate(poor, [2], 12, strategies=("random",), keep=folder)
    return folder


def stored(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "state.sqlite") as db:
        return db.execute(sql).fetchall()


def test_each_life_is_what_its_store_records(population: Path):
    """Lifetime, worth series, rent (as the actions table sums it), fate and id match the store."""
    for data_dir in sorted(population.iterdir()):
        life = read_life(data_dir)
        assert life is not None and life.name == data_dir.name
        worth = stored(data_dir, "SELECT json_extract(record, '$.net_worth_after') FROM ticks")
        assert (
            life.worth == tuple(w / 10**6 for (w,) in worth) and life.final_worth == life.worth[-1]
        )
        assert life.ticks_lived == len(worth) == lifetime(data_dir)
        ((rent,),) = stored(
            data_dir,
            "SELECT COALESCE(SUM(json_extract(detail, '$.amount_in')), 0) FROM actions"
            " WHERE kind IN ('rent', 'pay_rent') AND status = 'ok'",
        )
        assert life.rent_paid == float(rent) / 10**6
        meta = dict(stored(data_dir, "SELECT key, value FROM meta"))
        assert life.agent_id == meta.get("agent_id", "")  # a paper life's id is not in its meta
        assert life.death_cause == meta.get("death_cause")
        assert life.alive == ("death_cause" not in meta)
    assert lifetime(population / "nobody") == 0 and read_life(population / "nobody") is None


def test_the_board_ranks_prints_and_writes_rows_as_before(population: Path):
    """Longest first, then richest, then most rent; the table and the JSON keys are unchanged."""
    lives = leaderboard(population)
    keys = [(-x.ticks_lived, -x.final_worth, -x.rent_paid, x.name) for x in lives]
    assert keys == sorted(keys) and lives[-1].strategy == "random" and not lives[-1].alive
    assert lives[0].rent_paid > 0 and lives[0].alive
    lines = render_table(lives).splitlines()
    assert lines[0] == " #  agent        strategy        gen  ticks  net worth rent paid  fate"
    assert lines[1].split()[:5] == ["1", lives[0].name, lives[0].strategy, "0", "12"]
    assert lines[-1].split("  ")[-1].startswith("died: ")
    first = json.loads(json.dumps(row(lives[0])))
    assert list(first) == ROW_KEYS and first["lifetime"] == 12 and first["parent_id"] is None


def test_the_terminal_table_holds_the_same_ranking(population: Path):
    """The rich table a terminal gets has the plain table's cells, row for row."""
    lives = leaderboard(population)
    board = ranking(lives)
    plain = [line.split(None, 7) for line in render_table(lives).splitlines()[1:]]
    assert [list(r) for r in board.rows] == plain
    assert [r[0] for r in board.rows] == [str(i) for i in range(1, len(lives) + 1)]
    assert board.rows[-1][-1].startswith("died: ") and "| # | agent |" in markdown(board)


def test_a_folder_without_agents_is_named(tmp_path: Path):
    """A folder holding no data dirs, or no folder at all, is a ConfigError that names it."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no agent data dirs"):
        leaderboard(tmp_path)
    with pytest.raises(ConfigError, match="nope holds no agent data dirs"):
        leaderboard(tmp_path / "nope")
