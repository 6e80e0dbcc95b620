"""Calibration: the paper arena follows the chain to the unit, and in the default weather
skill pays (a small, fast configuration of `forager arena calibrate`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from eth_account import Account

from agent.cli.main import main
from agent.config import Settings, default_cache_dir
from agent.core.records import Decision, Observation
from agent.core.strategies import RuleDecider
from agent.daemon.wiring import arena_config, build_agent, market_from_arena
from agent.lab.calibrate import calibrate, live, params_from
from agent.runtime.store import Store
from arena.local import LocalArena
from tests.conftest import require_binary, settings_for
from tests.png import read_png

TICKS, STEPS, SEED = 24, 5, 3
STABLE = int(Settings().arena.agent_stable) * 10**6  # what a paper life starts with


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The CLI configures logging onto pytest's captured stdout: put it back afterwards."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.parametrize("strategy", ["liquidity", "mean_reversion", "random"])
def test_a_paper_life_follows_the_same_life_on_chain(tmp_path: Path, strategy: str):
    """Same seed, same baseline: every tick's net worth on paper equals the chain's to the
    base unit, so the calibration's lives are the arena's lives without the waiting."""
    require_binary("anvil")
    settings = settings_for(tmp_path, strategy=strategy)
    arena = LocalArena(
        arena_config(
            settings, seed=SEED, weather_interval_s=0, cache_dir=default_cache_dir() / "contracts"
        )
    )
    info = arena.up()
    try:
        assert arena.weather is not None
        account = Account.create()
        arena.fund(account.address, native_wei=10**19, stable=STABLE, risk=0)
        store = Store(settings.data_dir / "state.sqlite")
        agent, _, _ = build_agent(
            settings, market_from_arena(info), account, RuleDecider(strategy, seed=SEED), store
        )
        on_chain, kinds = [], set()
        for _ in range(TICKS):
            for _ in range(STEPS):
                arena.weather.step()
            record = agent.tick()
            assert record is not None
            on_chain.append(record.net_worth_after / 10**6)
            if record.action is not None and record.outcome.status == "ok":
                kinds.add(record.action.kind)
    finally:
        arena.down()
    paper = live(settings, params_from(settings, [SEED], TICKS, STEPS), strategy, SEED)
    assert list(paper.worth) == on_chain
    assert kinds - {"hold", "pay_rent"}, f"{strategy} never traded: the comparison proves little"
    if strategy == "liquidity":
        assert "add_liquidity" in kinds


class Thinking:
    """A rule decider whose every decision lasts `steps` weather steps on the chain, as a
    model's does: the arena's weather trades while it thinks."""

    def __init__(self, inner: RuleDecider, arena: LocalArena, steps: int) -> None:
        self.inner, self.arena, self.steps = inner, arena, steps

    @property
    def name(self) -> str:
        return self.inner.name

    def close(self) -> None:
        self.inner.close()

    def decide(self, obs: Observation, recent_prices: tuple[float, ...] = ()) -> Decision:
        decision = self.inner.decide(obs, recent_prices)
        assert self.arena.weather is not None
        for _ in range(self.steps):
            self.arena.weather.step()
        return decision


THINK = 2  # weather steps per decision


def test_a_paper_life_that_thinks_follows_the_chain_through_refusals(tmp_path: Path):
    """Decisions that last two weather steps, in rough weather: the paper arena moves its
    weather during each decision as the chain does, prices the action again at act time, and
    refuses the same swaps (`market_moved`) at the same ticks — every tick's outcome, veto and
    net worth equal the chain's to the base unit."""
    require_binary("anvil")
    settings = settings_for(tmp_path, strategy="random")
    think_s = THINK * settings.interval_s / STEPS
    rough = {"volatility": 0.01, "noise": 0.02, "paper_think_s": think_s}
    settings = settings.model_copy(update={"arena": settings.arena.model_copy(update=rough)})
    arena = LocalArena(
        arena_config(
            settings, seed=SEED, weather_interval_s=0, cache_dir=default_cache_dir() / "contracts"
        )
    )
    info = arena.up()
    try:
        account = Account.create()
        arena.fund(account.address, native_wei=10**19, stable=STABLE, risk=0)
        store = Store(settings.data_dir / "state.sqlite")
        decider = Thinking(RuleDecider("random", seed=SEED), arena, THINK)
        agent, _, _ = build_agent(settings, market_from_arena(info), account, decider, store)
        on_chain = []
        for tick in range(TICKS):
            assert arena.weather is not None
            for _ in range(STEPS if tick == 0 else STEPS - THINK):
                arena.weather.step()
            record = agent.tick()
            assert record is not None
            on_chain.append(_fate(record.to_dict()))
    finally:
        arena.down()
    kept = tmp_path / "paper"
    live(settings, params_from(settings, [SEED], TICKS, STEPS), "random", SEED, keep=kept)
    with Store.read(kept / f"random-seed{SEED}") as paper_store:
        on_paper = [_fate(r) for r in paper_store.tick_records()]
    assert on_paper == on_chain
    assert any(veto == "market_moved" for _, veto, _ in on_chain), "no refusal: proves little"
    assert any(status == "ok" for status, _, _ in on_chain)


