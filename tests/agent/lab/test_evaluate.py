"""Evaluation and evolution: the statistics, the curated dataset, the held-out rule, and the
whole judgement on the real model — a deliberately harmful adapter must be reported worse."""

from __future__ import annotations

import dataclasses
import json
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog

from agent.cli.main import main
from agent.config import Settings
from agent.core.lives import Life
from agent.errors import ConfigError
from agent.lab.calibrate import calibrate, params_from
from agent.lab.evaluate import Contestant, held_out_check, judge, paired, verdict_of
from agent.lab.evolve import EvolveSettings, population_seeds, write_dataset
from agent.lab.stats import Interval, bootstrap
from agent.runtime.experience import read_experience
from telemetry.dataset import curated_rows, sft_rows
from telemetry.experience import Experience, Step

# Generous time limits: training dominates, and on a 2-core machine at load 16 the six steps
# alone took 1 638 s (the whole test, before it was split, took 338 s on an idle machine).
HARMFUL_TIMEOUT_S = 3600  # the first of the two also trains the adapter (the fixture)
EVOLVE_TIMEOUT_S = 3600  # two trainings, four populations, two evaluations
HARMFUL_TICKS = 30  # each model life, as before the split


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def life(name: str, seed: int, worth: float, alive: bool = True, ticks: int = 10) -> Life:
    return Life(
        strategy="llm",
        seed=seed,
        ticks_lived=ticks,
        alive=alive,
        final_worth=worth,
        worth=(worth,) * ticks,
        trades=0,
        expected_life=ticks + (worth / 0.5 if alive else 0.0),
        name=name,
    )


def test_bootstrap_interval_holds_the_statistic_and_is_reproducible():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    a = bootstrap(values, lambda v: sum(v) / len(v), 500, np.random.default_rng(1))
    b = bootstrap(values, lambda v: sum(v) / len(v), 500, np.random.default_rng(1))
    assert a == b
    assert a.value == 4.0 and a.low <= a.value <= a.high
    assert a.low >= 1.0 and a.high <= 10.0 and a.high - a.low > 1.0
    flat = bootstrap([5.0] * 4, lambda v: sum(v) / len(v), 200, np.random.default_rng(0))
    assert flat == Interval(5.0, 5.0, 5.0)


def test_the_verdict_is_paired_by_seed():
    # Seeds differ wildly (the weather), but the child is richer on every one of them.
    parent = [life("p", s, w) for s, w in ((0, 100.0), (1, 400.0), (2, 900.0))]
    child = [life("c", s, w + 12.0) for s, w in ((0, 100.0), (1, 400.0), (2, 900.0))]
    diff = paired(child, parent, 500, seed=0)
    assert diff["final_worth"] == Interval(12.0, 12.0, 12.0)
    assert verdict_of(diff["expected_life"]) == "better"
    assert verdict_of(paired(parent, child, 500, seed=0)["expected_life"]) == "worse"
    mixed = [life("c", 0, 110.0), life("c", 1, 390.0), life("c", 2, 905.0)]
    assert verdict_of(paired(mixed, parent, 500, seed=0)["expected_life"]) == (
        "no measurable difference"
    )
    # Dying is worse than living poor: expected lifetime counts only the living's worth.
    dead = [life("c", s, 1000.0, alive=False, ticks=5) for s in (0, 1, 2)]
    assert verdict_of(paired(dead, parent, 500, seed=0)["expected_life"]) == "worse"


