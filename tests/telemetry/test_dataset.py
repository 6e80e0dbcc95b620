"""The experience dataset: real lives in, TRL-format rows out, loadable with `datasets`."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from agent.core.records import TickRecord
from agent.core.testing import FakeDecider
from agent.daemon.wiring import build_agent, market_from_arena
from agent.runtime.experience import read_experience, select_lives
from agent.runtime.store import Store
from arena.local import LocalArena
from telemetry.dataset import export
from telemetry.errors import DatasetError, TelemetryError
from telemetry.experience import READABLE_VERSIONS, SCHEMA_VERSION, experience
from tests.conftest import REPO, settings_for

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BUY = '{"action": "buy_risk", "amount_pct": 25, "reason": "up"}'
SELL = '{"action": "sell_risk", "amount_pct": 50, "reason": "down"}'
HOLD = '{"action": "hold", "amount_pct": 10, "reason": "wait"}'
BROKEN = '{"action": "buy_risk", "amount_pct": 999'


def live(
    arena: LocalArena, root: Path, answers: list[str], stable: int = 500, risk: int = 10**19
) -> Path:
    """Run an agent for len(answers) ticks on the arena (weather moving) and return its dir."""
    info = arena.info
    assert info is not None and arena.weather is not None
    account = Account.create()
    arena.fund(account.address, native_wei=10**19, stable=stable * 10**6, risk=risk)
    settings = settings_for(root, rent={"period_ticks": 3, "grace_ticks": 1})
    store = Store(settings.data_dir / "state.sqlite")
    agent, _, _ = build_agent(
        settings, market_from_arena(info), account, FakeDecider(answers), store
    )
    for _ in answers:
        agent.tick()
        arena.weather.step()
    store.close()
    return settings.data_dir


@pytest.fixture
def lives(arena: LocalArena, tmp_path: Path) -> list[Path]:
    return [
        live(arena, tmp_path / "a", [BUY, HOLD, SELL, BROKEN, BUY, SELL]),
        live(arena, tmp_path / "b", [SELL, BUY, HOLD, HOLD, SELL, BUY]),
        live(arena, tmp_path / "c", [HOLD, HOLD, HOLD], stable=1, risk=0),  # dies of unpaid rent
    ]


def test_returns_are_discounted_rewards_over_the_rest_of_life(lives: list[Path]):
    """Each step's return is its reward plus gamma times the next step's return."""
    life = read_experience(lives[0], gamma=0.5)
    assert life is not None and len(life.steps) == 6
    steps = life.steps
    for step, nxt in itertools.pairwise(steps):
        assert step.ret == pytest.approx(step.reward + 0.5 * nxt.ret)
    assert steps[-1].ret == pytest.approx(steps[-1].reward)
    dead = read_experience(lives[2])
    assert dead is not None and dead.died and dead.steps[-1].reward < -5
    assert len(dead.steps) == 2  # it stopped living at the death tick


def test_formats_match_trl_and_load_with_datasets(lives: list[Path], tmp_path: Path):
    """Every format loads with `datasets` and has the columns its TRL trainer expects."""
    import datasets

    expected = {
        "sft": {"prompt", "completion"},
        "kto": {"prompt", "completion", "label"},
        "dpo": {"prompt", "chosen", "rejected"},
        "trajectories": {"messages", "rewards", "reward"},
    }
    for fmt, columns in expected.items():
        out = tmp_path / f"{fmt}.jsonl"
        with out.open("w") as handle:
            count = export(select_lives(lives), fmt, handle)
        assert count > 0, fmt
        loaded = datasets.load_dataset(
            "json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf")
        )
        assert columns <= set(loaded.column_names), (fmt, loaded.column_names)
        assert len(loaded) == count
        row = loaded[0]
        if fmt in ("sft", "kto", "dpo"):
            assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        if fmt == "sft":
            answer = json.loads(row["completion"][0]["content"])
            assert answer["action"] in {"hold", "buy_risk", "sell_risk", "pay_rent"}
        if fmt == "kto":
            assert set(loaded["label"]) <= {True, False}
        if fmt == "dpo":
            assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        if fmt == "trajectories":
            roles = [m["role"] for m in row["messages"]]
            assert roles[0] == "system" and roles.count("assistant") == len(row["rewards"])


def test_sft_skips_broken_output_and_kto_labels_it_bad(lives: list[Path], tmp_path: Path):
    """Invalid model output is never an SFT target, and is a negative KTO example."""
    sft, kto = tmp_path / "sft.jsonl", tmp_path / "kto.jsonl"
    with sft.open("w") as a, kto.open("w") as b:
        export(select_lives(lives[:1]), "sft", a)
        export(select_lives(lives[:1]), "kto", b)
    assert BROKEN not in sft.read_text()
    rows = [json.loads(r) for r in kto.read_text().splitlines()]
    broken = [r for r in rows if r["completion"][0]["content"] == BROKEN]
    assert len(broken) == 1 and broken[0]["label"] is False


def test_export_is_deterministic_and_filters(lives: list[Path], tmp_path: Path):
    """Same input, same bytes; top-k and min-return select lives."""
    runs = []
    for name in ("one", "two"):
        out = tmp_path / f"{name}.jsonl"
        with out.open("w") as handle:
            export(select_lives(list(reversed(lives))), "trajectories", handle)
        runs.append(out.read_bytes())
    assert runs[0] == runs[1]
    best = list(select_lives(lives, top_k=2))
    assert len(best) == 2 and all(not life.died for life in best)
    assert all(life.total_return >= 0 for life in select_lives(lives, min_return=0.0))
    assert len(list(select_lives(lives, strategy="llm"))) == 3
    assert list(select_lives(lives, strategy="momentum")) == []
    assert list(select_lives(lives, generation=1)) == []


def test_cli_export_and_bad_input(lives: list[Path], tmp_path: Path):
    """`forager dataset export` writes the file; a dir with no store is a clear error."""
    out = tmp_path / "cli" / "sft.jsonl"
    args = [sys.executable, "-m", "agent.cli", "dataset", "export", "--format", "sft"]
    dirs = [a for d in lives for a in ("--data-dir", str(d))]
    done = subprocess.run(
        [*args, *dirs, "--out", str(out)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text().count("\n") == int(done.stdout.split()[0])
    bad = subprocess.run(
        [*args, "--data-dir", str(tmp_path), "--out", str(tmp_path / "x.jsonl")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "has no state.sqlite" in bad.stderr
    with (tmp_path / "y").open("w") as handle, pytest.raises(DatasetError, match="not one of"):
        export([], "csv", handle)


def test_a_record_of_an_unknown_schema_version_is_refused_by_name():
    """The reader refuses a schema version it does not know, naming the store, tick and version."""
    with pytest.raises(DatasetError, match=r"x/state\.sqlite: tick 3 has schema version 99"):
        experience([{"tick": 3, "schema_version": 99}], source="x/state.sqlite")
    assert experience([]) is None
    assert issubclass(DatasetError, TelemetryError) and SCHEMA_VERSION in READABLE_VERSIONS
    assert TickRecord.__dataclass_fields__["schema_version"].default == SCHEMA_VERSION