def _fate(record: dict[str, Any]) -> tuple[str, str | None, int]:
    veto = record["veto"]
    return record["outcome"]["status"], veto and veto["rule"], record["net_worth_after"]


def test_in_the_default_world_hold_dies_random_sooner_and_the_best_rule_lives():
    """The world is one where survival is at stake, judged by lifetime: within 300 ticks
    `hold` dies on every seed, `random` dies sooner on average, `mean_reversion` (the best
    rule) lives on every seed and outlives hold, momentum dies sooner than hold, and the same
    seeds give the same report."""
    settings = Settings()
    report = calibrate(settings, range(12), 300)
    verdict = report.verdict()
    assert verdict == {
        "skilled_outliving_hold": ["mean_reversion"],
        "skill_pays": True,
        "hold_dies": True,
        "random_dies_sooner": True,
        "best_rule": "mean_reversion",
        "best_rule_lives": True,
    }, verdict
    hold = report.summary("hold")
    assert hold.survived == 0 and hold.life_ci[0] == hold.life_ci[1]  # rent is all it pays
    # In a market whose deviations revert, chasing moves dies soonest.
    assert report.summary("momentum").lived_mean < hold.lived_mean
    assert calibrate(settings, range(12), 300).to_json() == report.to_json()


def test_the_dead_are_judged_by_how_long_they_lived_not_by_what_they_left():
    """A baseline that dies sooner than hold does not outlive it because it left crumbs (hold
    leaves nothing): the verdict reads lifetime, never final net worth."""
    report = calibrate(Settings(), range(2), 300, strategies=("hold", "momentum"))
    momentum, hold = report.summary("momentum"), report.summary("hold")
    assert momentum.worth_mean > hold.worth_mean  # the crumbs
    assert momentum.life_mean < hold.life_mean
    assert report.verdict()["skilled_outliving_hold"] == []


def test_calibrate_command_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "calibration"
    code = main(
        [
            "arena",
            "calibrate",
            "--seeds",
            "2",
            "--ticks",
            "40",
            "--out",
            str(out),
            "--noise",
            "0.02",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "| mean_reversion |" in printed and "skill_pays" in printed
    data = json.loads((out / "calibration.json").read_text())
    assert data["params"]["seeds"] == [0, 1] and data["params"]["ticks"] == 40
    assert data["params"]["flow"]["noise"] == 0.02
    assert {s["strategy"] for s in data["summaries"]} == {
        "hold",
        "random",
        "momentum",
        "mean_reversion",
        "liquidity",
    }
    assert len(data["lives"]) == 10
    assert (out / "calibration.md").read_text().startswith("| baseline |")
    width, height, _ = read_png(out / "calibration.png")
    assert width > 0 and height > 0


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--strategies", "hold,yolo"], "yolo"),
        (["--seeds", "0"], "--seeds 0"),
        (["--noise", "-1"], "noise"),
    ],
)
def test_calibrate_names_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], named: str
):
    code = main(["arena", "calibrate", "--out", str(tmp_path / "c"), *argv])
    assert code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
