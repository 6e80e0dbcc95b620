"""Counterfactual labels on the paper arena: values that an independent replay reproduces to the
last digit, the same futures for every candidate, noisy states filtered out, and the command's
rows loadable with `datasets`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from agent.cli.main import main
from agent.config import Settings
from agent.core.prompt import COMPACT_PROMPT, PLAIN_PROMPT
from agent.core.strategies import RuleDecider
from agent.errors import ConfigError
from agent.lab.calibrate import Params, paper_agent, params_from
from agent.lab.counterfactual import (
    CANDIDATES,
    Label,
    LabelParams,
    check_every,
    continuation,
    label_state,
    visit,
    write_rows,
)
from agent.lab.paper_market import PaperWorld, open_world
from agent.runtime.store import Store
from arena.weather import FlowParams, WeatherParams
from tests.conftest import settings_for

SEED, TICK, STEPS = 21, 6, 5
LABEL = LabelParams(horizon=12, futures=3, every=TICK, continuation="mean_reversion")


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    yield
    structlog.configure(**saved)


def lived_to(settings: Settings, params: Params, tick: int) -> tuple[PaperWorld, Store]:
    """A mean-reversion life on SEED's paper arena, from its start to tick `tick` (the weather
    of `tick` drawn, its decision not yet taken)."""
    world = open_world(
        settings,
        WeatherParams(SEED, **params.weather),
        FlowParams(**params.flow),
        params.steps_per_tick,
    )
    store = Store(Path(":memory:"), durable=False)
    agent = paper_agent(settings, world, RuleDecider("mean_reversion", seed=SEED), store, "v")
    for t in range(tick):
        world.advance(t, params.steps_per_tick)
        agent.tick()
    world.advance(tick, params.steps_per_tick)
    return world, store


def test_each_value_is_what_an_independent_replay_of_that_candidate_gives(tmp_path: Path):
    """The labeller copies the world and the store; here the life is replayed from its start
    instead, the candidate played on it with the same future's weather, and the continuation
    run on: the same expected life, to the last digit, for every candidate and future."""
    settings = settings_for(tmp_path)
    params = params_from(settings, [SEED], 40, STEPS)
    world, store = lived_to(settings, params, TICK)
    key = "test-key"
    values, errors, prompt = label_state(settings, world, store, params, LABEL, key)
    assert len(values) == len(errors) == len(CANDIDATES)
    assert prompt and prompt[0]["role"] == "system"
    horizon = Params(**{**params.__dict__, "ticks": LABEL.horizon})
    for index in (0, 2, 5, 9, 14):  # hold, buy 25, sell 10, sell 100, remove 50
        replayed = []
        for k in range(LABEL.futures):
            fresh_world, fresh_store = lived_to(settings, params, TICK)
            fresh_world.weather.reseed(f"{key}-{k}")
            then = RuleDecider(LABEL.continuation, seed=k)
            value, _ = continuation(
                settings, fresh_world, fresh_store, horizon, CANDIDATES[index].answer, then
            )
            replayed.append(value)
        assert values[index] == sum(replayed) / len(replayed), CANDIDATES[index]
    # Labelling left the visited world as it was: a second labelling gives the same values.
    assert label_state(settings, world, store, params, LABEL, key)[0] == values


def test_candidates_differ_and_a_clear_best_is_found(tmp_path: Path):
    """In rough weather with rent owed, answers are worth different amounts, and across the
    visited states some have a best answer clear of the runner-up by two standard errors."""
    settings = settings_for(tmp_path)
    rough = {"volatility": 0.01, "noise": 0.02}
    settings = settings.model_copy(update={"arena": settings.arena.model_copy(update=rough)})
    params = params_from(settings, [SEED, SEED + 1], 30, STEPS)
    labels = list(visit(settings, params, LABEL, ["mean_reversion", "random"], workers=2))
    assert len(labels) == 2 * 2 * 5  # seeds x visitors x every 6th of 30 ticks
    assert all(len(set(x.values)) > 1 for x in labels), "every answer worth the same"
    assert any(x.significant() for x in labels)
    # lived in two processes or in this one: the same rows, in the same order
    assert list(visit(settings, params, LABEL, ["mean_reversion", "random"], workers=1)) == labels


def test_a_noisy_state_is_filtered_out():
    """When the best answer is within two standard errors of the worst, no answer is known to
    be better than another: the state is not a label worth keeping."""
    n = len(CANDIDATES)
    clear = Label(1, 0, "v", (), tuple([10.0] + [5.0] * (n - 1)), tuple([0.5] * n))
    noisy = Label(1, 5, "v", (), tuple([10.0] + [7.5] * (n - 1)), tuple([1.0] * n))
    assert clear.significant() and not noisy.significant()
    lines: list[str] = []

    class Out:
        def write(self, text: str) -> None:
            lines.append(text)

    assert write_rows([clear, noisy], Out(), significant_only=True) == 1  # type: ignore[arg-type]
    assert json.loads(lines[0])["tick"] == 0


def test_label_command_writes_rows_that_datasets_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """`forager label`: one row per visited state, every candidate with its value and error."""
    import datasets

    out = tmp_path / "labels.jsonl"
    argv = ["label", "--out", str(out), "--seeds", "1", "--first-seed", str(SEED)]
    argv += ["--ticks", "10", "--every", "7", "--horizon", "6", "--futures", "2"]
    argv += ["--visitors", "mean_reversion"]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith(f"2 states -> {out}")
    rows = datasets.load_dataset("json", data_files=str(out), split="train")
    assert len(rows) == 2
    first = rows[0]
    assert [c["completion"] for c in first["candidates"]] == [c.answer for c in CANDIDATES]
    assert all({"value", "se", "action", "amount_pct"} <= set(c) for c in first["candidates"])
    # The rows carry the plain prompt (no trading advice), and each answer only what acts.
    assert first["prompt"][0] == {"role": "system", "content": PLAIN_PROMPT}
    assert first["prompt"][1]["role"] == "user" and len(first["prompt"]) == 2
    assert json.loads(first["candidates"][2]["completion"]) == {
        "action": "buy_risk",
        "amount_pct": 10,
    }


def test_labels_under_the_compact_prompt_carry_its_own_observation(tmp_path: Path):
    """A row is the prompt a model under that style would see: the compact style writes the
    observation its own way, the same state's plain row in full."""
    rows = {}
    for style in ("plain", "compact"):
        out = tmp_path / f"{style}.jsonl"
        argv = ["label", "--out", str(out), "--seeds", "1", "--first-seed", str(SEED)]
        argv += ["--ticks", "8", "--every", "7", "--horizon", "4", "--futures", "2"]
        argv += ["--visitors", "mean_reversion", "--prompt", style]
        assert main(argv) == 0
        rows[style] = [json.loads(line) for line in out.read_text().splitlines()]
    plain, compact = rows["plain"][1], rows["compact"][1]
    assert compact["prompt"][0] == {"role": "system", "content": COMPACT_PROMPT}
    shown = compact["prompt"][1]["content"]
    assert shown.startswith("Rent ") and "Tick" not in shown and "vs recent median" in shown
    assert (
        plain["prompt"][1]["content"].startswith("Rent: ")
        and "Tick 7." in plain["prompt"][1]["content"]
    )
    # the same state, valued the same: only the words differ
    assert [c["value"] for c in compact["candidates"]] == [c["value"] for c in plain["candidates"]]


def test_label_command_names_bad_input(capsys: pytest.CaptureFixture[str]):
    """A visitor that is not a rule strategy is refused, named, before anything runs."""
    assert main(["label", "--out", "x.jsonl", "--visitors", "oracle"]) == 2
    assert "'oracle' is not a rule strategy" in capsys.readouterr().err


def test_a_stride_in_step_with_the_rent_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Every 10th tick of a 10-tick rent period is always the tick rent falls due: a model
    trained on those states alone never sees the others. Refused, naming the stride."""
    with pytest.raises(ConfigError, match="--every 10 shares a factor"):
        check_every(10, 10)
    check_every(7, 10)
    out = tmp_path / "labels.jsonl"
    assert main(["label", "--out", str(out), "--every", "5"]) == 2
    err = capsys.readouterr().err
    assert "--every 5 shares a factor with the rent period (10 ticks)" in err
    assert "only 2 of its 10 phases" in err and not out.exists()