def test_the_child_is_judged_against_every_baseline_paired_by_seed():
    """Beside the verdict on its parent, the child gets one against each baseline: above
    `hold` here, below the rule teacher, and both written in the report."""
    seeds = (0, 1, 2)
    lives = [
        *(life("gen0", s, 10.0 * s) for s in seeds),
        *(life("gen1", s, 10.0 * s + 4) for s in seeds),
        *(life("hold", s, 0.0, alive=False, ticks=8) for s in seeds),
        *(life("mean_reversion", s, 10.0 * s + 9) for s in seeds),
    ]
    names = ("gen0", "gen1", "hold", "mean_reversion")
    contestants = [Contestant(n, "llm" if n.startswith("gen") else n) for n in names]
    params = params_from(Settings(), seeds, 10, 5)
    ev = judge(params, contestants, lives, 500)
    assert ev.verdict == "better"
    assert set(ev.against) == {"hold", "mean_reversion"}
    assert verdict_of(ev.against["hold"]["expected_life"]) == "better"
    assert ev.against["mean_reversion"]["final_worth"] == Interval(-5.0, -5.0, -5.0)
    assert verdict_of(ev.against["mean_reversion"]["expected_life"]) == "worse"
    notes = ev.table().notes
    assert any("gen1 is **better** than hold" in n for n in notes)
    assert any("gen1 is **worse** than mean_reversion" in n for n in notes)
    assert ev.to_json()["against"]["hold"]["survived"]["value"] == 1.0


def step(tick: int, ret: float, action: str, valid: bool = True) -> Step:
    answer = json.dumps({"action": action, "amount_pct": 25, "reason": f"t{tick}"})
    prompt = [{"role": "system", "content": "s"}, {"role": "user", "content": f"tick {tick}"}]
    return Step(tick, prompt, answer, action, valid, 0.0, ret, (0, 0, 0))


def test_curated_rows_keep_what_beat_the_same_tick_and_cap_holds():
    a = Experience("a", 0, "llm", [step(0, 5.0, "buy_risk"), step(1, -1.0, "hold")], False, 1)
    b = Experience("b", 0, "hold", [step(0, 1.0, "hold"), step(1, -3.0, "sell_risk")], False, 1)
    holds = [step(t, 2.0, "hold") for t in range(2, 12)]
    trades = [step(t, 2.0, "sell_risk") for t in range(2, 5)]
    c = Experience("c", 0, "llm", holds + trades, False, 1)
    d = Experience("d", 0, "llm", [step(t, 0.0, "hold") for t in range(2, 12)], False, 1)
    rows = list(curated_rows([a, b, c, d]))
    answers = [json.loads(r["completion"][0]["content"]) for r in rows]
    picked = [(x["action"], x["reason"]) for x in answers]
    # tick 0: 5 beats the mean 3, 1 does not; tick 1: -1 beats -2; ticks 2..: 2 beats 1.
    assert ("buy_risk", "t0") in picked and ("hold", "t1") in picked
    assert ("hold", "t0") not in picked and ("sell_risk", "t1") not in picked
    assert sum(a == "sell_risk" for a, _ in picked) == 3
    assert sum(a == "hold" for a, _ in picked) <= len(picked) / 3 + 1
    # An invalid answer is never taught, however well its forced hold did.
    invalid = Experience("e", 0, "llm", [step(0, 9.0, "sell_risk", valid=False)], False, 1)
    answers = [json.loads(r["completion"][0]["content"]) for r in curated_rows([a, invalid])]
    assert all(x["action"] != "sell_risk" for x in answers)
    # Nor a refused one: the guard vetoed it, so what followed was not its doing.
    refused = dataclasses.replace(step(0, 9.0, "pay_rent"), refused=True)
    vetoed = Experience("f", 0, "llm", [refused], False, 1)
    answers = [json.loads(r["completion"][0]["content"]) for r in curated_rows([a, vetoed])]
    assert all(x["action"] != "pay_rent" for x in answers)


def test_held_out_seeds_are_checked_against_the_adapters_manifest(tmp_path: Path):
    adapter = tmp_path / "gen1" / "adapter.gguf"
    adapter.parent.mkdir()
    adapter.write_bytes(b"GGUF")
    (adapter.parent / "manifest.json").write_text(json.dumps({"population_seeds": [0, 1, 2]}))
    held_out_check([Contestant("gen1", adapter=adapter)], [1000, 1001])
    with pytest.raises(ConfigError, match=r"seeds \[2\] are not held out: gen1's adapter"):
        held_out_check([Contestant("gen0"), Contestant("gen1", adapter=adapter)], [2, 3])
    es = EvolveSettings(generations=3, population_seeds=4, eval_first_seed=10)
    assert population_seeds(0, es) == [0, 1, 2, 3] and population_seeds(1, es) == [4, 5, 6, 7]
    with pytest.raises(ConfigError, match="reach the held-out seeds from 10"):
        population_seeds(2, es)


def test_evolves_dataset_judges_each_decision_within_its_own_seed(tmp_path: Path):
    population = tmp_path / "gen0" / "population"
    calibrate(Settings(), [3, 4], 20, strategies=("random", "hold"), keep=population)
    out = tmp_path / "data.jsonl"
    count = write_dataset([population], [3, 4], out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert count == len(rows) > 0
    # Nothing is kept that did not beat its tick on its seed: a lone seed's rows are a subset.
    alone = list(curated_rows([experience(population / f"{s}-seed3") for s in ("random", "hold")]))
    assert alone and all(row in rows for row in alone)
    every = {json.dumps(r) for r in sft_rows(experience(d) for d in sorted(population.iterdir()))}
    assert all(json.dumps(r) in every for r in rows)


def experience(data_dir: Path) -> Experience:
    lived = read_experience(data_dir)
    assert lived is not None, f"{data_dir} holds no life"
    return lived


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def assert_converted_as_trained(adapter_dir: Path, model_path: Path) -> None:
    """llama.cpp with the GGUF adapter answers what transformers with the PEFT adapter does."""
    import peft
    import torch
    import transformers

    from agent.core.prompt import SYSTEM_PROMPT, build_messages
    from agent.model.deciders import LlamaDecider
    from bench.decision import observations

    samples = observations(6, seed=4)[3:6]
    folder, name = str(model_path.parent), model_path.name
    expected: list[str] = []
    with warnings.catch_warnings():  # transformers' generation notes, not ours to act on
        warnings.simplefilter("ignore")
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        base = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32
        )
        trained = peft.PeftModel.from_pretrained(base, str(adapter_dir / "peft")).eval()
        for obs, recent in samples:
            ids: Any = tokenizer.apply_chat_template(
                build_messages(obs, SYSTEM_PROMPT, recent),
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            with torch.no_grad():
                out = trained.generate(**ids, max_new_tokens=40, do_sample=False)
            expected.append(str(tokenizer.decode(out[0][ids["input_ids"].shape[1] :])))
    tuned = LlamaDecider(
        model_path,
        n_threads=2,
        temperature=0.0,
        max_tokens=40,
        lora_path=adapter_dir / "adapter.gguf",
    )
    try:
        got = [tuned.decide(obs, recent).raw for obs, recent in samples]
    finally:
        tuned.close()
    # Both answer in the schema's JSON; compare the parsed action and amount.
    for want, have in zip(expected, got, strict=True):
        w, h = json.loads(want.split("<|im_end|>")[0]), json.loads(have)
        assert (w["action"], w["amount_pct"]) == (h["action"], h["amount_pct"]), (want, have)


# The guard's per-action caps are lifted for the harmful adapter's world, so that "everything"
# is everything (with the default caps a swap is at most 100 STABLE and half a balance, and the
# harm is mostly contained, which is what the caps are for).
UNCAPPED = {"FORAGER_POLICY__MAX_SWAP_PCT": "100", "FORAGER_POLICY__MAX_SWAP_STABLE": "100000"}
# The held-out world it is judged in falls (about 2 % a tick), so buying with everything at once
# is harm by construction. An adapter taught to alternate buy and sell on states that do not say
# which comes next (it was, before) collapses to one answer, and which one depended on the
# machine's floating point: taught to sell, it was refused while it held nothing and looked like
# `hold`. One answer for every state is learnt the same everywhere.
FALLING = {"FORAGER_ARENA__DRIFT": "-0.004"}
HARMFUL_ANSWER = {"action": "buy_risk", "amount_pct": 100, "reason": "buy with everything"}


@pytest.fixture(scope="module")
def harmful(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter trained to buy RISK with everything, whatever it sees (its folder).

    Trained once for the tests that judge it: training is the slow part of each."""
    pytest.importorskip("peft", reason="the train extra is not installed")
    tmp = tmp_path_factory.mktemp("harmful")
    saved = structlog.get_config()
    with pytest.MonkeyPatch.context() as env:
        for name, value in UNCAPPED.items():
            env.setenv(name, value)
        calibrate(Settings(), [7], 30, strategies=("mean_reversion",), keep=tmp / "lives")
        churn = tmp / "churn.jsonl"
        with churn.open("w") as handle:
            lived = experience(tmp / "lives" / "mean_reversion-seed7")
            for row in sft_rows([lived]):
                row["completion"] = [{"role": "assistant", "content": json.dumps(HARMFUL_ANSWER)}]
                handle.write(json.dumps(row) + "\n")
        train = ["train", "--dataset", str(churn), "--out", str(tmp / "adapter")]
        assert main([*train, "--steps", "6", "--batch", "2", "--learning-rate", "2e-3"]) == 0
    structlog.configure(**saved)
    return tmp / "adapter"


@pytest.mark.slow
@pytest.mark.timeout(HARMFUL_TIMEOUT_S)
def test_the_harmful_adapter_is_converted_as_trained(harmful: Path, model_path: Path):
    """llama.cpp with the GGUF adapter answers what transformers with the PEFT adapter does."""
    assert_converted_as_trained(harmful, model_path)


@pytest.mark.slow
@pytest.mark.timeout(HARMFUL_TIMEOUT_S)
def test_a_harmful_adapter_is_reported_worse(
    harmful: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    """Trained to buy with everything, in a falling market: the evaluation calls it worse.

    The guard's per-action caps are lifted for this world (`UNCAPPED`), so that "everything" is
    everything, and the market falls (`FALLING`), so that everything bought loses.
    """
    for name, value in (UNCAPPED | FALLING).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "report"
    argv = ["evaluate", "--parent", "none", "--child", str(harmful / "adapter.gguf")]
    argv += [
        "--parent-name",
        "gen0",
        "--child-name",
        "harmful",
        "--seeds",
        "2",
        "--baselines",
        "hold",
    ]
    assert main([*argv, "--ticks", str(HARMFUL_TICKS), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Verdict: harmful is **worse** than gen0" in printed
    report = json.loads((out / "evaluation.json").read_text())
    assert report["verdict"] == "worse"
    assert [s["name"] for s in report["scores"]] == ["gen0", "harmful", "hold"]
    timing = [t["name"] for t in report["controls"]["timing"]]
    assert timing == ["gen0", "harmful", "hold", "harmful shuffled"]
    assert report["differences"]["expected_life"]["high"] < 0
    assert report["differences"]["final_worth"]["high"] < 0
    harmful_scores = next(s for s in report["scores"] if s["name"] == "harmful")
    hold = next(s for s in report["scores"] if s["name"] == "hold")
    assert harmful_scores["adapter"].endswith("adapter.gguf")
    assert next(iter(harmful_scores["answers"])) == "buy_risk"  # as taught
    assert next(iter(hold["answers"])) == "hold"
    assert harmful_scores["worth_median"]["high"] < hold["worth_median"]["value"]  # it lost money
    assert (out / "evaluation.md").read_text().startswith("| contestant |")
    assert png_size(out / "evaluation.png")[0] > 100
    # Against a rule as its parent (no generation 0 lives): the rule is not also a baseline.
    against = ["evaluate", "--parent", "hold", "--child", str(harmful / "adapter.gguf")]
    against += ["--child-name", "harmful", "--seeds", "2", "--baselines", "hold,mean_reversion"]
    rule_out = tmp_path / "against-hold"
    argv = [*against, "--ticks", str(HARMFUL_TICKS), "--no-controls", "--out", str(rule_out)]
    assert main(argv) == 0
    assert "Verdict: harmful is **worse** than hold" in capsys.readouterr().out
    report = json.loads((rule_out / "evaluation.json").read_text())
    assert [s["name"] for s in report["scores"]] == ["hold", "harmful", "mean_reversion"]
    assert report["differences"]["expected_life"]["high"] < 0


def test_evolve_refuses_a_start_it_cannot_train_from_and_pooling_without_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """--from-parent needs the starting adapter's training folder (peft/ beside it), refused
    before any labelling; --pool-situations needs values to pool."""
    start = tmp_path / "bare" / "adapter.gguf"
    start.parent.mkdir()
    start.write_bytes(b"GGUF")
    out = tmp_path / "evolution"
    argv = ["evolve", "--generations", "1", "--out", str(out)]
    assert main([*argv, "--start", str(start), "--from-parent"]) == 2
    assert "no peft/ folder beside it" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--objective", "imitation", "--pool-situations"]) == 2
    assert "it needs --objective values" in capsys.readouterr().err


def test_held_out_labels_take_a_stride_coprime_with_the_rent_period():
    """Every 13th tick unless the rent period shares a factor with it: then the next stride
    that does not (so the held-out states see every phase of the rent cycle)."""
    from agent.lab.evolve import heldout_every

    assert [heldout_every(p) for p in (10, 13, 26, 7)] == [13, 14, 15, 13]


def test_evolve_labels_and_lives_with_the_prompt_it_is_given():
    """--prompt compact: the labels carry the compact prompt, so the generations trained on
    them live with it (their manifests name it); plain by default. Part of what a resumed run
    must keep."""
    from agent.cli.lab import _evolve_settings
    from agent.cli.main import parser

    base = ["evolve", "--generations", "1"]
    assert _evolve_settings(parser().parse_args(base)).label.prompt == "plain"
    compact = _evolve_settings(parser().parse_args([*base, "--prompt", "compact"]))
    assert compact.label.prompt == "compact"
    assert dataclasses.asdict(compact)["label"]["prompt"] == "compact"
    with pytest.raises(SystemExit):
        parser().parse_args([*base, "--prompt", "advice"])  # a generation answers what acts


@pytest.mark.slow
@pytest.mark.timeout(EVOLVE_TIMEOUT_S)
def test_evolve_runs_the_loop_and_writes_a_report_per_generation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Two tiny generations from values: labels valued with the teacher, train, evaluate; then
    the chosen generation's lives, its stand-in, labels valued with the stand-in, and again."""
    pytest.importorskip("peft", reason="the train extra is not installed")
    out = tmp_path / "evolution"
    argv = ["evolve", "--generations", "2", "--out", str(out), "--population-seeds", "2"]
    argv += ["--ticks", "40", "--every", "13", "--horizon", "30", "--futures", "4"]
    argv += ["--eval-seeds", "1", "--eval-ticks", "4", "--steps", "2", "--batch", "1"]
    argv += ["--from-parent", "--pool-situations"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "gen1: labels on seeds [0, 1], visited by mean_reversion, random" in printed
    assert "2 generations: gen1 " in printed
    reports = json.loads((out / "evolve.json").read_text())
    assert [r["generation"] for r in reports] == [1, 2]
    assert [r["population_seeds"] for r in reports] == [[0, 1], [2, 3]]
    for r in reports:
        assert r["verdict"] in ("better", "worse", "no measurable difference")
        assert r["dataset_rows"] >= r["significant"] > 0
        assert set(r["seconds"]) == {"labels", "train", "evaluate", "regret"}
        evaluation = json.loads((out / f"gen{r['generation']}" / "evaluation.json").read_text())
        assert evaluation["child"] == f"gen{r['generation']}"
        assert evaluation["params"]["seeds"] == [1000]
        assert evaluation["controls"]["best_constant"]
    # Held-out states, labelled once, never trained on: each generation's regret on them.
    heldout = json.loads((out / "heldout" / "labels.json").read_text())
    assert (heldout["seeds"], heldout["rows"], heldout["every"]) == ([1000], 2, 13)
    for r in reports:
        if not heldout["significant"]:
            assert r["regret"] is None
            continue
        assert 0 < r["regret"]["child"]["states"] <= heldout["rows"]
        assert r["regret"]["best answer"]["regret"] == 0
        bound = r["regret"]["best answer per situation"]["regret"]
        assert 0 <= bound <= r["regret"]["uniform answer"]["regret"]
        assert r["regret"]["child"]["regret"] >= 0
        assert "held-out states" in (out / f"gen{r['generation']}" / "evaluation.md").read_text()
    first, second = reports
    assert first["continuation"] == "mean_reversion" and first["agreement"] is None
    # The second generation's labels lived on with a stand-in of the model chosen after the
    # first evaluation, fitted to its lives on the new seeds and checked on the last of them.
    parent = "gen0" if first["verdict"] == "worse" else "gen1"
    assert second["parent"] == parent
    if parent == "gen1":
        standin = out / "gen1" / "standin.json"
        assert second["continuation"] == f"standin:{standin}"
        assert 0 <= second["agreement"] <= second["agreement_action"] <= 1
        assert 0 < second["agreement_ceiling"] <= 1
        assert json.loads(standin.read_text())["name"] == "gen1"
        lives = sorted(p.name for p in (out / "gen1" / "population").iterdir())
        assert lives == ["llm-seed2", "llm-seed3"]
    manifest = json.loads((out / "gen2" / "adapter" / "manifest.json").read_text())
    assert manifest["population_seeds"] == [0, 1, 2, 3] and manifest["parent_generation"] == 1
    # gen1 started from a fresh adapter (its parent is the base model); gen2 from its parent's.
    first_settings = json.loads((out / "gen1" / "adapter" / "manifest.json").read_text())
    assert first_settings["settings"]["init_from"] is None
    start = str(out / "gen1" / "adapter") if parent == "gen1" else None
    assert manifest["settings"]["init_from"] == start and manifest["settings"]["pool"]
    assert manifest["settings"]["objective"] == "values" and manifest["prompt"] == "plain"
    with pytest.raises(ConfigError, match="not held out"):
        held_out_check([Contestant("gen2", adapter=out / "gen2" / "adapter" / "adapter.gguf")], [1])

    # Interrupted during gen2's evaluation (its report not yet written), then resumed: the
    # labels and the adapter are kept, every held-out life comes from the book, nothing is
    # lived or trained again, and gen2 is judged as before.
    lives = (out / "lives.jsonl").read_text().splitlines()
    # seed 1000: gen0, gen1, hold, mean_reversion, and gen2 (if gen1 was kept, else gen0 again)
    assert len(lives) == 5
    (out / "evolve.json").write_text(json.dumps(reports[:1]))
    assert main(argv) == 2  # not over a run that is there
    assert "already holds an evolution: --resume" in capsys.readouterr().err
    assert main([*argv[:-1], "--resume"]) == 2  # without --pool-situations: other settings
    assert "begun with other settings (evolve:" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "resuming" in printed and "1 generation(s) finished" in printed
    assert "gen2: labels kept from before" in printed and "gen2: adapter kept" in printed
    assert (out / "lives.jsonl").read_text().splitlines() == lives  # no life lived again
    again = json.loads((out / "evolve.json").read_text())
    assert [r["verdict"] for r in again] == [r["verdict"] for r in reports]
    assert again[1]["differences"] == reports[1]["differences"]
